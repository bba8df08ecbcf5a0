"""Relative (delta) joint-position actions: mapping from the spec, stats, round trips, files."""

import json

import numpy as np
import pytest
import torch

from locksmith.embodiment.registry import BUNDLED_ROBOTS, load_bundled_spec
from locksmith.policy.config import EmbodimentConfig, PolicyConfig, relative_action_index
from locksmith.policy.language import EMBEDDING_DIM
from locksmith.policy.normalize import RELATIVE_ACTION_KEY, relative_action_stats, to_absolute, to_relative
from locksmith.policy.policy import CrossEmbodimentPolicy

SMALL = dict(d_model=32, n_layers=2, n_heads=2, d_feedforward=64, n_readouts=2)


def _stats(n):
    return {"mean": np.zeros(n), "std": np.ones(n), "q01": -np.ones(n), "q99": np.ones(n), "min": -np.ones(n),
            "max": np.ones(n)}


def test_index_maps_joint_position_actions_to_the_same_arms_joint_state():
    assert relative_action_index(load_bundled_spec("panda")) == (0, 1, 2, 3, 4, 5, 6, -1)
    aloha = relative_action_index(load_bundled_spec("aloha"))
    assert aloha == (0, 1, 2, 3, 4, 5, -1, 7, 8, 9, 10, 11, 12, -1)
    for robot in ("ur5e", "vx300s", "mobile_panda"):  # ee_delta / velocity commands are relative already
        assert EmbodimentConfig.from_spec(load_bundled_spec(robot)).action_state_index == ()


@pytest.mark.parametrize("robot", BUNDLED_ROBOTS)
def test_every_bundled_robot_builds_with_relative_actions(robot):
    spec = load_bundled_spec(robot)
    emb = EmbodimentConfig.from_spec(spec)
    def joints(section):  # the joint each dimension belongs to (None: not a joint)
        return [j for c in getattr(spec, section) for j in (
            spec.arm(c.arm).joints if c.kind in ("joint_position", "joint_velocity") else [None] * c.size)]

    for i, j in enumerate(emb.action_state_index):
        if j >= 0:  # a joint action is relative to the same joint's state
            assert joints("action")[i] == joints("state")[j] is not None


def test_bad_index_is_refused():
    emb = EmbodimentConfig.from_spec(load_bundled_spec("panda"))
    with pytest.raises(ValueError, match="action_state_index has 3 entries"):
        EmbodimentConfig(**{**emb.__dict__, "action_state_index": (0, 1, 2)})
    with pytest.raises(ValueError, match="outside"):
        EmbodimentConfig(**{**emb.__dict__, "action_state_index": (99,) * 8})
    with pytest.raises(ValueError, match="relative_actions=False"):
        PolicyConfig(embodiments=(emb,), relative_actions=False)


def test_to_relative_and_back():
    g = torch.Generator().manual_seed(0)
    action, state = torch.randn(4, 6, 3, generator=g), torch.randn(4, 5, generator=g)
    index = torch.tensor([2, -1, 0])
    rel = to_relative(action, state, index)
    torch.testing.assert_close(rel[..., 0], action[..., 0] - state[:, None, 2])
    assert torch.equal(rel[..., 1], action[..., 1])
    torch.testing.assert_close(to_absolute(rel, state, index), action, rtol=0, atol=1e-6)


def test_relative_stats_match_a_numpy_reference():
    rng = np.random.default_rng(0)
    state, action = rng.normal(size=(7, 2)), rng.normal(size=(7, 2))
    ends = np.array([4, 4, 4, 4, 7, 7, 7])  # episodes [0, 4) and [4, 7)
    stats = relative_action_stats(state, action, ends, (1, -1), chunk_size=3)
    rows = [np.array([action[t + k, 0] - state[t, 1], action[t + k, 1]])
            for t in range(7) for k in range(3) if t + k < ends[t]]
    ref = np.stack(rows)
    np.testing.assert_allclose(stats["mean"], ref.mean(0))
    np.testing.assert_allclose(stats["q99"], np.quantile(ref, 0.99, axis=0))


def _policy(relative: bool):
    spec = load_bundled_spec("panda")
    emb = EmbodimentConfig.from_spec(spec, relative_actions=relative)
    config = PolicyConfig(embodiments=(emb,), relative_actions=relative, **SMALL)
    stats = {"observation.state": _stats(emb.state_dim), "observation.environment_state": _stats(emb.env_dim),
             "action": _stats(emb.action_dim), RELATIVE_ACTION_KEY: {**_stats(emb.action_dim), "q99": np.full(8, 3.0)}}
    torch.manual_seed(0)
    policy = CrossEmbodimentPolicy(config, stats={"panda": stats}, specs={"panda": spec}).eval()
    policy.language.cache["t"] = np.zeros((3, EMBEDDING_DIM), dtype=np.float32)
    return policy


def test_predicted_chunk_is_the_head_output_plus_the_current_joint_state():
    policy = _policy(True)
    g = torch.Generator().manual_seed(1)
    state, env = torch.randn(2, 8, generator=g), torch.randn(2, 37, generator=g)
    chunk = policy.predict_action_chunk("panda", state, env, ["t", "t"])  # (2, H, 8)
    with torch.no_grad():
        readouts = policy._readouts({"panda": (state, env, *policy.embed_instructions(["t", "t"]))})["panda"]
        head = policy.normalizers["panda"].action.unnormalize(policy.heads["panda"](readouts))  # (2, H, 8)
    torch.testing.assert_close(chunk[..., :7], head[..., :7] + state[:, None, :7], rtol=0, atol=1e-6)
    assert torch.equal(chunk[..., 7], head[..., 7])  # the gripper stays absolute
    # and the training target inverts the prediction
    target = policy.action_targets("panda", chunk, state)
    torch.testing.assert_close(policy.native_actions("panda", target, state), chunk, rtol=0, atol=1e-5)


def test_save_load_reproduces_relative_actions_exactly(tmp_path):
    policy = _policy(True)
    policy.save_pretrained(tmp_path / "ckpt")
    again = CrossEmbodimentPolicy.from_pretrained(tmp_path / "ckpt")
    assert not again.training  # loaded for inference, as LeRobot's policies are
    assert again.config == policy.config and again.config.embodiment("panda").relative_actions
    state, env = np.random.default_rng(2).normal(size=(3, 8)), np.random.default_rng(3).normal(size=(3, 37))
    a = policy.predict_action_chunk("panda", state, env, ["t"] * 3)
    b = again.predict_action_chunk("panda", state, env, ["t"] * 3)
    assert torch.equal(a, b)
    assert RELATIVE_ACTION_KEY in again.stats["panda"]


def test_config_written_before_relative_actions_loads_as_absolute():
    policy = _policy(False)
    data = json.loads(policy.config.to_json())
    del data["relative_actions"]
    for e in data["embodiments"]:
        del e["action_state_index"]
    old = PolicyConfig.from_json(json.dumps(data))
    assert not old.relative_actions and not old.embodiment("panda").relative_actions


def test_grounding_head_is_shared_trained_and_saved(tmp_path):
    spec = load_bundled_spec("panda")
    config = PolicyConfig(embodiments=(EmbodimentConfig.from_spec(spec),), grounding_weight=0.5, **SMALL)
    policy = CrossEmbodimentPolicy(config)
    assert any(k.startswith("trunk.grounding.") for k in policy.state_dict())
    emb = config.embodiment("panda")
    g = torch.Generator().manual_seed(0)
    batch = {"panda": {
        "observation.state": torch.randn(4, 8, generator=g), "observation.environment_state": torch.randn(4, 37, generator=g),
        "language": torch.randn(4, 5, EMBEDDING_DIM, generator=g), "language_mask": torch.zeros(4, 5, dtype=torch.bool),
        "action": torch.randn(4, emb.chunk_size, 8, generator=g), "action_is_pad": torch.zeros(4, emb.chunk_size, dtype=torch.bool),
        "target_object": torch.tensor([0, 1, 2, 0]), "target_pad": torch.tensor([1, -1, 0, -1]), "weight": 4.0}}
    loss, metrics = policy(batch)
    assert metrics["grounding/panda"] > 0 and loss > metrics["loss/panda"]
    loss.backward()
    assert policy.trunk.grounding.weight.grad.abs().sum() > 0
    policy.save_pretrained(tmp_path / "g")
    assert CrossEmbodimentPolicy.from_pretrained(tmp_path / "g").config.grounding_weight == 0.5
