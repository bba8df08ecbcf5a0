"""A lerobot-train ACT as the prior of a transfer audit, end to end at tiny sizes.

A tiny ACT trained by ``lerobot-train`` on Panda demos (`conftest.lerobot_act_checkpoint`) is the
prior of an audit on the SO-101 (pick_place): real recording, real training of the three arms
(``scratch``, ``act`` from scratch, ``lerobot_finetune`` from the checkpoint), real MuJoCo
rollouts through the shield, the report. Plans whose recipes do not fit the prior's kind are
refused before anything is written.
"""

import json
import shutil
import time
from pathlib import Path

import pytest
import yaml
from safetensors.torch import load_file, save_file

from locksmith.audit.report import load_audit
from locksmith.audit.sweep import RESULT_FILE
from locksmith.cli import main
from locksmith.train.lerobot_prior import checkpoint_digest, read_architecture

ARMS = ("scratch", "act", "lerobot_finetune")


def _plan(checkpoint, **changes) -> dict:
    plan = {
        "name": "lerobot_prior_tiny",
        "prior": {"checkpoint": str(checkpoint)},
        "targets": [{"robot": "so101", "task": "pick_place"}],
        "recipes": ["lerobot_finetune"],
        "peer_baseline": "act",
        "peer_runs": "all",
        "budgets": [1, 2],
        "seeds": [0],
        "evaluation": {"episodes": 2},
        "threshold": {"absolute": 0.5},
        "training": {"steps_per_demo": 3, "min_steps": 4, "max_steps": 6, "batch_size": 4, "lr": 1e-3},
    }
    return {**plan, **changes}


def _write(path, plan: dict):
    path.write_text(yaml.safe_dump(plan))
    return path


def _results(out) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for path in sorted((out / "runs").glob(f"*/*/*/{RESULT_FILE}")):
        found.setdefault(path.parent.parent.name, []).append(json.loads(path.read_text()))
    return found


@pytest.fixture(scope="module")
def audited(lerobot_act_checkpoint, tmp_path_factory):
    root = tmp_path_factory.mktemp("lerobot_prior_audit")
    prior = shutil.copytree(lerobot_act_checkpoint, root / "pretrained_model")  # the last test changes it
    plan = _write(root / "plan.yaml", _plan(prior))
    out = root / "out"
    start = time.perf_counter()
    code = main(["audit", str(plan), "--out", str(out), "--workers", "1"])
    assert code == 0
    return {"root": root, "prior": prior, "plan": plan, "out": out, "seconds": time.perf_counter() - start}


def test_the_audit_writes_its_report_with_the_lerobot_arm_as_an_adapted_arm(audited):
    out = audited["out"]
    assert (out / "audit.json").is_file() and (out / "report.md").is_file() and (out / "report.html").is_file()
    audit = load_audit(out / "audit.json")
    assert audit.arms_ran == ARMS and audit.headline_recipe == "lerobot_finetune"
    assert audit.prior.kind == "lerobot" and audit.prior.weights_sha256 == checkpoint_digest(audited["prior"])
    assert audit.prior.robots == ("panda",) and audit.prior.scratch_architecture
    target = audit.targets["tabletop_arm"]
    assert {a: r.kind for a, r in target.arms.items()} == {"scratch": "scratch", "act": "peer",
                                                           "lerobot_finetune": "adapted"}
    assert target.headline_arm == "lerobot_finetune" and target.baseline.name in ("scratch", "act")
    steps = {a: r.training.steps for a, r in target.arms.items()}
    assert steps["lerobot_finetune"] == steps["act"] == steps["scratch"] == {1: 4, 2: 6}  # one step rule
    report = (out / "report.md").read_text()
    assert "lerobot_finetune (adapted from the prior)" in report and "LeRobot act checkpoint" in report
    assert "lerobot_finetune" in (out / "report.html").read_text()


def test_the_two_act_arms_share_the_priors_architecture_and_differ_in_their_start(audited):
    results = _results(audited["out"])
    assert sorted(results) == sorted(ARMS) and all(len(runs) == 2 for runs in results.values())
    architecture = read_architecture(audited["prior"])
    for arm in ("act", "lerobot_finetune"):
        for r in results[arm]:
            key = Path(r["checkpoint"])  # the run's final ACT folder
            config = json.loads((key / "config.json").read_text())
            assert {k: config[k] for k in architecture} == architecture, arm
            prior = json.loads((key / "locksmith_peer.json").read_text())["train"]["prior"]
            assert (prior is not None) == (arm == "lerobot_finetune")
            if prior is not None:
                assert prior["sha256"] == checkpoint_digest(audited["prior"])
    digests = {arm: {r["settings"]["prior_digest"] for r in runs} for arm, runs in results.items()}
    assert digests["lerobot_finetune"] == {"weights:" + checkpoint_digest(audited["prior"])[:16]}
    assert digests["act"] != digests["scratch"] and all(len(d) == 1 for d in digests.values())


@pytest.mark.parametrize("changes, words", [
    ({"recipes": ["lora"]}, ["recipes: 'lora'", "LeRobot policy", "lerobot_finetune"]),
    ({"recipes": ["lerobot_finetune", "full"]}, ["recipes: 'full'"]),
    ({"peer_baseline": "none"}, ["peer_baseline: 'none'"]),
    ({"prior": None}, ["recipes: 'lerobot_finetune'", "locksmith's own policy"]),
])
def test_recipes_that_do_not_fit_the_priors_kind_are_refused_before_anything_is_written(
        lerobot_act_checkpoint, tmp_path, capsys, changes, words):
    plan = _plan(lerobot_act_checkpoint, **changes)
    if plan["prior"] is None:
        del plan["prior"]
    path = _write(tmp_path / "plan.yaml", plan)
    out = tmp_path / "out"
    capsys.readouterr()
    assert main(["audit", str(path), "--out", str(out), "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {path}: "), err  # one line, the plan file first
    for word in words:
        assert word in err, err
    assert not out.exists()


def test_a_damaged_lerobot_prior_is_refused_naming_the_plan_and_the_checkpoints_file(lerobot_act_checkpoint,
                                                                                   tmp_path, capsys):
    prior = shutil.copytree(lerobot_act_checkpoint, tmp_path / "pretrained_model")
    (prior / "model.safetensors").write_bytes(b"not safetensors")
    path = _write(tmp_path / "plan.yaml", _plan(prior))
    out = tmp_path / "out"
    capsys.readouterr()
    assert main(["audit", str(path), "--out", str(out), "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{path}: prior.checkpoint: {prior / 'model.safetensors'}" in err, err
    assert not out.exists()


def test_the_benchmark_plan_names_the_lerobot_arm_and_the_matched_act_baseline():
    from locksmith.audit.plan import PlanError, load_plan
    from locksmith.audit.priors import check_recipes_fit_prior

    path = Path(__file__).parents[2] / "benchmarks" / "plans" / "lerobot_act_prior.yaml"
    plan = load_plan(path)
    assert plan.arms == ARMS and plan.headline == "lerobot_finetune" and plan.peer_runs == "all"
    check_recipes_fit_prior(plan, "lerobot", str(path))
    with pytest.raises(PlanError, match="recipes: 'lerobot_finetune' fine-tunes a LeRobot policy"):
        check_recipes_fit_prior(plan, "locksmith", str(path))


def test_a_changed_checkpoint_gets_new_fine_tuned_runs_and_keeps_the_others(audited):
    """Last in this file: it changes the prior's weights in place and reruns the audit."""
    out, prior = audited["out"], audited["prior"]
    before = {arm: {r["key"]: r["finished"] for r in runs} for arm, runs in _results(out).items()}
    weights = load_file(prior / "model.safetensors")
    name = "model.decoder_pos_embed.weight"
    weights[name] = weights[name] + 1e-2
    save_file(weights, prior / "model.safetensors", metadata={"format": "pt"})  # same folder, other weights
    assert main(["audit", str(audited["plan"]), "--out", str(out), "--workers", "1"]) == 0
    after = {arm: {r["key"]: r["finished"] for r in runs} for arm, runs in _results(out).items()}
    for arm in ("scratch", "act"):  # they take nothing from the prior's weights: reused, not redone
        assert after[arm] == before[arm], arm
    assert len(after["lerobot_finetune"]) == 4 and set(before["lerobot_finetune"]) < set(after["lerobot_finetune"])
    audit = load_audit(out / "audit.json")
    assert audit.prior.weights_sha256 == checkpoint_digest(prior)
    keys = {r.key for r in audit.targets["tabletop_arm"].arms["lerobot_finetune"].runs}
    assert keys.isdisjoint(before["lerobot_finetune"])  # the report counts the new runs only
