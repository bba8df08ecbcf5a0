"""Unitree Z1 (6-DoF arm) with its single-jaw gripper, from the models `robosuite-models` ships.

robosuite keeps arm and gripper in separate files and merges them at run time; here the
gripper's ``right_gripper`` body is attached to the arm's ``right_hand`` body with MjSpec
attach. The files' torque motors and the gripper's own servo are dropped; ours are added
(a position servo per arm joint, one on the moving jaw's hinge).

The gripper is a fixed jaw (``stator``) and a jaw hinged at its root (``mover``), both
pointing along the hand's +x axis; the mover closes towards the stator along the hand's -y
axis. Its joint ``stator_mover_joint`` is 0 rad when the jaws touch and negative when open
(-90 deg at most). MuJoCo collides meshes as convex hulls, and the stator's hull (palm plus
jaw) fills the space between the jaws, so the meshes are kept for drawing only and boxes on
the jaws (and one on the palm) do the contacts. The TCP is the grasp centre: a 2 cm cube
resting on the fixed jaw (plus 2 mm, so the fixed jaw clears the cube on the way down), 19 mm
from the jaws' tips (so they clear the table with the TCP at a cube's centre).

The arm joints' armature is lowered from the file's 1.0 kg m^2 (a robosuite default that
would make the servos sluggish) to 0.1. The arm reaches ~0.46 m from its base with the
gripper pointing down at the 16 cm lift height, which sizes the spawn region.
"""

from __future__ import annotations

import math

import mujoco

from locksmith.sim.assets import asset_path
from locksmith.sim.rig import ArmRig, RobotRig, Workspace
from locksmith.sim.robots.common import add_joint_actuators, add_position_actuator, enable_gravcomp, servo_arm_rig

PACKAGE = "robosuite_models"
ARM_FILE = "assets/robots/z1/robot.xml"
GRIPPER_FILE = "assets/grippers/z1_gripper.xml"

ARM_JOINTS = tuple(f"joint{i}" for i in range(1, 7))
# TCP at (0.35, 0, 0.2) in the base frame, pointing down; closing axis along -y of the base.
HOME = (-0.0371, 1.9382, -1.7671, 1.3997, 0.0, -0.0371)
KP = (300.0, 300.0, 300.0, 150.0, 100.0, 100.0)
KV = (40.0, 40.0, 40.0, 25.0, 20.0, 20.0)
TORQUE = (33.0, 33.0, 33.0, 33.0, 33.0, 12.0)  # N m, as the spec's torque limits
ARMATURE = 0.1  # kg m^2 per arm joint (the file's 1.0 makes the arm sluggish)

JAW_OPEN = math.radians(-70.0)  # rad, mover hinge angle when open (the joint allows -90 deg)
JAW_CLOSED = 0.0  # rad, jaws touching
GRIP_KP = 8.0  # N m/rad on the hinge
GRIP_KV = 0.5
GRIP_TORQUE = 2.0  # N m: ~25 N at the grasp point, 76 mm from the hinge
HINGE_X = 0.049  # m, mover hinge along the gripper's x axis
JAW_FACE_Y = -0.009  # m, inner face of the fixed jaw (and of the closed mover) in y
JAW_X = (0.100, 0.149)  # m, extent of both jaws along x
TCP_X = 0.13  # m, grasp centre along the jaws: 19 mm from their tips
TCP_Y = 0.013  # m, grasp centre across the jaws: the cube (2 cm half size) rests on the fixed jaw, 2 mm spare
PAD_FRICTION = (1.0, 0.01, 0.0002)


def _load(relative: str, scene: mujoco.MjSpec) -> mujoco.MjSpec:
    spec = mujoco.MjSpec.from_file(str(asset_path(PACKAGE, relative)))
    for act in list(spec.actuators):
        spec.delete(act)
    for sensor in list(spec.sensors):
        spec.delete(sensor)
    for cam in list(spec.cameras):
        spec.delete(cam)
    for site in list(spec.sites):  # robosuite's markers (one a 10 m long cylinder) would be drawn
        spec.delete(site)
    spec.compiler.degree = False  # the gripper file sets no unit: its numbers are radians
    spec.option.integrator = scene.option.integrator
    spec.option.cone = scene.option.cone
    spec.option.impratio = scene.option.impratio
    return spec


def _box(body: mujoco.MjsBody, name: str, lo, hi, **kw) -> mujoco.MjsGeom:
    centre = [(a + b) / 2 for a, b in zip(lo, hi, strict=True)]
    half = [(b - a) / 2 for a, b in zip(lo, hi, strict=True)]
    return body.add_geom(name=name, type=mujoco.mjtGeom.mjGEOM_BOX, pos=centre, size=half,
                         rgba=[0.5, 0.5, 0.5, 1], **kw)


def _gripper_spec(variant: str, scene: mujoco.MjSpec) -> mujoco.MjSpec:
    grip = _load(GRIPPER_FILE, scene)
    for name in ("stator_col", "mover_col"):
        geom = grip.geom(name)
        geom.contype = 0
        geom.conaffinity = 0
    stator, mover = grip.body("stator"), grip.body("mover")
    mover.joints[0].armature = 0.002
    mover.joints[0].damping = [0.05, 0, 0]
    mover.joints[0].frictionloss = 0.01
    pad = dict(friction=PAD_FRICTION, condim=4)
    # Palm (up to the jaws' root) and the fixed jaw, in the stator's frame.
    _box(stator, "palm_col", (-0.005, -0.034, -0.038), (0.085, 0.030, 0.038))
    _box(stator, "fixed_jaw_col", (JAW_X[0], JAW_FACE_Y - 0.022, -0.030), (JAW_X[1], JAW_FACE_Y, 0.030), **pad)
    # The moving jaw, in the mover's frame (the hinge; axes as the stator's at 0 rad).
    lo, hi = JAW_X[0] - HINGE_X, JAW_X[1] - HINGE_X
    thickness = 0.020
    face = JAW_FACE_Y
    if variant == "changed":
        # A shorter moving jaw whose pad stands 3 mm proud: other geometry and closure.
        lo, face = lo + 0.012, JAW_FACE_Y - 0.003
    _box(mover, "moving_jaw_col", (lo, face, -0.030), (hi, JAW_FACE_Y + thickness, 0.030), **pad)
    # TCP at the grasp centre: +z along the jaws (palm → tips), +x the mover's closing
    # direction (-y of the gripper), so y = z × x = -z of the gripper.
    grip.body("right_gripper").add_site(
        name="tcp", pos=[TCP_X, TCP_Y, 0.0], quat=[0.5, -0.5, 0.5, -0.5], size=[0.005] * 3, group=5)
    return grip


def add_z1(spec: mujoco.MjSpec, parent: mujoco.MjsBody, variant: str, prefix: str = "z1/", pos=(0, 0, 0)) -> ArmRig:
    """Attach a Z1 + gripper under ``parent`` (a body of ``spec``) and return its arm rig."""
    arm = _load(ARM_FILE, spec)
    for joint in ARM_JOINTS:
        arm.joint(joint).armature = ARMATURE
    gripper = _gripper_spec(variant, spec)
    arm.body("right_hand").add_frame().attach_body(gripper.body("right_gripper"), "gripper/", "")
    frame = parent.add_frame(pos=list(pos))
    frame.attach_body(arm.body("base"), prefix, "")
    return servo_arm_rig("arm", prefix, ARM_JOINTS, prefix + "gripper/tcp", prefix + "gripper/stator_mover_joint",
                         JAW_OPEN, JAW_CLOSED, HOME)


def finish_z1(spec: mujoco.MjSpec, arm: ArmRig, prefix: str = "z1/") -> None:
    """Actuators and gravity compensation, once the Z1 is in ``spec``."""
    add_joint_actuators(spec, arm, KP, forcerange=TORQUE, kv=KV)
    add_position_actuator(spec, arm.gripper_actuator, arm.gripper_joint, kp=GRIP_KP,
                          ctrlrange=(JAW_OPEN, JAW_CLOSED), forcerange=GRIP_TORQUE, kv=GRIP_KV)
    enable_gravcomp(spec, prefix + "base")


def build(spec: mujoco.MjSpec, parent: mujoco.MjsBody, variant: str = "default") -> RobotRig:
    arm = add_z1(spec, parent, variant)
    finish_z1(spec, arm)
    return RobotRig(
        arms=(arm,),
        # Far corners at ~0.45 m, what the arm reaches top-down at the lift height.
        workspace=Workspace(spawn_x=(0.2, 0.42), spawn_y=(-0.17, 0.17), cube_half=0.02,
                            lift_height=0.1, hover_height=0.12),
        # Where the closed jaws are along the TCP's x axis (m, = -y of the gripper): the TCP is
        # the grasp centre, not the closed jaws, which a push with the closed gripper should
        # aim with (their stack spans y = -0.031 .. 0.011 in the gripper's frame).
        extra={"closed_jaws_tcp_x": TCP_Y + 0.010},
    )
