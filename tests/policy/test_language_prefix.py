"""The language prefix: computing language once per distinct instruction is exact."""

import json

import torch

from locksmith.embodiment.registry import load_bundled_spec
from locksmith.policy.config import EmbodimentConfig, PolicyConfig
from locksmith.policy.trunk import HASH_FEATURES, Trunk, distinct_instructions
from locksmith.sim.scene import N_OBJECTS, N_PADS

SMALL = dict(d_model=32, n_layers=3, n_heads=4, d_feedforward=64, n_readouts=2)


def _config(prefix: bool) -> PolicyConfig:
    emb = (EmbodimentConfig.from_spec(load_bundled_spec("panda")),)
    return PolicyConfig(embodiments=emb, language_prefix=prefix, **SMALL)


def _inputs(b=7, n_lang=6, s=7, seed=0):  # s: state, 3 objects, 2 pads, 1 tcp
    g = torch.Generator().manual_seed(seed)
    instructions = torch.randn(3, n_lang, 384, generator=g)
    masks = torch.zeros(3, n_lang, dtype=torch.bool)
    masks[1, 4:] = True  # a shorter instruction
    masks[2, 5:] = True
    which = torch.tensor([0, 1, 0, 2, 2, 1, 0])[:b]
    language = instructions[which].clone()
    language[masks[which]] = 0.0  # padding carries zeros, as the encoder writes it
    stem_mask = torch.zeros(b, s, dtype=torch.bool)
    stem_mask[0, -1] = True
    return (torch.randn(b, 32, generator=g), language, masks[which], torch.randn(b, s, 32, generator=g), stem_mask)


def _reference(trunk: Trunk, embodiment, language, language_mask, stem_tokens, stem_mask):
    """Every sample's full sequence at once, with language queries blocked from other keys."""
    b, s, _ = stem_tokens.shape
    n_lang = language.shape[1]
    lang = trunk.language(language) + trunk.language_positions[:n_lang]
    first = (embodiment + trunk.slots[0])[:, None]
    stems = stem_tokens + trunk.slots[1 : s + 1]
    tokens = torch.cat([first, lang, stems, trunk.readouts.expand(b, -1, -1)], dim=1)
    t = tokens.shape[1]
    key_pad = torch.cat([torch.zeros(b, 1, dtype=torch.bool), language_mask, stem_mask,
                         torch.zeros(b, trunk.n_readouts, dtype=torch.bool)], dim=1)
    is_lang = torch.zeros(t, dtype=torch.bool)
    is_lang[1 : 1 + n_lang] = True
    blocked = key_pad[:, None, :] | (is_lang[None, :, None] & ~is_lang[None, None, :])  # (B, T, T)
    bias = torch.zeros(b, 1, t, t).masked_fill(blocked[:, None], float("-inf"))
    for block in trunk.blocks:
        tokens = block(tokens, bias)
    tokens = trunk.norm(tokens)
    keep = torch.cat([torch.tensor([0]), torch.arange(1 + n_lang, t)])
    return tokens[:, keep]


def test_prefix_trunk_equals_the_masked_full_sequence():
    torch.manual_seed(0)
    trunk = Trunk(_config(prefix=True)).eval()
    inputs = _inputs()
    readouts, entities = trunk(*inputs, return_entity_tokens=True)
    ref = _reference(trunk, *inputs)
    torch.testing.assert_close(readouts, ref[:, -trunk.n_readouts:], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(entities, ref[:, 2 : 2 + N_OBJECTS + N_PADS], atol=1e-5, rtol=1e-5)
    # readouts alone (acting: the last block computes only the readout tokens)
    torch.testing.assert_close(trunk(*inputs), ref[:, -trunk.n_readouts:], atol=1e-5, rtol=1e-5)
    # the full-attention path (old checkpoints) returns the same slots
    full = Trunk(_config(prefix=False)).eval()
    full.load_state_dict(trunk.state_dict())
    _, full_entities = full(*inputs, return_entity_tokens=True)
    assert full_entities.shape == entities.shape


def test_prefix_gradients_match_the_reference():
    torch.manual_seed(1)
    trunk = Trunk(_config(prefix=True)).train()
    inputs = _inputs(seed=1)
    readouts, entities = trunk(*inputs, return_entity_tokens=True)
    (readouts.square().sum() + entities.sum()).backward()
    fast = {n: p.grad.clone() for n, p in trunk.named_parameters() if p.grad is not None}
    trunk.zero_grad()
    ref = _reference(trunk, *inputs)
    (ref[:, -trunk.n_readouts:].square().sum() + ref[:, 2 : 2 + N_OBJECTS + N_PADS].sum()).backward()
    for name, p in trunk.named_parameters():
        if p.grad is not None:
            torch.testing.assert_close(fast[name], p.grad, atol=1e-4, rtol=1e-4, msg=name)


def test_distinct_instructions_groups_exactly():
    _, language, mask, _, _ = _inputs()
    reps, inverse = distinct_instructions(language, mask)
    assert len(reps) == 3
    assert torch.equal(language[reps][inverse], language)
    assert torch.equal(mask[reps][inverse], mask)
    # same tokens, different padding: two groups
    lang = torch.zeros(2, 4, 384)
    m = torch.tensor([[False, False, True, True], [False, False, False, True]])
    reps, inverse = distinct_instructions(lang, m)
    assert len(reps) == 2 and inverse.tolist() in ([0, 1], [1, 0])


def test_distinct_instructions_separates_rows_that_the_short_key_merges():
    """Rows equal in the hashed features but different further on: the short key merges them,
    the check against whole rows catches it, and the grouping is still exact."""
    lang = torch.zeros(4, 3, 384)
    lang[1, 2, HASH_FEATURES + 5] = 1.0  # differs from row 0 only beyond the short key
    lang[3] = lang[1]
    mask = torch.zeros(4, 3, dtype=torch.bool)
    reps, inverse = distinct_instructions(lang, mask)
    assert len(reps) == 2
    assert inverse[0] == inverse[2] != inverse[1] == inverse[3]
    assert torch.equal(lang[reps][inverse], lang)


def test_prefix_and_full_attention_differ_and_old_configs_load_without_prefix():
    torch.manual_seed(0)
    prefix = Trunk(_config(prefix=True)).eval()
    full = Trunk(_config(prefix=False)).eval()
    full.load_state_dict(prefix.state_dict())
    inputs = _inputs()
    assert not torch.allclose(prefix(*inputs), full(*inputs), atol=1e-4)
    data = json.loads(_config(prefix=True).to_json())
    del data["language_prefix"]  # a checkpoint written before the prefix existed
    assert PolicyConfig.from_json(json.dumps(data)).language_prefix is False
