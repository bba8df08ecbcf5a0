"""The published prior that ships with locksmith: it loads, it works closed loop, its card tells
the truth about its files, and a stale one is refused."""

import hashlib
import json
import shutil

import pytest

from locksmith.policy.policy import CheckpointError, CrossEmbodimentPolicy
from locksmith.priors import (
    MODEL_CARD,
    SHIPPED_DIR,
    shipped_prior,
    shipped_record,
    stale_fields,
)


def test_the_published_prior_succeeds_closed_loop_on_a_pool_robot():
    """A broken or stale prior fails this: 20 evaluation episodes of the Panda's pick_place, a bar
    well below the card's figure (100 % [96, 100] on 100 episodes) and far above chance."""
    from locksmith.evaluate.evaluator import evaluate

    result = evaluate("panda", "pick_place", 20, checkpoint=shipped_prior(), workers=1)
    assert result["success_rate"] >= 0.8, result["per_slice"]


def test_the_card_and_the_record_describe_the_files_that_ship():
    record = shipped_record()
    card = (SHIPPED_DIR / MODEL_CARD).read_text()
    for name, digest in record["sha256"].items():
        assert hashlib.sha256((SHIPPED_DIR / name).read_bytes()).hexdigest() == digest, name
        assert digest in card
    assert record["rebuild"] in card and "scripts/publish_prior.py" in record["rebuild"]
    for robot, r in record["evaluation"]["robots"].items():
        assert f"| {robot} | {100 * r['success_rate']:.0f} % |" in card
    prior = CrossEmbodimentPolicy.from_pretrained(shipped_prior())
    assert sorted(prior.stems) == sorted(record["recipe"]["robots"]) and prior.num_parameters() == record["parameters"]


def test_it_was_built_with_the_defaults_of_locksmith_pretrain():
    from locksmith.train import defaults

    record = shipped_record()
    assert tuple(record["recipe"]["robots"]) == defaults.POOL_ROBOTS
    assert tuple(record["recipe"]["tasks"]) == defaults.POOL_TASKS
    assert record["recipe"]["demos_per_robot"] == defaults.DEMOS_PER_ROBOT
    assert (record["train"]["steps"], record["train"]["batch_size"], record["train"]["lr"]) == (
        defaults.PRETRAIN_STEPS, defaults.PRETRAIN_BATCH_SIZE, defaults.PRETRAIN_LR)
    assert record["horizon_episodes"] == defaults.TUNE_EPISODES


@pytest.mark.parametrize("edit, words", [
    (lambda c: c.pop("n_readouts"), "missing n_readouts"),
    (lambda c: c.update(attention_sinks=4), "unknown attention_sinks"),
    (lambda c: c["embodiments"][0].pop("chunk_size"), "missing chunk_size"),
])
def test_a_prior_whose_config_does_not_match_the_code_is_refused(tmp_path, monkeypatch, edit, words):
    import locksmith.priors as priors

    copy = tmp_path / "default"
    shutil.copytree(SHIPPED_DIR, copy)
    config = json.loads((copy / "config.json").read_text())
    edit(config)
    (copy / "config.json").write_text(json.dumps(config))
    assert any(words in p for p in stale_fields((copy / "config.json").read_text()))
    monkeypatch.setattr(priors, "SHIPPED_DIR", copy)
    with pytest.raises(CheckpointError, match="rebuild it with"):
        priors.shipped_prior()


def test_adapt_and_check_use_the_published_prior_when_none_is_named(tmp_path, capsys):
    from locksmith.cli import main
    from locksmith.data.record import record_demos

    data = tmp_path / "so101"
    record_demos("so101", "reach", 2, data, workers=1, progress=False)
    assert main(["check", "--dataset", str(data)]) == 0
    assert main(["adapt", "--dataset", str(data), "--recipe", "head", "--steps", "2", "--batch-size", "4",
                 "--out", str(tmp_path / "key")]) == 0
    record = json.loads((tmp_path / "key" / "adapt.json").read_text())
    assert record["prior"] == str(SHIPPED_DIR) and record["donor"] in record_robots()


def record_robots() -> list[str]:
    return list(shipped_record()["recipe"]["robots"])
