"""The Panda on a holonomic mobile base (`mobile_manipulator`).

The base is a box on planar joints (slide x, slide y, yaw hinge, in that order, so its pose is
(x, y, yaw) in the world) driven by position servos that the environment moves by integrating
the base-velocity command. The arm is the same Panda as `panda`, mounted on top. Objects spawn
out of the arm's reach from the base's start, so the base must drive.
"""

from __future__ import annotations

import mujoco

from locksmith.sim.rig import RobotRig, Workspace
from locksmith.sim.robots.common import add_position_actuator, enable_gravcomp
from locksmith.sim.robots.panda import add_panda, finish_panda

BASE_HEIGHT = 0.3
BASE_JOINTS = ("base/x", "base/y", "base/yaw")


def build(spec: mujoco.MjSpec, parent: mujoco.MjsBody, variant: str = "default") -> RobotRig:
    base = parent.add_body(name="base/body", pos=[0, 0, 0])
    base.add_joint(name=BASE_JOINTS[0], type=mujoco.mjtJoint.mjJNT_SLIDE, axis=[1, 0, 0], damping=50)
    base.add_joint(name=BASE_JOINTS[1], type=mujoco.mjtJoint.mjJNT_SLIDE, axis=[0, 1, 0], damping=50)
    base.add_joint(name=BASE_JOINTS[2], type=mujoco.mjtJoint.mjJNT_HINGE, axis=[0, 0, 1], damping=20)
    # The chassis touches nothing (contype 2 / conaffinity 2): it glides over the floor.
    base.add_geom(name="base/chassis", type=mujoco.mjtGeom.mjGEOM_BOX, size=[0.3, 0.25, BASE_HEIGHT / 2],
                  pos=[-0.05, 0, BASE_HEIGHT / 2], mass=30.0, rgba=[0.25, 0.25, 0.3, 1], contype=2, conaffinity=2)
    arm = add_panda(base, variant, prefix="panda/", pos=(0.15, 0.0, BASE_HEIGHT))
    finish_panda(spec, arm, prefix="panda/")
    actuators = ("base/act_x", "base/act_y", "base/act_yaw")
    for name, joint in zip(actuators, BASE_JOINTS, strict=True):
        add_position_actuator(spec, name, joint, kp=4000.0, kv=600.0, ctrlrange=(-10, 10))
    enable_gravcomp(spec, "base/body")
    return RobotRig(
        arms=(arm,),
        workspace=Workspace(spawn_x=(0.95, 1.25), spawn_y=(-0.3, 0.3), cube_half=0.02,
                            lift_height=0.1, hover_height=0.12),
        base_joints=BASE_JOINTS,
        base_actuators=actuators,
        base_home=(0.0, 0.0, 0.0),
    )
