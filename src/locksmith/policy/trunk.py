"""The shared trunk: a transformer over embodiment, language, observation and readout tokens.

Sequence for one sample (T = 4 + n_stem_tokens + n_readouts, padded to the longest robot in a
mixed batch, with a key-padding mask):

    [embodiment] [language] [state] [objects x3] [pads x2] [tcp x n_arms] [readout x R]

Slot embeddings (one per position kind) are shared, so a token's role is the same for every
robot; only the embodiment token says which robot it is.
"""

from __future__ import annotations

import torch
from torch import nn

from locksmith.policy.config import MAX_ARMS, PolicyConfig
from locksmith.sim.scene import N_OBJECTS, N_PADS

N_SLOTS = 2 + 1 + N_OBJECTS + N_PADS + MAX_ARMS  # embodiment, language, state, entities


class Trunk(nn.Module):
    def __init__(self, config: PolicyConfig):
        super().__init__()
        d = config.d_model
        self.language = nn.Linear(config.language_dim, d)
        self.slots = nn.Parameter(torch.randn(N_SLOTS, d) * 0.02)
        self.readouts = nn.Parameter(torch.randn(config.n_readouts, d) * 0.02)
        layer = nn.TransformerEncoderLayer(
            d, config.n_heads, config.d_feedforward, config.dropout, activation="gelu",
            batch_first=True, norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, config.n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.n_readouts = config.n_readouts

    def forward(self, embodiment: torch.Tensor, language: torch.Tensor, stem_tokens: torch.Tensor,
                stem_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Readout features.

        Args:
            embodiment: (B, D) embodiment token of each sample's robot.
            language: (B, language_dim) instruction embeddings.
            stem_tokens: (B, S, D) state and entity tokens (S <= N_SLOTS - 2).
            stem_mask: (B, S) True where a stem token is padding.
        Returns:
            (B, n_readouts, D)
        """
        b, s, _ = stem_tokens.shape
        tokens = torch.cat([embodiment[:, None], self.language(language)[:, None], stem_tokens], dim=1)
        tokens = tokens + self.slots[: s + 2]
        tokens = torch.cat([tokens, self.readouts.expand(b, -1, -1)], dim=1)
        mask = None
        if stem_mask is not None:
            keep = torch.zeros(b, 2, dtype=torch.bool, device=tokens.device)
            reads = torch.zeros(b, self.n_readouts, dtype=torch.bool, device=tokens.device)
            mask = torch.cat([keep, stem_mask, reads], dim=1)
        out = self.encoder(tokens, src_key_padding_mask=mask)
        return self.norm(out[:, -self.n_readouts:])
