"""ALOHA: two ViperX 300 arms with ALOHA grippers facing each other across the table, from the
model `robosuite-models` ships (``robots/aloha/robot.xml``).

Arms, grippers, servos and TCPs are the `vx300s` ones (see `locksmith.sim.robots.vx300s`). The
file leaves its ``<compiler>`` commented out, so MuJoCo would read the hands' Euler angles in
degrees (turning them 1.6 degrees instead of a quarter turn); they are radians, as in the
single-arm file, and we say so.

Base frame: the table top midway between the arms' mounts; the ``left`` arm stands on +y and
faces -y, the ``right`` arm on -y facing +y, both at x = 0 (the file places its base body
10 cm below its origin and its mounts 1.9 cm off it; we put the mounts on the table, on the y
axis). The file mounts the arms 0.938 m apart, where the table that both arms reach top-down
(~0.55 m from a mount, at full stretch) is a lens 16 cm across at its widest. The shared expert
does a whole task with one arm (the one nearer the target object), so every object and pad
must be within that arm's reach: we mount the arms `MOUNT_Y` from the middle instead, and every
point of the 26 x 22 cm spawn region between them is within 0.48 m of either mount.

Home: each arm's TCP 0.25 m from the middle on its own side, pointing down, 0.2 m above the
table: the idle arm's gripper stays clear of the working arm, which crosses the middle by up to
11 cm. The closing axis is along y; along x, the wrist camera mount on top of each gripper
would point at the middle, where the working arm's forearm passes.
"""

from __future__ import annotations

import mujoco

from locksmith.sim.rig import RobotRig, Workspace
from locksmith.sim.robots.common import enable_gravcomp
from locksmith.sim.robots.vx300s import (
    CUBE_HALF, load_model, arm_rig, attach_gripper, finish_arm, tune_arm_joints,
)

ALOHA_FILE = "assets/robots/aloha/robot.xml"
PREFIX = "aloha/"
MOUNT_Y = 0.35  # m from the middle to each arm's mount (the file: 0.469)
MOUNT_X = 0.019  # m, the file's mounts sit 1.9 cm off its base body's origin (x here)
# TCP at (0, -/+0.25, 0.2) in the base frame, pointing down; closing axis along the base's y.
HOME_RIGHT = (0.0, -0.8961, 0.7563, 0.0, 1.7106, -1.5708)
HOME_LEFT = (0.0, -0.8961, 0.7563, 0.0, 1.7106, 1.5708)


def build(spec: mujoco.MjSpec, parent: mujoco.MjsBody, variant: str = "default") -> RobotRig:
    model = load_model(ALOHA_FILE, spec)
    model.compiler.degree = False  # see the module docstring
    base = model.body("base")
    base.pos = [-MOUNT_X, 0.0, 0.0]  # the mounts on the table, midway at the origin in x
    for side, sign in (("right", -1.0), ("left", 1.0)):
        mount = model.body(f"{side}_arm_mount")
        mount.pos = [sign * MOUNT_Y, mount.pos[1], mount.pos[2]]
    arms = []
    for side, home in (("left", HOME_LEFT), ("right", HOME_RIGHT)):
        tune_arm_joints(model, f"{side}/")
        attach_gripper(model, f"{side}_hand", spec, variant, f"{side}/gripper/")
        arms.append(arm_rig(side, f"{PREFIX}{side}/", f"{PREFIX}{side}/gripper/", home))
    parent.add_frame().attach_body(base, PREFIX, "")
    for arm in arms:
        finish_arm(spec, arm, f"{PREFIX}{arm.name}/gripper/")
    enable_gravcomp(spec, PREFIX + "base")
    return RobotRig(
        arms=tuple(arms),
        workspace=Workspace(spawn_x=(-0.13, 0.13), spawn_y=(-0.11, 0.11), cube_half=CUBE_HALF,
                            lift_height=0.05, hover_height=0.07),
        # The distance (m) from an arm's mount to the far edge of the spawn region: the reach a
        # speed heuristic should scale with (the spawn region's x, centred here, understates it).
        extra={"reach": MOUNT_Y + 0.11},
    )
