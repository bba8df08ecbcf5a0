import json

import numpy as np
import pytest
import torch

from locksmith.embodiment.registry import BUNDLED_ROBOTS, load_bundled_spec
from locksmith.policy.config import EmbodimentConfig, PolicyConfig
from locksmith.policy.language import EMBEDDING_DIM, MAX_TOKENS
from locksmith.policy.normalize import FeatureNormalizer
from locksmith.policy.policy import CheckpointError, CrossEmbodimentPolicy

SMALL = dict(d_model=32, n_layers=2, n_heads=2, d_feedforward=64, n_readouts=2)


def _config(robots=BUNDLED_ROBOTS):
    return PolicyConfig(embodiments=tuple(EmbodimentConfig.from_spec(load_bundled_spec(r)) for r in robots), **SMALL)


def _fake_batch(config, b=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    batch = {}
    for emb in config.embodiments:
        batch[emb.name] = {
            "observation.state": torch.randn(b, emb.state_dim, generator=g),
            "observation.environment_state": torch.randn(b, emb.env_dim, generator=g),
            "language": torch.randn(b, MAX_TOKENS, EMBEDDING_DIM, generator=g),
            "language_mask": torch.arange(MAX_TOKENS).expand(b, -1) >= 9,
            "action": torch.randn(b, emb.chunk_size, emb.action_dim, generator=g),
            "action_is_pad": torch.zeros(b, emb.chunk_size, dtype=torch.bool),
            "weight": float(b),
        }
    return batch


def test_forward_shapes_for_every_bundled_embodiment():
    config = _config()
    policy = CrossEmbodimentPolicy(config)
    loss, metrics = policy(_fake_batch(config))
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert set(metrics) == {"loss"} | {f"loss/{r}" for r in BUNDLED_ROBOTS}
    readouts = policy._readouts({r: (b["observation.state"], b["observation.environment_state"], b["language"],
                                     b["language_mask"]) for r, b in _fake_batch(config).items()})
    for emb in config.embodiments:
        out = policy.heads[emb.name](readouts[emb.name])
        assert out.shape == (3, emb.chunk_size, emb.action_dim)
        # chunk is about one second of control
        assert abs(emb.chunk_size - load_bundled_spec(emb.name).control_rate_hz) <= 1


def test_padding_of_shorter_robots_does_not_change_their_output():
    """A one-arm robot batched with the two-arm one gets the same readouts as alone."""
    config = _config(("panda", "aloha"))
    policy = CrossEmbodimentPolicy(config).eval()
    batch = _fake_batch(config)
    groups = {r: (b["observation.state"], b["observation.environment_state"], b["language"], b["language_mask"])
              for r, b in batch.items()}
    together = policy._readouts(groups)["panda"]
    alone = policy._readouts({"panda": groups["panda"]})["panda"]
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-5)


def test_padded_steps_do_not_count():
    config = _config(("panda",))
    policy = CrossEmbodimentPolicy(config)
    batch = _fake_batch(config)
    batch["panda"]["action_is_pad"][:, -5:] = True
    loss_a, _ = policy(batch)
    batch["panda"]["action"][:, -5:] += 100.0
    loss_b, _ = policy(batch)
    assert torch.equal(loss_a.detach(), loss_b.detach())
    batch["panda"]["action_is_pad"][:, -5:] = False
    loss_c, _ = policy(batch)
    assert float(loss_c) > float(loss_a) + 10.0  # the same steps, counted, change the loss


def test_save_load_round_trip_is_exact(tmp_path):
    config = _config(("panda", "mobile_panda"))
    policy = CrossEmbodimentPolicy(config, specs={"panda": load_bundled_spec("panda")})
    policy.language.cache["lift the red cube"] = np.ones((6, EMBEDDING_DIM), dtype=np.float32)
    policy.save_pretrained(tmp_path / "ckpt")
    again = CrossEmbodimentPolicy.from_pretrained(tmp_path / "ckpt")
    a, b = policy.state_dict(), again.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert again.config == config
    assert again.specs["panda"] == load_bundled_spec("panda")
    assert np.array_equal(again.language.cache["lift the red cube"], policy.language.cache["lift the red cube"])


def test_head_width_is_configured_and_saved(tmp_path):
    from dataclasses import replace

    config = replace(_config(("z1",)), head_multiplier=3)
    policy = CrossEmbodimentPolicy(config)
    assert policy.heads["z1"].net[0].out_features == 3 * SMALL["d_model"]
    policy.save_pretrained(tmp_path / "ckpt")
    assert CrossEmbodimentPolicy.from_pretrained(tmp_path / "ckpt").config.head_multiplier == 3
    # A config written before the field existed loads with the width its heads were built with.
    older = json.loads(_config(("z1",)).to_json())
    del older["head_multiplier"]
    assert PolicyConfig.from_json(json.dumps(older)).head_multiplier == 2
    with pytest.raises(ValueError, match="head_multiplier"):
        replace(config, head_multiplier=0)


def test_bad_checkpoints(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        CrossEmbodimentPolicy.from_pretrained(tmp_path / "missing")
    config = _config(("panda",))
    CrossEmbodimentPolicy(config).save_pretrained(tmp_path / "ok")
    weights = tmp_path / "ok" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="cannot be read"):
        CrossEmbodimentPolicy.from_pretrained(tmp_path / "ok")
    CrossEmbodimentPolicy(config).save_pretrained(tmp_path / "newer")
    cfg = tmp_path / "newer" / "config.json"
    cfg.write_text(cfg.read_text().replace('"version": 1', '"version": 99'))
    with pytest.raises(CheckpointError, match="newer"):
        CrossEmbodimentPolicy.from_pretrained(tmp_path / "newer")
    policy = CrossEmbodimentPolicy(config)
    with pytest.raises(CheckpointError, match="no embodiment 'so101'"):
        policy.predict_action_chunk("so101", np.zeros((1, 6)), np.zeros((1, 37)), ["x"])


def test_normalizer_matches_numpy_reference():
    rng = np.random.default_rng(0)
    data = rng.normal(3.0, 2.0, size=(500, 4))
    data[:, 2] = 7.0  # a constant dimension
    stats = {"mean": data.mean(0), "std": data.std(0), "q01": np.quantile(data, 0.01, 0),
             "q99": np.quantile(data, 0.99, 0)}
    x = torch.as_tensor(data[:10], dtype=torch.float32)
    ms = FeatureNormalizer.mean_std(stats)
    ref = (data[:10] - stats["mean"]) / np.where(stats["std"] < 1e-4, 1.0, stats["std"])
    np.testing.assert_allclose(ms.normalize(x).numpy(), ref, rtol=1e-5, atol=1e-5)
    qr = FeatureNormalizer.quantile_range(stats)
    half = (stats["q99"] - stats["q01"]) / 2
    ref_q = (data[:10] - (stats["q99"] + stats["q01"]) / 2) / np.where(half < 1e-4, 1.0, half)
    np.testing.assert_allclose(qr.normalize(x).numpy(), ref_q, rtol=1e-5, atol=1e-5)
    for norm in (ms, qr):
        np.testing.assert_allclose(norm.unnormalize(norm.normalize(x)).numpy(), data[:10], rtol=1e-5, atol=1e-4)
        assert torch.isfinite(norm.normalize(x)).all()


def test_select_action_queues_n_action_steps():
    config = _config(("panda",))
    policy = CrossEmbodimentPolicy(config).eval()
    policy.language.cache["t"] = np.zeros((3, EMBEDDING_DIM), dtype=np.float32)
    emb = config.embodiment("panda")
    state, env = np.zeros((2, emb.state_dim)), np.zeros((2, emb.env_dim))
    chunk = policy.predict_action_chunk("panda", state, env, ["t", "t"]).numpy()
    for k in range(emb.n_action_steps):
        np.testing.assert_allclose(policy.select_action("panda", state + k, env, ["t", "t"]), chunk[:, k], atol=1e-6)
    policy.reset()
    assert not policy._queues
