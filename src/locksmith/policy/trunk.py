"""The shared trunk: a transformer over embodiment, language, observation and readout tokens.

Sequence for one sample (padded instruction tokens and the shorter robots' stems are masked):

    [embodiment] [language x L] [state] [objects x3] [pads x2] [tcp x n_arms] [readout x R]

Slot and language-position embeddings are shared, so a token's role is the same for every
robot; only the embodiment token says which robot it is.

With ``grounding_weight > 0`` the trunk also owns the shared grounding head: one logit per
object and pad token ("is this the entity the instruction names?"), trained by an auxiliary
loss. It is part of the trunk so that every robot, and every adapter, shares it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from locksmith.policy.config import MAX_ARMS, PolicyConfig
from locksmith.policy.language import MAX_TOKENS
from locksmith.sim.scene import N_OBJECTS, N_PADS

N_SLOTS = 1 + 1 + N_OBJECTS + N_PADS + MAX_ARMS  # embodiment, state, entities


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

    def forward(self, x: torch.Tensor, attn_bias: torch.Tensor | None) -> torch.Tensor:
        b, t, d = x.shape
        h = self.norm1(x)

        def heads(z: torch.Tensor) -> torch.Tensor:
            return z.view(b, t, self.n_heads, d // self.n_heads).transpose(1, 2)  # (B, H, T, d/H)

        drop = self.dropout if self.training else 0.0
        a = F.scaled_dot_product_attention(heads(self.q(h)), heads(self.k(h)), heads(self.v(h)),
                                           attn_mask=attn_bias, dropout_p=drop)
        x = x + self.out(a.transpose(1, 2).reshape(b, t, d))
        return x + self.fc2(F.dropout(F.gelu(self.fc1(self.norm2(x))), drop, self.training))


class Trunk(nn.Module):
    def __init__(self, config: PolicyConfig):
        super().__init__()
        d = config.d_model
        self.language = nn.Linear(config.language_dim, d)
        self.language_positions = nn.Parameter(torch.randn(MAX_TOKENS, d) * 0.02)
        self.slots = nn.Parameter(torch.randn(N_SLOTS, d) * 0.02)
        self.readouts = nn.Parameter(torch.randn(config.n_readouts, d) * 0.02)
        self.blocks = nn.ModuleList(
            Block(d, config.n_heads, config.d_feedforward, config.dropout) for _ in range(config.n_layers))
        self.norm = nn.LayerNorm(d)
        self.n_readouts = config.n_readouts
        self.grounding = nn.Linear(d, 1) if config.grounding_weight > 0 else None

    def forward(self, embodiment: torch.Tensor, language: torch.Tensor, language_mask: torch.Tensor,
                stem_tokens: torch.Tensor, stem_mask: torch.Tensor | None = None,
                return_stem_tokens: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Readout features (and, with ``return_stem_tokens``, the stem tokens' outputs (B, S, D)).

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
        lang = self.language(language) + self.language_positions[:n_lang]
        first = (embodiment + self.slots[0])[:, None]
        stems = stem_tokens + self.slots[1 : s + 1]
        tokens = torch.cat([first, lang, stems, self.readouts.expand(b, -1, -1)], dim=1)
        if stem_mask is None:
            stem_mask = torch.zeros(b, s, dtype=torch.bool, device=tokens.device)
        mask = torch.cat([
            torch.zeros(b, 1, dtype=torch.bool, device=tokens.device), language_mask, stem_mask,
            torch.zeros(b, self.n_readouts, dtype=torch.bool, device=tokens.device),
        ], dim=1)
        # Additive key mask (B, 1, 1, T): padded keys get -inf, so they are never attended to.
        bias = torch.zeros(mask.shape, dtype=tokens.dtype, device=tokens.device).masked_fill(mask, float("-inf"))
        bias = bias[:, None, None, :]
        for block in self.blocks:
            tokens = block(tokens, bias)
        tokens = self.norm(tokens)
        readouts = tokens[:, -self.n_readouts:]
        if return_stem_tokens:
            return readouts, tokens[:, 1 + n_lang : 1 + n_lang + s]
        return readouts
