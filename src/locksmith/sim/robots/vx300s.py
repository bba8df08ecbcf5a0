"""Trossen ViperX 300 6-DoF arm with the ALOHA gripper, from the models `robosuite-models` ships.

The robosuite arm files (``robots/vx300s/robot.xml``, and ``robots/aloha/robot.xml`` with two
of the same arms, see `locksmith.sim.robots.aloha`) carry no gripper and drive the joints with
torque motors. We drop the motors, attach the ALOHA gripper (``grippers/aloha_gripper.xml``,
two fingers sliding on a bar) to each arm's hand body, and add our own position servos: one
per arm joint and one for the fingers, which an equality keeps symmetric.

Gripper. Each finger joint measures one finger's travel (m) along the bar, 0.041 at the stop;
ALOHA commands it between 0.002 (closed, squeezing) and 0.037 (open), and so do we. The file
gives the joints no reference position, so a model reset would start both fingers shut; we
set their reference (``ref``) to open and move the finger bodies to match, so that every
joint value still means the same finger position and a reset starts the gripper open.
MuJoCo collides the finger meshes as convex hulls, which slant from the finger's root to its
tip and would touch a cube with one point of the tip; we add a flat box pad on each fingertip,
1 mm proud of the hull, with torsional friction (the real fingers carry grip tape there). The
gap between the pads is ``2 q - 17.8 mm``: 56 mm open, 35 mm (a nominal cube) at q = 26 mm.
The rest of each finger gets plastic-like friction (the file gives the whole finger 1.0).

TCP: on the gripper base, midway between the pads, 13 mm above the fingertips (so a grasp at
a cube's mid-height keeps the tips off the table); +z along the fingers (the gripper base's
z), +x along the bar (the closing axis, the gripper base's x). The files' marker sites (one
of them a 20 m line along the gripper) are moved to the hidden site group 5.

Joint servos: the torque limits are the model's own (the robosuite motors' control ranges,
gear 1, no larger than the joints' ``actuatorfrcrange`` where the file sets one). The file puts
1.0 kg m^2 of armature on the two wrist joints; behind a 1 N m position servo that makes the
wrist lag its target (the expert's pick-and-place takes ~25 % longer), so we use 0.01.
"""

from __future__ import annotations

import mujoco
import numpy as np

from locksmith.sim.assets import asset_path
from locksmith.sim.rig import ArmRig, RobotRig, Workspace
from locksmith.sim.robots.common import add_joint_actuators, add_position_actuator, enable_gravcomp, servo_arm_rig

PACKAGE = "robosuite_models"
ARM_FILE = "assets/robots/vx300s/robot.xml"
GRIPPER_FILE = "assets/grippers/aloha_gripper.xml"

ARM_JOINTS = ("waist", "shoulder", "elbow", "forearm_roll", "wrist_angle", "wrist_rotate")
# TCP at (0.3, 0, 0.16) in the base frame, pointing down; closing axis along the base's -y.
HOME = (0.0, -0.1555, 0.3919, 0.0, 1.3341, 0.0)

# Servo gains per joint: waist, shoulder, elbow, forearm roll, wrist angle, wrist rotate.
KP = (60.0, 300.0, 250.0, 30.0, 15.0, 10.0)
KV = (2.0, 4.0, 4.0, 0.8, 0.4, 0.3)
# N m: the robosuite motors' control ranges (gear 1), the model's torque limits.
TORQUE = (5.0, 50.0, 50.0, 5.0, 1.0, 1.0)
WRIST_ARMATURE = 0.01  # kg m^2 on wrist_angle and wrist_rotate (the file has 1.0)

FINGER_OPEN = 0.037  # m, finger joint (ALOHA's open command)
FINGER_CLOSED = 0.002  # m, finger joint (ALOHA's closed command: squeezes whatever it holds)
GRIP_KP = 2000.0  # N/m, ALOHA's finger servo
GRIP_KV = 50.0
GRIP_FORCE = 40.0  # N on the coupled fingers (the equality shares it: ~20 N a finger)

# Fingertip pads, in the gripper base's frame with the finger joints at 0 (see the docstring).
TIP_INNER_X = 0.0079  # m, |x| of a fingertip's inner face (its hull) at q = 0
TIP_Z = 0.111  # m, the fingertips (along the gripper base's z)
TIP_Y = 0.004  # m, the fingertip's centre line (along the gripper base's y)
# Per variant: how far the pad stands out of the hull towards the other finger, its half sizes
# (thickness along x, width along y, length along z) and its centre along z. gripper_changed:
# pads 1.5 mm prouder (a 3 mm narrower gap), 50 % wider and 25 % shorter.
PADS = {
    "default": (0.001, (0.003, 0.006, 0.013), 0.097),
    "changed": (0.0025, (0.003, 0.009, 0.010), 0.098),
}
PAD_FRICTION = (1.2, 0.01, 0.0002)
# The file gives the whole finger rubber-like friction (1.0); only the tape on the inner face
# grips like that. Plastic elsewhere: a closed gripper pushing a cube with the tapered outer
# face of a finger slides along the cube's edge instead of pinning it to the table.
FINGER_FRICTION = (0.4, 0.005, 0.0001)
TCP_POS = (0.0, TIP_Y, TIP_Z - 0.013)  # 13 mm above the fingertips
CUBE_HALF = 0.0175


def _quat_rotate_inv(quat: np.ndarray, vec: np.ndarray) -> np.ndarray:
    """``quat``'s inverse rotation applied to ``vec``."""
    neg = np.zeros(4)
    mujoco.mju_negQuat(neg, quat)
    out = np.zeros(3)
    mujoco.mju_rotVecQuat(out, vec, neg)
    return out


def load_model(relative: str, scene: mujoco.MjSpec) -> mujoco.MjSpec:
    """A robosuite-models file as an `MjSpec`: motors and sensors dropped, sites hidden."""
    spec = mujoco.MjSpec.from_file(str(asset_path(PACKAGE, relative)))
    for act in list(spec.actuators):
        spec.delete(act)
    for sensor in list(spec.sensors):
        spec.delete(sensor)
    for site in spec.sites:
        site.group = 5  # marker sites stay out of the camera images
    # The scene's options win; copy them so that attaching reports no conflict.
    spec.option.integrator = scene.option.integrator
    spec.option.cone = scene.option.cone
    spec.option.impratio = scene.option.impratio
    return spec


def gripper_spec(scene: mujoco.MjSpec, variant: str) -> mujoco.MjSpec:
    """The ALOHA gripper as an `MjSpec`: actuators and sensors dropped, pads and TCP added."""
    grip = load_model(GRIPPER_FILE, scene)
    proud, half, pad_z = PADS["changed" if variant == "changed" else "default"]
    for side, sign in (("left", 1.0), ("right", -1.0)):
        body = grip.body(f"{side}_finger_link")
        for geom in body.geoms:
            if geom.contype or geom.conaffinity:
                geom.friction = list(FINGER_FRICTION)
        quat = np.array(body.quat, dtype=float)
        quat /= np.linalg.norm(quat)
        # Pad centre in the gripper base frame (q = 0), then in the finger's frame.
        centre = np.array([sign * (-(TIP_INNER_X + proud) + half[0]), TIP_Y, pad_z])
        local = _quat_rotate_inv(quat, centre - np.array(body.pos))
        inv = np.zeros(4)
        mujoco.mju_negQuat(inv, quat)
        body.add_geom(
            name=f"{side}_pad", type=mujoco.mjtGeom.mjGEOM_BOX, size=list(half), pos=local.tolist(),
            quat=inv.tolist(), friction=list(PAD_FRICTION), condim=4, solref=[0.01, 1],
            solimp=[0.95, 0.99, 0.001, 0.5, 2], density=0, rgba=[0.3, 0.3, 0.3, 1], group=0,
        )
        # The fingers' reference position is open: a model reset (qpos0) starts both fingers
        # open, so the equality between them holds from the first step. The body moves by the
        # same amount, so a joint value means the same finger position as in the file.
        joint = grip.joint(f"{side}_finger")
        shift = np.zeros(3)
        mujoco.mju_rotVecQuat(shift, np.array(joint.axis, dtype=float) * FINGER_OPEN, quat)
        body.pos = (np.array(body.pos) + shift).tolist()
        joint.ref = FINGER_OPEN
    grip.body("gripper_base").add_site(name="tcp", pos=list(TCP_POS), size=[0.005] * 3, group=5)
    return grip


def attach_gripper(arm: mujoco.MjSpec, hand: str, scene: mujoco.MjSpec, variant: str,
                   prefix: str) -> None:
    """Attach a gripper to the body ``hand`` of ``arm``, names prefixed with ``prefix``."""
    hand_body = arm.body(hand)
    hand_body.mass = 1e-4  # the hand's inertial duplicates the gripper base's
    hand_body.inertia = [1e-7] * 3
    hand_body.add_frame().attach_body(gripper_spec(scene, variant).body("gripper_base"), prefix, "")


def tune_arm_joints(arm: mujoco.MjSpec, joint_prefix: str) -> None:
    """Wrist armature a 1 N m servo can move (see the module docstring)."""
    for joint in ("wrist_angle", "wrist_rotate"):
        arm.joint(joint_prefix + joint).armature = WRIST_ARMATURE


def arm_rig(name: str, prefix: str, gripper_prefix: str, home: tuple[float, ...]) -> ArmRig:
    """The rig of one arm whose joints are ``prefix + ARM_JOINTS`` (names in the scene)."""
    return servo_arm_rig(name, prefix, ARM_JOINTS, gripper_prefix + "tcp", gripper_prefix + "left_finger",
                         FINGER_OPEN, FINGER_CLOSED, home)


def finish_arm(spec: mujoco.MjSpec, arm: ArmRig, gripper_prefix: str) -> None:
    """Joint servos, the finger coupling and the gripper servo of one arm in ``spec``."""
    add_joint_actuators(spec, arm, KP, forcerange=TORQUE, kv=KV)
    right = gripper_prefix + "right_finger"
    spec.add_equality(type=mujoco.mjtEq.mjEQ_JOINT, name1=arm.gripper_joint, name2=right,
                      objtype=mujoco.mjtObj.mjOBJ_JOINT)
    add_position_actuator(spec, arm.gripper_actuator, arm.gripper_joint, kp=GRIP_KP,
                          ctrlrange=(FINGER_CLOSED, FINGER_OPEN), forcerange=GRIP_FORCE, kv=GRIP_KV)


def add_vx300s(spec: mujoco.MjSpec, parent: mujoco.MjsBody, variant: str, prefix: str = "vx300s/",
               pos=(0, 0, 0)) -> ArmRig:
    """Attach a ViperX 300 + ALOHA gripper under ``parent`` and return its arm rig."""
    arm = load_model(ARM_FILE, spec)
    tune_arm_joints(arm, "right/")
    attach_gripper(arm, "right_hand", spec, variant, "gripper/")
    frame = parent.add_frame(pos=list(pos))
    frame.attach_body(arm.body("base"), prefix, "")
    return arm_rig("arm", prefix + "right/", prefix + "gripper/", HOME)


PUSH_HEIGHT = 0.8  # × cube half size: lower pushes keep the tapered fingertips from riding up the cube


def build(spec: mujoco.MjSpec, parent: mujoco.MjsBody, variant: str = "default") -> RobotRig:
    arm = add_vx300s(spec, parent, variant)
    finish_arm(spec, arm, "vx300s/gripper/")
    enable_gravcomp(spec, "vx300s/base")
    return RobotRig(
        arms=(arm,),
        workspace=Workspace(spawn_x=(0.2, 0.45), spawn_y=(-0.22, 0.22), cube_half=CUBE_HALF,
                            lift_height=0.08, hover_height=0.1),
        extra={"push_height": PUSH_HEIGHT},
    )
