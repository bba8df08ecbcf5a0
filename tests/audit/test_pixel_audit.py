"""A pixel audit at tiny sizes (`TransferPlan.observation: pixels`): the plan pretrains a pixel
prior, the target is recorded with its camera at the prior's size, and every arm (the prior's
keys, scratch and LeRobot's ACT with its own backbone) reads that camera, never the scene state."""

import json
from pathlib import Path

import pytest
import yaml

from locksmith.audit.sweep import RESULT_FILE
from locksmith.cli import main
from locksmith.policy.policy import CrossEmbodimentPolicy
from locksmith.train.act_peer import MARKER_FILE

TINY_TRUNK = {"d_model": 32, "n_layers": 1, "n_heads": 2, "d_feedforward": 64, "n_readouts": 2}
SIZE = 32


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    root = tmp_path_factory.mktemp("pixel_audit")
    plan = {
        "name": "tiny_pixels",
        "observation": "pixels",
        "prior": {"robots": ["panda"], "tasks": ["reach"], "demos_per_robot": 2, "steps": 4, "batch_size": 4,
                  "tune_episodes": 0, "trunk": TINY_TRUNK, "image_size": SIZE},
        "targets": [{"robot": "so101", "task": "reach"}],
        "recipes": ["full", "frozen_vision"],
        "peer_runs": "all",
        "budgets": [1],
        "seeds": [0, 1],
        "evaluation": {"episodes": 1, "seed_block": 3, "slices": ["nominal", "camera_moved"]},
        "threshold": {"absolute": 0.5},
        "training": {"steps_per_demo": 2, "min_steps": 2, "max_steps": 3, "batch_size": 4, "lr": 1e-3},
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


def test_the_prior_and_the_target_data_are_pixels_at_one_size(audited):
    audit = json.loads((audited / "audit.json").read_text())
    assert audit["plan"]["observation"] == "pixels" and audit["prior"]["image_size"] == SIZE
    prior = CrossEmbodimentPolicy.from_pretrained(audit["prior"]["checkpoint"])
    assert prior.config.pixels and prior.config.image_size == SIZE
    info = json.loads((audited / "data" / "so101_reach" / "meta" / "info.json").read_text())
    images = {k: f for k, f in info["features"].items() if k.startswith("observation.images.")}
    assert [f["shape"] for f in images.values()] == [[SIZE, SIZE, 3]] and all(f["dtype"] == "video"
                                                                               for f in images.values())
    assert "observation: pixels" in (audited / "plan.yaml").read_text()
    assert f"pixels: each robot's first camera at {SIZE} px" in (audited / "report.md").read_text()


def test_every_arm_reads_the_camera(audited):
    for arm in ("scratch", "act", "full", "frozen_vision"):
        runs = _runs(audited, arm)
        assert len(runs) == 2, arm  # one budget x two seeds
        assert all(r["settings"]["image_size"] == SIZE for r in runs), arm
        assert all(set(r["per_slice"]) == {"nominal", "camera_moved"} for r in runs), arm
    for arm in ("scratch", "full", "frozen_vision"):
        key = CrossEmbodimentPolicy.from_pretrained(_runs(audited, arm)[0]["checkpoint"])
        assert key.config.pixels and key.config.image_size == SIZE, arm
    marker = json.loads((Path(_runs(audited, "act")[0]["checkpoint"]) / MARKER_FILE).read_text())
    assert marker["observation"] == "pixels" and marker["image_size"] == SIZE
    state_act = _runs(audited, "act")[0]["settings"]["prior_digest"]
    from locksmith.train.act_peer import default_architecture_digest

    assert state_act == default_architecture_digest(SIZE) != default_architecture_digest()
