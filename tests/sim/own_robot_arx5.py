"""A user's robot, registered from outside the package: the ARX5 arm with the UMI gripper.

Both models ship with robosuite-models (``robots/arx5/robot.xml``, ``grippers/umi_gripper.xml``)
and the bundled suite uses neither. This module is what a user writes for their own arm: a
builder with the bundled builders' contract, ``build(spec, parent, variant) -> RobotRig`` (see
`locksmith.sim.rig`), built on the helpers in `locksmith.sim.robots.common`, and a spec file
beside it (``arx5_umi.yaml``). `register` registers both; `tests/sim/test_custom_robot.py` and
its worker processes use it.

Model notes. The arm file drives its six joints with torque motors and has no gripper; its
first joint is limited to ±10 rad, which we narrow to ±π (as in the spec). The UMI gripper is a
pair of fin-ray fingers, each on its own slide joint (range -0.045..0 m, 0 = closed); the file
gives them 100 N s/m of damping and 1 kg of armature, which would take seconds to close behind
a 20 N servo, so we use lighter values, and couple the second finger to the first with an
equality (one servo, as on the real gripper). The finger hulls' inner faces meet at q = 0, so
the gap is -2 q (90 mm open); finger-finger contacts are excluded, and so are the base's
contacts with the first link (the base is welded to the world, which turns off MuJoCo's
parent-child filter, and the two hulls overlap: without it the first joint does not move).
The gripper file turns gravity off in its own options; the scene's options are copied over.

TCP: on the gripper base, midway between the fingers' inner faces, 2 cm in from the finger
tips; +z along the fingers (the last link's +x), +x along the closing axis (the link's +y).
"""

from __future__ import annotations

from pathlib import Path

import mujoco
import numpy as np

from locksmith.sim.assets import asset_path
from locksmith.sim.rig import RobotRig, Workspace
from locksmith.sim.robots.common import (
    add_joint_actuators, add_position_actuator, enable_gravcomp, servo_arm_rig,
)

SPEC_FILE = Path(__file__).with_name("arx5_umi.yaml")
PACKAGE = "robosuite_models"
ARM_FILE = "assets/robots/arx5/robot.xml"
GRIPPER_FILE = "assets/grippers/umi_gripper.xml"
PREFIX = "arx5/"
GRIPPER_PREFIX = PREFIX + "umi/"

ARM_JOINTS = ("joint1", "joint2", "joint3", "joint4", "joint5", "joint6")
JOINT1_RANGE = (-np.pi, np.pi)
# TCP at (0.24, 0, 0.10) in the base frame, pointing down, closing axis along the base's y
# (solved once with mink).
HOME = (-0.0125, 1.4609, 1.373, -1.483, 0.0, -0.0125)
KP = (150.0, 300.0, 250.0, 60.0, 30.0, 30.0)
KV = (4.0, 6.0, 5.0, 1.5, 0.8, 0.8)
TORQUE = (50.0,) * 6  # N m: the file's motor control ranges (gear 1)

FINGER_OPEN = -0.045  # m on finger_joint1: 90 mm between the fingers (the gap is -2 q)
FINGER_CLOSED = 0.0  # m: the fingers' inner faces meet; with a cube between them the servo squeezes
FINGER_DAMPING = 5.0  # N s/m (the file has 100)
FINGER_ARMATURE = 0.01  # kg (the file has 1.0)
GRIP_KP = 1000.0  # N/m, the file's finger servo
GRIP_KV = 20.0
GRIP_FORCE = 20.0  # N, the file's finger servo force limit
TCP_POS = (0.203, 0.002, 0.0)  # m in the gripper base frame (the finger hulls span x 0.090-0.223)
CUBE_HALF = 0.02


def _tcp_quat() -> list[float]:
    # Columns: TCP x (closing, the body's +y), y = z × x (the body's +z), z (fingers, the body's +x).
    mat = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, mat.flatten())
    return quat.tolist()


def _load(relative: str, scene: mujoco.MjSpec) -> mujoco.MjSpec:
    """A robosuite-models file without its actuators and sensors, the scene's options copied."""
    spec = mujoco.MjSpec.from_file(str(asset_path(PACKAGE, relative)))
    for element in list(spec.actuators) + list(spec.sensors):
        spec.delete(element)
    for site in spec.sites:
        site.group = 5
    for camera in list(spec.cameras):
        spec.delete(camera)
    spec.option.integrator = scene.option.integrator
    spec.option.cone = scene.option.cone
    spec.option.impratio = scene.option.impratio
    spec.option.gravity = scene.option.gravity
    return spec


def build(spec: mujoco.MjSpec, parent: mujoco.MjsBody, variant: str = "default") -> RobotRig:
    """Attach the ARX5 + UMI gripper under ``parent`` (the builder contract of `locksmith.sim.rig`)."""
    arm = _load(ARM_FILE, spec)
    arm.joint("joint1").range = list(JOINT1_RANGE)
    grip = _load(GRIPPER_FILE, spec)
    for joint in ("finger_joint1", "finger_joint2"):
        grip.joint(joint).damping = [FINGER_DAMPING, 0, 0]
        grip.joint(joint).armature = FINGER_ARMATURE
        grip.joint(joint).frictionloss = 0.0
    if variant == "changed":
        # gripper_changed: fingers 20 % thicker towards each other (a narrower gap).
        for side in ("right", "left"):
            grip.geom(f"{side}_finger_collision").pos = [0.0, 0.003 if side == "right" else -0.003, 0.0]
    grip.body("right_gripper").add_site(name="tcp", pos=list(TCP_POS), quat=_tcp_quat(), size=[0.005] * 3, group=5)
    arm.body("right_hand").add_frame().attach_body(grip.body("right_gripper"), "umi/", "")
    parent.add_frame().attach_body(arm.body("base"), PREFIX, "")

    rig = servo_arm_rig("arm", PREFIX, ARM_JOINTS, GRIPPER_PREFIX + "tcp", GRIPPER_PREFIX + "finger_joint1",
                        FINGER_OPEN, FINGER_CLOSED, HOME)
    add_joint_actuators(spec, rig, KP, forcerange=TORQUE, kv=KV)
    spec.add_equality(type=mujoco.mjtEq.mjEQ_JOINT, name1=GRIPPER_PREFIX + "finger_joint1",
                      name2=GRIPPER_PREFIX + "finger_joint2", objtype=mujoco.mjtObj.mjOBJ_JOINT)
    spec.add_exclude(bodyname1=GRIPPER_PREFIX + "rightfinger", bodyname2=GRIPPER_PREFIX + "leftfinger")
    # The base is welded to the world, so MuJoCo does not filter its contact with its child.
    spec.add_exclude(bodyname1=PREFIX + "base_link", bodyname2=PREFIX + "link1")
    add_position_actuator(spec, rig.gripper_actuator, rig.gripper_joint, kp=GRIP_KP,
                          ctrlrange=(FINGER_OPEN, FINGER_CLOSED), forcerange=GRIP_FORCE, kv=GRIP_KV)
    enable_gravcomp(spec, PREFIX + "base")
    # A 20 cm tool on a 5 cm wrist: pointing straight down, the TCP stays below ~0.11 m over the
    # spawn box (joint4 reaches its limit above), so hovering and lifting stay low.
    return RobotRig(
        arms=(rig,),
        workspace=Workspace(spawn_x=(0.17, 0.32), spawn_y=(-0.18, 0.18), cube_half=CUBE_HALF,
                            lift_height=0.025, hover_height=0.06),
    )


def register() -> None:
    """Register the robot (idempotent): what a `locksmith.robots` entry point would name."""
    import locksmith

    locksmith.register_robot(SPEC_FILE, builder=f"{__name__}:build")
