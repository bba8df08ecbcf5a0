import numpy as np
import pytest

from locksmith.embodiment.registry import BUNDLED_ROBOTS, load_bundled_spec
from locksmith.sim.env import TabletopEnv, env_state_dim
from locksmith.sim.tasks import TASKS


@pytest.fixture(scope="module", params=BUNDLED_ROBOTS)
def env(request):
    env = TabletopEnv(request.param, "pick_place")
    yield env
    env.close()


def test_observation_shapes_follow_the_spec(env):
    obs, info = env.reset(seed=3)
    spec = env.spec_
    assert obs["observation.state"].shape == (spec.state_dim,)
    assert obs["observation.environment_state"].shape == (env_state_dim(len(spec.arms)),)
    assert obs["observation.state"].dtype == np.float32
    assert "cube" in info["task"] and "pad" in info["task"]


def test_reset_is_deterministic_per_seed(env):
    a, ia = env.reset(seed=11)
    b, ib = env.reset(seed=11)
    c, _ = env.reset(seed=12)
    assert ia["task"] == ib["task"]
    np.testing.assert_array_equal(a["observation.environment_state"], b["observation.environment_state"])
    assert not np.array_equal(a["observation.environment_state"], c["observation.environment_state"])


def test_instruction_names_the_target_colour_and_two_distractors(env):
    env.reset(seed=5)
    target = env.object_colours[env.target_object]
    assert env.instruction.split()[2] == target
    assert len(set(env.object_colours)) == 3


def test_holding_the_current_command_keeps_the_robot_still(env):
    """A native 'hold' action (whatever the convention) leaves the arm where it is."""
    env.reset(seed=2)
    spec = env.spec_
    hold = []
    for comp in spec.action:
        if comp.kind == "joint_position":
            hold.append(env.q_cmd[comp.arm] * comp.native_scale)
        elif comp.kind in ("joint_velocity", "ee_delta", "base_velocity"):
            hold.append(np.zeros(comp.size))
        else:
            hold.append([spec.arm(comp.arm).gripper.open_value])
    hold = np.concatenate([np.ravel(h) for h in hold])
    before = {a.name: env.tcp_base_frame(a.name) for a in env.rig.arms}
    for _ in range(5):
        env.step(hold)
    for arm in env.rig.arms:
        assert np.linalg.norm(env.tcp_base_frame(arm.name) - before[arm.name]) < 0.01


def test_wrong_action_shape_is_an_error(env):
    env.reset(seed=0)
    with pytest.raises(ValueError, match="expected"):
        env.step(np.zeros(env.spec_.action_dim + 1))


def test_state_units_are_native():
    """The Panda reports radians; a robot declared in degrees reports degrees."""
    for name in BUNDLED_ROBOTS:
        spec = load_bundled_spec(name)
        joint_comp = next(c for c in spec.state if c.kind == "joint_position")
        env = TabletopEnv(name, "reach")
        obs, _ = env.reset(seed=0)
        sl = spec.slices("state")[joint_comp.name]
        q = env.data.qpos[env._arm_qadr[joint_comp.arm]]
        np.testing.assert_allclose(obs["observation.state"][sl], q * joint_comp.native_scale, rtol=1e-5, atol=1e-4)
        env.close()


def test_unknown_task_and_slice_list_known_names():
    with pytest.raises(KeyError, match="known tasks"):
        TabletopEnv("panda", "juggle")
    with pytest.raises(KeyError, match="known slices"):
        TabletopEnv("panda", "lift", slice_name="upside_down")
    assert set(TASKS) >= {"reach", "lift", "push", "pick_place"}


@pytest.mark.parametrize("name", BUNDLED_ROBOTS)
def test_tcp_positions_match_tcp_pose(name):
    """The shield's positions-only FK gives exactly the solver's FK, and leaves the solver alone."""
    from locksmith.sim.ik import RobotIK

    poses, positions = RobotIK(name), RobotIK(name)
    q_before = positions.configuration.q.copy()
    rng = np.random.default_rng(0)
    for _ in range(20):
        q = {arm.name: rng.uniform(-1.0, 1.0, len(arm.joints)) for arm in poses.rig.arms}
        got = positions.tcp_positions(q)
        assert set(got) == set(q)
        for arm in q:
            np.testing.assert_array_equal(got[arm], poses.tcp_pose(q, arm)[0])
    np.testing.assert_array_equal(positions.configuration.q, q_before)


@pytest.mark.parametrize("robot", ["so101", "aloha"])
def test_a_start_jitter_moves_the_tcp_from_home_within_the_bound_and_per_seed(robot):
    jitter = 0.06
    plain, moved = TabletopEnv(robot, "pick_place"), TabletopEnv(robot, "pick_place", start_jitter=jitter)
    offsets = []
    for seed in (1, 2, 3):
        plain.reset(seed=seed)
        moved.reset(seed=seed)
        first = {a.name: moved.tcp_base_frame(a.name) for a in moved.rig.arms}
        assert plain.instruction == moved.instruction
        for arm in moved.rig.arms:
            offset = first[arm.name] - plain.tcp_base_frame(arm.name)
            assert np.linalg.norm(offset) < np.sqrt(3) * jitter + 0.02  # IK and settling: within 2 cm
            assert moved.tcp_base_frame(arm.name)[2] > 0.07
            offsets.append(np.linalg.norm(offset))
        moved.reset(seed=seed)  # the same seed, the same start
        assert all(np.allclose(moved.tcp_base_frame(a), p, atol=1e-6) for a, p in first.items())
    assert np.mean(offsets) > 0.02
