import numpy as np
import pytest
import torch

from locksmith.embodiment.registry import load_bundled_spec
from locksmith.policy.adapters import RECIPES, build_adapted, choose_donor, get_recipe, make_regularizer, merge_lora
from locksmith.policy.config import EmbodimentConfig, PolicyConfig
from locksmith.policy.language import EMBEDDING_DIM
from locksmith.policy.policy import CrossEmbodimentPolicy

POOL = ("panda", "ur5e")
SMALL = dict(d_model=32, n_layers=2, n_heads=2, d_feedforward=64, n_readouts=2)


def _stats(spec, env_dim):
    def s(n):
        return {"mean": np.zeros(n), "std": np.ones(n), "q01": -np.ones(n), "q99": np.ones(n),
                "min": -np.ones(n), "max": np.ones(n)}
    return {"observation.state": s(spec.state_dim), "observation.environment_state": s(env_dim), "action": s(spec.action_dim)}


@pytest.fixture(scope="module")
def prior():
    torch.manual_seed(0)
    cfg = PolicyConfig(embodiments=tuple(EmbodimentConfig.from_spec(load_bundled_spec(r)) for r in POOL), **SMALL)
    return CrossEmbodimentPolicy(cfg, specs={r: load_bundled_spec(r) for r in POOL})


def _batch(policy, robot, b=4):
    emb = policy.config.embodiment(robot)
    g = torch.Generator().manual_seed(1)
    return {robot: {
        "observation.state": torch.randn(b, emb.state_dim, generator=g),
        "observation.environment_state": torch.randn(b, emb.env_dim, generator=g),
        "language": torch.randn(b, 5, EMBEDDING_DIM, generator=g),
        "language_mask": torch.zeros(b, 5, dtype=torch.bool),
        "action": torch.randn(b, emb.chunk_size, emb.action_dim, generator=g),
        "action_is_pad": torch.zeros(b, emb.chunk_size, dtype=torch.bool), "weight": float(b)}}


def _adapt(prior, recipe, target="mobile_panda"):
    spec = load_bundled_spec(target)
    env_dim = EmbodimentConfig.from_spec(spec).env_dim
    return build_adapted(prior, spec, _stats(spec, env_dim), get_recipe(recipe))


@pytest.mark.parametrize("recipe", [r for r in RECIPES if not RECIPES[r].freeze_vision])  # pixels: test_pixels.py
def test_every_recipe_trains_only_what_it_says(prior, recipe):
    policy, info = _adapt(prior, recipe)
    before = {k: v.detach().clone() for k, v in policy.named_parameters()}
    opt = torch.optim.SGD([p for p in policy.parameters() if p.requires_grad], lr=0.1)
    for _ in range(2):
        loss, _ = policy(_batch(policy, "mobile_panda"))
        opt.zero_grad()
        loss.backward()
        opt.step()
    changed = {k for k, v in policy.named_parameters() if not torch.equal(v, before[k])}
    assert any(k.startswith("stems.mobile_panda") for k in changed)
    assert any(k.startswith("heads.mobile_panda") for k in changed)
    token_changed = "embodiment_tokens.mobile_panda" in changed
    trunk_base_changed = any(k.startswith("trunk.") and "lora_" not in k for k in changed)
    lora_changed = any("lora_" in k for k in changed)
    rec = RECIPES[recipe]
    assert token_changed == (rec.train_token or rec.train_all)
    assert trunk_base_changed == rec.train_all
    assert lora_changed == rec.lora
    assert info["trainable_parameters"] == sum(p.numel() for p in policy.parameters() if p.requires_grad)
    assert not any(k.startswith("normalizers") for k in changed)


def test_prior_recipes_start_from_the_prior_and_scratch_does_not(prior):
    adapted, info = _adapt(prior, "head")
    scratch, _ = _adapt(prior, "scratch")
    assert info["donor"] == "panda"  # same action kind family and rate
    for name, p in prior.trunk.named_parameters():
        assert torch.equal(adapted.trunk.get_parameter(name), p)
    assert not torch.equal(scratch.trunk.blocks[0].q.weight, prior.trunk.blocks[0].q.weight)
    assert adapted.config.d_model == scratch.config.d_model and adapted.num_parameters() == scratch.num_parameters()


def test_lora_with_zero_b_is_exactly_the_base_model(prior):
    head, _ = _adapt(prior, "head")
    lora, _ = _adapt(prior, "lora")
    lora.load_state_dict(head.state_dict(), strict=False)
    batch = _batch(head, "mobile_panda")["mobile_panda"]
    args = (batch["observation.state"], batch["observation.environment_state"], batch["language"], batch["language_mask"])
    a = head._readouts({"mobile_panda": args})["mobile_panda"]
    b = lora._readouts({"mobile_panda": args})["mobile_panda"]
    assert torch.equal(a, b)


def test_lora_merge_gives_the_same_actions(prior, tmp_path):
    lora, _ = _adapt(prior, "lora")
    with torch.no_grad():
        for name, p in lora.trunk.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    lora.language.cache["go"] = np.ones((4, EMBEDDING_DIM), np.float32)
    emb = lora.config.embodiment("mobile_panda")
    state, env = np.random.default_rng(0).normal(size=(3, emb.state_dim)), np.random.default_rng(1).normal(size=(3, emb.env_dim))
    before = lora.eval().predict_action_chunk("mobile_panda", state, env, ["go"] * 3)
    merged = merge_lora(lora)
    assert not any("lora_" in n for n, _ in merged.named_parameters())
    after = merged.predict_action_chunk("mobile_panda", state, env, ["go"] * 3)
    torch.testing.assert_close(after, before, atol=1e-5, rtol=1e-5)  # float32 re-association only
    merged.save_pretrained(tmp_path / "key")
    again = CrossEmbodimentPolicy.from_pretrained(tmp_path / "key")
    assert torch.equal(again.predict_action_chunk("mobile_panda", state, env, ["go"] * 3), after)


def test_regularizers(prior):
    policy, _ = _adapt(prior, "token")
    reg = make_regularizer(policy, RECIPES["token"], 0.5)
    expected = 0.5 * sum((p ** 2).sum() for p in policy.parameters() if p.requires_grad)
    torch.testing.assert_close(reg(policy), expected)
    full, _ = _adapt(prior, "full")
    l2sp = make_regularizer(full, RECIPES["full"], 1.0, prior=prior)
    assert float(l2sp(full)) == 0.0  # starts at the prior
    with torch.no_grad():
        full.trunk.blocks[0].q.weight.add_(0.1)
    assert float(l2sp(full)) == pytest.approx(0.01 * full.trunk.blocks[0].q.weight.numel(), rel=1e-4)
    assert make_regularizer(policy, RECIPES["head"], 0.0) is None


def test_unknown_recipe_lists_known():
    with pytest.raises(KeyError, match="known recipes"):
        get_recipe("surgery")


def test_donor_prefers_same_action_kind(prior):
    assert choose_donor(prior, load_bundled_spec("so101")) == "panda"  # joint_position like so101


@pytest.mark.parametrize("recipe", ["head", "lora", "full"])
def test_adapted_policy_keeps_the_priors_shared_grounding_head(prior, recipe):
    assert prior.trunk.grounding is not None  # on by default
    policy, _ = _adapt(prior, recipe)
    assert torch.equal(policy.trunk.grounding.weight, prior.trunk.grounding.weight)
    assert policy.config.grounding_weight == prior.config.grounding_weight
    assert policy.config.relative_actions == prior.config.relative_actions
