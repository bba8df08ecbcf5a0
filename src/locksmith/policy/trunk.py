"""The shared trunk: a transformer over embodiment, language, observation and readout tokens.

Sequence for one sample (padded instruction tokens and the shorter robots' stems are masked):

    [embodiment] [language x L] [state] [objects x3] [pads x2] [tcp x n_arms] [readout x R]

Slot and language-position embeddings are shared, so a token's role is the same for every
robot; only the embodiment token says which robot it is.

With ``language_prefix`` (the default) the instruction is a prefix, as in a prefix language
model: language tokens attend only to each other, while every other token attends to all. The
language tokens' states then depend on the instruction alone, so each layer computes them once
per distinct instruction in the batch (a training batch of 256 holds a handful) and the
observation tokens read their keys and values by index. About half of each sample's tokens are
language, so this halves the trunk's work; the result is exact (the same as running every
sample's prefix separately), checked by a test.

With ``grounding_weight > 0`` the trunk also owns the shared grounding head: one logit per
object and pad token ("is this the entity the instruction names?"), trained by an auxiliary
loss. It is part of the trunk so that every robot, and every adapter, shares it. So are the shared stem
and head of the intent action space (`locksmith.policy.intent`), when the policy has one, and the
vision encoder of a pixel policy (`locksmith.policy.vision`): its stem tokens are the state and one
token per image cell, in place of the object, pad and TCP tokens. With ``scene_weight > 0`` a pixel
policy's trunk also owns the scene head: from the readouts, where the named cube and pad are in the
camera's frame, trained against the recorded scene state by an auxiliary loss (the pictures must
then carry where things are, not only how the arm moves); it is never read when acting.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from locksmith.policy.config import MAX_ARMS, PolicyConfig
from locksmith.policy.language import MAX_TOKENS
from locksmith.policy.vision import VisionEncoder, n_image_tokens
from locksmith.sim.scene import N_OBJECTS, N_PADS

N_SLOTS = 1 + 1 + N_OBJECTS + N_PADS + MAX_ARMS  # embodiment, state, entities
# Where the object and pad tokens sit among the stem tokens (after the state token).
ENTITIES = slice(1, 1 + N_OBJECTS + N_PADS)
N_ENTITIES = N_OBJECTS + N_PADS
SCENE_TARGETS = 6  # the scene head's outputs: the named cube's position, the named pad's
HASH_FEATURES = 8  # features per language token that `distinct_instructions` hashes


class Block(nn.Module):
    """Pre-norm transformer block with separate q/k/v/out and MLP `nn.Linear` layers, so that
    adapters (LoRA through peft) can target attention and MLP by name."""

    def __init__(self, d: int, n_heads: int, d_ff: int, dropout: float):
        super().__init__()
        self.n_heads = n_heads
        self.norm1 = nn.LayerNorm(d)
        self.q = nn.Linear(d, d)
        self.k = nn.Linear(d, d)
        self.v = nn.Linear(d, d)
        self.out = nn.Linear(d, d)
        self.norm2 = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, d_ff)
        self.fc2 = nn.Linear(d_ff, d)
        self.dropout = dropout

    def _heads(self, z: torch.Tensor) -> torch.Tensor:
        """(N, T, D) → (N, H, T, D/H)."""
        n, t, d = z.shape
        return z.view(n, t, self.n_heads, d // self.n_heads).transpose(1, 2)

    def forward(self, x: torch.Tensor, attn_bias: torch.Tensor | None) -> torch.Tensor:
        b, t, d = x.shape
        h = self.norm1(x)
        heads = self._heads
        drop = self.dropout if self.training else 0.0
        a = F.scaled_dot_product_attention(heads(self.q(h)), heads(self.k(h)), heads(self.v(h)),
                                           attn_mask=attn_bias, dropout_p=drop)
        x = x + self.out(a.transpose(1, 2).reshape(b, t, d))
        return x + self._mlp(x)

    def _mlp(self, x: torch.Tensor) -> torch.Tensor:
        drop = self.dropout if self.training else 0.0
        return self.fc2(F.dropout(F.gelu(self.fc1(self.norm2(x))), drop, self.training))

    def forward_prefix(self, lang: torch.Tensor, lang_bias: torch.Tensor, x: torch.Tensor, x_bias: torch.Tensor,
                       inverse: torch.Tensor, last: int | None = None) -> tuple[torch.Tensor | None, torch.Tensor]:
        """One block with the language as a prefix.

        ``lang`` (U, L, D): the distinct instructions' tokens, ``lang_bias`` (U, 1, 1, L) their
        key mask; ``x`` (B, S, D) the other tokens, ``x_bias`` (B, 1, 1, S); ``inverse`` (B,)
        the instruction of each sample. Language attends to language; ``x`` attends to both.

        With ``last`` (the final block), only the last ``last`` tokens of ``x`` are computed, from
        every token's keys and values, and no language outputs (None is returned for them): the
        other outputs would be discarded, so this gives the same result with less work.
        """
        u, n_lang, d = lang.shape
        hl, hx = self.norm1(lang), self.norm1(x)
        heads = self._heads
        drop = self.dropout if self.training else 0.0
        kl, vl = heads(self.k(hl)), heads(self.v(hl))
        # index_select rather than kl[inverse]: the same rows, but its backward is a parallel
        # index_add where advanced indexing's accumulating index_put runs on one thread.
        keys = torch.cat([kl.index_select(0, inverse), heads(self.k(hx))], dim=2)
        values = torch.cat([vl.index_select(0, inverse), heads(self.v(hx))], dim=2)
        bias = torch.cat([lang_bias.index_select(0, inverse), x_bias], dim=-1)
        if last is not None:
            x, hx = x[:, -last:], hx[:, -last:]
        b, t, _ = x.shape
        ax = F.scaled_dot_product_attention(heads(self.q(hx)), keys, values, attn_mask=bias, dropout_p=drop)
        x = x + self.out(ax.transpose(1, 2).reshape(b, t, d))
        x = x + self._mlp(x)
        if last is not None:
            return None, x
        al = F.scaled_dot_product_attention(heads(self.q(hl)), kl, vl, attn_mask=lang_bias, dropout_p=drop)
        lang = lang + self.out(al.transpose(1, 2).reshape(u, n_lang, d))
        return lang + self._mlp(lang), x


def key_bias(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Additive key mask (N, 1, 1, T) from a padding mask (N, T), True = pad: padded keys get
    -inf, so they are never attended to."""
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(mask, float("-inf"))[:, None, None, :]


def distinct_instructions(language: torch.Tensor, language_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(representatives (U,), inverse (B,)): ``language[representatives][inverse]`` equals
    ``language`` exactly (and the masks too).

    Rows are grouped by a linear hash of the first ``HASH_FEATURES`` features of every token
    (contextual sentence-encoder tokens differ there), and the grouping is verified against the
    whole rows. If the short key merged two different rows, the whole rows are hashed; if that
    collides too, every sample is its own group."""
    b = language.shape[0]
    every = torch.arange(b, device=language.device)
    flat = language.reshape(b, -1)
    for features in (HASH_FEATURES, language.shape[2]):
        reps, inverse = _group_by_hash(language[:, :, :features], language_mask)
        members = reps[inverse]
        if torch.equal(flat[members], flat) and torch.equal(language_mask[members], language_mask):
            return reps, inverse
    return every, every


def _group_by_hash(language: torch.Tensor, language_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Candidate grouping of the rows of ``language`` (B, L, F) by a hash of their bit patterns.
    Integer arithmetic: exact and independent of summation order (a float dot product can round
    identical rows differently)."""
    b = language.shape[0]
    sample = language.reshape(b, -1).float().contiguous()
    bits = torch.cat([sample.view(torch.int32), language_mask.to(torch.int32)], dim=1).to(torch.int64)
    multipliers = torch.arange(1, bits.shape[1] + 1, dtype=torch.int64, device=bits.device) * 2654435761
    _, inverse = torch.unique((bits * multipliers).sum(dim=1), return_inverse=True)
    reps = torch.empty(int(inverse.max()) + 1 if b else 0, dtype=torch.long, device=bits.device)
    reps.scatter_(0, inverse, torch.arange(b, device=bits.device))
    return reps, inverse


class Trunk(nn.Module):
    def __init__(self, config: PolicyConfig):
        super().__init__()
        d = config.d_model
        self.language = nn.Linear(config.language_dim, d)
        self.language_positions = nn.Parameter(torch.randn(MAX_TOKENS, d) * 0.02)
        # a pixel policy's stem tokens: its state and one per image cell (`policy.vision`)
        n_slots = 2 + n_image_tokens(config.image_size, config.keypoints) if config.pixels else N_SLOTS
        self.slots = nn.Parameter(torch.randn(n_slots, d) * 0.02)
        self.vision = (VisionEncoder(d, config.image_size, config.image_shift, config.keypoints, config.colour_film)
                       if config.pixels else None)
        self.readouts = nn.Parameter(torch.randn(config.n_readouts, d) * 0.02)
        self.blocks = nn.ModuleList(
            Block(d, config.n_heads, config.d_feedforward, config.dropout) for _ in range(config.n_layers))
        self.norm = nn.LayerNorm(d)
        self.n_readouts = config.n_readouts
        self.grounding = nn.Linear(d, 1) if config.grounding_weight > 0 else None
        # a pixel policy's auxiliary readout: where the named cube and pad are (camera frame, normalized)
        self.scene = nn.Linear(config.n_readouts * d, SCENE_TARGETS) if config.scene_weight > 0 else None
        self.language_prefix = config.language_prefix
        if config.intent:  # the shared stem and head of the intent action space (policy.intent)
            from locksmith.policy.intent import IntentHead, IntentStem

            self.intent_stem = IntentStem(d)
            self.intent_head = IntentHead(d, config.n_readouts, config.head_multiplier)

    def forward(self, embodiment: torch.Tensor, language: torch.Tensor, language_mask: torch.Tensor,
                stem_tokens: torch.Tensor, stem_mask: torch.Tensor | None = None,
                return_entity_tokens: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Readout features (and, with ``return_entity_tokens``, the object and pad tokens' outputs
        (B, N_OBJECTS + N_PADS, D), which the grounding head reads).

        Args:
            embodiment: (B, D) embodiment token of each sample's robot.
            language: (B, L, language_dim) instruction tokens; language_mask (B, L), True = pad.
            stem_tokens: (B, S, D) state and entity tokens (S <= N_SLOTS - 1).
            stem_mask: (B, S) True where a stem token is padding.
        Returns:
            (B, n_readouts, D)
        """
        b, s, _ = stem_tokens.shape
        n_lang = language.shape[1]
        first = (embodiment + self.slots[0])[:, None]
        stems = stem_tokens + self.slots[1 : s + 1]
        if stem_mask is None:
            stem_mask = torch.zeros(b, s, dtype=torch.bool, device=stem_tokens.device)
        if self.language_prefix:
            return self._forward_prefix(first, language, language_mask, stems, stem_mask, return_entity_tokens)
        lang = self.language(language) + self.language_positions[:n_lang]
        tokens = torch.cat([first, lang, stems, self.readouts.expand(b, -1, -1)], dim=1)
        mask = torch.cat([
            torch.zeros(b, 1, dtype=torch.bool, device=tokens.device), language_mask, stem_mask,
            torch.zeros(b, self.n_readouts, dtype=torch.bool, device=tokens.device),
        ], dim=1)
        bias = key_bias(mask, tokens.dtype)
        for block in self.blocks:
            tokens = block(tokens, bias)
        tokens = self.norm(tokens)
        readouts = tokens[:, -self.n_readouts:]
        if return_entity_tokens:
            start = 1 + n_lang + ENTITIES.start  # after the embodiment and the language tokens
            return readouts, tokens[:, start : start + N_ENTITIES]
        return readouts

    def _forward_prefix(self, first: torch.Tensor, language: torch.Tensor, language_mask: torch.Tensor,
                        stems: torch.Tensor, stem_mask: torch.Tensor, return_entity_tokens: bool):
        b = stems.shape[0]
        reps, inverse = distinct_instructions(language, language_mask)
        lang = self.language(language[reps]) + self.language_positions[: language.shape[1]]
        lang_bias = key_bias(language_mask[reps], lang.dtype)
        # Token order [embodiment, state, tcp..., objects, pads, readouts]: the tokens whose
        # outputs are read (readouts; with return_entity_tokens the objects and pads too) come
        # last, so the final block computes only those. Attention does not depend on the order
        # of tokens (a token's role is its slot embedding, added above).
        order = [stems[:, :ENTITIES.start], stems[:, ENTITIES.stop:], stems[:, ENTITIES]]
        order_mask = [stem_mask[:, :ENTITIES.start], stem_mask[:, ENTITIES.stop:], stem_mask[:, ENTITIES]]
        x = torch.cat([first, *order, self.readouts.expand(b, -1, -1)], dim=1)
        x_mask = torch.cat([torch.zeros(b, 1, dtype=torch.bool, device=x.device), *order_mask,
                            torch.zeros(b, self.n_readouts, dtype=torch.bool, device=x.device)], dim=1)
        x_bias = key_bias(x_mask, x.dtype)
        keep = self.n_readouts + (N_ENTITIES if return_entity_tokens else 0)
        for i, block in enumerate(self.blocks):
            lang, x = block.forward_prefix(lang, lang_bias, x, x_bias, inverse,
                                           last=keep if i == len(self.blocks) - 1 else None)
        x = self.norm(x)
        readouts = x[:, -self.n_readouts:]
        if return_entity_tokens:
            return readouts, x[:, :N_ENTITIES]
        return readouts
