"""`SafetyShield`: keeps any policy's native commands inside one robot's spec.

The shield sits between a policy and the robot (or the simulator) and is built from the
robot's `EmbodimentSpec` alone, so it works for any robot, any number of arms and a mobile
base. Every control step::

    safe = shield.filter(action, observation_state, now_s, observation_time_s)   # (A,) -> (A,)

runs, in this order:

1. **Latch.** A stopped shield (stop condition, watchdog, e-stop) answers the *hold* until
   `resume` (or `reset`, which does not clear an e-stop).
2. **Watchdog.** An observation older than ``watchdog_timeout_s`` (or a non-finite time) stops.
3. **Observation checks.** A non-finite ``observation.state`` stops (no safe reference exists);
   the spec's stop conditions are evaluated on the *measured* state:
   ``ee_outside_workspace`` (a TCP farther than ``threshold`` m outside the workspace box),
   ``joint_limit_margin`` (a joint beyond its limit by more than ``threshold``),
   ``table_collision`` (a TCP more than ``threshold`` m below the box floor, which stands for the
   table top: the shield sees positions, not contacts).
4. **Non-finite commands.** With a ``nonfinite_action`` stop condition any NaN/Inf stops; without
   one, each affected component is replaced by its hold and the rest goes on.
5. **Clamps**, per action component, in native units (``native = scale × SI``):

   ================  ==========================================================================
   joint_position    data range → joint limits → per-step change (``max_joint_step_rad``) →
                     velocity limit × dt → servo error (torque, with ``servo_kp``) → joint
                     limits → TCP envelope (with ``fk``)
   joint_velocity    data range → velocity limits → per-step change / dt → servo error →
                     joint limits of the integrated target → velocity limits → TCP envelope
   ee_delta          data range → workspace box (reference TCP + delta) → ``max_ee_speed`` × dt
   base_velocity     data range → ``max_linear_speed`` on |(vx, vy)| → ``max_angular_speed``
   gripper           data range → [min(open, closed), max(open, closed)]
   ================  ==========================================================================

   A later clamp wins over an earlier one, so the guarantees that always hold are the last of
   each row: joint limits, velocity limits, ``max_ee_speed``, base speeds, gripper range. The
   others hold whenever the reference (see below) itself is inside them.

The *hold* keeps the robot where it is, in each kind's convention: the measured joint
positions (clamped to the limits) for ``joint_position``, zero for velocities and deltas, the
previous gripper command (or the measured gripper value on the first step).

The *reference* a step is measured from is, by default (``reference="commanded"``), the
previous command: the last joint target, or the TCP target integrated from the ee deltas the
shield let through. This mirrors `locksmith.sim.env.TabletopEnv`, which adds deltas and
velocities to its previous target, and keeps a blocked robot's target from winding up past the
envelope. ``reference="measured"`` measures from ``observation.state`` instead (controllers
that add a delta to the measured pose). The first step after `reset` starts from the measured
state, so call `reset` at the start of every episode.

Torque limits: a command interface of positions, velocities or deltas has no torque. The shield
bounds what it can: with the servo gains ``servo_kp`` (N·m/rad per joint) it keeps the
position-servo error below ``torque_limit / kp``, which bounds the proportional torque
``kp·(target − q)``; damping, gravity and contact torques are the robot controller's to limit.
Without ``servo_kp``, and for ``ee_delta`` arms (whose joint targets come from the robot's IK),
torque limits are listed in `SafetyShield.unenforced`.

Every intervention is counted in `SafetyShield.interventions` (see `INTERVENTION_KINDS`): the
number of `filter` calls in which that kind changed the command or stopped the robot.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from locksmith.embodiment.spec import ActionComponent, EmbodimentSpec

logger = logging.getLogger(__name__)

ForwardKinematics = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]
"""arm name → joint positions (SI, (n_joints,)) ↦ arm name → TCP position (m, (3,), base frame)."""

StopCallback = Callable[[str], None]

INTERVENTION_KINDS: dict[str, str] = {
    "nonfinite": "a NaN/Inf command component was replaced by its hold",
    "data_range": "a command was clamped to the dataset's q01..q99 range (plus margin)",
    "joint_limit": "a joint target was clamped to the joint limits",
    "velocity_limit": "a joint velocity (or target step / dt) was clamped to the velocity limit",
    "step_limit": "a joint target's change per step was clamped to max_joint_step_rad",
    "torque_limit": "a joint target was clamped so that kp * servo error <= torque limit",
    "workspace": "a command was cut back so that the TCP stays inside the workspace box",
    "ee_speed": "a command was cut back so that the TCP moves at most max_ee_speed * dt",
    "gripper_range": "a gripper command was clamped to [min(open, closed), max(open, closed)]",
    "base_speed": "a base velocity was clamped to the base's max linear / angular speed",
    "watchdog": "the observation was stale; the robot was stopped",
    "stop_condition": "a stop condition of the spec fired; the robot was stopped",
    "bad_observation": "observation.state was non-finite; the robot was stopped",
    "estop": "an e-stop was pressed",
    "held": "a filter call answered the hold because the shield was stopped",
}

FK_BISECTION_STEPS = 10  # 2**-10 of the step: the TCP envelope is found to within 0.1 %


class SafetyError(RuntimeError):
    """The shield cannot form a safe command (e.g. no finite joint position was ever seen)."""


@dataclass(frozen=True)
class _Part:
    """One action component with its slice and native scale."""

    comp: ActionComponent
    slice: slice
    scale: float

    @property
    def kind(self) -> str:
        return self.comp.kind

    @property
    def arm(self) -> str:
        return self.comp.arm or ""


@dataclass(frozen=True)
class _ArmLimits:
    """Joint limits of one arm, SI, each (n_joints,)."""

    lower: np.ndarray
    upper: np.ndarray
    velocity: np.ndarray
    servo_error: np.ndarray | None  # torque_limit / kp, or None without gains


@dataclass
class _Measured:
    """What one ``observation.state`` says, in SI (None where the state does not say)."""

    finite: bool
    q: dict[str, np.ndarray]  # arm → joint positions
    tcp: dict[str, np.ndarray]  # arm → TCP position (base frame)
    gripper: dict[str, float]  # arm → native gripper value


def _norm(vector: np.ndarray) -> float:
    """Euclidean norm that does not overflow for huge finite entries."""
    peak = float(np.max(np.abs(vector)))
    return 0.0 if peak == 0.0 else peak * float(np.linalg.norm(vector / peak))


def _box_distance(point: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> float:
    """Euclidean distance from ``point`` (3,) to the box [lo, hi] (0 inside)."""
    return float(np.linalg.norm(np.maximum(lo - point, 0.0) + np.maximum(point - hi, 0.0)))


class SafetyShield:
    """Clamps a policy's native actions to one robot's spec (see the module docstring).

    Args:
        spec: the robot's embodiment spec; every limit comes from it.
        action_stats: optional normalization stats of the dataset's actions, either
            ``{"q01": (A,), "q99": (A,)}`` (``min``/``max`` are used when quantiles are absent)
            or a dataset's whole stats mapping holding an ``"action"`` entry. Commands are then
            also bounded to ``[q01 - m, q99 + m]`` with ``m = stats_margin × (q99 - q01)``.
        stats_margin: widening of the data range, as a fraction of it (>= 0).
        fk: optional forward kinematics (see `ForwardKinematics`). It gives the TCP of joint
            commands (workspace box and max ee speed for joint_position / joint_velocity arms)
            and, where ``observation.state`` has no ``ee_position``, the measured TCP.
        servo_kp: optional position-servo stiffness in N·m/rad (N/m for prismatic joints): one
            value for all joints or joint name → value. Enables the torque bound.
        reference: ``"commanded"`` (default) or ``"measured"``, see the module docstring.
    """

    def __init__(
        self,
        spec: EmbodimentSpec,
        action_stats: Mapping[str, Any] | None = None,
        *,
        stats_margin: float = 0.1,
        fk: ForwardKinematics | None = None,
        servo_kp: float | Mapping[str, float] | None = None,
        reference: Literal["commanded", "measured"] = "commanded",
    ):
        if reference not in ("commanded", "measured"):
            raise ValueError(f"reference: expected 'commanded' or 'measured', got {reference!r}")
        if not (math.isfinite(stats_margin) and stats_margin >= 0):
            raise ValueError(f"stats_margin: expected a finite value >= 0, got {stats_margin!r}")
        self.spec = spec
        self.reference = reference
        self.dt = spec.control_period_s
        self._fk = fk
        self._lock = threading.RLock()
        self._callbacks: list[StopCallback] = []
        self.interventions: dict[str, int] = dict.fromkeys(INTERVENTION_KINDS, 0)
        self.unenforced: dict[str, str] = {}

        self._parts: list[_Part] = []
        for comp, sl in zip(spec.action, spec.slices("action").values(), strict=True):
            if not (math.isfinite(comp.native_scale) and comp.native_scale > 0):
                raise ValueError(f"{spec.name}: action.{comp.name}.scale must be > 0, got {comp.native_scale}")
            self._parts.append(_Part(comp, sl, comp.native_scale))
        self._state_index: dict[tuple[str, str], tuple[slice, float]] = {}
        for comp, sl in zip(spec.state, spec.slices("state").values(), strict=True):
            self._state_index.setdefault((comp.kind, comp.arm or ""), (sl, comp.native_scale))

        kp = self._servo_kp(servo_kp)
        self._limits: dict[str, _ArmLimits] = {}
        for arm in spec.arms:
            joints = [spec.joint(j) for j in arm.joints]
            torque = np.array([j.torque_limit for j in joints])
            self._limits[arm.name] = _ArmLimits(
                lower=np.array([j.lower for j in joints]),
                upper=np.array([j.upper for j in joints]),
                velocity=np.array([j.velocity_limit for j in joints]),
                servo_error=None if kp is None else torque / np.array([kp[j.name] for j in joints]),
            )
        self._box_lo = np.asarray(spec.safety.workspace_min, dtype=float)
        self._box_hi = np.asarray(spec.safety.workspace_max, dtype=float)
        self._ee_step = spec.safety.max_ee_speed_m_s * self.dt
        self._conditions = {c.kind: c.threshold for c in spec.stop_conditions}
        self._data_lo, self._data_hi = self._data_range(action_stats, stats_margin)
        self._check_coverage(servo_kp is not None)

        # Latched stop and references (previous commands), cleared by `reset`.
        self._stopped = False
        self._estopped = False
        self._stop_reason: str | None = None
        self._q_ref: dict[str, np.ndarray] = {}
        self._tcp_ref: dict[str, np.ndarray] = {}
        self._gripper_ref: dict[str, float] = {}
        self._hits: set[str] = set()

    # ------------------------------------------------------------------ construction
    def _servo_kp(self, servo_kp: float | Mapping[str, float] | None) -> dict[str, float] | None:
        if servo_kp is None:
            return None
        names = [j.name for j in self.spec.joints]
        if isinstance(servo_kp, Mapping):
            missing = [n for n in names if n not in servo_kp]
            if missing:
                raise ValueError(f"servo_kp: no gain for joints {missing} of {self.spec.name}")
            gains = {n: float(servo_kp[n]) for n in names}
        else:
            gains = dict.fromkeys(names, float(servo_kp))
        for name, value in gains.items():
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"servo_kp.{name}: expected a finite gain > 0, got {value!r}")
        return gains

    def _data_range(self, stats: Mapping[str, Any] | None, margin: float) -> tuple[np.ndarray | None, np.ndarray | None]:
        if stats is None:
            return None, None
        if "action" in stats and isinstance(stats["action"], Mapping):
            stats = stats["action"]
        low_key, high_key = ("q01", "q99") if "q01" in stats and "q99" in stats else ("min", "max")
        if low_key not in stats or high_key not in stats:
            raise ValueError(f"action_stats: needs 'q01' and 'q99' (or 'min' and 'max'), got keys {sorted(stats)}")
        dim = self.spec.action_dim
        low = np.asarray(stats[low_key], dtype=float).reshape(-1)
        high = np.asarray(stats[high_key], dtype=float).reshape(-1)
        for key, value in ((low_key, low), (high_key, high)):
            if value.shape != (dim,) or not np.all(np.isfinite(value)):
                raise ValueError(f"action_stats.{key}: expected {dim} finite values for {self.spec.name}, got {value.shape}")
        if np.any(low > high):
            raise ValueError(f"action_stats: {low_key} above {high_key} in dimensions {np.flatnonzero(low > high).tolist()}")
        width = margin * (high - low)
        return low - width, high + width

    def _check_coverage(self, has_kp: bool) -> None:
        """Record in `unenforced` every limit the spec, state layout and arguments cannot cover."""
        if not has_kp:
            self.unenforced["torque_limit"] = (
                "no servo_kp given: torque is not observable from position/velocity/delta commands")
        for part in self._parts:
            arm, has_q = part.arm, ("joint_position", part.arm) in self._state_index
            if part.kind == "joint_position" and not has_q:
                raise ValueError(
                    f"{self.spec.name}: action.{part.comp.name} commands joint positions of arm {arm!r} but "
                    "observation.state has no joint_position for it, so no hold can be formed")
            if part.kind in ("joint_position", "joint_velocity") and self._fk is None:
                self.unenforced[f"workspace:{arm}"] = "joint commands need an fk to map targets to the TCP"
                self.unenforced[f"ee_speed:{arm}"] = "joint commands need an fk to map targets to the TCP"
            if part.kind == "joint_velocity" and not has_q:
                self.unenforced[f"joint_limit:{arm}"] = "no joint_position in observation.state to integrate from"
            if part.kind == "ee_delta":
                if has_kp:
                    self.unenforced[f"torque_limit:{arm}"] = "ee_delta joint targets come from the robot's IK"
                if not self._tcp_known(arm):
                    self.unenforced[f"workspace:{arm}"] = "no ee_position in observation.state and no fk"
        for kind in ("ee_outside_workspace", "table_collision"):
            if kind in self._conditions:
                for arm in self.spec.arms:
                    if not self._tcp_known(arm.name):
                        self.unenforced[f"{kind}:{arm.name}"] = "no ee_position in observation.state and no fk"
        # Torque is unenforceable for most setups; warn only about gaps a caller can close.
        gaps = sorted(k for k in self.unenforced if k != "torque_limit")
        if gaps:
            logger.warning("%s: safety shield cannot enforce %s (see SafetyShield.unenforced)", self.spec.name, gaps)
        elif self.unenforced:
            logger.info("%s: safety shield cannot enforce %s", self.spec.name, sorted(self.unenforced))

    def _tcp_known(self, arm: str) -> bool:
        return ("ee_position", arm) in self._state_index or (
            self._fk is not None and ("joint_position", arm) in self._state_index)

    # ------------------------------------------------------------------ public control
    @property
    def stopped(self) -> bool:
        return self._stopped

    @property
    def estopped(self) -> bool:
        return self._estopped

    @property
    def stop_reason(self) -> str | None:
        return self._stop_reason

    def on_stop(self, callback: StopCallback) -> StopCallback:
        """Register ``callback(reason)``, called whenever the shield stops the robot (operator hand-off)."""
        self._callbacks.append(callback)
        return callback

    def estop(self, reason: str = "operator") -> None:
        """Latch a stop that only `resume` clears (an episode `reset` does not)."""
        with self._lock:
            self._estopped = True
            self.interventions["estop"] += 1
            self._stop("estop", f"estop: {reason}", force=True)

    def resume(self) -> None:
        """Clear a latched stop (e-stop included); commands pass through the clamps again."""
        with self._lock:
            if self._stopped:
                logger.info("%s: shield resumed after %s", self.spec.name, self._stop_reason)
            self._stopped = self._estopped = False
            self._stop_reason = None

    def reset(self) -> None:
        """Start an episode: forget previous commands and clear a latched stop, unless e-stopped.

        Intervention counts are kept (they add up over a whole evaluation)."""
        with self._lock:
            self._q_ref.clear()
            self._tcp_ref.clear()
            self._gripper_ref.clear()
            if not self._estopped:
                self._stopped = False
                self._stop_reason = None

    # ------------------------------------------------------------------ the filter
    def filter(
        self,
        action: np.ndarray,
        observation_state: np.ndarray,
        now_s: float,
        observation_time_s: float,
    ) -> np.ndarray:
        """A safe native action for this step.

        Args:
            action: (A,) the policy's native action, any values (NaN, Inf, huge).
            observation_state: (S,) the native ``observation.state`` the action was computed from.
            now_s: the current time (s) on the clock of ``observation_time_s``.
            observation_time_s: when ``observation_state`` was measured (s).

        Returns:
            (A,) float64: the action where it is safe (bit for bit), else clamped or the hold.
        """
        raw = self._vector("action", action, self.spec.action_dim)
        state = self._vector("observation_state", observation_state, self.spec.state_dim)
        with self._lock:
            self._hits = set()
            measured = self._measure(state)
            if not self._stopped:
                self._check_watchdog(now_s, observation_time_s)
            if not self._stopped:
                self._check_observation(measured)
            if not self._stopped and "nonfinite_action" in self._conditions and not np.all(np.isfinite(raw)):
                self._hits.add("nonfinite")
                bad = [p.comp.name for p in self._parts if not np.all(np.isfinite(raw[p.slice]))]
                self._stop("stop_condition", f"nonfinite_action: non-finite values in {bad}")
            if self._stopped:
                self._hits.add("held")
                out = self._hold(measured)
            else:
                out = self._clamp(raw, measured)
            self._remember(out, measured)
            for kind in self._hits:
                self.interventions[kind] += 1
            return out

    def _vector(self, field: str, value: np.ndarray, dim: int) -> np.ndarray:
        try:
            array = np.array(value, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{field}: expected ({dim},) numbers for {self.spec.name}: {err}") from None
        if array.shape != (dim,):
            raise ValueError(f"{field}: expected shape ({dim},) for {self.spec.name}, got {array.shape}")
        return array

    def _measure(self, state: np.ndarray) -> _Measured:
        q, tcp, gripper = {}, {}, {}
        for arm in self.spec.arms:
            name = arm.name
            if ("joint_position", name) in self._state_index:
                sl, scale = self._state_index[("joint_position", name)]
                if np.all(np.isfinite(state[sl])):
                    q[name] = state[sl] / scale
            if ("ee_position", name) in self._state_index:
                sl, scale = self._state_index[("ee_position", name)]
                if np.all(np.isfinite(state[sl])):
                    tcp[name] = state[sl] / scale
            if ("gripper", name) in self._state_index:
                sl, _ = self._state_index[("gripper", name)]
                if np.isfinite(state[sl][0]):
                    gripper[name] = float(state[sl][0])
        missing = [a.name for a in self.spec.arms if a.name not in tcp and a.name in q]
        if self._fk is not None and missing and q:
            tcp.update({a: p for a, p in self._fk_tcp(dict(q)).items() if a in missing})
        return _Measured(finite=bool(np.all(np.isfinite(state))), q=q, tcp=tcp, gripper=gripper)

    def _fk_tcp(self, q_by_arm: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Finite (3,) TCP positions from the fk for the arms it answers."""
        out = {}
        for arm, pos in self._fk(q_by_arm).items():  # type: ignore[misc]
            pos = np.asarray(pos, dtype=float).reshape(-1)
            if pos.shape == (3,) and np.all(np.isfinite(pos)):
                out[arm] = pos
        return out

    # ------------------------------------------------------------------ stops
    def _stop(self, kind: str, reason: str, force: bool = False) -> None:
        if self._stopped and not force:
            return
        self._stopped = True
        self._stop_reason = reason
        if kind != "estop":
            self._hits.add(kind)
        logger.warning("%s: safety shield stopped the robot: %s", self.spec.name, reason)
        for callback in list(self._callbacks):
            try:
                callback(reason)
            except Exception:  # a failing hand-off hook must not unlatch or crash the shield
                logger.exception("%s: on_stop callback %r failed", self.spec.name, callback)

    def _check_watchdog(self, now_s: float, observation_time_s: float) -> None:
        age = float(now_s) - float(observation_time_s)
        if not math.isfinite(age) or age > self.spec.watchdog_timeout_s:
            self._stop("watchdog", f"watchdog: observation is {age:.3f} s old "
                                   f"(timeout {self.spec.watchdog_timeout_s} s)")

    def _check_observation(self, measured: _Measured) -> None:
        if not measured.finite:
            self._stop("bad_observation", "bad_observation: observation.state has non-finite values")
            return
        thresholds = self._conditions
        for arm, tcp in measured.tcp.items():
            if "ee_outside_workspace" in thresholds:
                outside = _box_distance(tcp, self._box_lo, self._box_hi)
                if outside > thresholds["ee_outside_workspace"]:
                    self._stop("stop_condition", f"ee_outside_workspace: arm {arm!r} TCP {np.round(tcp, 3).tolist()} "
                                                 f"is {outside:.3f} m outside the workspace "
                                                 f"(threshold {thresholds['ee_outside_workspace']} m)")
                    return
            if "table_collision" in thresholds and tcp[2] < self._box_lo[2] - thresholds["table_collision"]:
                self._stop("stop_condition", f"table_collision: arm {arm!r} TCP z={tcp[2]:.3f} m is below the "
                                             f"workspace floor {self._box_lo[2]} m by more than "
                                             f"{thresholds['table_collision']} m")
                return
        if "joint_limit_margin" in thresholds:
            margin = thresholds["joint_limit_margin"]
            for arm, q in measured.q.items():
                lim = self._limits[arm]
                beyond = np.maximum(lim.lower - q, q - lim.upper)
                if np.any(beyond > margin):
                    joint = self.spec.arm(arm).joints[int(np.argmax(beyond))]
                    self._stop("stop_condition", f"joint_limit_margin: joint {joint!r} is {beyond.max():.4f} "
                                                 f"beyond its limit (threshold {margin})")
                    return

    # ------------------------------------------------------------------ holds and references
    def _hold(self, measured: _Measured) -> np.ndarray:
        out = np.zeros(self.spec.action_dim)
        for part in self._parts:
            out[part.slice] = self._hold_part(part, measured)
        return out

    def _hold_part(self, part: _Part, measured: _Measured) -> np.ndarray:
        if part.kind == "joint_position":
            lim = self._limits[part.arm]
            q = measured.q.get(part.arm, self._q_ref.get(part.arm))
            if q is None:
                raise SafetyError(f"{self.spec.name}: no finite joint position of arm {part.arm!r} seen yet, "
                                  "so no hold can be formed")
            return np.clip(q, lim.lower, lim.upper) * part.scale
        if part.kind == "gripper":
            grip = self.spec.arm(part.arm).gripper
            value = self._gripper_ref.get(part.arm, measured.gripper.get(part.arm, grip.open_value))
            return np.array([np.clip(value, min(grip.open_value, grip.closed_value),
                                     max(grip.open_value, grip.closed_value))])
        return np.zeros(part.comp.size)

    def _q_reference(self, arm: str, measured: _Measured) -> np.ndarray | None:
        first, second = (self._q_ref, measured.q) if self.reference == "commanded" else (measured.q, self._q_ref)
        return first.get(arm, second.get(arm))

    def _tcp_reference(self, arm: str, measured: _Measured) -> np.ndarray | None:
        first, second = (self._tcp_ref, measured.tcp) if self.reference == "commanded" else (measured.tcp, self._tcp_ref)
        return first.get(arm, second.get(arm))

    def _remember(self, out: np.ndarray, measured: _Measured) -> None:
        """Update the commanded references with the command that goes out."""
        for part in self._parts:
            value = out[part.slice]
            if part.kind == "joint_position":
                self._q_ref[part.arm] = value / part.scale
            elif part.kind == "joint_velocity":
                ref = self._q_reference(part.arm, measured)
                if ref is not None:
                    self._q_ref[part.arm] = ref + value / part.scale * self.dt
            elif part.kind == "ee_delta":
                ref = self._tcp_reference(part.arm, measured)
                if ref is not None:
                    self._tcp_ref[part.arm] = ref + value / part.scale
            elif part.kind == "gripper":
                self._gripper_ref[part.arm] = float(value[0])

    # ------------------------------------------------------------------ clamps
    def _clip(self, kind: str, value: np.ndarray, lo: np.ndarray | float, hi: np.ndarray | float) -> np.ndarray:
        clipped = np.clip(value, lo, hi)
        if not np.array_equal(clipped, value):
            self._hits.add(kind)
        return clipped

    def _clamp(self, raw: np.ndarray, measured: _Measured) -> np.ndarray:
        out = raw.copy()
        for part in self._parts:
            value = raw[part.slice]
            if not np.all(np.isfinite(value)):
                self._hits.add("nonfinite")
                out[part.slice] = self._hold_part(part, measured)
                continue
            if self._data_lo is not None:
                value = self._clip("data_range", value, self._data_lo[part.slice], self._data_hi[part.slice])
            handler = getattr(self, f"_clamp_{part.kind}")
            out[part.slice] = handler(part, value, measured)
        return out

    def _clamp_joint_position(self, part: _Part, value: np.ndarray, measured: _Measured) -> np.ndarray:
        lim, s = self._limits[part.arm], part.scale
        ref = self._q_reference(part.arm, measured)
        step = self.spec.safety.max_joint_step_rad
        value = self._clip("joint_limit", value, lim.lower * s, lim.upper * s)
        value = self._clip("step_limit", value, (ref - step) * s, (ref + step) * s)
        value = self._clip("velocity_limit", value, (ref - lim.velocity * self.dt) * s, (ref + lim.velocity * self.dt) * s)
        q_now = measured.q.get(part.arm)
        if lim.servo_error is not None and q_now is not None:
            value = self._clip("torque_limit", value, (q_now - lim.servo_error) * s, (q_now + lim.servo_error) * s)
        # Only a reference outside the joint limits makes this second clamp bite: the limits win.
        value = self._clip("joint_limit", value, lim.lower * s, lim.upper * s)
        ref_native = ref * s
        alpha = self._tcp_envelope(part.arm, ref, lambda a: (ref_native + a * (value - ref_native)) / s,
                                   value / s, measured)
        if alpha < 1.0:
            value = np.clip(ref_native + alpha * (value - ref_native), lim.lower * s, lim.upper * s)
        return value

    def _clamp_joint_velocity(self, part: _Part, value: np.ndarray, measured: _Measured) -> np.ndarray:
        lim, s, dt = self._limits[part.arm], part.scale, self.dt
        ref = self._q_reference(part.arm, measured)
        q_now = measured.q.get(part.arm)
        value = self._clip("velocity_limit", value, -lim.velocity * s, lim.velocity * s)
        step_speed = self.spec.safety.max_joint_step_rad / dt
        value = self._clip("step_limit", value, -step_speed * s, step_speed * s)
        if lim.servo_error is not None and q_now is not None and ref is not None:
            value = self._clip("torque_limit", value, (q_now - lim.servo_error - ref) / dt * s,
                               (q_now + lim.servo_error - ref) / dt * s)
        if ref is not None:
            value = self._clip("joint_limit", value, (lim.lower - ref) / dt * s, (lim.upper - ref) / dt * s)
        # Only a reference outside the joint limits (or the servo window) makes this bite.
        value = self._clip("velocity_limit", value, -lim.velocity * s, lim.velocity * s)
        if ref is not None:
            alpha = self._tcp_envelope(part.arm, ref, lambda a: ref + a * value / s * dt, ref + value / s * dt, measured)
            if alpha < 1.0:
                value = alpha * value
        return value

    def _tcp_envelope(
        self,
        arm: str,
        ref: np.ndarray,
        target_at: Callable[[float], np.ndarray],
        target: np.ndarray,
        measured: _Measured,
    ) -> float:
        """Largest fraction α in [0, 1] of a joint step (ref → target) whose TCP keeps the envelope.

        The TCP (from the fk) must end no farther outside the workspace box than it starts (so
        inside, when it starts inside) and move at most ``max_ee_speed × dt``. α = 1 is tried
        first (an acceptable step passes exactly); otherwise α is bisected."""
        if self._fk is None:
            return 1.0
        others = {a: self._q_reference(a, measured) for a in measured.q if a != arm}
        others = {a: q for a, q in others.items() if q is not None}

        def tcp_of(q: np.ndarray) -> np.ndarray | None:
            return self._fk_tcp({**others, arm: q}).get(arm)

        start = tcp_of(ref)
        if start is None:
            return 1.0
        start_outside = _box_distance(start, self._box_lo, self._box_hi)

        def failures(q: np.ndarray) -> set[str]:
            tcp = tcp_of(q)
            if tcp is None:
                return {"workspace"}
            bad = set()
            if _box_distance(tcp, self._box_lo, self._box_hi) > start_outside:
                bad.add("workspace")
            if np.linalg.norm(tcp - start) > self._ee_step:
                bad.add("ee_speed")
            return bad

        first = failures(target)
        if not first:
            return 1.0
        self._hits |= first
        low, high = 0.0, 1.0
        for _ in range(FK_BISECTION_STEPS):
            mid = 0.5 * (low + high)
            if failures(target_at(mid)):
                high = mid
            else:
                low = mid
        return low

    def _clamp_ee_delta(self, part: _Part, value: np.ndarray, measured: _Measured) -> np.ndarray:
        s = part.scale
        ref = self._tcp_reference(part.arm, measured)
        if ref is not None:
            value = self._clip("workspace", value, (self._box_lo - ref) * s, (self._box_hi - ref) * s)
        norm = _norm(value / s)
        if norm > self._ee_step:
            self._hits.add("ee_speed")
            value = value * (self._ee_step / norm)
        return value

    def _clamp_base_velocity(self, part: _Part, value: np.ndarray, measured: _Measured) -> np.ndarray:
        base = self.spec.base
        assert base is not None  # the spec guarantees a base with a base_velocity component
        s = part.scale
        value = value.copy()
        linear = math.hypot(value[0] / s, value[1] / s)
        if linear > base.max_linear_speed:
            self._hits.add("base_speed")
            value[:2] = value[:2] * (base.max_linear_speed / linear)
        value[2:] = self._clip("base_speed", value[2:], -base.max_angular_speed, base.max_angular_speed)
        return value

    def _clamp_gripper(self, part: _Part, value: np.ndarray, measured: _Measured) -> np.ndarray:
        grip = self.spec.arm(part.arm).gripper
        return self._clip("gripper_range", value, min(grip.open_value, grip.closed_value),
                          max(grip.open_value, grip.closed_value))
