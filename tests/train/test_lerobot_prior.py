"""A lerobot-train ACT checkpoint as a prior: the new robot's projections are new, every other
weight is the checkpoint's exactly, and fine-tuning runs through the ACT peer's training path."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from locksmith.data.loading import load_demonstrations
from locksmith.data.record import record_demos
from locksmith.evaluate.act_agent import load_act_peer
from locksmith.policy.policy import CheckpointError
from locksmith.sim.env import env_state_dim
from locksmith.train.act_inputs import NAMED_DIM, NAMED_KEY, feature_stats, named_features
from locksmith.train.act_peer import build_act_peer
from locksmith.train.act_train import train_act_peer
from locksmith.train.lerobot_prior import (
    ROBOT_PROJECTIONS,
    checkpoint_digest,
    is_prior_weight,
    load_lerobot_prior,
    training_pool,
)
from locksmith.train.loop import TrainConfig

RECIPE = TrainConfig(steps=3, batch_size=4, lr=1e-2, seed=0, warmup_steps=1, checkpoint_every=3)


@pytest.fixture(scope="module")
def so101(tmp_path_factory):
    """Two SO-101 pick_place demos: the new robot (6-D state and action; the prior's is the Panda's 8-D)."""
    root = tmp_path_factory.mktemp("so101")
    record_demos("so101", "pick_place", 2, root / "so101_pick_place", workers=1, progress=False)
    return load_demonstrations(root / "so101_pick_place")


def _copy(checkpoint, tmp_path):
    return shutil.copytree(checkpoint, tmp_path / "pretrained_model")


def test_every_weight_but_the_robots_projections_starts_from_the_checkpoint(lerobot_act_checkpoint, so101):
    prior = load_lerobot_prior(lerobot_act_checkpoint)
    assert prior.source_features["observation.state"] == (8,)  # trained on the Panda
    assert prior.architecture["dim_model"] == 32 and prior.architecture["chunk_size"] == 10
    env = so101.arrays["observation.environment_state"]
    stats = {**so101.stats, NAMED_KEY: feature_stats(named_features(so101.tasks, env))}
    torch.manual_seed(0)
    peer = build_act_peer(so101.spec, stats, env.shape[1], **prior.architecture)
    fresh = {k: v.clone() for k, v in peer.policy.state_dict().items()}
    copy = prior.initialise(peer.policy)
    state = peer.policy.state_dict()
    assert copy["copied"] and len(copy["new"]) == 10  # weight and bias of the five projections
    for name, value in state.items():
        if is_prior_weight(name):
            assert torch.equal(value, prior.weights[name]), name
        else:
            assert name.startswith(ROBOT_PROJECTIONS) and torch.equal(value, fresh[name]), name
    assert state["model.encoder_robot_state_input_proj.weight"].shape == (32, 6)
    assert state["model.encoder_env_state_input_proj.weight"].shape == (32, env_state_dim(1) + NAMED_DIM)
    assert state["model.action_head.weight"].shape == (6, 32)
    assert copy["copied_parameters"] + copy["new_parameters"] == sum(p.numel() for p in peer.policy.parameters())


def test_fine_tuning_runs_the_act_peers_training_and_records_its_prior(lerobot_act_checkpoint, so101, tmp_path):
    prior = load_lerobot_prior(lerobot_act_checkpoint)
    record = train_act_peer(so101, tmp_path / "key", RECIPE, prior=prior)
    assert record["prior"]["sha256"] == checkpoint_digest(lerobot_act_checkpoint) == prior.digest
    assert record["steps"] == 3 and record["parameters"] == record["prior"]["copied_parameters"] \
        + record["prior"]["new_parameters"]
    peer = load_act_peer(tmp_path / "key", "so101")  # the evaluator's loader, as for the act arm
    assert (peer.chunk_size, peer.n_action_steps) == (10, 5)  # the prior's, not the spec's 30 / 15
    marker = json.loads((tmp_path / "key" / "locksmith_peer.json").read_text())
    assert marker["train"]["prior"]["sha256"] == prior.digest
    trained = peer.policy.state_dict()
    moved = [n for n in prior.weights if is_prior_weight(n) and not torch.equal(trained[n], prior.weights[n])]
    assert moved, "fine-tuning left the prior's weights as they were"
    with pytest.raises(ValueError, match="a prior fixes the architecture"):
        train_act_peer(so101, tmp_path / "other", RECIPE, prior=prior, dim_model=64)


def test_the_digest_follows_the_weights_and_config_not_the_folder(lerobot_act_checkpoint, tmp_path):
    copy = _copy(lerobot_act_checkpoint, tmp_path)
    assert checkpoint_digest(copy) == checkpoint_digest(lerobot_act_checkpoint)
    (copy / "train_config.json").write_text("{}")  # names folders; decides nothing here
    assert checkpoint_digest(copy) == checkpoint_digest(lerobot_act_checkpoint)
    weights = load_file(copy / "model.safetensors")
    name = "model.decoder_pos_embed.weight"
    weights[name] = weights[name] + 1e-3
    save_file(weights, copy / "model.safetensors", metadata={"format": "pt"})
    assert checkpoint_digest(copy) != checkpoint_digest(lerobot_act_checkpoint)
    load_lerobot_prior(copy)  # still a valid prior, with other weights


def test_the_pool_is_read_from_the_training_dataset_while_it_is_on_disk(lerobot_act_checkpoint, tmp_path):
    assert training_pool(lerobot_act_checkpoint) == {"robots": ["panda"], "tasks": ["lift"]}
    copy = _copy(lerobot_act_checkpoint, tmp_path)
    (copy / "train_config.json").unlink()
    assert training_pool(copy) == {"robots": [], "tasks": []}


def _damage(checkpoint, tmp_path, change):
    copy = _copy(checkpoint, tmp_path)
    config = json.loads((copy / "config.json").read_text())
    change(copy, config)
    (copy / "config.json").write_text(json.dumps(config))
    return copy


@pytest.mark.parametrize("change, words", [
    (lambda d, c: c.update(type="diffusion"), ["config.json: type: 'diffusion'", "act"]),
    (lambda d, c: c["input_features"].update({"observation.images.front": {"type": "VISUAL", "shape": [3, 32, 32]}}),
     ["config.json: input_features.observation.images.front", "no camera"]),
    (lambda d, c: c["input_features"].pop("observation.environment_state"),
     ["config.json: input_features: no observation.environment_state"]),
    (lambda d, c: (d / "model.safetensors").write_bytes((d / "model.safetensors").read_bytes()[:200]),
     ["model.safetensors: cannot be loaded"]),
    (lambda d, c: (d / "model.safetensors").unlink(), ["no model.safetensors"]),
])
def test_an_unfit_or_damaged_checkpoint_is_refused_naming_file_and_field(lerobot_act_checkpoint, tmp_path, change,
                                                                         words):
    copy = _damage(lerobot_act_checkpoint, tmp_path, change)
    with pytest.raises(CheckpointError) as err:
        load_lerobot_prior(copy)
    message = str(err.value)
    assert "\n" not in message and str(copy) in message
    for word in words:
        assert word in message, message
