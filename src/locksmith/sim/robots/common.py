"""Helpers every robot builder uses: position actuators, gravity compensation."""

from __future__ import annotations

from collections.abc import Sequence

import mujoco

from locksmith.sim.rig import ArmRig


def add_position_actuator(
    spec: mujoco.MjSpec,
    name: str,
    joint: str,
    kp: float,
    ctrlrange: Sequence[float],
    forcerange: float | None = None,
    kv: float = 0.0,
    transmission: mujoco.mjtTrn = mujoco.mjtTrn.mjTRN_JOINT,
) -> None:
    """A position servo ``force = kp * (ctrl - q) - kv * qdot`` on one joint (or, with
    ``transmission=mjTRN_TENDON``, on the tendon named ``joint``)."""
    act = spec.add_actuator(
        name=name,
        target=joint,
        trntype=transmission,
        gaintype=mujoco.mjtGain.mjGAIN_FIXED,
        biastype=mujoco.mjtBias.mjBIAS_AFFINE,
        gainprm=[kp] + [0] * 9,
        biasprm=[0, -kp, -kv] + [0] * 7,
        ctrlrange=list(ctrlrange),
        ctrllimited=True,
    )
    if forcerange is not None:
        act.forcerange = [-forcerange, forcerange]
        act.forcelimited = True


def add_joint_actuators(
    spec: mujoco.MjSpec,
    arm: ArmRig,
    kp: Sequence[float],
    forcerange: Sequence[float] | None = None,
    kv: Sequence[float] | None = None,
) -> None:
    """One position actuator per arm joint, named as in ``arm.actuators``, ctrl = joint range."""
    for i, (joint, act) in enumerate(zip(arm.joints, arm.actuators, strict=True)):
        jnt = spec.joint(joint)
        add_position_actuator(
            spec,
            act,
            joint,
            kp[i],
            ctrlrange=list(jnt.range),
            forcerange=None if forcerange is None else forcerange[i],
            kv=0.0 if kv is None else kv[i],
        )


def enable_gravcomp(spec: mujoco.MjSpec, root_body: str) -> None:
    """Gravity-compensate ``root_body`` and every body below it (a robot's own controller)."""
    stack = [spec.body(root_body)]
    while stack:
        body = stack.pop()
        body.gravcomp = 1.0
        stack.extend(body.bodies)


def remove_actuators(spec: mujoco.MjSpec, prefix: str = "") -> None:
    """Delete the model's own actuators whose names start with ``prefix`` (we add ours)."""
    for act in list(spec.actuators):
        if act.name.startswith(prefix):
            spec.delete(act)


def servo_arm_rig(
    name: str,
    prefix: str,
    joints: Sequence[str],
    tcp_site: str,
    gripper_joint: str,
    gripper_open: float,
    gripper_closed: float,
    home: Sequence[float],
    actuators: Sequence[str] | None = None,
) -> ArmRig:
    """The rig of an arm built with these helpers: joints ``prefix + joints``, joint servos named
    ``prefix + "act_" + joint`` (unless ``actuators`` names them), a gripper servo
    ``prefix + "act_gripper"`` whose control is the gripper joint's own position."""
    return ArmRig(
        name=name,
        joints=tuple(prefix + j for j in joints),
        actuators=tuple(actuators) if actuators is not None else tuple(f"{prefix}act_{j}" for j in joints),
        tcp_site=tcp_site,
        gripper_actuator=prefix + "act_gripper",
        gripper_ctrl_open=gripper_open,
        gripper_ctrl_closed=gripper_closed,
        gripper_joint=gripper_joint,
        gripper_q_open=gripper_open,
        gripper_q_closed=gripper_closed,
        home_qpos=tuple(home),
    )
