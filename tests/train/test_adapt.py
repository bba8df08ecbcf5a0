import json
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from locksmith.cli import main
from locksmith.data.loading import load_demonstrations
from locksmith.data.record import SPEC_FILE, record_demos
from locksmith.train.loop import TrainConfig
from locksmith.train.pretrain import pretrain

TINY = dict(d_model=32, n_layers=1, n_heads=2, d_feedforward=64, n_readouts=2)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("adapt")
    record_demos("panda", "reach", 3, root / "pool", workers=1, progress=False)
    record_demos("mobile_panda", "reach", 4, root / "target", workers=1, progress=False)
    pretrain({"panda": load_demonstrations(root / "pool")}, root / "prior", TrainConfig(steps=3, batch_size=8),
             progress=False, **TINY)
    return root


def _copy(setup, tmp_path, name="bad"):
    dst = tmp_path / name
    shutil.copytree(setup / "target", dst)
    return dst


def test_adapt_writes_a_checkpoint_eval_takes(setup, tmp_path):
    out = tmp_path / "key"
    code = main(["adapt", "--prior", str(setup / "prior" / "policy"), "--dataset", str(setup / "target"),
                 "--recipe", "token", "--demos", "2", "--steps", "3", "--batch-size", "8", "--out", str(out)])
    assert code == 0
    record = json.loads((out / "adapt.json").read_text())
    assert record["demos"] == 2 and len(record["episodes"]) == 2 and record["wallclock_seconds"] > 0
    assert record["donor"] == "panda"
    assert main(["eval", "--checkpoint", str(out / "policy"), "--robot", "mobile_panda", "--task", "reach",
                 "--episodes", "1", "--workers", "1", "--envs", "1"]) == 0


def test_inverted_gripper_polarity_is_refused(setup, tmp_path, capsys):
    bad = _copy(setup, tmp_path)
    spec = yaml.safe_load((bad / SPEC_FILE).read_text())
    grip = spec["arms"][0]["gripper"]
    grip["open_value"], grip["closed_value"] = grip["closed_value"], grip["open_value"]
    (bad / SPEC_FILE).write_text(yaml.safe_dump(spec))
    assert main(["check", "--prior", str(setup / "prior" / "policy"), "--dataset", str(bad)]) == 2
    assert "gripper_polarity" in capsys.readouterr().out
    out = tmp_path / "refused"
    assert main(["adapt", "--prior", str(setup / "prior" / "policy"), "--dataset", str(bad), "--recipe", "head",
                 "--steps", "2", "--out", str(out)]) == 2
    assert "polarity inverted" in capsys.readouterr().err
    assert not (out / "policy").exists()


def test_action_dims_contradicting_the_spec(setup, tmp_path, capsys):
    bad = _copy(setup, tmp_path)
    shutil.copy(setup / "pool" / SPEC_FILE, bad / SPEC_FILE)  # a panda spec on mobile_panda data
    assert main(["check", "--prior", str(setup / "prior" / "policy"), "--dataset", str(bad)]) == 2
    out = capsys.readouterr().out
    assert "'observation.state' has shape" in out and "panda" in out


def test_nan_in_actions(setup, tmp_path, capsys):
    bad = _copy(setup, tmp_path)
    path = next((bad / "data").rglob("*.parquet"))
    table = pq.read_table(path).to_pandas()
    actions = np.stack(table["action"].to_numpy())
    actions[5, 2] = np.nan
    table["action"] = list(actions)
    table.to_parquet(path)
    assert main(["check", "--prior", str(setup / "prior" / "policy"), "--dataset", str(bad)]) == 2
    assert "NaN/Inf" in capsys.readouterr().out
    assert main(["adapt", "--prior", str(setup / "prior" / "policy"), "--dataset", str(bad), "--recipe", "head",
                 "--steps", "2", "--out", str(tmp_path / "o")]) == 2


def test_prior_without_stats(setup, tmp_path, capsys):
    prior = tmp_path / "prior"
    shutil.copytree(setup / "prior" / "policy", prior)
    (prior / "normalizer_stats.json").unlink()
    assert main(["check", "--prior", str(prior), "--dataset", str(setup / "target")]) == 2
    assert "no normalization stats" in capsys.readouterr().out


def test_unknown_recipe(setup, tmp_path, capsys):
    assert main(["adapt", "--prior", str(setup / "prior" / "policy"), "--dataset", str(setup / "target"),
                 "--recipe", "magic", "--out", str(tmp_path / "x")]) == 2
    assert "known recipes" in capsys.readouterr().err


def test_relative_action_stats_come_from_the_demo_subset(setup, tmp_path):
    from locksmith.policy.normalize import RELATIVE_ACTION_KEY, training_stats
    from locksmith.policy.policy import CrossEmbodimentPolicy
    from locksmith.train.adapt import adapt

    adapt(setup / "prior" / "policy", setup / "pool", "lora", tmp_path / "key", demos=2,
          train_config=TrainConfig(steps=2, batch_size=8), progress=False)
    policy = CrossEmbodimentPolicy.from_pretrained(tmp_path / "key" / "policy")
    emb = policy.config.embodiment("panda")
    assert emb.relative_actions
    episodes = json.loads((tmp_path / "key" / "adapt.json").read_text())["episodes"]
    subset = load_demonstrations(setup / "pool").subset(episodes)
    expected = training_stats(subset, emb)[RELATIVE_ACTION_KEY]
    np.testing.assert_allclose(policy.stats["panda"][RELATIVE_ACTION_KEY]["q99"], expected["q99"])
    half = (expected["q99"] - expected["q01"]) / 2
    np.testing.assert_allclose(policy.normalizers["panda"].action.scale.numpy(), np.where(half < 1e-4, 1.0, half),
                               rtol=1e-6)
