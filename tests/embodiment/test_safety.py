"""Property tests of the safety shield over every bundled spec (hypothesis)."""

import math

import copy
from functools import lru_cache

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from locksmith.embodiment.registry import BUNDLED_ROBOTS, bundled_spec_path, load_bundled_spec
from locksmith.embodiment.safety import INTERVENTION_KINDS, SafetyShield
from locksmith.embodiment.spec import StopCondition, parse_spec

# Specs other workers have not added yet are skipped; a spec file that exists must pass.
EXISTING = [name for name in BUNDLED_ROBOTS if bundled_spec_path(name).exists()]
# Conventions no bundled spec may have yet, built from the Panda's: joint velocities in deg/s
# with a binding per-step limit and an open_low 0-100 gripper; two arms (joint positions in
# degrees, ee deltas in mm measured by an ee_position state) on a base.
VARIANTS = ["variant_joint_velocity", "variant_two_arms_base"]
ALL_SPECS = EXISTING + VARIANTS
SETTINGS = settings(max_examples=50, deadline=None)
TOL = 1e-9

# Policy outputs: sane values, huge values, NaN and Inf, alone or mixed in one vector.
ANY_FLOAT = st.one_of(
    st.floats(-1.0, 1.0),
    st.floats(-1e6, 1e6),
    st.floats(allow_nan=True, allow_infinity=True),
)


def policy_outputs(dim):
    return st.one_of(
        arrays(np.float64, dim, elements=st.floats(-1.0, 1.0)),
        arrays(np.float64, dim, elements=st.floats(-1e6, 1e6)),
        arrays(np.float64, dim, elements=st.floats(allow_nan=True, allow_infinity=True)),
        arrays(np.float64, dim, elements=ANY_FLOAT),
    )


# ---------------------------------------------------------------------- helpers
@lru_cache(maxsize=None)
def get_spec(name):
    if name not in VARIANTS:
        return load_bundled_spec(name)
    panda = yaml.safe_load(bundled_spec_path("panda").read_text())
    data = copy.deepcopy(panda)
    data["name"] = name
    if name == "variant_joint_velocity":
        data["control_rate_hz"] = 50
        data["arms"][0]["gripper"].update(open_value=0.0, closed_value=100.0)
        data["state"][0]["units"] = "deg"
        data["action"][0].update(kind="joint_velocity", units="deg/s")
        data["safety"]["max_joint_step_rad"] = 0.01  # 0.5 rad/s: tighter than the velocity limits
        return parse_spec(data, name)
    joints = []
    for side in ("left", "right"):
        joints += [dict(j, name=f"{side}_{j['name']}") for j in panda["joints"]]
    gripper = panda["arms"][0]["gripper"]
    data["joints"] = joints
    data["arms"] = [
        {"name": side, "joints": [f"{side}_joint{i}" for i in range(1, 8)], "gripper": gripper}
        for side in ("left", "right")
    ]
    data["base"] = {"max_linear_speed": 0.4, "max_angular_speed": 0.8}
    data["safety"]["max_joint_step_rad"] = 0.02  # tighter than velocity limit × dt (0.11 rad)
    data["state"] = [
        {"name": "base_pose", "kind": "base_pose", "size": 3, "units": "m"},
        {"name": "left_joints", "kind": "joint_position", "arm": "left", "size": 7, "units": "deg"},
        {"name": "left_gripper", "kind": "gripper", "arm": "left", "size": 1, "units": "native"},
        {"name": "right_joints", "kind": "joint_position", "arm": "right", "size": 7, "units": "rad"},
        {"name": "right_tcp", "kind": "ee_position", "arm": "right", "size": 3, "units": "mm"},
        {"name": "right_gripper", "kind": "gripper", "arm": "right", "size": 1, "units": "native"},
    ]
    data["action"] = [
        {"name": "left_joints", "kind": "joint_position", "arm": "left", "size": 7, "units": "deg"},
        {"name": "left_gripper", "kind": "gripper", "arm": "left", "size": 1, "units": "native"},
        {"name": "base", "kind": "base_velocity", "size": 3, "units": "m/s"},
        {"name": "right_delta", "kind": "ee_delta", "arm": "right", "size": 3, "units": "mm"},
        {"name": "right_gripper", "kind": "gripper", "arm": "right", "size": 1, "units": "native"},
    ]
    return parse_spec(data, name)


def box(spec):
    return np.asarray(spec.safety.workspace_min), np.asarray(spec.safety.workspace_max)


def joint_limits(spec, arm):
    joints = [spec.joint(j) for j in spec.arm(arm).joints]
    return (np.array([j.lower for j in joints]), np.array([j.upper for j in joints]),
            np.array([j.velocity_limit for j in joints]), np.array([j.torque_limit for j in joints]))


def box_distance(p, lo, hi):
    return float(np.linalg.norm(np.maximum(lo - p, 0) + np.maximum(p - hi, 0)))


def synthetic_fk(spec, gain=1.2):
    """A smooth stand-in forward kinematics: the box centre at mid-range joints, up to
    ``gain`` half-boxes away elsewhere (so some joint targets leave the workspace)."""
    lo, hi = box(spec)
    centre, half = (lo + hi) / 2, (hi - lo) / 2
    rng = np.random.default_rng(0)
    maps, mids = {}, {}
    for arm in spec.arms:
        lower, upper, _, _ = joint_limits(spec, arm.name)
        mids[arm.name] = (lower + upper) / 2
        maps[arm.name] = rng.normal(size=(3, len(lower))) / math.sqrt(len(lower))

    def fk(q_by_arm):
        return {arm: centre + gain * half * np.tanh(maps[arm] @ (np.asarray(q) - mids[arm]) / 2.0)
                for arm, q in q_by_arm.items()}

    return fk


def state_from_unit(spec, unit):
    """A native observation.state from (S,) values in [0, 1]: joints inside their limits,
    TCPs inside the workspace, grippers inside their range."""
    lo, hi = box(spec)
    parts = []
    for comp, sl in zip(spec.state, spec.slices("state").values(), strict=True):
        u = unit[sl]
        if comp.kind == "joint_position":
            lower, upper, _, _ = joint_limits(spec, comp.arm)
            parts.append((lower + u * (upper - lower)) * comp.native_scale)
        elif comp.kind == "joint_velocity":
            parts.append((u - 0.5) * comp.native_scale)
        elif comp.kind == "gripper":
            grip = spec.arm(comp.arm).gripper
            parts.append([grip.to_native(float(u[0]))])
        elif comp.kind == "ee_position":
            parts.append((lo + u * (hi - lo)) * comp.native_scale)
        else:  # base_pose
            parts.append(u - 0.5)
    return np.concatenate([np.ravel(p) for p in parts]).astype(float)


def state_parts(spec, state, kind):
    """arm → SI values of the state component of ``kind`` (absent arms are missing)."""
    out = {}
    for comp, sl in zip(spec.state, spec.slices("state").values(), strict=True):
        if comp.kind == kind and comp.arm not in out:
            out[comp.arm] = state[sl] / comp.native_scale
    return out


def set_state(spec, state, kind, arm, si_value):
    for comp, sl in zip(spec.state, spec.slices("state").values(), strict=True):
        if comp.kind == kind and comp.arm == arm:
            state[sl] = np.asarray(si_value) * comp.native_scale
            return


def mid_state(spec):
    return state_from_unit(spec, np.full(spec.state_dim, 0.5))


def safe_action(spec, state, unit, fraction=0.01):
    """A command well inside every limit, from (A,) values in [-1, 1], for a robot at ``state``."""
    q_now = state_parts(spec, state, "joint_position")
    dt = spec.control_period_s
    ee_step = spec.safety.max_ee_speed_m_s * dt
    parts = []
    for comp, sl in zip(spec.action, spec.slices("action").values(), strict=True):
        u, s = unit[sl], comp.native_scale
        if comp.kind in ("joint_position", "joint_velocity"):
            _, _, vel, _ = joint_limits(spec, comp.arm)
            step = np.minimum(spec.safety.max_joint_step_rad, vel * dt)
            if comp.kind == "joint_position":
                parts.append((q_now[comp.arm] + fraction * u * step) * s)
            else:
                parts.append(fraction * u * step / dt * s)
        elif comp.kind == "ee_delta":
            parts.append(fraction * u * ee_step / 2 * s)
        elif comp.kind == "base_velocity":
            parts.append(fraction * u * np.array([spec.base.max_linear_speed * s / 2,
                                                  spec.base.max_linear_speed * s / 2,
                                                  spec.base.max_angular_speed]))
        else:
            grip = spec.arm(comp.arm).gripper
            parts.append([grip.to_native(float((u[0] + 1) / 2))])
    return np.concatenate([np.ravel(p) for p in parts]).astype(float)


class PerfectRobot:
    """A robot that reaches every command within one step (the test's ground truth)."""

    def __init__(self, spec, state, fk):
        self.spec, self.state, self.fk = spec, state.copy(), fk
        q = state_parts(spec, state, "joint_position")
        tcp = state_parts(spec, state, "ee_position")
        fk_tcp = fk(q) if q else {}
        self.q_target = dict(q)
        self.tcp_target = {a.name: tcp.get(a.name, fk_tcp.get(a.name)) for a in spec.arms}
        self.gripper = None

    def apply(self, action):
        spec, dt = self.spec, self.spec.control_period_s
        for comp, sl in zip(spec.action, spec.slices("action").values(), strict=True):
            value, s = action[sl], comp.native_scale
            if comp.kind == "joint_position":
                self.q_target[comp.arm] = value / s
            elif comp.kind == "joint_velocity" and comp.arm in self.q_target:
                self.q_target[comp.arm] = self.q_target[comp.arm] + value / s * dt
            elif comp.kind == "ee_delta" and self.tcp_target[comp.arm] is not None:
                self.tcp_target[comp.arm] = self.tcp_target[comp.arm] + value / s
        for arm, q in self.q_target.items():
            set_state(spec, self.state, "joint_position", arm, q)
        for arm, tcp in self.tcp_target.items():
            if tcp is not None:
                set_state(spec, self.state, "ee_position", arm, tcp)


def assert_within_limits(spec, out, before, after, fk):
    """Every limit of the spec holds for the command ``out`` that moved ``before`` to ``after``."""
    dt = spec.control_period_s
    lo, hi = box(spec)
    ee_step = spec.safety.max_ee_speed_m_s * dt
    assert out.shape == (spec.action_dim,) and np.all(np.isfinite(out))
    for comp, sl in zip(spec.action, spec.slices("action").values(), strict=True):
        value, s = out[sl], comp.native_scale
        if comp.kind in ("joint_position", "joint_velocity"):
            lower, upper, vel, _ = joint_limits(spec, comp.arm)
            if comp.kind == "joint_position":
                assert np.all(value >= lower * s) and np.all(value <= upper * s), "joint limits"
            else:
                assert np.all(np.abs(value) <= vel * s * (1 + TOL)), "velocity limits"
                assert np.all(np.abs(value) / s * dt <= spec.safety.max_joint_step_rad * (1 + TOL)), "step limit"
            q0, q1 = before.q_target.get(comp.arm), after.q_target.get(comp.arm)
            if q0 is not None:
                assert np.all(q1 >= lower - TOL) and np.all(q1 <= upper + TOL), "joint limits of the target"
                step = np.abs(q1 - q0)
                assert np.all(step <= spec.safety.max_joint_step_rad + TOL), "step limit"
                assert np.all(step <= vel * dt + TOL), "velocity limit of the step"
                p0, p1 = fk({comp.arm: q0})[comp.arm], fk({comp.arm: q1})[comp.arm]
                assert box_distance(p1, lo, hi) <= box_distance(p0, lo, hi) + TOL, "workspace (fk)"
                assert np.linalg.norm(p1 - p0) <= ee_step + TOL, "max ee speed (fk)"
        elif comp.kind == "ee_delta":
            assert np.linalg.norm(value / s) <= ee_step * (1 + TOL), "max ee speed"
            p0, p1 = before.tcp_target[comp.arm], after.tcp_target[comp.arm]
            if p0 is not None:
                assert box_distance(p1, lo, hi) <= box_distance(p0, lo, hi) + TOL, "workspace"
        elif comp.kind == "base_velocity":
            assert math.hypot(value[0] / s, value[1] / s) <= spec.base.max_linear_speed * (1 + TOL), "base speed"
            assert abs(value[2]) <= spec.base.max_angular_speed, "base turn rate"
        else:
            grip = spec.arm(comp.arm).gripper
            assert min(grip.open_value, grip.closed_value) <= value[0] <= max(grip.open_value, grip.closed_value)
    return True


def copy_robot(robot):
    twin = PerfectRobot.__new__(PerfectRobot)
    twin.spec, twin.state, twin.fk = robot.spec, robot.state.copy(), robot.fk
    twin.q_target = {k: v.copy() for k, v in robot.q_target.items()}
    twin.tcp_target = {k: None if v is None else v.copy() for k, v in robot.tcp_target.items()}
    twin.gripper = robot.gripper
    return twin


def hold_of(spec, state, previous_out=None):
    """The hold the shield must answer while stopped, for a robot at ``state`` whose last
    command was ``previous_out`` (None: no command yet, the gripper holds its measured value)."""
    q = state_parts(spec, state, "joint_position")
    gripper = state_parts(spec, state, "gripper")
    parts = []
    for comp, sl in zip(spec.action, spec.slices("action").values(), strict=True):
        if comp.kind == "joint_position":
            lower, upper, _, _ = joint_limits(spec, comp.arm)
            parts.append(np.clip(q[comp.arm], lower, upper) * comp.native_scale)
        elif comp.kind == "gripper":
            parts.append(previous_out[sl] if previous_out is not None else gripper[comp.arm])
        else:
            parts.append(np.zeros(comp.size))
    return np.concatenate([np.ravel(p) for p in parts])


def assert_only(shield, expected, before=None):
    """``expected`` kinds went up by one each, all others stayed put."""
    before = before or dict.fromkeys(INTERVENTION_KINDS, 0)
    changed = {k for k in INTERVENTION_KINDS if shield.interventions[k] != before[k]}
    assert changed == set(expected), f"interventions changed: {changed}, expected {set(expected)}"
    for kind in expected:
        assert shield.interventions[kind] == before[kind] + 1


def with_conditions(spec, *conditions):
    return spec.model_copy(update={"stop_conditions": [StopCondition(kind=k, threshold=t) for k, t in conditions]})


# ---------------------------------------------------------------------- properties
def test_some_bundled_spec_exists():
    assert "panda" in EXISTING and "mobile_panda" in EXISTING


@pytest.mark.parametrize("name", ALL_SPECS)
@SETTINGS
@given(data=st.data())
def test_any_policy_output_respects_every_limit(name, data):
    spec = get_spec(name)
    fk = synthetic_fk(spec)
    unit = data.draw(arrays(np.float64, spec.state_dim, elements=st.floats(0.0, 1.0)), label="state")
    n_steps = data.draw(st.integers(1, 5), label="steps")
    shield = SafetyShield(spec, fk=fk)
    robot = PerfectRobot(spec, state_from_unit(spec, unit), fk)
    previous = None
    for t in range(n_steps):
        action = data.draw(policy_outputs(spec.action_dim), label=f"action{t}")
        before = copy_robot(robot)
        out = shield.filter(action, robot.state, now_s=float(t), observation_time_s=float(t))
        if shield.stopped:
            expected = hold_of(spec, robot.state, previous)
            np.testing.assert_allclose(out, expected, rtol=0, atol=1e-12)
        robot.apply(out)
        assert assert_within_limits(spec, out, before, robot, fk)
        previous = out


@pytest.mark.parametrize("name", ALL_SPECS)
@SETTINGS
@given(data=st.data())
def test_commands_stay_inside_the_data_range(name, data):
    spec = get_spec(name)
    state = mid_state(spec)
    centre = safe_action(spec, state, np.zeros(spec.action_dim))
    width = data.draw(arrays(np.float64, spec.action_dim, elements=st.floats(0.0, 1e-3)), label="width")
    q01, q99 = centre - width, centre + width
    shield = SafetyShield(spec, {"action": {"q01": q01, "q99": q99}}, stats_margin=0.5, fk=synthetic_fk(spec))
    low, high = q01 - 0.5 * (q99 - q01), q99 + 0.5 * (q99 - q01)
    action = data.draw(arrays(np.float64, spec.action_dim, elements=st.floats(-1e3, 1e3)), label="action")
    out = shield.filter(action, state, 0.0, 0.0)
    assert not shield.stopped
    assert np.all(out >= low) and np.all(out <= high)
    outside = np.any((action < low) | (action > high))
    assert (shield.interventions["data_range"] == 1) == bool(outside)
    assert np.array_equal(out, np.clip(action, low, high))


@pytest.mark.parametrize("name", ALL_SPECS)
@SETTINGS
@given(data=st.data())
def test_a_safe_action_passes_unchanged(name, data):
    spec = get_spec(name)
    state = mid_state(spec)
    shield = SafetyShield(spec, fk=synthetic_fk(spec))
    for t in range(3):
        u = data.draw(arrays(np.float64, spec.action_dim, elements=st.floats(-1.0, 1.0)), label=f"u{t}")
        action = safe_action(spec, state, u)
        out = shield.filter(action, state, now_s=10.0 + t, observation_time_s=10.0 + t)
        assert np.array_equal(out, action)
    assert sum(shield.interventions.values()) == 0


@pytest.mark.parametrize("name", ALL_SPECS)
@SETTINGS
@given(data=st.data())
def test_servo_error_bounds_the_torque(name, data):
    spec = get_spec(name)
    kp = data.draw(st.floats(50.0, 5000.0), label="kp")
    unit = data.draw(arrays(np.float64, spec.state_dim, elements=st.floats(0.05, 0.95)), label="state")
    state = state_from_unit(spec, unit)
    shield = SafetyShield(spec, servo_kp=kp)
    assert "torque_limit" not in shield.unenforced
    action = data.draw(arrays(np.float64, spec.action_dim, elements=st.floats(-1e3, 1e3)), label="action")
    out = shield.filter(action, state, 0.0, 0.0)
    assert not shield.stopped
    q_now = state_parts(spec, state, "joint_position")
    for comp, sl in zip(spec.action, spec.slices("action").values(), strict=True):
        if comp.kind in ("joint_position", "joint_velocity") and comp.arm in q_now:
            _, _, _, torque = joint_limits(spec, comp.arm)
            target = out[sl] / comp.native_scale
            if comp.kind == "joint_velocity":
                target = q_now[comp.arm] + target * spec.control_period_s
            assert np.all(kp * np.abs(target - q_now[comp.arm]) <= torque * (1 + 1e-6))


# ---------------------------------------------------------------------- counts per kind
EXPECTED_KIND = {
    "joint_position": "joint_limit",
    "joint_velocity": "velocity_limit",
    "ee_delta": "ee_speed",
    "base_velocity": "base_speed",
    "gripper": "gripper_range",
}
# The kinds a bad command of each component kind may trigger besides its expected one.
POSSIBLE_KINDS = {
    "joint_position": {"joint_limit", "step_limit", "velocity_limit", "workspace", "ee_speed"},
    "joint_velocity": {"joint_limit", "step_limit", "velocity_limit", "workspace", "ee_speed"},
    "ee_delta": {"workspace", "ee_speed"},
    "base_velocity": {"base_speed"},
    "gripper": {"gripper_range"},
}


@pytest.mark.parametrize("name", ALL_SPECS)
def test_each_component_counts_its_own_kind(name):
    spec = get_spec(name)
    state = mid_state(spec)
    for comp, sl in zip(spec.action, spec.slices("action").values(), strict=True):
        shield = SafetyShield(spec, fk=synthetic_fk(spec))
        action = safe_action(spec, state, np.full(spec.action_dim, 0.3))
        bad = action.copy()
        bad[sl] = 1e4 * max(comp.native_scale, 1.0)
        out = shield.filter(bad, state, 0.0, 0.0)
        rest = np.ones(spec.action_dim, dtype=bool)
        rest[sl] = False
        assert np.array_equal(out[rest], action[rest]), f"{comp.name}: other components changed"
        assert not np.array_equal(out[sl], bad[sl])
        assert shield.interventions[EXPECTED_KIND[comp.kind]] == 1, f"{comp.name}: {shield.interventions}"
        changed = {k for k, n in shield.interventions.items() if n}
        assert changed <= POSSIBLE_KINDS[comp.kind], f"{comp.name}: {shield.interventions}"
        assert all(n <= 1 for n in shield.interventions.values())


@pytest.mark.parametrize("name", ALL_SPECS)
def test_nonfinite_stops_when_the_spec_says_so(name):
    spec = get_spec(name)
    state = mid_state(spec)
    action = safe_action(spec, state, np.full(spec.action_dim, 0.2))
    bad = action.copy()
    bad[0] = np.nan
    # With the stop condition: the whole robot holds and the stop latches.
    strict = SafetyShield(with_conditions(spec, ("nonfinite_action", 0.0)))
    reasons = []
    strict.on_stop(reasons.append)
    out = strict.filter(bad, state, 0.0, 0.0)
    assert strict.stopped and reasons == [strict.stop_reason] and reasons[0].startswith("nonfinite_action")
    np.testing.assert_allclose(out, hold_of(spec, state), atol=1e-12)
    assert_only(strict, {"nonfinite", "stop_condition", "held"})
    np.testing.assert_allclose(strict.filter(action, state, 1.0, 1.0), hold_of(spec, state), atol=1e-12)
    assert strict.stopped and len(reasons) == 1
    # Without it: only the broken component holds, the rest passes, nothing latches.
    lenient = SafetyShield(with_conditions(spec))
    out = lenient.filter(bad, state, 0.0, 0.0)
    first = next(iter(spec.slices("action").values()))
    assert not lenient.stopped
    rest = np.ones(spec.action_dim, dtype=bool)
    rest[first] = False
    assert np.array_equal(out[rest], action[rest])
    np.testing.assert_allclose(out[first], hold_of(spec, state)[first], atol=1e-12)
    assert_only(lenient, {"nonfinite"})


# ---------------------------------------------------------------------- stops
@pytest.mark.parametrize("name", ALL_SPECS)
def test_watchdog_stops_on_a_stale_observation_and_latches(name):
    spec = get_spec(name)
    state = mid_state(spec)
    action = safe_action(spec, state, np.full(spec.action_dim, 0.5))
    shield = SafetyShield(spec, fk=synthetic_fk(spec))
    reasons = []
    shield.on_stop(reasons.append)
    out = shield.filter(action, state, now_s=5.0, observation_time_s=5.0 - spec.watchdog_timeout_s * 0.9)
    assert np.array_equal(out, action) and not shield.stopped
    out = shield.filter(action, state, now_s=5.0, observation_time_s=5.0 - spec.watchdog_timeout_s * 1.5)
    assert shield.stopped and len(reasons) == 1 and reasons[0].startswith("watchdog")
    np.testing.assert_allclose(out, hold_of(spec, state, action), atol=1e-12)
    assert_only(shield, {"watchdog", "held"})
    # Latched: a fresh observation is still held, no second callback.
    out = shield.filter(action, state, now_s=6.0, observation_time_s=6.0)
    assert shield.stopped and len(reasons) == 1 and shield.interventions["held"] == 2
    assert not np.array_equal(out, action)
    shield.resume()
    assert np.array_equal(shield.filter(action, state, 7.0, 7.0), action)
    # A non-finite clock reads as stale.
    shield.filter(action, state, now_s=float("nan"), observation_time_s=7.0)
    assert shield.stopped and shield.interventions["watchdog"] == 2


@pytest.mark.parametrize("name", ALL_SPECS)
def test_estop_latches_until_resume_and_calls_the_hand_off(name):
    spec = get_spec(name)
    state = mid_state(spec)
    action = safe_action(spec, state, np.full(spec.action_dim, -0.5))
    shield = SafetyShield(spec, fk=synthetic_fk(spec))
    reasons = []
    shield.on_stop(reasons.append)
    shield.estop("button 2")
    assert reasons == ["estop: button 2"] and shield.interventions["estop"] == 1
    for t in range(3):
        out = shield.filter(action, state, float(t), float(t))
        np.testing.assert_allclose(out, hold_of(spec, state), atol=1e-12)
    shield.reset()  # a new episode does not clear an e-stop
    assert shield.stopped and shield.estopped
    assert not np.array_equal(shield.filter(action, state, 4.0, 4.0), action)
    shield.resume()
    assert not shield.stopped
    assert np.array_equal(shield.filter(action, state, 5.0, 5.0), action)
    assert shield.interventions["held"] == 4 and reasons == ["estop: button 2"]


@pytest.mark.parametrize("name", ALL_SPECS)
def test_ee_outside_workspace_stops(name):
    spec = with_conditions(get_spec(name), ("ee_outside_workspace", 0.05))
    lo, hi = box(spec)
    arm = spec.arms[-1].name
    outside = hi + np.array([0.0, 0.0, 0.08])
    inside_margin = hi + np.array([0.0, 0.0, 0.03])
    for point, stops in ((inside_margin, False), (outside, True)):
        state = mid_state(spec)
        set_state(spec, state, "ee_position", arm, point)
        base_fk = synthetic_fk(spec)

        def fk(q_by_arm, point=point):
            return {a: (point if a == arm else p) for a, p in base_fk(q_by_arm).items()}

        shield = SafetyShield(spec, fk=fk)
        got = []
        shield.on_stop(got.append)
        shield.filter(np.zeros(spec.action_dim), state, 0.0, 0.0)
        assert shield.stopped == stops
        assert (len(got) == 1 and got[0].startswith("ee_outside_workspace")) == stops
        assert shield.interventions["stop_condition"] == int(stops)
    shield.reset()
    assert not shield.stopped


@pytest.mark.parametrize("name", ALL_SPECS)
def test_joint_and_table_stop_conditions(name):
    spec = with_conditions(get_spec(name), ("joint_limit_margin", 0.01), ("table_collision", 0.02))
    arm = spec.arms[0].name
    lower, upper, _, _ = joint_limits(spec, arm)
    state = mid_state(spec)
    q = (lower + upper) / 2
    q[0] = upper[0] + 0.005  # beyond the limit, within the threshold: no stop
    set_state(spec, state, "joint_position", arm, q)
    shield = SafetyShield(spec)
    out = shield.filter(safe_action(spec, state, np.zeros(spec.action_dim)), state, 0.0, 0.0)
    assert not shield.stopped
    for comp, sl in zip(spec.action, spec.slices("action").values(), strict=True):
        if comp.arm == arm and comp.kind == "joint_position":  # the hold is pulled back inside
            assert out[sl][0] == upper[0] * comp.native_scale
    q[0] = upper[0] + 0.02
    set_state(spec, state, "joint_position", arm, q)
    shield.filter(np.zeros(spec.action_dim), state, 1.0, 1.0)
    assert shield.stopped and shield.stop_reason.startswith("joint_limit_margin")

    lo, hi = box(spec)
    low_point = np.array([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, lo[2] - 0.03])
    state = mid_state(spec)
    set_state(spec, state, "ee_position", arm, low_point)
    base_fk = synthetic_fk(spec)
    shield = SafetyShield(spec, fk=lambda qa: {a: (low_point if a == arm else p) for a, p in base_fk(qa).items()})
    shield.filter(np.zeros(spec.action_dim), state, 0.0, 0.0)
    assert shield.stopped and shield.stop_reason.startswith("table_collision")


def test_a_failing_hand_off_hook_does_not_unlatch():
    spec = load_bundled_spec("panda")
    shield = SafetyShield(spec)

    def broken(reason):
        raise RuntimeError("pager offline")

    calls = []
    shield.on_stop(broken)
    shield.on_stop(calls.append)
    shield.estop()
    assert shield.stopped and calls == ["estop: operator"]


def test_nonfinite_observation_stops():
    spec = load_bundled_spec("panda")
    shield = SafetyShield(spec)
    state = mid_state(spec)
    shield.filter(np.zeros(spec.action_dim), state, 0.0, 0.0)
    state[2] = np.nan
    out = shield.filter(np.zeros(spec.action_dim), state, 1.0, 1.0)
    assert shield.stopped and shield.stop_reason.startswith("bad_observation")
    assert np.all(np.isfinite(out)) and shield.interventions["bad_observation"] == 1


# ---------------------------------------------------------------------- construction
@pytest.mark.parametrize("name", ALL_SPECS)
def test_unenforceable_limits_are_listed(name):
    spec = get_spec(name)
    plain = SafetyShield(spec)
    assert "torque_limit" in plain.unenforced
    for comp in spec.action:
        if comp.kind in ("joint_position", "joint_velocity"):
            assert f"workspace:{comp.arm}" in plain.unenforced
            assert f"workspace:{comp.arm}" not in SafetyShield(spec, fk=synthetic_fk(spec)).unenforced


def test_bad_inputs_name_the_field():
    spec = load_bundled_spec("panda")
    shield = SafetyShield(spec)
    with pytest.raises(ValueError, match="action: expected shape"):
        shield.filter(np.zeros(spec.action_dim + 1), mid_state(spec), 0.0, 0.0)
    with pytest.raises(ValueError, match="observation_state: expected shape"):
        shield.filter(np.zeros(spec.action_dim), np.zeros(2), 0.0, 0.0)
    with pytest.raises(ValueError, match="action_stats.q01"):
        SafetyShield(spec, {"q01": np.zeros(3), "q99": np.ones(3)})
    with pytest.raises(ValueError, match="servo_kp"):
        SafetyShield(spec, servo_kp={"joint1": 100.0})
    with pytest.raises(ValueError, match="reference"):
        SafetyShield(spec, reference="predicted")


# ---------------------------------------------------------------------- with the simulator
@pytest.mark.parametrize("name", [n for n in ("panda", "mobile_panda") if n in EXISTING])
def test_shielded_random_policy_keeps_the_sim_robot_in_its_envelope(name):
    from locksmith.sim.env import TabletopEnv
    from locksmith.sim.ik import RobotIK

    ik = RobotIK(name)
    env = TabletopEnv(name, "pick_place")
    spec = env.spec_
    shield = SafetyShield(spec, fk=ik.tcp_positions)  # the evaluator's fk
    obs, _ = env.reset(seed=0)
    shield.reset()
    rng = np.random.default_rng(0)
    lo, hi = box(spec)
    for t in range(15):
        action = rng.normal(scale=50.0, size=spec.action_dim)
        out = shield.filter(action, obs["observation.state"], t * env.dt, t * env.dt)
        obs, *_ = env.step(out)
        for arm in spec.arms:
            q = env.q_cmd[arm.name]
            lower, upper, _, _ = joint_limits(spec, arm.name)
            assert np.all(q >= lower - TOL) and np.all(q <= upper + TOL)
            assert box_distance(env.tcp_base_frame(arm.name), lo, hi) < 0.02
    assert not shield.stopped
    assert sum(shield.interventions.values()) > 0
    env.close()
