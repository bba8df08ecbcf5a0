"""The shared trunk: a transformer over embodiment, language, observation and readout tokens.

Sequence for one sample (padded instruction tokens and the shorter robots' stems are masked):

    [embodiment] [language x L] [state] [objects x3] [pads x2] [tcp x n_arms] [readout x R]

Slot and language-position embeddings are shared, so a token's role is the same for every
robot; only the embodiment token says which robot it is.
"""

from __future__ import annotations

import torch
from torch import nn

from locksmith.policy.config import MAX_ARMS, PolicyConfig
from locksmith.policy.language import MAX_TOKENS
from locksmith.sim.scene import N_OBJECTS, N_PADS

N_SLOTS = 1 + 1 + N_OBJECTS + N_PADS + MAX_ARMS  # embodiment, state, entities


class Trunk(nn.Module):
    def __init__(self, config: PolicyConfig):
        super().__init__()
        d = config.d_model
        self.language = nn.Linear(config.language_dim, d)
        self.language_positions = nn.Parameter(torch.randn(MAX_TOKENS, d) * 0.02)
        self.slots = nn.Parameter(torch.randn(N_SLOTS, d) * 0.02)
        self.readouts = nn.Parameter(torch.randn(config.n_readouts, d) * 0.02)
        layer = nn.TransformerEncoderLayer(
            d, config.n_heads, config.d_feedforward, config.dropout, activation="gelu",
            batch_first=True, norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, config.n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.n_readouts = config.n_readouts

    def forward(self, embodiment: torch.Tensor, language: torch.Tensor, language_mask: torch.Tensor,
                stem_tokens: torch.Tensor, stem_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Readout features.

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
        out = self.encoder(tokens, src_key_padding_mask=mask)
        return self.norm(out[:, -self.n_readouts:])
