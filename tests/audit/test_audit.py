"""The audit end to end at tiny sizes: real recording, pretraining, LoRA, ACT, MuJoCo rollouts.

One tiny plan with a simulated target and a dataset-only target runs through the CLI, is killed
with SIGKILL mid-sweep and rerun; the rerun finishes without redoing finished runs.
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

from locksmith.audit.plan import load_plan
from locksmith.audit.sweep import RESULT_FILE, run_sweep
from locksmith.data.loading import load_demonstrations
from locksmith.data.record import record_demos

TINY_TRUNK = {"d_model": 32, "n_layers": 1, "n_heads": 2, "d_feedforward": 64, "n_readouts": 2}


def _plan(root: Path, dataset: Path) -> dict:
    return {
        "name": "tiny",
        "prior": {"robots": ["panda"], "tasks": ["reach"], "demos_per_robot": 3, "steps": 10, "batch_size": 8,
                  "trunk": TINY_TRUNK},
        "targets": [
            {"robot": "so101", "task": "reach"},
            {"name": "user_robot", "dataset": str(dataset), "task": "reach", "threshold": {"absolute": 0.5}},
        ],
        "recipes": ["lora"],
        "peer_baseline": "act",
        "budgets": [1, 2],
        "seeds": [0],
        "evaluation": {"episodes": 2, "holdout_fraction": 0.25},
        "threshold": {"absolute": 0.5},
        "training": {"steps_per_demo": 5, "min_steps": 5, "max_steps": 10, "batch_size": 8},
    }


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    """The tiny audit, killed once mid-sweep and rerun to the end."""
    root = tmp_path_factory.mktemp("audit")
    dataset = root / "user_dataset"
    record_demos("mobile_panda", "reach", 4, dataset, workers=1, progress=False)
    plan_file = root / "plan.yaml"
    plan_file.write_text(yaml.safe_dump(_plan(root, dataset)))
    out = root / "out"
    cmd = [sys.executable, "-m", "locksmith.cli", "audit", str(plan_file), "--out", str(out), "--workers", "2"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "MUJOCO_GL": "osmesa", "PYOPENGL_PLATFORM": "osmesa"}
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
    assert 0 < len(before) < 12 and not (out / "audit.json").exists()
    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    return {"root": root, "out": out, "before": before, "stdout": rerun.stdout, "plan_file": plan_file}


def test_rerun_after_sigkill_finishes_without_redoing_finished_runs(audited):
    out = audited["out"]
    results = sorted((out / "runs").glob(f"*/*/*/{RESULT_FILE}"))
    assert len(results) == 2 * 3 * 2  # targets x arms (scratch, act, lora) x budgets, one seed
    for path, (mtime, finished) in audited["before"].items():
        assert path.stat().st_mtime_ns == mtime and json.loads(path.read_text())["finished"] == finished
    assert not list(out.rglob("*.tmp-*")), "temporary files left behind"


def test_audit_json_and_report(audited):
    out = audited["out"]
    audit = json.loads((out / "audit.json").read_text())
    assert audit["arms_ran"] == ["scratch", "act", "lora"]
    sim, offline = audit["targets"]["tabletop_arm"], audit["targets"]["user_robot"]
    assert sim["metric"] == "success" and sim["baseline_arm"] in ("scratch", "act")
    assert set(sim["arms"]) == {"scratch", "act", "lora"}
    for arm in sim["arms"].values():
        assert arm["curve"]["budgets"] == [1, 2] and all(0 <= m <= 1 for m in arm["curve"]["mean"])
        assert arm["trainable_parameters"] > 0 and float(arm["wallclock_seconds"]["2"]) > 0
    assert offline["metric"] == "offline_action_error" and offline["higher_is_better"] is False
    assert offline["source"] == "dataset"
    assert all(m > 0 for arm in offline["arms"].values() for m in arm["curve"]["mean"])
    assert set(audit["reproducibility"]["dataset_fingerprints"]) == {"tabletop_arm", "user_robot"}
    report = (out / "report.md").read_text()
    first = report.splitlines()[:2]
    assert first[0].startswith("tabletop_arm: adaptation_gain=") and first[1].startswith("user_robot: adaptation_gain=")
    assert "offline action error" in report
    assert (out / "report.html").is_file()
    assert audited["stdout"].startswith("tabletop_arm: adaptation_gain=")


def test_the_same_runs_on_a_local_ray_instance(audited, tmp_path):
    """The Ray path calls the same `execute_run`: the same run gives the same result."""
    pytest.importorskip("ray")
    from locksmith.audit.run import ResolvedTarget, run_specs

    out = audited["out"]
    plan = load_plan(audited["plan_file"])
    prior = next(out.glob("prior-*")) / "policy"

    data = out / "data" / "so101_reach"
    target = ResolvedTarget("tabletop_arm", plan.targets[0], "so101", "reach", data,
                            (0, 1), 0.5, "absolute 0.5", load_demonstrations(data).fingerprint, None)
    specs = [s for s in run_specs(plan, [target], prior, tmp_path) if s.arm in ("scratch", "lora") and s.budget == 1]
    results = run_sweep(specs, ray_address="local", progress=False)
    for spec, result in zip(specs, results, strict=True):
        local = json.loads((out / "runs" / "tabletop_arm" / spec.arm / "n0001_s0" / RESULT_FILE).read_text())
        assert result["settings"] == local["settings"]
        assert result["value"] == local["value"]
        assert result["final_loss"] == pytest.approx(local["final_loss"], rel=1e-5)
