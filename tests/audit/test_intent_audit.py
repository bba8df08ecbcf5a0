"""An audit of an intent prior at tiny sizes: the plan pretrains the intent prior, its keys and its
scratch arm act through the robot's intent decoder, and the plain-head architecture and LeRobot's
ACT (on the robot's command, and on intent through the same decoder) also train from scratch, so
the baseline is the strongest of every from-scratch arm."""

import json
from pathlib import Path

import pytest
import yaml

from locksmith.audit.sweep import RESULT_FILE
from locksmith.cli import main
from locksmith.policy.policy import CrossEmbodimentPolicy

TINY_TRUNK = {"d_model": 32, "n_layers": 1, "n_heads": 2, "d_feedforward": 64, "n_readouts": 2}


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    root = tmp_path_factory.mktemp("intent_audit")
    plan = {
        "name": "tiny_intent",
        "prior": {"robots": ["panda"], "tasks": ["reach"], "demos_per_robot": 3, "steps": 10, "batch_size": 8,
                  "tune_episodes": 0, "trunk": TINY_TRUNK, "action_space": "intent"},
        "targets": [{"robot": "so101", "task": "reach"}],
        "recipes": ["full"],
        "scratch_architectures": "prior_and_native",
        "peer_baseline": "act_and_intent",
        "peer_runs": "all",
        "budgets": [1, 2],
        "seeds": [0, 1],
        "evaluation": {"episodes": 2, "seed_block": 3},
        "threshold": {"absolute": 0.5},
        "training": {"steps_per_demo": 3, "min_steps": 4, "max_steps": 6, "batch_size": 8, "lr": 1e-3},
    }
    plan_file = root / "plan.yaml"
    plan_file.write_text(yaml.safe_dump(plan))
    mp = pytest.MonkeyPatch()
    mp.setenv("LOCKSMITH_CACHE", str(root / "cache"))
    try:
        assert main(["audit", str(plan_file), "--out", str(root / "out"), "--workers", "1"]) == 0
    finally:
        mp.undo()
    return root / "out"


def _runs(out: Path, arm: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((out / "runs" / "tabletop_arm" / arm).glob(f"*/{RESULT_FILE}"))]


def test_the_intent_arms_and_the_plain_head_scratch_arm_all_run(audited):
    for arm in ("scratch", "scratch_native", "full"):
        assert len(_runs(audited, arm)) == 4, arm  # budgets x seeds
    native = _runs(audited, "scratch_native")[0]["settings"]
    intent = _runs(audited, "scratch")[0]["settings"]
    assert native["prior_digest"] != intent["prior_digest"]


def test_both_act_arms_run_and_the_intent_one_acts_through_the_decoder(audited):
    from locksmith.embodiment.registry import load_bundled_spec
    from locksmith.evaluate.act_agent import load_act_peer
    from locksmith.sim.intent import intent_size
    from locksmith.train.act_peer import MARKER_FILE

    spec = load_bundled_spec("so101")
    native, intent = _runs(audited, "act"), _runs(audited, "act_intent")
    assert len(native) == len(intent) == 4
    assert native[0]["settings"]["prior_digest"] + ":intent" == intent[0]["settings"]["prior_digest"]
    for run, space, width in ((native[0], "native", spec.action_dim), (intent[0], "intent", intent_size(spec))):
        peer = load_act_peer(run["checkpoint"], "so101")
        assert peer.action_space == space
        assert peer.policy.config.output_features["action"].shape == (width,)
        assert ("action_space" in json.loads((Path(run["checkpoint"]) / MARKER_FILE).read_text())) == (space != "native")
        assert len(run["outcomes"]) == 2  # evaluated closed loop, the intent one through the decoder
    assert intent_size(spec) != spec.action_dim  # the two heads differ in width: the test tells them apart


def test_each_scratch_arm_trains_its_own_architecture(audited):
    for arm, space in (("scratch", "intent"), ("scratch_native", "native"), ("full", "intent")):
        for run in _runs(audited, arm):
            policy = CrossEmbodimentPolicy.from_pretrained(run["checkpoint"])
            assert policy.config.action_space == space, arm
            assert policy.config.d_model == TINY_TRUNK["d_model"], arm  # the prior's trunk, whatever its heads


def test_the_baseline_is_chosen_among_both_scratch_arms(audited):
    audit = json.loads((audited / "audit.json").read_text())
    target = audit["targets"]["tabletop_arm"]
    kinds = {name: arm["kind"] for name, arm in target["arms"].items()}
    assert kinds == {"scratch": "scratch", "scratch_native": "scratch", "act": "peer", "act_intent": "peer",
                     "full": "adapted"}
    assert "plain per-robot heads" in target["arms"]["scratch_native"]["description"]
    assert "intent decoder" in target["arms"]["act_intent"]["description"]
    assert target["baseline"]["name"] in ("scratch", "scratch_native", "act", "act_intent")
    report = (audited / "report.md").read_text()
    assert "scratch_native" in report
