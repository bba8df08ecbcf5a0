"""Franka Panda with its hand, from the model that `gymnasium-robotics` ships.

The package ships include fragments (``<mujocoinclude>``); we wrap them in a model with an
absolute mesh directory, replace its actuators with our own (position control per joint, one
actuator for both fingers through an equality), and add a tool-centre-point site.
"""

from __future__ import annotations

import math

import mujoco

from locksmith.sim.assets import asset_path
from locksmith.sim.rig import SIM_TIMESTEP, ArmRig, RobotRig, Workspace
from locksmith.sim.robots.common import add_joint_actuators, add_position_actuator, enable_gravcomp, servo_arm_rig

ARM_JOINTS = tuple(f"robot:panda0_joint{i}" for i in range(1, 8))
HOME = (0.0, -0.146, 0.0, -2.219, 0.0, 0.503, 0.0)  # TCP at (0.5, 0, 0.3), pointing down
# Arm joint stiffness: the large shoulder/elbow joints and the wrist.
KP = (600.0, 600.0, 600.0, 600.0, 250.0, 250.0, 250.0)


def panda_spec(prefix: str = "") -> mujoco.MjSpec:
    """The Panda arm + hand as an `MjSpec`, names prefixed with ``prefix``."""
    root = asset_path("gymnasium_robotics", "envs/assets/kitchen_franka/franka_assets")
    xml = f"""<mujoco model="panda">
      <include file="{root}/assets.xml"/>
      <compiler angle="radian" meshdir="{root}/meshes"/>
      <worldbody><body name="panda_mount"><include file="{root}/chain.xml"/></body></worldbody>
    </mujoco>"""
    spec = mujoco.MjSpec.from_string(xml)
    spec.nuser_actuator = -1
    spec.option.timestep = SIM_TIMESTEP  # the include sets 0.002; the scene's step wins anyway
    return spec


def add_panda(parent: mujoco.MjsBody, variant: str, prefix: str = "panda/", pos=(0, 0, 0)) -> ArmRig:
    """Attach a Panda under ``parent`` and return its arm rig (actuators and TCP added)."""
    child = panda_spec()
    hand = child.body("panda0_link7")
    # TCP between the finger pads; +x along the fingers' closing axis (finger body's y axis,
    # the fingers sit at -45 deg about z), +z from palm to fingertips.
    half = math.radians(45.0) / 2
    hand.add_site(name="tcp", pos=[0, 0, 0.245], quat=[math.cos(half), 0, 0, math.sin(half)], size=[0.005] * 3)
    if variant == "changed":
        # Shorter, wider finger pads: other geometry for the gripper_changed slice.
        for finger in ("panda0_leftfinger", "panda0_rightfinger"):
            for geom in child.body(finger).geoms:
                if geom.type == mujoco.mjtGeom.mjGEOM_CAPSULE:
                    geom.size[0] *= 1.35
    frame = parent.add_frame(pos=list(pos))
    frame.attach_body(child.body("panda_mount"), prefix, "")
    return servo_arm_rig(
        "arm", prefix, ARM_JOINTS, prefix + "tcp", prefix + "robot:panda0_finger_joint1", 0.04, 0.0, HOME,
        actuators=[f"{prefix}act_joint{i + 1}" for i in range(len(ARM_JOINTS))],
    )


def finish_panda(spec: mujoco.MjSpec, arm: ArmRig, prefix: str = "panda/") -> None:
    """Actuators, finger coupling and gravity compensation, once the Panda is in ``spec``."""
    add_joint_actuators(spec, arm, KP, forcerange=(87, 87, 87, 87, 12, 12, 12))
    finger1 = prefix + "robot:panda0_finger_joint1"
    finger2 = prefix + "robot:panda0_finger_joint2"
    for finger in (finger1, finger2):
        spec.joint(finger).damping = [20.0, 0.0, 0.0]  # the model's 100 makes the hand take ~1 s to open
    spec.add_equality(type=mujoco.mjtEq.mjEQ_JOINT, name1=finger1, name2=finger2, objtype=mujoco.mjtObj.mjOBJ_JOINT)
    add_position_actuator(spec, arm.gripper_actuator, finger1, kp=300.0, ctrlrange=(0.0, 0.04), forcerange=70.0, kv=20.0)
    enable_gravcomp(spec, prefix + "panda0_link0")


def build(spec: mujoco.MjSpec, parent: mujoco.MjsBody, variant: str = "default") -> RobotRig:
    arm = add_panda(parent, variant)
    finish_panda(spec, arm)
    return RobotRig(
        arms=(arm,),
        workspace=Workspace(spawn_x=(0.4, 0.65), spawn_y=(-0.22, 0.22), cube_half=0.02,
                            lift_height=0.1, hover_height=0.12),
    )
