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


def test_act_from_scratch_is_keyed_by_its_size_not_by_our_prior(tmp_path):
    """Beside our own prior, ACT from scratch reads nothing of it: two priors give ACT one key, and
    a run finished under the earlier key (the prior's architecture digest) is found, only with the
    same settings, the same intent option and a checkpoint trained at the size the key stands for."""
    import json

    from locksmith.audit.priors import arm_sources
    from locksmith.audit.sweep import RESULT_FILE, load_result
    from locksmith.train.act_peer import DEFAULT_SIZE, MARKER_FILE, default_architecture_digest

    a = _prior(tmp_path / "a", '{"d_model": 128}', b"w")
    b = _prior(tmp_path / "b", '{"d_model": 64}', b"v")
    src_a, src_b = (arm_sources(p, {"weights_sha256": folder_digest(p), "kind": "locksmith"}, p) for p in (a, b))
    assert src_a.digest("act") == src_b.digest("act") == default_architecture_digest()
    assert src_a.digest("act_intent") == default_architecture_digest() + ":intent"
    assert src_a.digest("scratch") != src_b.digest("scratch")

    arm_dir = tmp_path / "runs" / "t" / "act"

    def finished(arm: str, old_digest: str, size: dict, name: str, **changes) -> None:
        old = _spec(arm, a, old_digest, **changes)
        run = arm_dir / f"n0005_s0-{name}"
        (run / "work" / "act").mkdir(parents=True)
        (run / "work" / "act" / MARKER_FILE).write_text(json.dumps({"kind": "act", "train": {"size": size}}))
        (run / RESULT_FILE).write_text(json.dumps({"settings": old.settings, "value": 0.5, "key": old.key}))

    new = _spec("act", a, src_a.digest("act"), run_dir=str(arm_dir / "n0005_s0-newkey"))
    assert load_result(new) is None
    finished("act", prior_architecture(b), {**DEFAULT_SIZE, "dim_model": 64}, "other_size")
    finished("act", prior_architecture(b), DEFAULT_SIZE, "other_lr", lr=3e-3)
    finished("act", "architecture:lerobot:0123", DEFAULT_SIZE, "lerobot")
    finished("act", prior_architecture(b) + ":intent", DEFAULT_SIZE, "intent")
    assert load_result(new) is None  # another size, another setting, a LeRobot prior's ACT, the intent option
    finished("act", prior_architecture(b), DEFAULT_SIZE, "earlier")
    assert load_result(new)["value"] == 0.5
    arm_dir = tmp_path / "runs" / "t" / "act_intent"
    intent = replace(new, arm="act_intent", prior_digest=src_a.digest("act_intent"),
                     run_dir=str(arm_dir / "n0005_s0-newkey"))
    assert load_result(intent) is None
    finished("act_intent", prior_architecture(b), DEFAULT_SIZE, "native_digest")
    assert load_result(intent) is None  # an intent run's earlier key ends in :intent
    finished("act_intent", prior_architecture(b) + ":intent", DEFAULT_SIZE, "earlier")
    assert load_result(intent)["value"] == 0.5


def test_the_plain_head_scratch_arm_is_keyed_by_the_twin_it_trains(tmp_path):
    """`scratch_native` reads the prior's sizes and instructions only: a native prior keeps the key its
    files give, and intent priors that differ only in what the plain-head twin resets share it."""
    import dataclasses
    from pathlib import Path

    from locksmith.audit.priors import NATIVE_ARCHITECTURE, native_architecture
    from locksmith.policy.config import PolicyConfig

    published = Path(__file__).parents[2] / "src" / "locksmith" / "priors" / "default" / "config.json"
    native = PolicyConfig.from_json(published.read_text())
    assert native.action_space == "native"
    folders = {}
    for name, config in (("native", native), ("intent", dataclasses.replace(native, action_space="intent")),
                         ("relative", dataclasses.replace(native, action_space="intent", intent_features="relative")),
                         ("wider", dataclasses.replace(native, action_space="intent", d_model=64))):
        folders[name] = _prior(tmp_path / name, config.to_json(), name.encode())
    digests = {name: native_architecture(folder) for name, folder in folders.items()}
    assert digests["native"] == NATIVE_ARCHITECTURE + prior_architecture(folders["native"]).split(":")[-1]
    assert digests["native"] == digests["intent"] == digests["relative"] != digests["wider"]
    (folders["relative"] / "instructions.safetensors").write_bytes(b"other instructions")
    assert native_architecture(folders["relative"]) != digests["intent"]
