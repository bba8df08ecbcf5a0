"""Runs are keyed by content: the prior's weights, the dataset, the expert's version and every setting."""

from dataclasses import replace

from locksmith.audit.priors import folder_digest, prior_architecture
from locksmith.audit.sweep import RunSpec


def _prior(folder, config: str, weights: bytes):
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(config)
    (folder / "instructions.safetensors").write_bytes(b"instr")
    (folder / "model.safetensors").write_bytes(weights)
    return folder


def _spec(arm: str, prior, digest: str, **changes) -> RunSpec:
    spec = RunSpec(target="t", arm=arm, budget=5, seed=0, robot="so101", task="lift", metric="success",
                   prior=str(prior), prior_digest=digest, dataset="d", dataset_fingerprint="aaaa",
                   demo_episodes=(0, 3, 4, 7, 9), steps=10, batch_size=4, lr=1e-3, warmup_steps=1,
                   schedule="cosine", grad_clip=1.0, weight_decay=1e-4, weight=0.0, lora_rank=8, lora_alpha=16.0,
                   checkpoint_steps=(5,), episodes=2, slices=("nominal",), eval_seed_base=2_000_000_000,
                   eval_block=0, holdout_fraction=0.2, run_dir="r", expert_version=2)
    return replace(spec, **changes)


def test_adapted_runs_follow_the_weights_and_scratch_runs_the_architecture(tmp_path):
    early = _prior(tmp_path / "early", '{"d_model": 128}', b"weights at step 500")
    final = _prior(tmp_path / "final", '{"d_model": 128}', b"weights at step 10000")
    other = _prior(tmp_path / "other", '{"d_model": 64}', b"weights at step 10000")
    assert prior_architecture(early) == prior_architecture(final) != prior_architecture(other)
    assert folder_digest(early) != folder_digest(final)
    scratch = [_spec("scratch", p, prior_architecture(p)) for p in (early, final, other)]
    assert scratch[0].key == scratch[1].key != scratch[2].key
    lora_early, lora_final = (_spec("lora", p, folder_digest(p)) for p in (early, final))
    assert lora_early.key != lora_final.key


def test_re_pointing_a_prior_folder_at_other_weights_changes_the_key(tmp_path):
    prior = _prior(tmp_path / "runs" / "prior", '{"d_model": 128}', b"first weights")
    before = _spec("full", prior, folder_digest(prior))
    (prior / "model.safetensors").write_bytes(b"second weights")  # the same path, other content
    after = _spec("full", prior, folder_digest(prior))
    assert before.prior == after.prior and before.key != after.key
    # and the path alone never enters the key: a moved prior with the same weights keeps its runs
    assert replace(before, prior="/elsewhere", dataset="/moved", run_dir="x", threads=2).key == before.key


def test_the_dataset_expert_version_and_every_setting_enter_the_key(tmp_path):
    prior = _prior(tmp_path / "p", '{"d_model": 128}', b"w")
    base = _spec("scratch", prior, prior_architecture(prior))
    for change in ({"dataset_fingerprint": "bbbb"}, {"expert_version": 3}, {"demo_episodes": (0, 1, 2, 3, 4)},
                   {"lr": 3e-3}, {"weight": 0.1}, {"eval_block": 1}, {"spec_digest": "x"}, {"schedule": "constant"},
                   {"checkpoint_steps": ()}, {"purpose": "tune"}):
        assert replace(base, **change).key != base.key, change
