"""The bundled robot builders, keyed by the embodiment names used in the CLI and in files."""

from __future__ import annotations

import importlib
from collections.abc import Callable

import mujoco

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

Builder = Callable[[mujoco.MjSpec, mujoco.MjsBody, str], RobotRig]


def get_builder(name: str) -> Builder:
    """The builder of a bundled robot; an unknown name lists the known ones."""
    if name not in ROBOT_MODULES:
        raise KeyError(f"unknown robot {name!r}; known robots: {', '.join(ROBOT_MODULES)}")
    return importlib.import_module(ROBOT_MODULES[name]).build
