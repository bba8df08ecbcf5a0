"""Differential inverse kinematics with `mink`, on a robot-only copy of the model.

The IK model holds the robot alone with its base at the origin, so the scene's objects never
enter the solve. Targets are given in the robot's base frame; for a mobile robot the caller
transforms world targets by the base pose first, and the base joints are frozen here (the base
moves by its own velocity commands).
"""

from __future__ import annotations

from collections.abc import Mapping

import mink
import mujoco
import numpy as np

from locksmith.sim.rig import SIM_TIMESTEP, RobotRig
from locksmith.sim.robots import get_builder


def top_down_rotation(yaw: float) -> np.ndarray:
    """Rotation whose +z points down and whose +x (closing axis) is at ``yaw`` in the plane."""
    c, s = np.cos(yaw), np.sin(yaw)
    # columns: x = (c, s, 0), y = z × x = (s, -c, 0), z = (0, 0, -1)
    return np.array([[c, s, 0.0], [s, -c, 0.0], [0.0, 0.0, -1.0]])


class RobotIK:
    """Solve arm joint targets that bring each arm's TCP to a pose (robot base frame)."""

    def __init__(self, robot: str, variant: str = "default", orientation_cost: float = 0.5):
        spec = mujoco.MjSpec()
        spec.option.timestep = SIM_TIMESTEP
        self.rig: RobotRig = get_builder(robot)(spec, spec.worldbody, variant)
        self.model = spec.compile()
        self.configuration = mink.Configuration(self.model)
        self.tasks: dict[str, mink.FrameTask] = {
            arm.name: mink.FrameTask(arm.tcp_site, "site", position_cost=1.0,
                                     orientation_cost=orientation_cost, lm_damping=1e-3)
            for arm in self.rig.arms
        }
        self.posture = mink.PostureTask(self.model, cost=1e-3)
        q_home = self.configuration.q.copy()
        self._qadr: dict[str, np.ndarray] = {}
        for arm in self.rig.arms:
            adr = np.array([self.model.joint(j).qposadr[0] for j in arm.joints])
            self._qadr[arm.name] = adr
            q_home[adr] = arm.home_qpos
        self.posture.set_target(q_home)
        self._fk_data = mujoco.MjData(self.model)  # positions-only FK, apart from the solver's state
        self._fk_data.qpos[:] = self.configuration.q
        self._tcp_site = {arm.name: self.model.site(arm.tcp_site).id for arm in self.rig.arms}
        self.limits = [mink.ConfigurationLimit(self.model)]
        self.constraints = []
        if self.rig.base_joints:
            dofs = [int(self.model.joint(j).dofadr[0]) for j in self.rig.base_joints]
            self.constraints.append(mink.DofFreezingTask(self.model, dof_indices=dofs))

    def arm_qadr(self, arm: str) -> np.ndarray:
        return self._qadr[arm]

    def tcp_pose(self, joint_targets: Mapping[str, np.ndarray], arm: str) -> tuple[np.ndarray, np.ndarray]:
        """Forward kinematics: TCP position and rotation for given arm joint values."""
        q = self.configuration.q.copy()
        for name, values in joint_targets.items():
            q[self._qadr[name]] = values
        self.configuration.update(q)
        pose = self.configuration.get_transform_frame_to_world(self.rig.arm(arm).tcp_site, "site")
        return pose.translation(), pose.rotation().as_matrix()

    def tcp_positions(self, joint_targets: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Forward kinematics, positions only: the TCP of each named arm for its joint values.

        One ``mj_kinematics`` for all arms, on data of its own (the solver's configuration is left
        alone); the same positions as `tcp_pose`, at a fraction of its cost (the shield calls it
        at least twice per control step)."""
        d = self._fk_data
        for name, values in joint_targets.items():
            d.qpos[self._qadr[name]] = values
        mujoco.mj_kinematics(self.model, d)
        return {name: d.site_xpos[self._tcp_site[name]].copy() for name in joint_targets}

    def solve(
        self,
        joint_now: Mapping[str, np.ndarray],
        targets: Mapping[str, tuple[np.ndarray, np.ndarray]],
        dt: float,
        iterations: int = 1,
    ) -> dict[str, np.ndarray]:
        """Arm joint values that move each named arm's TCP towards its (position, rotation).

        Args:
            joint_now: arm name → current joint values (the start of the solve).
            targets: arm name → (position (3,), rotation (3, 3)) in the base frame; arms not
                named keep their posture.
            dt: integration step (s); the solve moves at most as far as the limits allow.
            iterations: solver iterations per call.
        """
        q = self.configuration.q.copy()
        for name, values in joint_now.items():
            q[self._qadr[name]] = values
        if self.rig.base_joints:
            for joint in self.rig.base_joints:
                q[self.model.joint(joint).qposadr[0]] = 0.0
        self.configuration.update(q)
        tasks: list = [self.posture]
        for name, (pos, rot) in targets.items():
            task = self.tasks[name]
            task.set_target(mink.SE3.from_rotation_and_translation(mink.SO3.from_matrix(rot), pos))
            tasks.append(task)
        for _ in range(iterations):
            vel = mink.solve_ik(self.configuration, tasks, dt, "daqp", damping=1e-3,
                                limits=self.limits, constraints=self.constraints or None)
            self.configuration.integrate_inplace(vel, dt)
        q = self.configuration.q
        return {name: q[adr].copy() for name, adr in self._qadr.items()}

    def solve_fast(
        self,
        joint_now: Mapping[str, np.ndarray],
        targets: Mapping[str, tuple[np.ndarray, np.ndarray]],
        damping: float = 1e-3,
        orientation_weight: float = 0.5,
    ) -> dict[str, np.ndarray]:
        """One damped-least-squares step towards the targets, clipped to the joint ranges.

        A robot controller's Cartesian servo: no QP, ~10x cheaper than `solve`, for per-step
        end-effector commands whose targets move a few millimetres per step.
        """
        model, data = self.model, self.configuration.data
        q = self.configuration.q.copy()
        for name, values in joint_now.items():
            q[self._qadr[name]] = values
        data.qpos[:] = q
        mujoco.mj_kinematics(model, data)
        mujoco.mj_comPos(model, data)
        out = {name: q[adr].copy() for name, adr in self._qadr.items()}
        for name, (pos, rot) in targets.items():
            arm = self.rig.arm(name)
            site = model.site(arm.tcp_site).id
            dofs = np.array([model.joint(j).dofadr[0] for j in arm.joints])
            jacp, jacr = np.zeros((3, model.nv)), np.zeros((3, model.nv))
            mujoco.mj_jacSite(model, data, jacp, jacr, site)
            current = data.site_xmat[site].reshape(3, 3)
            err_rot = np.zeros(3)
            quat_err = np.zeros(4)
            mujoco.mju_mat2Quat(quat_err, (rot @ current.T).flatten())
            mujoco.mju_quat2Vel(err_rot, quat_err, 1.0)
            jac = np.vstack([jacp[:, dofs], orientation_weight * jacr[:, dofs]])
            err = np.concatenate([pos - data.site_xpos[site], orientation_weight * err_rot])
            dq = jac.T @ np.linalg.solve(jac @ jac.T + damping * np.eye(6), err)
            lo = model.jnt_range[[model.joint(j).id for j in arm.joints], 0]
            hi = model.jnt_range[[model.joint(j).id for j in arm.joints], 1]
            out[name] = np.clip(out[name] + dq, lo, hi)
        return out