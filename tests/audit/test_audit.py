"""The audit end to end at tiny sizes: real recording, pretraining, LoRA, L2-SP, ACT, MuJoCo rollouts.

One tiny plan with a simulated target and a dataset-only target runs through the CLI, is killed
with SIGKILL mid-sweep and rerun; the rerun finishes without redoing finished runs. The finished
runs show what pairs them: the same demos and evaluation episodes for every arm of a (budget,
seed), learning rates chosen on validation seeds, one offline scale, checkpoints along training.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from locksmith.audit.sweep import RESULT_FILE, run_sweep
from locksmith.data.loading import load_demonstrations
from locksmith.data.record import record_demos

TINY_TRUNK = {"d_model": 32, "n_layers": 1, "n_heads": 2, "d_feedforward": 64, "n_readouts": 2}


def _plan(root: Path, dataset: Path) -> dict:
    return {
        "name": "tiny",
        "prior": {"robots": ["panda"], "tasks": ["reach"], "demos_per_robot": 3, "steps": 10, "batch_size": 8,
                  "tune_episodes": 0, "trunk": TINY_TRUNK},
        "targets": [
            {"robot": "so101", "task": "reach"},
            {"name": "user_robot", "dataset": str(dataset), "task": "reach", "threshold": {"absolute": 0.5}},
        ],
        "recipes": ["lora", "full"],
        "headline_recipe": "full",
        "peer_baseline": "act",
        "peer_runs": "all",
        "budgets": [1, 2],
        "seeds": [0, 1],
        "evaluation": {"episodes": 2, "holdout_fraction": 0.25, "seed_block": 3},
        "threshold": {"absolute": 0.5},
        "training": {"steps_per_demo": 5, "min_steps": 6, "max_steps": 10, "batch_size": 8, "lr": [1e-3, 3e-3],
                     "tune_episodes": 2, "recipes": {"full": {"weight": 0.01}, "lora": {"lora_rank": 4}}},
    }


ARMS = ("scratch", "act", "lora", "full")


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    """The tiny audit, killed once mid-sweep and rerun to the end."""
    root = tmp_path_factory.mktemp("audit")
    dataset = root / "user_dataset"
    record_demos("mobile_panda", "reach", 8, dataset, workers=1, progress=False)
    plan_file = root / "plan.yaml"
    plan_file.write_text(yaml.safe_dump(_plan(root, dataset)))
    out = root / "out"
    cmd = [sys.executable, "-m", "locksmith.cli", "audit", str(plan_file), "--out", str(out), "--workers", "2"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "MUJOCO_GL": "osmesa", "PYOPENGL_PLATFORM": "osmesa",
           "LOCKSMITH_CACHE": str(root / "cache")}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 600
    while not list((out / "runs").glob(f"*/*/*/{RESULT_FILE}")):
        assert proc.poll() is None, "the audit ended before any run finished"
        assert time.monotonic() < deadline, "no run finished in time"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its workers, mid-sweep
    proc.wait()
    before = {p: (p.stat().st_mtime_ns, json.loads(p.read_text())["finished"])
              for p in (out / "runs").glob(f"*/*/*/{RESULT_FILE}")}
    assert 0 < len(before) < 32 and not (out / "audit.json").exists()
    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    return {"root": root, "out": out, "before": before, "stdout": rerun.stdout, "plan_file": plan_file,
            "cache": root / "cache"}


def test_the_plans_prior_is_built_once_into_the_user_cache_as_locksmith_pretrain_builds_it(audited):
    from locksmith.audit.plan import load_plan
    from locksmith.train.prior import PRETRAIN_RECORD

    stage = audited["cache"] / "priors" / load_plan(audited["plan_file"]).prior.cache_key()
    record = json.loads((stage / PRETRAIN_RECORD).read_text())
    assert record["horizon_episodes"] == 0 and record["recipe"]["robots"] == ["panda"]  # the one build path
    assert record["pretrain_seconds"] > 0 and (stage / "policy" / "config.json").is_file()
    assert not list(audited["out"].glob("prior-*"))  # nothing pretrained inside the audit folder


def _results(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((out / "runs").glob(f"*/*/*/{RESULT_FILE}"))]


def test_rerun_after_sigkill_finishes_without_redoing_finished_runs(audited):
    out = audited["out"]
    results = sorted((out / "runs").glob(f"*/*/*/{RESULT_FILE}"))
    assert len(results) == 2 * 4 * 2 * 2  # targets x arms (scratch, act, lora, full) x budgets x seeds
    for path, (mtime, finished) in audited["before"].items():
        assert path.stat().st_mtime_ns == mtime and json.loads(path.read_text())["finished"] == finished
    assert not list(out.rglob("*.tmp-*")), "temporary files left behind"


def test_arms_of_one_budget_and_seed_share_demos_and_evaluation_episodes(audited):
    from locksmith.evaluate.rollout import EVAL_SEED_BASE

    by_cell: dict[tuple, list[dict]] = {}
    for r in _results(audited["out"]):
        by_cell.setdefault((r["target"], r["budget"], r["seed"]), []).append(r)
    for (target, budget, seed), runs in by_cell.items():
        assert sorted(r["arm"] for r in runs) == sorted(ARMS)
        assert len({tuple(r["demo_episodes"]) for r in runs}) == 1, (target, budget, seed)
        assert len(runs[0]["demo_episodes"]) == budget
        assert len({tuple(r["eval_seeds"]) for r in runs}) == 1 and len({tuple(r["episode_keys"]) for r in runs}) == 1
    sim = [r for r in _results(audited["out"]) if r["target"] == "tabletop_arm"]
    first = EVAL_SEED_BASE + 3 * 100_000  # the plan's evaluation seed block 3
    assert all(r["eval_seeds"] == [first, first + 1] and len(r["outcomes"]) == 2 for r in sim)
    assert all(r["episode_keys"] == [f"nominal/{first}", f"nominal/{first + 1}"] for r in sim)
    # the pool holds twice the largest budget: at the largest budget the two seeds draw different demos
    at_max = {r["seed"]: tuple(r["demo_episodes"]) for r in sim if r["budget"] == 2 and r["arm"] == "scratch"}
    assert at_max[0] != at_max[1]
    assert load_demonstrations(audited["out"] / "data" / "so101_reach").num_episodes == 4


def test_learning_rates_are_chosen_on_validation_seeds_and_used_at_every_budget(audited):
    from locksmith.evaluate.horizon import VALIDATION_SEED_BASE
    from locksmith.evaluate.rollout import EVAL_SEED_BASE

    out = audited["out"]
    tuned = [json.loads(p.read_text()) for p in (out / "runs").glob(f"*/*/tune/*/{RESULT_FILE}")]
    assert len(tuned) == 2 * 4 * 2  # targets x arms x learning rates
    for r in tuned:
        if r["metric"] == "success":
            assert all(VALIDATION_SEED_BASE <= s < EVAL_SEED_BASE for s in r["eval_seeds"])
    audit = json.loads((out / "audit.json").read_text())
    for name, target in audit["targets"].items():
        for arm in ARMS:
            scores = {float(r["training"]["lr"]): r["value"] for r in tuned if r["target"] == name and r["arm"] == arm}
            pick = max(sorted(scores), key=scores.get) if target["higher_is_better"] else min(sorted(scores),
                                                                                              key=scores.get)
            used = {r["training"]["lr"] for r in _results(out) if r["target"] == name and r["arm"] == arm}
            assert used == {pick}, (name, arm, scores, used)


def test_every_run_states_its_recipe_and_is_measured_along_training(audited):
    for r in _results(audited["out"]):
        training = r["training"]
        assert training["weight"] == (0.01 if r["arm"] == "full" else 0.0)
        assert training["schedule"] == "cosine" and training["grad_clip"] == 1.0
        if r["arm"] == "lora":
            assert training["lora_rank"] == 4 and training["lora_alpha"] == 8.0
        steps = [c["step"] for c in r["checkpoints"]]
        assert steps == sorted(steps) and steps[-1] == training["steps"] and len(steps) == 2
        seconds = [c["train_seconds"] for c in r["checkpoints"]]
        assert seconds[0] < seconds[1] == r["train_seconds"]
        assert r["checkpoints"][-1]["value"] == r["value"]


def test_the_offline_error_has_one_scale_for_every_arm_and_budget(audited):
    offline = [r for r in _results(audited["out"]) if r["target"] == "user_robot"]
    assert len({tuple(r["offline"]["action_scale"]) for r in offline}) == 1
    assert all(r["settings"]["spec_digest"] for r in offline)


def test_audit_json_and_report(audited):
    from locksmith.audit.schema import load_audit

    out = audited["out"]
    audit = load_audit(out / "audit.json")
    assert audit.arms_ran == ["scratch", "act", "lora", "full"] or tuple(audit.arms_ran) == ARMS
    sim, offline = audit.targets["tabletop_arm"], audit.targets["user_robot"]
    assert sim.metric == "success" and sim.baseline.name in ("scratch", "act") and sim.headline_arm == "full"
    assert set(sim.arms) == set(ARMS)
    assert offline.metric == "offline_action_error" and offline.higher_is_better is False
    assert "no interval (2 seeds)" in sim.adaptation_gain.text or sim.adaptation_gain.kind == "undefined"
    report = (out / "report.md").read_text()
    first = report.splitlines()[:2]
    assert first[0].startswith("tabletop_arm: adaptation_gain=") and first[1].startswith("user_robot: adaptation_gain=")
    assert "offline action error" in report and "L2-SP" in report
    assert (out / "report.html").is_file()
    assert audited["stdout"].startswith("tabletop_arm: adaptation_gain=")


def test_the_same_runs_on_a_local_ray_instance(audited, tmp_path):
    """The Ray path calls the same `execute_run`: the same run gives the same result."""
    pytest.importorskip("ray")

    out = audited["out"]
    local = [r for r in _results(out) if r["target"] == "tabletop_arm" and r["budget"] == 1 and r["seed"] == 0
             and r["arm"] in ("scratch", "lora")]
    specs = []
    for r in local:
        path = next((out / "runs" / "tabletop_arm" / r["arm"]).glob(f"n0001_s0-*/{RESULT_FILE}")).parent
        specs.append(_respec(r, path, tmp_path / r["arm"]))
    results = run_sweep(specs, ray_address="local", progress=False)
    for result, before in zip(results, local, strict=True):
        assert result["settings"] == before["settings"] and result["key"] == before["key"]
        assert result["outcomes"] == before["outcomes"]
        assert result["final_loss"] == pytest.approx(before["final_loss"], rel=1e-5)


def _respec(result: dict, run_dir: Path, new_dir: Path):
    """The `RunSpec` of a finished run, from the settings it recorded, run again into ``new_dir``."""
    from locksmith.audit.sweep import RunSpec

    settings = dict(result["settings"])
    for key in ("slices", "demo_episodes", "checkpoint_steps"):
        settings[key] = tuple(settings[key])
    if settings["action_scale"] is not None:
        settings["action_scale"] = tuple(settings["action_scale"])
    record = json.loads((run_dir / "work" / "adapt.json").read_text())  # where the run found its prior and data
    return RunSpec(**settings, prior=record["prior"], dataset=record["dataset"], run_dir=str(new_dir))
