"""Bring your own robot: a robot registered from outside the package (the ARX5 arm with the UMI
gripper, `own_robot_arx5.py` and `arx5_umi.yaml` beside this file; the bundled suite uses
neither model) works in the env, the expert, IK, the recorder, the evaluator and the listing,
and its registration reaches the worker processes those spawn.

The scripted expert succeeds on this arm (all four tasks on the seeds tried while writing the
builder); the tests below assert the success they observe, nothing is assumed.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import locksmith
from locksmith.data.loading import load_demonstrations
from locksmith.data.record import META_FILE, SPEC_FILE, read_locksmith_meta, record_demos
from locksmith.embodiment.registry import (
    BUNDLED_ROBOTS, ENTRY_POINT_GROUP, ROBOTS_ENV, RegistryError, load_robot_spec, registered_robots,
    unregister_robot,
)
from locksmith.embodiment.spec import load_spec
from locksmith.evaluate.evaluator import evaluate
from locksmith.sim.env import TabletopEnv, env_state_dim
from locksmith.sim.expert import ScriptedExpert, run_expert_episode
from locksmith.sim.ik import RobotIK, top_down_rotation

HERE = Path(__file__).parent
NAME = "arx5_umi"


@pytest.fixture(scope="module")
def robot():
    """The user's module registers the robot, the way an application (or entry point) would."""
    import own_robot_arx5  # tests/sim is on sys.path (pytest's rootdir-relative import)

    own_robot_arx5.register()
    yield own_robot_arx5
    unregister_robot(NAME)


def _run(episode):
    try:
        while True:
            next(episode)
    except StopIteration as stop:
        return stop.value


def test_registry_lists_the_robot_and_keeps_failing_on_unknown_names(robot):
    assert locksmith.known_robots() == BUNDLED_ROBOTS + (NAME,)
    assert registered_robots() == (NAME,)
    spec = load_robot_spec(NAME)
    assert spec == load_spec(robot.SPEC_FILE) and spec.role == "custom"
    robot.register()  # the same spec and builder again: a no-op
    with pytest.raises(KeyError, match=r"unknown robot 'nope'; known robots: panda, .*aloha, arx5_umi"):
        TabletopEnv("nope", "reach")
    with pytest.raises(RegistryError, match="bundled robot"):
        locksmith.register_robot(spec.model_copy(update={"name": "panda"}), robot.build)
    with pytest.raises(RegistryError, match="already registered"):
        locksmith.register_robot(spec, "locksmith.sim.robots.panda:build")
    with pytest.raises(RegistryError, match="module-level function"):
        locksmith.register_robot(spec, lambda s, p, v: robot.build(s, p, v), replace=True)
    with pytest.raises(RegistryError, match="has no attribute"):
        locksmith.register_robot(spec, "own_robot_arx5:no_such_builder", replace=True)
    assert load_robot_spec(NAME) == spec  # the refused attempts left the registration alone


def test_env_builds_and_follows_the_spec(robot):
    spec = load_robot_spec(NAME)
    env = TabletopEnv(NAME, "reach")
    obs, info = env.reset(seed=3)
    assert obs["observation.state"].shape == (spec.state_dim,) == (16,)
    assert obs["observation.environment_state"].shape == (env_state_dim(1),)
    assert env.horizon == 80  # 4 s at 20 Hz
    # The arm starts at its home pose with the gripper open (90 mm on the native scale).
    np.testing.assert_allclose(obs["observation.state"][:6], robot.HOME, atol=0.02)
    assert obs["observation.state"][12] == pytest.approx(90.0, abs=2.0)
    obs, *_ = env.step(env.observation()["observation.state"][[0, 1, 2, 3, 4, 5, 12]])
    assert np.all(np.isfinite(obs["observation.state"]))
    # IK on the robot-only model: a top-down pose inside the spawn box is reached.
    ik = RobotIK(NAME)
    goal = np.array([0.3, 0.1, 0.06])
    q = {"arm": np.asarray(robot.HOME, dtype=float)}
    for _ in range(100):
        q = ik.solve(q, {"arm": (goal, top_down_rotation(np.pi / 2))}, 0.05)
    np.testing.assert_allclose(ik.tcp_pose(q, "arm")[0], goal, atol=2e-3)


def test_scripted_expert_succeeds_on_reach(robot):
    env = TabletopEnv(NAME, "reach")
    expert = ScriptedExpert(env)
    assert [_run(run_expert_episode(env, seed, expert)) for seed in (0, 1)] == [True, True]


def test_record_and_evaluate_in_spawned_workers(robot, tmp_path):
    """Two spawned workers each: they know the robot only through the pool initializer."""
    assert ROBOTS_ENV not in os.environ
    out = record_demos(NAME, "reach", 2, tmp_path / "arx5_reach", workers=2, progress=False)
    demos = load_demonstrations(out)
    assert demos.num_episodes == 2 and demos.fps == 20
    assert demos.spec == load_robot_spec(NAME)
    assert demos.arrays["action"].shape[1] == 7 and demos.arrays["observation.state"].shape[1] == 16
    assert all(task.startswith("reach the ") for task in demos.tasks)
    assert read_locksmith_meta(out)["robot"] == NAME and (out / META_FILE).is_file()
    # The dataset-only path: the same data with the spec file given explicitly.
    assert load_demonstrations(out, spec=robot.SPEC_FILE).num_episodes == 2
    assert load_spec(out / SPEC_FILE) == load_robot_spec(NAME)

    result = evaluate(NAME, "reach", 2, workers=2, n_envs=1)
    assert result["robot"] == NAME and result["episodes"] == 2 and result["agent"] == "expert"
    assert result["success_rate"] == 1.0  # what the expert achieves here (every action shielded)


def _python(code: str, env_extra: dict[str, str], pythonpath: list[Path]) -> str:
    env = {k: v for k, v in os.environ.items() if k != ROBOTS_ENV}
    env.update(env_extra)
    env["PYTHONPATH"] = os.pathsep.join([str(p) for p in pythonpath] + [p for p in [env.get("PYTHONPATH")] if p])
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


LIST_AND_BUILD = (
    "from locksmith.embodiment.registry import known_robots\n"
    "from locksmith.sim.robots import get_builder\n"
    "print(known_robots()[-1], get_builder('arx5_umi').__module__)\n"
)


def test_environment_variable_registers_in_any_process():
    out = _python(LIST_AND_BUILD, {ROBOTS_ENV: "own_robot_arx5:register"}, [HERE])
    assert out == f"{NAME} own_robot_arx5"


def test_entry_point_registers_an_installed_package(tmp_path):
    # An installed distribution as importlib.metadata sees one: a dist-info folder on sys.path.
    dist = tmp_path / "my_robots-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-robots\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\narx5_umi = own_robot_arx5:register\n")
    out = _python(LIST_AND_BUILD, {}, [tmp_path, HERE])
    assert out == f"{NAME} own_robot_arx5"
