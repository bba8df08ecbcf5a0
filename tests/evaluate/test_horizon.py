"""Re-planning horizons chosen on validation episodes and written into the checkpoint."""

import json

import pytest

from locksmith.cli import main
from locksmith.train.prior import tuning_task
from locksmith.data.record import record_demos
from locksmith.embodiment.registry import load_bundled_spec
from locksmith.evaluate.evaluator import evaluate
from locksmith.evaluate.horizon import (
    HORIZON_FILE,
    VALIDATION_SEED_BASE,
    horizon_candidates,
    tune_horizons,
)
from locksmith.evaluate.rollout import EVAL_SEED_BASE
from locksmith.policy.config import EmbodimentConfig, PolicyConfig
from locksmith.policy.policy import CrossEmbodimentPolicy

SMALL = dict(d_model=32, n_layers=1, n_heads=2, d_feedforward=64, n_readouts=2)


@pytest.fixture()
def checkpoint(tmp_path):
    config = PolicyConfig(embodiments=(EmbodimentConfig.from_spec(load_bundled_spec("ur5e")),), **SMALL)
    CrossEmbodimentPolicy(config).save_pretrained(tmp_path / "ckpt")
    return tmp_path / "ckpt"


def test_candidates_cover_every_step_to_the_configured_horizon():
    assert horizon_candidates(15, 8) == [1, 2, 3, 8]
    assert horizon_candidates(10, 5) == [1, 2, 5]
    assert horizon_candidates(2, 1) == [1, 2]


def test_validation_seeds_are_apart_from_evaluation_seeds(checkpoint):
    val = evaluate("ur5e", "reach", 2, checkpoint=checkpoint, workers=1, seed_base=VALIDATION_SEED_BASE,
                   n_action_steps=1)
    test = evaluate("ur5e", "reach", 2, checkpoint=checkpoint, workers=1)
    assert val["seeds"] == [VALIDATION_SEED_BASE, VALIDATION_SEED_BASE + 1]
    assert test["seeds"][0] == EVAL_SEED_BASE
    with pytest.raises(ValueError, match="n_action_steps"):
        evaluate("ur5e", "reach", 2, checkpoint=checkpoint, workers=1, n_action_steps=0)


def test_tuning_writes_the_choice_into_the_checkpoint(checkpoint):
    before = CrossEmbodimentPolicy.from_pretrained(checkpoint)
    emb = before.config.embodiment("ur5e")
    chosen = tune_horizons(checkpoint, task="reach", episodes=2, workers=1)["ur5e"]
    rates = {int(n): r for n, r in chosen["success"].items()}
    assert sorted(rates) == horizon_candidates(emb.chunk_size, emb.n_action_steps)
    assert chosen["before"] == emb.n_action_steps
    best = max(rates.values())
    assert chosen["chosen"] == max(n for n, r in rates.items() if r == best)  # ties: the longer horizon
    after = CrossEmbodimentPolicy.from_pretrained(checkpoint)
    assert after.config.embodiment("ur5e").n_action_steps == chosen["chosen"]
    for key, value in before.state_dict().items():  # only the config changed
        assert after.state_dict()[key].equal(value), key
    saved = json.loads((checkpoint / HORIZON_FILE).read_text())
    assert saved["seed_base"] == VALIDATION_SEED_BASE and saved["robots"]["ur5e"] == chosen


def test_tuning_refuses_bad_counts(checkpoint, capsys):
    with pytest.raises(ValueError, match="episodes"):
        tune_horizons(checkpoint, task="reach", episodes=0)
    assert main(["pretrain", "--tune-episodes", "-1", "--out", str(checkpoint.parent / "p")]) == 2
    assert "--tune-episodes" in capsys.readouterr().err
    assert main(["pretrain", "--threads", "0", "--out", str(checkpoint.parent / "p")]) == 2
    assert "--threads" in capsys.readouterr().err


def test_horizons_are_tuned_on_the_task_the_prior_trained_on(tmp_path):
    reach = tmp_path / "ur5e_reach"
    record_demos("ur5e", "reach", 1, reach, workers=1, progress=False)
    assert tuning_task(["pick_place"], []) == "pick_place"
    assert tuning_task(["pick_place"], [str(reach)]) == "reach"  # --datasets: their own task
    (tmp_path / "real").mkdir()
    assert tuning_task(["pick_place"], [str(reach), str(tmp_path / "real")]) is None  # no simulated task
