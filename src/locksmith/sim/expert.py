"""Scripted experts: Cartesian waypoints for the TCP, differential IK (`mink`) to joint targets,
then the robot's own command convention.

The expert reads the simulator's true state (it is privileged) and re-plans from it at every
step, so it recovers from a push. It works the same for every robot: the only per-robot pieces
are the rig (names, workspace sizes) and the spec (how a command is written).

Phases (TCP goals in the robot base frame, `h` = object half size):

    reach       approach (above the object)
    lift        approach → descend → close → lift
    pick_place  approach → descend → close → lift → carry (above the pad) → lower → open → retreat
    push        pre-push (behind the object, gripper closed) → descend → push (towards the pad)
"""

from __future__ import annotations

import numpy as np

from locksmith.sim.env import TabletopEnv
from locksmith.sim.ik import top_down_rotation

# Bumped whenever the expert's behaviour changes (demonstrations and expert success recorded by an
# older expert are then recorded anew): 2 = the gripper phases end when the jaw has settled.
EXPERT_VERSION = 2
PUSH_CLEARANCE = 0.035  # m between the object's face and the TCP before the push
BASE_STANDOFF = 0.72  # m from the base origin to the work, for a mobile base
PUSH_MAX_LEAD = 0.02  # m the TCP goal may run ahead of the TCP while pushing
PUSH_LEAD = 0.02  # m the push goal leads the object's far face, so the fingers keep pressing
NOISE_TIME_S = 0.3  # correlation time of `ExecutionNoise`
# The gripper phases end once the jaw has settled (its closure moved less than this in one step,
# after at least GRIP_MIN_STEPS), at the latest after GRIP_MAX_S. A clock-timed wait left several
# identical states in a row whose next action was sometimes "wait", sometimes "go": a policy that
# re-plans every step then waited for ever (docs/benchmarks.md, "The settled grasp").
GRIP_SETTLED = 0.01
GRIP_MIN_STEPS = 2
GRIP_MAX_S = 0.5
NOISE_FREE_PHASES = ("drive", "close", "open")  # the base drives, or the gripper acts: the arm holds still

PHASES = {
    "reach": ("approach_close",),
    "lift": ("approach", "descend", "close", "lift", "hold"),
    "pick_place": ("approach", "descend", "close", "lift", "carry", "lower", "open", "retreat"),
    "push": ("pre_push", "descend_push", "push", "hold"),
}


class ScriptedExpert:
    """Computes the next native action for a `TabletopEnv` from its true state."""

    def __init__(self, env: TabletopEnv, speed: float | None = None):
        self.env = env
        ws = env.rig.workspace
        # TCP speed scales with the robot's reach (small arms move less far, more slowly).
        reach = float(env.rig.extra.get("reach", max(abs(ws.spawn_x[1]), abs(ws.spawn_x[0])))) + 1e-6
        self.speed = speed if speed is not None else float(np.clip(0.45 * reach, 0.12, 0.35))
        self.reset()

    def _push_offset(self) -> np.ndarray:
        """Base-frame vector from the TCP to the centre of the closed jaws (non-zero for a single
        moving jaw, whose closed jaws sit off the grasp centre): pushes aim with that point."""
        k = float(self.env.rig.extra.get("closed_jaws_tcp_x", 0.0))
        yaw = self.env.grasp_yaw[self.arm]
        return np.array([k * np.cos(yaw), k * np.sin(yaw), 0.0])

    def reset(self) -> None:
        env = self.env
        # A mobile base first drives so that the work lies in front of the arm.
        self.phases = (("drive",) if env.rig.base_joints else ()) + PHASES[env.task.name]
        self.phase = 0
        self.wait = 0
        self.jaw_before = 0.0  # the arm's closure one step ago, in a gripper phase (read from its 2nd step)
        self.arm = self._choose_arm()
        self.goal_tcp = env.tcp_base_frame(self.arm)
        self.closure = 0.0

    def _choose_arm(self) -> str:
        """The arm whose base is nearest the target object (both arms of a bimanual robot)."""
        env = self.env
        if len(env.rig.arms) == 1 or not hasattr(env, "target_object"):  # before the first reset
            return env.rig.arms[0].name
        obj = env.to_base_frame(env.object_pos(env.target_object))
        dists = {a.name: abs(env.tcp_base_frame(a.name)[1] - obj[1]) for a in env.rig.arms}
        return min(dists, key=dists.get)

    @property
    def phase_name(self) -> str:
        return self.phases[min(self.phase, len(self.phases) - 1)]

    # ------------------------------------------------------------------ planning
    def _targets(self) -> tuple[np.ndarray, float, float]:
        """(TCP goal in base frame, closure command, speed scale) for the current phase."""
        env = self.env
        ws = env.rig.workspace
        h = env.scene.object_half
        obj = env.to_base_frame(env.object_pos(env.target_object))
        pad = env.to_base_frame(env.pad_pos(env.target_pad))
        name = self.phase_name
        hover = np.array([0, 0, h + ws.hover_height])
        if name == "drive":
            return self.goal_tcp, 0.0, 1.0
        if name in ("approach", "approach_close"):
            z = h + 0.02 if name == "approach_close" else h + ws.hover_height
            return np.array([obj[0], obj[1], z]), 0.0, 1.0
        if name == "descend":
            return np.array([obj[0], obj[1], max(obj[2], h * 0.9)]), 0.0, 0.5
        if name == "close":
            return self.goal_tcp, 1.0, 1.0
        if name in ("lift", "hold") and env.task.name != "push":
            top = self._grasp_xy + [h + ws.lift_height + 0.04]
            return np.asarray(top), 1.0, 0.6
        if name == "carry":
            return pad + hover, 1.0, 1.0
        if name == "lower":
            return pad + np.array([0, 0, h + 0.012]), 1.0, 0.4
        if name == "open":
            return self.goal_tcp, 0.0, 1.0
        if name == "retreat":
            return pad + hover, 0.0, 1.0
        # push: stand behind the object on the line from the pad, fingers closed.
        direction = pad[:2] - obj[:2]
        direction = direction / max(np.linalg.norm(direction), 1e-6)
        offset = self._push_offset()[:2]
        behind = obj[:2] - direction * (h + PUSH_CLEARANCE) - offset
        # Fingertips reach below the TCP: pushing at the centre keeps them off the table (a robot
        # may push higher, in multiples of the half size, through rig.extra["push_height"]).
        push_z = h * float(env.rig.extra.get("push_height", 1.0))
        if name == "pre_push":
            clear_z = h + ws.hover_height * 0.5
            if self.goal_tcp[2] < clear_z - 0.01 and np.linalg.norm(self.goal_tcp[:2] - behind) > 0.01:
                return np.r_[self.goal_tcp[:2], clear_z], 1.0, 1.0  # rise before moving over
            return np.r_[behind, clear_z], 1.0, 1.0
        if name == "descend_push":
            return np.r_[behind, push_z], 1.0, 0.6
        if name == "push":
            # Track the contact point behind the moving object and lean into it.
            lead = obj[:2] + direction * (h + PUSH_LEAD) - offset
            return np.r_[lead, push_z], 1.0, 0.35
        return self.goal_tcp, 1.0 if name == "hold" else 0.0, 1.0

    def _advance(self, goal: np.ndarray) -> None:
        env = self.env
        name = self.phase_name
        tcp = env.tcp_base_frame(self.arm)
        err = np.linalg.norm(self.goal_tcp - goal) + np.linalg.norm(tcp - goal)
        tol = 0.012
        if name == "drive":
            if np.linalg.norm(self._base_error()) < 0.01 and np.linalg.norm(env.data.qvel[env._base_qadr[:2]]) < 0.02:
                self.phase, self.wait = self.phase + 1, 0
            return
        if name in ("close", "open"):
            self.wait += 1
            jaw = env.closure(self.arm)
            settled = self.wait >= GRIP_MIN_STEPS and abs(jaw - self.jaw_before) < GRIP_SETTLED
            self.jaw_before = jaw
            if settled or self.wait * env.dt >= GRIP_MAX_S:
                self.phase, self.wait = self.phase + 1, 0
            return
        if name == "push":
            h = env.scene.object_half
            obj = env.to_base_frame(env.object_pos(env.target_object))
            pad = env.to_base_frame(env.pad_pos(env.target_pad))
            direction = pad[:2] - obj[:2]
            dist = np.linalg.norm(direction)
            direction = direction / max(dist, 1e-6)
            rel = tcp[:2] + self._push_offset()[:2] - obj[:2]
            along = rel @ direction
            sideways = np.linalg.norm(rel - along * direction)
            if dist < 0.01:
                self.phase += 1
            elif along > -0.5 * h or sideways > 1.2 * h:
                # The object slid off the fingers: go round and start the push again.
                self.phase, self.wait = self.phases.index("pre_push"), 0
            return
        self.wait += 1
        if err < tol or self.wait * env.dt > 3.0:
            if name == "descend":
                self._grasp_xy = list(goal[:2])
            self.phase, self.wait = self.phase + 1, 0

    def _base_error(self) -> np.ndarray:
        """World (dx, dy) from the base to where it should stand: the work at `BASE_STANDOFF`."""
        env = self.env
        focus = env.object_pos(env.target_object)
        if env.task.uses_pad:
            pad = env.pad_pos(env.target_pad)
            if env.task.name == "push":  # the push starts behind the object
                direction = (pad - focus) / max(np.linalg.norm(pad - focus), 1e-6)
                focus = focus - direction * (env.scene.object_half + PUSH_CLEARANCE)
            focus = 0.5 * (focus + pad)
        base, yaw = env.base_pose()
        stand = focus[:2] - BASE_STANDOFF * np.array([np.cos(yaw), np.sin(yaw)])
        return stand - base[:2]

    def _base_velocity(self) -> np.ndarray:
        """(vx, vy, wz) in the base frame, SI units, towards the standing point."""
        env = self.env
        if self.phase_name != "drive":
            return np.zeros(3)
        err = self._base_error()
        _, yaw = env.base_pose()
        vel = 2.0 * err
        top = 0.8 * env.spec_.base.max_linear_speed
        if np.linalg.norm(vel) > top:
            vel *= top / np.linalg.norm(vel)
        c, s = np.cos(yaw), np.sin(yaw)
        return np.array([c * vel[0] + s * vel[1], -s * vel[0] + c * vel[1], -1.0 * yaw])

    # ------------------------------------------------------------------ acting
    def act(self) -> np.ndarray:
        env = self.env
        goal, closure, speed_scale = self._targets()
        self._advance(goal)
        goal, closure, speed_scale = self._targets()
        step = goal - self.goal_tcp
        max_step = self.speed * speed_scale * env.dt
        norm = np.linalg.norm(step)
        if norm > max_step:
            step *= max_step / norm
        self.goal_tcp = self.goal_tcp + step
        if self.phase_name == "push":
            # Press, do not ram: keep the goal within a finger's width of the real TCP.
            tcp = env.tcp_base_frame(self.arm)
            ahead = self.goal_tcp[:2] - tcp[:2]  # both TCP points: the offset cancels
            if np.linalg.norm(ahead) > PUSH_MAX_LEAD:
                self.goal_tcp[:2] = tcp[:2] + ahead * PUSH_MAX_LEAD / np.linalg.norm(ahead)
        self.closure = closure
        return self.native_action()

    def native_action(self, goal_offset: np.ndarray | None = None) -> np.ndarray:
        """Write the current TCP goal and closure in the robot's command convention.

        ``goal_offset`` (base frame, m) shifts the TCP goal for this one command only: the
        perturbed action that `ExecutionNoise` executes while the clean one is recorded.
        """
        env = self.env
        spec = env.spec_
        goal_tcp = self.goal_tcp if goal_offset is None else self.goal_tcp + goal_offset
        solved = env.q_cmd
        if any(c.kind in ("joint_position", "joint_velocity") for c in spec.action):
            # Joint-space commands need IK here; an ee_delta robot's own controller does its IK.
            rot = top_down_rotation(env.grasp_yaw[self.arm])
            solved = env.ik.solve(env.q_cmd, {self.arm: (goal_tcp, rot)}, env.dt)
        parts = []
        for comp in spec.action:
            scale = comp.native_scale
            if comp.kind == "joint_position":
                q = solved[comp.arm] if comp.arm == self.arm else env.q_cmd[comp.arm]
                parts.append(q * scale)
            elif comp.kind == "joint_velocity":
                q = solved[comp.arm] if comp.arm == self.arm else env.q_cmd[comp.arm]
                parts.append((q - env.q_cmd[comp.arm]) / env.dt * scale)
            elif comp.kind == "ee_delta":
                goal = goal_tcp if comp.arm == self.arm else env.tcp_cmd[comp.arm]
                parts.append((goal - env.tcp_cmd[comp.arm]) * scale)
            elif comp.kind == "base_velocity":
                parts.append(self._base_velocity() * np.array([scale, scale, 1.0]))
            elif comp.kind == "gripper":
                closure = self.closure if comp.arm == self.arm else 0.0
                parts.append([spec.arm(comp.arm).gripper.to_native(closure)])
        return np.concatenate([np.asarray(p, dtype=float).ravel() for p in parts])


class ExecutionNoise:
    """DART-style noise for recording: the robot executes the expert's command with its TCP goal
    shifted by a slowly varying offset, while the dataset records the expert's clean command.

    The expert re-plans from the true state at every step, so the clean command after a
    perturbation steers back: the demonstrations show states off the expert's path, each labelled
    with the correction. A policy trained on them learns to recover from its own drift, which
    clean demonstrations never show (Laskey et al., 2017, "DART").

    The offset is an Ornstein-Uhlenbeck process in the arm's base frame with stationary standard
    deviation ``sigma`` (m) per axis and correlation time `NOISE_TIME_S`, seeded per episode. It
    is zero while a mobile base drives and while the gripper closes or opens (`NOISE_FREE_PHASES`);
    the base's velocity is never perturbed.
    """

    def __init__(self, sigma: float, dt: float, seed: int):
        if not np.isfinite(sigma) or sigma < 0:
            raise ValueError(f"noise sigma={sigma} must be a finite number >= 0 (m)")
        self.sigma = float(sigma)
        self.decay = float(np.exp(-dt / NOISE_TIME_S))
        self.rng = np.random.default_rng(seed)
        self.offset = self.rng.normal(0.0, self.sigma, 3)

    def step(self) -> np.ndarray:
        """The offset for this step (then advance the process)."""
        out = self.offset.copy()
        kick = self.rng.normal(0.0, self.sigma * np.sqrt(1.0 - self.decay ** 2), 3)
        self.offset = self.decay * self.offset + kick
        return out

    def perturb(self, expert: ScriptedExpert, action: np.ndarray) -> np.ndarray:
        """The command to execute in place of the expert's clean ``action``."""
        offset = self.step()
        if self.sigma == 0 or expert.phase_name in NOISE_FREE_PHASES:
            return action
        return expert.native_action(goal_offset=offset)


def run_expert_episode(env: TabletopEnv, seed: int, expert: ScriptedExpert | None = None):
    """Roll the expert out for one episode; yields (observation, action, info) per step.

    Returns (through StopIteration.value) whether the episode succeeded.
    """
    obs, info = env.reset(seed=seed)
    expert = expert or ScriptedExpert(env)
    expert.reset()
    success = False
    for _ in range(env.horizon):
        action = expert.act()
        yield obs, action, info
        obs, _, terminated, truncated, info = env.step(action)
        if terminated:
            success = True
            break
        if truncated:
            break
    return success
