"""The pretraining recipe's own data: recorded once, reused, recorded anew when the recipe's
execution noise or the robot's spec changes."""

import json

import pytest

from locksmith.data.record import DEFAULT_DEMO_NOISE, META_FILE, SPEC_FILE
from locksmith.train.prior import PriorRecipe, ensure_demos


def test_recipe_records_its_noise_reuses_it_and_re_records_on_a_change(tmp_path):
    root = tmp_path / "panda_reach"
    demos = ensure_demos("panda", "reach", 2, root, noise=0.004)
    assert demos.num_episodes == 2
    meta = json.loads((root / META_FILE).read_text())
    assert meta["execution_noise_m"] == 0.004
    stamp = (root / META_FILE).stat().st_mtime_ns
    assert ensure_demos("panda", "reach", 1, root, noise=0.004).num_episodes == 1  # reused, cut down
    assert (root / META_FILE).stat().st_mtime_ns == stamp
    clean = ensure_demos("panda", "reach", 1, root, noise=0.0)  # another noise: recorded anew
    assert clean.num_episodes == 1
    assert json.loads((root / META_FILE).read_text())["execution_noise_m"] == 0.0


def test_demos_recorded_under_an_older_spec_are_recorded_anew(tmp_path):
    """A recording is only as current as the spec beside it: one made before the robot's spec
    changed (its units, gripper convention or feature names) is not reused under the new one."""
    root = tmp_path / "panda_reach"
    ensure_demos("panda", "reach", 1, root)
    beside = root / SPEC_FILE
    current = beside.read_text()
    beside.write_text(current.replace("name: panda", "name: panda  # an older version", 1))
    stamp = (root / META_FILE).stat().st_mtime_ns
    assert ensure_demos("panda", "reach", 1, root).num_episodes == 1
    assert beside.read_text() == current
    assert (root / META_FILE).stat().st_mtime_ns != stamp


def test_recipe_default_noise_and_bad_noise():
    assert PriorRecipe().demo_noise == DEFAULT_DEMO_NOISE == 0  # opt-in: it cost ur5e and vx300s (docs/sim.md)
    for bad in (-0.001, float("inf")):
        with pytest.raises(ValueError, match="demo_noise"):
            PriorRecipe(demo_noise=bad)
