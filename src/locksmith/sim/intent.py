"""Shared intent: what every robot's frame records beside its own command, and its decoder.

Intent is one robot-agnostic description of a motion (see DESIGN.md, "Shared intent"), laid out
as `locksmith.data.record.intent_names`:

    per arm     TCP velocity in the robot's base frame (m/s, x y z), then the commanded gripper
                closure fraction (0 open, 1 closed)
    mobile base planar base velocity in the base frame (m/s x, y; rad/s yaw)

`measured_intent` reads it off a step of the simulator (the TCP's and the base's motion over
the step, the closure commanded), as every recording does. `IntentDecoder` turns it back into
one robot's own command from what a user always has, its model and spec: each arm's TCP goal
moves by the velocity over one control period, differential IK (`mink`, on the robot's model,
`RobotIK`) turns the goals into joint targets for joint-position and joint-velocity robots, an
end-effector robot takes the goal's step itself, the gripper's closure is written in its native
range and polarity, and the base velocity in the base command's units. Nothing is learned; the
decoder keeps the command it sent last (as a robot's controller does), so it runs inside the
control loop, and what it emits still goes through the robot's safety shield.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from locksmith.embodiment.spec import EmbodimentSpec
from locksmith.sim.ik import RobotIK, top_down_rotation

ARM_INTENT = 4  # TCP velocity (3) and closure (1) per arm
BASE_INTENT = 3  # planar base velocity: x, y, yaw rate


def intent_size(spec: EmbodimentSpec) -> int:
    return ARM_INTENT * len(spec.arms) + (BASE_INTENT if spec.base is not None else 0)


def measured_intent(env, tcp_before: Mapping[str, np.ndarray], base_before: tuple[np.ndarray, float] | None,
                    closure_cmd: Mapping[str, float]) -> np.ndarray:
    """The intent of the step just taken: each arm's TCP displacement over the step (base frame)
    per second and its commanded closure, then the base's velocity in its frame at the step's start.

    Args:
        env: a `TabletopEnv` after its step.
        tcp_before: arm → TCP position (base frame) before the step.
        base_before: the base pose (position, yaw) before the step; None for a fixed robot.
        closure_cmd: arm → the closure the step commanded.
    """
    intent: list[float] = []
    for arm in (a.name for a in env.rig.arms):
        intent += list((env.tcp_base_frame(arm) - tcp_before[arm]) / env.dt) + [closure_cmd[arm]]
    if base_before is not None:
        base_after = env.base_pose()
        world_v = (base_after[0] - base_before[0]) / env.dt
        c, s = np.cos(base_before[1]), np.sin(base_before[1])
        intent += [c * world_v[0] + s * world_v[1], -s * world_v[0] + c * world_v[1],
                   (base_after[1] - base_before[1]) / env.dt]
    return np.asarray(intent, dtype=np.float32)


class IntentDecoder:
    """Intent → one robot's native command, built from its model (IK) and spec (units, gripper).

    Args:
        spec: the robot's spec (its action layout, units, joint limits, gripper range).
        ik: differential IK on the robot's model (joint-space robots need it; others may pass it anyway).
        dt: the control period (s).
        yaw: arm → the yaw of its top-down grasp (the rotation the IK holds the TCP at).
    """

    def __init__(self, spec: EmbodimentSpec, ik: RobotIK | None, dt: float, yaw: Mapping[str, float]):
        self.spec, self.ik, self.dt = spec, ik, float(dt)
        self.arms = [a.name for a in spec.arms]
        self.joint_space = any(c.kind in ("joint_position", "joint_velocity") for c in spec.action)
        if self.joint_space and ik is None:
            raise ValueError(f"{spec.name}: joint-space commands need the robot's IK to decode intent")
        self.rotation = {arm: top_down_rotation(yaw[arm]) for arm in self.arms}
        self._limits = {arm: spec.joint_limits(arm) for arm in self.arms}
        self.q_cmd: dict[str, np.ndarray] = {}
        self.tcp_cmd: dict[str, np.ndarray] = {}

    def reset(self, q: Mapping[str, np.ndarray], tcp: Mapping[str, np.ndarray]) -> None:
        """Start from the robot's measured joints and TCP positions (base frame)."""
        self.q_cmd = {arm: np.asarray(q[arm], dtype=float).copy() for arm in self.arms}
        self.tcp_cmd = {arm: np.asarray(tcp[arm], dtype=float).copy() for arm in self.arms}

    def decode(self, intent: np.ndarray) -> np.ndarray:
        """One native action (the spec's action layout) from one intent vector."""
        intent = np.asarray(intent, dtype=float).reshape(-1)
        if intent.shape != (intent_size(self.spec),):
            raise ValueError(f"{self.spec.name}: intent has shape {intent.shape}, expected ({intent_size(self.spec)},)")
        goal, closure = {}, {}
        for i, arm in enumerate(self.arms):
            part = intent[ARM_INTENT * i: ARM_INTENT * (i + 1)]
            goal[arm] = self.tcp_cmd[arm] + part[:3] * self.dt
            closure[arm] = float(np.clip(part[3], 0.0, 1.0))
        base = intent[ARM_INTENT * len(self.arms):]
        solved = self.q_cmd
        if self.joint_space:
            solved = self.ik.solve(self.q_cmd, {arm: (goal[arm], self.rotation[arm]) for arm in self.arms}, self.dt)
            solved = {arm: np.clip(solved[arm], *self._limits[arm]) for arm in self.arms}
        parts = []
        for comp in self.spec.action:
            scale = comp.native_scale
            if comp.kind == "joint_position":
                parts.append(solved[comp.arm] * scale)
            elif comp.kind == "joint_velocity":
                parts.append((solved[comp.arm] - self.q_cmd[comp.arm]) / self.dt * scale)
            elif comp.kind == "ee_delta":
                parts.append((goal[comp.arm] - self.tcp_cmd[comp.arm]) * scale)
            elif comp.kind == "base_velocity":
                parts.append(base * np.array([scale, scale, 1.0]))
            elif comp.kind == "gripper":
                parts.append([self.spec.arm(comp.arm).gripper.to_native(closure[comp.arm])])
            else:
                raise ValueError(f"{self.spec.name}: no intent decoding for action kind {comp.kind!r}")
        self.q_cmd = {arm: np.asarray(solved[arm], dtype=float).copy() for arm in self.arms}
        self.tcp_cmd = goal
        return np.concatenate([np.asarray(p, dtype=float).ravel() for p in parts])


def decoder_for(env) -> IntentDecoder:
    """The decoder of a `TabletopEnv`'s robot, started from its state after ``reset``."""
    decoder = IntentDecoder(env.spec_, env.ik, env.dt, env.grasp_yaw)
    decoder.reset(env.q_cmd, {arm: env.tcp_base_frame(arm) for arm in decoder.arms})
    return decoder
