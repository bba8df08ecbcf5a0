"""The robot builders, keyed by the embodiment names used in the CLI and in files: the bundled
ones below, and the builders of robots a user registered (`locksmith.register_robot`)."""

from __future__ import annotations

import importlib
from collections.abc import Callable

import mujoco

from locksmith.embodiment.registry import BUNDLED_ROBOTS, registration, resolve_builder
from locksmith.sim.rig import RobotRig

# name → module that defines `build(spec, parent, variant) -> RobotRig`
ROBOT_MODULES: dict[str, str] = {
    "panda": "locksmith.sim.robots.panda",
    "ur5e": "locksmith.sim.robots.ur5e",
    "vx300s": "locksmith.sim.robots.vx300s",
    "z1": "locksmith.sim.robots.z1",
    "so101": "locksmith.sim.robots.so101",
    "mobile_panda": "locksmith.sim.robots.mobile_panda",
    "aloha": "locksmith.sim.robots.aloha",
}
assert tuple(ROBOT_MODULES) == BUNDLED_ROBOTS

Builder = Callable[[mujoco.MjSpec, mujoco.MjsBody, str], RobotRig]


def get_builder(name: str) -> Builder:
    """The builder of a bundled or registered robot; an unknown name lists the known ones."""
    if name in ROBOT_MODULES:
        return importlib.import_module(ROBOT_MODULES[name]).build
    return resolve_builder(registration(name).builder)
