import json
from collections import Counter

import pytest

from locksmith.cli import main
from locksmith.data.record import record_demos
from locksmith.evaluate.evaluator import evaluate, wilson_interval
from locksmith.evaluate.rollout import EVAL_SEED_BASE, ExpertAgent, rollout
from locksmith.sim.env import TabletopEnv
from locksmith.train.loop import TrainConfig
from locksmith.train.pretrain import pretrain
from locksmith.data.loading import load_demonstrations


def test_wilson_interval_reference_values():
    # Reference: statsmodels proportion_confint(8, 10, method="wilson") = (0.4902, 0.9433)
    lo, hi = wilson_interval(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-4) and hi == pytest.approx(0.9433, abs=1e-4)
    assert wilson_interval(0, 5)[0] == 0.0 and wilson_interval(5, 5)[1] == 1.0


def test_expert_through_the_evaluator_with_the_shield():
    result = evaluate("panda", "lift", 4, ["nominal", "push"], checkpoint=None, workers=2, n_envs=2)
    assert result["episodes"] == 8
    assert result["success_rate"] >= 0.75
    assert set(result["per_slice"]) == {"nominal", "push"}
    assert result["shield_interventions"] == {}  # the expert never needs correcting
    lo, hi = result["ci95"]
    assert lo <= result["success_rate"] <= hi
    assert result["seeds"][0] >= 2_000_000_000  # disjoint from demonstration seeds


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    root = tmp_path_factory.mktemp("ev")
    record_demos("panda", "reach", 3, root / "data", workers=1, progress=False)
    pretrain({"panda": load_demonstrations(root / "data")}, root / "run", TrainConfig(steps=5, batch_size=8),
             progress=False, d_model=32, n_layers=1, n_heads=2, d_feedforward=64, n_readouts=2)
    return root


def test_policy_eval_cli_writes_json_and_gifs(tiny_checkpoint, tmp_path):
    out = tmp_path / "eval.json"
    code = main(["eval", "--checkpoint", str(tiny_checkpoint / "run" / "policy"), "--robot", "panda", "--task", "reach",
                 "--episodes", "2", "--envs", "2", "--workers", "1", "--json", str(out),
                 "--save-failures", str(tmp_path / "gifs"), "--max-videos", "1"])
    assert code == 0
    result = json.loads(out.read_text())
    assert {"success_rate", "episodes", "ci95", "per_slice", "shield_interventions", "mean_episode_seconds"} <= set(result)
    failed = result["per_slice"]["nominal"]["failed_seeds"]
    assert len(result.get("failure_videos", [])) == min(1, len(failed))


def test_offline_metric(tiny_checkpoint, tmp_path):
    out = tmp_path / "offline.json"
    code = main(["eval", "--checkpoint", str(tiny_checkpoint / "run" / "policy"), "--dataset",
                 str(tiny_checkpoint / "data"), "--json", str(out)])
    assert code == 0
    result = json.loads(out.read_text())
    assert result["metric"] == "offline_action_error" and result["offline_action_error"] > 0
    assert result["episodes"] == 1


@pytest.mark.parametrize("argv, message", [
    (["--checkpoint", "/nonexistent/ckpt", "--robot", "panda"], "not found"),
    (["--expert", "--robot", "panda", "--slice", "sideways"], "unknown slice"),
    (["--expert", "--robot", "r2d2"], "unknown robot"),
])
def test_bad_input_exit_2(argv, message, capsys):
    assert main(["eval", *argv]) == 2
    assert message in capsys.readouterr().err


def test_checkpoint_for_another_robot(tiny_checkpoint, capsys):
    assert main(["eval", "--checkpoint", str(tiny_checkpoint / "run" / "policy"), "--robot", "ur5e"]) == 2
    assert "not 'ur5e'" in capsys.readouterr().err


def test_rollout_calls_after_step_once_per_control_step():
    envs = [TabletopEnv("panda", "reach") for _ in range(2)]
    calls: Counter = Counter()
    seeds = [EVAL_SEED_BASE + k for k in range(3)]
    results = rollout(envs, ExpertAgent(), seeds, after_step=lambda seed, env: calls.update([seed]))
    assert dict(calls) == {r.seed: r.steps for r in results}
    assert all(r.steps >= 1 for r in results)
