"""LeRobot's ACT as the peer baseline: real lerobot ACT, real MuJoCo, tiny sizes."""

import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from locksmith.data.loading import load_demonstrations
from locksmith.data.record import record_demos
from locksmith.data.targets import OBJECT_FIELDS
from locksmith.embodiment.spec import load_spec
from locksmith.evaluate.act_agent import ACTAgent, is_act_checkpoint, load_act_peer
from locksmith.evaluate.evaluator import make_shield, evaluate
from locksmith.evaluate.offline import offline_action_error
from locksmith.policy.config import EmbodimentConfig
from locksmith.policy.policy import CheckpointError
from locksmith.sim.env import TabletopEnv
from locksmith.sim.scene import COLOURS, N_OBJECTS
from locksmith.train.act_peer import (
    DEFAULT_SIZE, MARKER_FILE, NAMED_DIM, NAMED_ENCODING, NAMED_KEY, SIZE_FIELDS, SPEC_FILE, build_act_peer,
    feature_stats, named_features, processor_stats,
)
from locksmith.train.act_train import intermediate_checkpoint, train_act_peer
from locksmith.train.loop import TrainConfig, lr_lambda

TINY = dict(dim_model=32, n_heads=2, dim_feedforward=64, n_encoder_layers=1, n_vae_encoder_layers=1, latent_dim=8)
RECIPE = TrainConfig(steps=3, batch_size=8, lr=1e-3, weight_decay=1e-4, warmup_steps=1, grad_clip=1.0, seed=0)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("act_peer")
    record_demos("panda", "reach", 3, root / "data", workers=1, progress=False)
    record_demos("mobile_panda", "reach", 2, root / "other", workers=1, progress=False)
    demos = load_demonstrations(root / "data")
    summary = train_act_peer(demos, root / "act", RECIPE, checkpoint_steps=(2, 3, 7), **TINY)
    return root, demos, summary


def _frames(demos, n=5):
    idx = np.linspace(0, demos.num_frames - 1, n).astype(int)
    a = demos.arrays
    return a["observation.state"][idx], a["observation.environment_state"][idx], [demos.tasks[i] for i in idx]


def _peer_stats(demos):
    named = named_features(demos.tasks, demos.arrays["observation.environment_state"])  # (N, NAMED_DIM)
    return {**demos.stats, NAMED_KEY: feature_stats(named)}


def test_training_writes_lerobot_checkpoint_marker_spec_and_stats(setup):
    root, demos, summary = setup
    ckpt = root / "act"
    assert {"wallclock_seconds", "train_seconds", "parameters", "final_loss", "steps", "batch_size",
            "checkpoints"} <= set(summary)
    assert summary["steps"] == 3 and summary["batch_size"] == 8 and summary["wallclock_seconds"] > 0
    assert np.isfinite(summary["final_loss"])
    for name in ("config.json", "model.safetensors", "policy_preprocessor.json", "policy_postprocessor.json",
                 "normalizer_stats.json", SPEC_FILE, MARKER_FILE):
        assert (ckpt / name).is_file(), name
    assert not [p for p in root.iterdir() if p.name.startswith(".act")]  # no temporary folder left behind
    emb = EmbodimentConfig.from_spec(demos.spec)
    marker = json.loads((ckpt / MARKER_FILE).read_text())
    env_dim = demos.arrays["observation.environment_state"].shape[1]
    assert {k: marker[k] for k in ("kind", "robot", "chunk_size", "n_action_steps", "environment_state_dim")} == {
        "kind": "act", "robot": "panda", "chunk_size": emb.chunk_size, "n_action_steps": emb.n_action_steps,
        "environment_state_dim": env_dim}
    assert marker["named_entities"] == NAMED_ENCODING and len(NAMED_ENCODING["columns"]) == NAMED_DIM
    assert marker["train"]["named_frames"] == 1.0  # every recorded instruction names a cube found in its scene
    assert emb.chunk_size == 20 and emb.n_action_steps == 10  # one second at 20 Hz, half executed
    assert marker["train"]["train"]["grad_clip"] == 1.0 and marker["train"]["train"]["schedule"] == "cosine"
    config = json.loads((ckpt / "config.json").read_text())
    assert config["type"] == "act" and config["pretrained_backbone_weights"] is None
    assert set(config["input_features"]) == {"observation.state", "observation.environment_state"}
    # the named cube and pad ride in ACT's one ENV input, after the scene
    assert config["input_features"]["observation.environment_state"]["shape"] == [env_dim + NAMED_DIM]
    assert load_spec(ckpt / SPEC_FILE) == demos.spec
    saved = json.loads((ckpt / "normalizer_stats.json").read_text())["panda"]
    np.testing.assert_array_equal(saved["action"]["q99"], demos.stats["action"]["q99"])
    # lerobot's normalizer holds the demos' own mean and (floored) std
    state = load_file(ckpt / "policy_preprocessor_step_3_normalizer_processor.safetensors")
    stats = _peer_stats(demos)
    expected = processor_stats(stats)
    np.testing.assert_array_equal(state["observation.environment_state.std"].numpy(),
                                  expected["observation.environment_state"]["std"].astype(np.float32))
    np.testing.assert_allclose(saved[NAMED_KEY]["mean"], stats[NAMED_KEY]["mean"], atol=1e-7)
    # reach names no pad: those columns never vary and keep a unit scale, not lerobot's 1e8
    assert (expected["observation.environment_state"]["std"][env_dim + N_OBJECTS:env_dim + N_OBJECTS + 2] == 1).all()
    peer = load_act_peer(ckpt, "panda")
    assert peer.num_parameters() == summary["parameters"]
    assert is_act_checkpoint(ckpt) and not is_act_checkpoint(root / "data") and not is_act_checkpoint(None)


def test_default_size_is_near_our_default_policy(setup):
    _, demos, _ = setup
    from locksmith.train.pretrain import build_policy

    env_dim = demos.arrays["observation.environment_state"].shape[1]
    stats = _peer_stats(demos)
    act = build_act_peer(demos.spec, stats, env_dim).num_parameters()
    ours = build_policy({"panda": demos}).num_parameters()
    assert 0.8 < act / ours < 1.25, (act, ours)
    with pytest.raises(ValueError, match="known"):
        build_act_peer(demos.spec, stats, env_dim, dim_modle=64)
    with pytest.raises(ValueError, match=NAMED_KEY):
        build_act_peer(demos.spec, demos.stats, env_dim)
    assert set(DEFAULT_SIZE) <= set(SIZE_FIELDS)


def test_save_load_gives_the_same_actions_to_the_bit(setup, tmp_path):
    _, demos, _ = setup
    torch.manual_seed(1)
    peer = build_act_peer(demos.spec, _peer_stats(demos), demos.arrays["observation.environment_state"].shape[1],
                          **TINY)
    peer.policy.eval()
    state, env_state, texts = _frames(demos)
    before = peer.predict_action_chunk(state, env_state, texts)
    peer.save(tmp_path / "ckpt")
    loaded = load_act_peer(tmp_path / "ckpt")
    assert torch.equal(before, loaded.predict_action_chunk(state, env_state, texts))
    assert before.shape == (5, peer.chunk_size, demos.spec.action_dim)
    for key, value in peer.policy.state_dict().items():
        assert torch.equal(value, loaded.policy.state_dict()[key]), key
    # native units: a normalized 0 comes out as the demos' mean action
    zero = loaded.postprocessor(torch.zeros(1, peer.chunk_size, demos.spec.action_dim))
    mean = torch.as_tensor(demos.stats["action"]["mean"], dtype=torch.float32)
    assert torch.equal(zero[0, 0], mean)


def test_training_is_seeded(setup, tmp_path):
    _, demos, summary = setup
    again = train_act_peer(demos, tmp_path / "again", RECIPE, **TINY)  # no intermediate checkpoints
    assert again["final_loss"] == summary["final_loss"]
    first = load_file(setup[0] / "act" / "model.safetensors")
    second = load_file(tmp_path / "again" / "model.safetensors")
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_agent_replans_every_n_action_steps_batched(setup):
    root, _, _ = setup
    peer = load_act_peer(root / "act", "panda")
    agent = ACTAgent(peer, "panda")
    envs = [TabletopEnv("panda", "reach") for _ in range(2)]
    obs = [env.reset(seed=s)[0] for env, s in zip(envs, (5, 6), strict=True)]
    agent.reset(envs)

    def plan(o):
        return peer.predict_action_chunk(np.stack([x["observation.state"] for x in o]),
                                         np.stack([x["observation.environment_state"] for x in o]),
                                         [env.instruction for env in envs]).numpy()

    n = peer.n_action_steps
    for start in (0, n):  # a chunk is planned at step 0 and again at step n
        chunk = plan(obs)
        for t in range(n):
            actions = agent.act(envs, [0, 1], obs)
            np.testing.assert_array_equal(actions, chunk[:, t])
            obs = [env.step(a)[0] for env, a in zip(envs, actions, strict=True)]
    # the shield's data range comes from the stats saved beside the checkpoint
    far = peer.stats["panda"]["action"]["q99"] + 10.0
    for policy, clamped in ((peer, True), (None, False)):
        shield = make_shield(envs[0], policy)
        shield.reset()
        shield.filter(far, obs[0]["observation.state"], 0.0, 0.0)
        assert (shield.interventions.get("data_range", 0) > 0) == clamped
    for env in envs:
        env.close()


def test_evaluate_and_offline_take_an_act_checkpoint(setup):
    root, demos, _ = setup
    result = evaluate("panda", "reach", 2, checkpoint=root / "act", workers=1, n_envs=2)
    assert {"robot", "task", "agent", "success_rate", "episodes", "ci95", "per_slice", "shield_interventions",
            "mean_episode_seconds", "seeds"} <= set(result)
    assert result["episodes"] == 2 and 0.0 <= result["success_rate"] <= 1.0
    assert result["agent"] == str(root / "act")
    offline = offline_action_error(root / "act", root / "data")
    assert offline["metric"] == "offline_action_error" and offline["offline_action_error"] > 0
    assert list(offline["per_dimension"]) == demos.spec.names("action")
    assert offline["episodes"] == 1 and offline["frames"] > 0 and offline["robot"] == "panda"


def test_missing_and_damaged_checkpoints(setup, tmp_path):
    root, _, _ = setup
    with pytest.raises(CheckpointError, match="not found"):
        load_act_peer(tmp_path / "nowhere")
    with pytest.raises(CheckpointError, match="not found"):
        evaluate("panda", "reach", 1, checkpoint=tmp_path / "nowhere", workers=1, n_envs=1)
    with pytest.raises(CheckpointError, match="no locksmith_peer.json"):
        load_act_peer(root / "data")

    def damaged(name, edit):
        dst = tmp_path / name
        shutil.copytree(root / "act", dst)
        edit(dst)
        return dst

    cases = {
        "weights": (lambda d: (d / "model.safetensors").write_bytes(b"\0" * 64), "model.safetensors"),
        "processor": (lambda d: (d / "policy_preprocessor.json").unlink(), "policy_preprocessor.json"),
        "marker": (lambda d: (d / MARKER_FILE).write_text("{not json"), MARKER_FILE),
        "config": (lambda d: (d / "config.json").write_text("[]"), "config.json"),
        "blind": (lambda d: (d / MARKER_FILE).write_text(json.dumps({"kind": "act", "robot": "panda"})),
                  "train it again"),
        # the instruction-embedding peer (no named entities): its ENV input means something else
        "embedding": (lambda d: (d / MARKER_FILE).write_text(json.dumps(
            {"kind": "act", "robot": "panda", "environment_state_dim": 41, "instruction": {"dim": 384}})),
            "named cube and pad"),
    }
    for name, (edit, message) in cases.items():
        bad = damaged(name, edit)
        assert is_act_checkpoint(bad)
        with pytest.raises(CheckpointError, match=message):
            load_act_peer(bad)


def test_checkpoint_for_another_robot(setup):
    root, _, _ = setup
    with pytest.raises(CheckpointError, match="for robot 'panda', not 'mobile_panda'"):
        load_act_peer(root / "act", "mobile_panda")
    with pytest.raises(CheckpointError, match="not 'mobile_panda'"):
        evaluate("mobile_panda", "reach", 1, checkpoint=root / "act", workers=1, n_envs=1)
    with pytest.raises(CheckpointError, match="not 'mobile_panda'"):
        offline_action_error(root / "act", root / "other")


def test_intermediate_checkpoints_load_and_are_listed_with_training_seconds(setup):
    root, demos, summary = setup
    steps = [c["step"] for c in summary["checkpoints"]]
    assert steps == [2, 3]  # 3 and 7 are not below steps=3: the final checkpoint is the last entry
    middle, final = summary["checkpoints"]
    assert middle["path"] == str(intermediate_checkpoint(root / "act", 2)) == str(root / "act_checkpoints" / "step-2")
    assert final["path"] == str(root / "act") and final["train_seconds"] == summary["train_seconds"]
    assert 0 < middle["train_seconds"] < final["train_seconds"] < summary["wallclock_seconds"]
    early = load_act_peer(middle["path"], "panda")
    assert json.loads((root / "act_checkpoints" / "step-2" / MARKER_FILE).read_text())["step"] == 2
    state, env_state, texts = _frames(demos)
    late = load_act_peer(root / "act")
    assert not torch.equal(early.predict_action_chunk(state, env_state, texts),
                           late.predict_action_chunk(state, env_state, texts))


def test_training_follows_the_shared_recipe_step_by_step(setup, tmp_path):
    """Two steps of `train_act_peer` against a plain re-implementation: AdamW(lr, weight_decay),
    LambdaLR(lr_lambda(config)), clipping at grad_clip, batches keyed by (seed, 0, step)."""
    _, demos, _ = setup
    from locksmith.data.mixture import ChunkSampler

    recipe = TrainConfig(steps=2, batch_size=4, lr=3e-3, weight_decay=0.1, warmup_steps=1, grad_clip=0.05, seed=3)
    torch.manual_seed(recipe.seed)
    peer = build_act_peer(demos.spec, _peer_stats(demos), demos.arrays["observation.environment_state"].shape[1],
                          **TINY)
    params = list(peer.policy.parameters())
    # fused, as `loop.make_optimizer` builds it for every arm (the key biases get ~0 gradients,
    # which Adam scales up to lr: the multi-tensor kernel rounds those differently)
    optimizer = torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay, fused=True)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(recipe))
    sampler = ChunkSampler(demos, peer.chunk_size, {t: (np.zeros((1, 1)), np.zeros(1, bool)) for t in demos.tasks})
    peer.policy.train()
    for step in range(recipe.steps):
        raw = sampler.sample(recipe.batch_size, np.random.default_rng([recipe.seed, 0, step]))
        env_state = raw["observation.environment_state"]
        idx = np.random.default_rng([recipe.seed, 0, step]).integers(0, len(sampler), size=recipe.batch_size)
        assert torch.equal(sampler.gather(idx)["action"], raw["action"])  # the same frames
        named = named_features([demos.tasks[i] for i in idx], env_state.numpy())  # each frame's own task
        raw["observation.environment_state"] = torch.cat([env_state, torch.as_tensor(named)], -1)  # (B, E + 12)
        loss, _ = peer.policy.forward(peer.preprocessor({k: raw[k] for k in ("observation.state",
                                      "observation.environment_state", "action", "action_is_pad")}))
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, recipe.grad_clip)
        optimizer.step()
        scheduler.step()
    train_act_peer(demos, tmp_path / "act", recipe, **TINY)
    trained = load_file(tmp_path / "act" / "model.safetensors")
    for key, value in peer.policy.state_dict().items():
        torch.testing.assert_close(trained[key], value, rtol=1e-6, atol=1e-7, msg=key)
    # the recipe matters: a constant schedule with no clipping ends elsewhere
    other = TrainConfig(**{**recipe.__dict__, "schedule": "constant", "grad_clip": 0.0})
    train_act_peer(demos, tmp_path / "other", other, **TINY)
    moved = load_file(tmp_path / "other" / "model.safetensors")
    assert any(not torch.allclose(moved[k], trained[k]) for k in trained)


def test_prediction_takes_one_instruction_per_row(setup):
    root, demos, _ = setup
    peer = load_act_peer(root / "act")
    state, env_state, texts = _frames(demos, 2)
    with pytest.raises(ValueError, match="one instruction text per row"):
        peer.predict_action_chunk(state, env_state, texts[:1])
    with pytest.raises(ValueError, match="one instruction text per row"):
        peer.predict_action_chunk(state[:1], env_state[:1], texts[0])
    with pytest.raises(ValueError, match="width"):
        peer.predict_action_chunk(state, env_state[:, :-1], texts)
    # the task columns are the cube (and pad) each row's text names in that row's own scene
    f = OBJECT_FIELDS
    colours = [[min(COLOURS, key=lambda c: np.linalg.norm(np.asarray(COLOURS[c]) - x[k * f + 4:k * f + 7]))
                for k in range(N_OBJECTS)] for x in env_state]  # (B, 3) colour names of the cubes
    env_dim = env_state.shape[1]
    for k in range(N_OBJECTS):
        inputs = peer.act_inputs(state, env_state, [f"reach the {row[k]} cube" for row in colours])
        named = inputs["observation.environment_state"][:, env_dim:].numpy()  # (B, 12)
        assert (named[:, :N_OBJECTS].argmax(1) == k).all() and (named[:, N_OBJECTS:N_OBJECTS + 2] == 0).all()
        np.testing.assert_array_equal(named[:, 5:9], env_state[:, k * f:k * f + 4])  # its x, y, z, half size
    free = peer.act_inputs(state, env_state, ["tidy up please"] * 2)["observation.environment_state"]
    assert (free[:, env_dim:] == 0).all()  # free-form text: no task information, not an error
    # naming another cube changes the plan
    first = peer.predict_action_chunk(state, env_state, [f"reach the {row[0]} cube" for row in colours])
    other = peer.predict_action_chunk(state, env_state, [f"reach the {row[1]} cube" for row in colours])
    assert not torch.equal(first, other)


def test_an_intent_act_predicts_intent_and_acts_through_the_decoder(setup, tmp_path):
    """``action_space="intent"``: ACT's output is the demos' intent (its own width, normalized by its
    own stats), the checkpoint says so, a rollout decodes it into the robot's command (which the
    shield bounds by the native action stats), and the offline metric refuses it."""
    from locksmith.sim.intent import intent_size

    root, demos, _ = setup
    summary = train_act_peer(demos, tmp_path / "act_intent", RECIPE, action_space="intent", **TINY)
    assert np.isfinite(summary["final_loss"])
    peer = load_act_peer(tmp_path / "act_intent", "panda")
    width = intent_size(demos.spec)
    assert peer.action_space == "intent" and width != demos.spec.action_dim
    state, env_state, texts = _frames(demos, 2)
    assert tuple(peer.predict_action_chunk(state, env_state, texts).shape)[-1] == width
    np.testing.assert_allclose(peer.stats["panda"]["action"]["mean"], demos.stats["action"]["mean"])
    assert json.loads((tmp_path / "act_intent" / MARKER_FILE).read_text())["action_space"] == "intent"
    assert "action_space" not in json.loads((root / "act" / MARKER_FILE).read_text())  # native: as before
    result = evaluate("panda", "reach", 2, checkpoint=tmp_path / "act_intent", seed=3, workers=1)
    assert result["episodes"] == 2
    with pytest.raises(CheckpointError, match="intent decoder"):
        offline_action_error(tmp_path / "act_intent", root / "data")
    with pytest.raises(ValueError, match="action_space='joint'"):
        build_act_peer(demos.spec, _peer_stats(demos), demos.arrays["observation.environment_state"].shape[1],
                       action_space="joint", **TINY)
