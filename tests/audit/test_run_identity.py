"""Which prior a finished run is tied to: scratch keeps its result across priors of one architecture."""

from dataclasses import replace

from locksmith.audit.run import prior_architecture
from locksmith.audit.sweep import RunSpec


def _prior(folder, config: str, weights: bytes):
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(config)
    (folder / "instructions.safetensors").write_bytes(b"instr")
    (folder / "model.safetensors").write_bytes(weights)
    return folder


def _spec(arm: str, prior, identity: str) -> RunSpec:
    return RunSpec(target="t", arm=arm, budget=5, seed=0, robot="so101", task="lift", metric="success",
                   prior=str(prior), dataset="d", train_episodes=(0, 1), steps=10, batch_size=4, lr=1e-3,
                   lora_rank=8, episodes=2, slices=("nominal",), holdout_fraction=0.2, run_dir="r",
                   prior_identity=identity)


def test_scratch_settings_follow_the_architecture_and_adapted_ones_the_folder(tmp_path):
    early = _prior(tmp_path / "early", '{"d_model": 128}', b"weights at step 500")
    final = _prior(tmp_path / "final", '{"d_model": 128}', b"weights at step 10000")
    other = _prior(tmp_path / "other", '{"d_model": 64}', b"weights at step 10000")
    assert prior_architecture(early) == prior_architecture(final) != prior_architecture(other)
    scratch_early = _spec("scratch", early, prior_architecture(early))
    assert scratch_early.settings == _spec("scratch", final, prior_architecture(final)).settings
    assert scratch_early.settings != _spec("scratch", other, prior_architecture(other)).settings
    lora_early, lora_final = _spec("lora", early, str(early)), _spec("lora", final, str(final))
    assert lora_early.settings != lora_final.settings
    assert "prior_identity" not in lora_final.settings and lora_final.settings["prior"] == str(final)
    # a spec without an identity (older callers) is keyed by its folder, as before
    assert replace(lora_final, prior_identity="").settings == lora_final.settings


def test_a_re_recorded_dataset_at_the_same_path_redoes_the_run(tmp_path):
    prior = _prior(tmp_path / "p", '{"d_model": 128}', b"w")
    before = replace(_spec("scratch", prior, prior_architecture(prior)), dataset_fingerprint="aaaa")
    assert replace(before, dataset_fingerprint="bbbb").settings != before.settings
