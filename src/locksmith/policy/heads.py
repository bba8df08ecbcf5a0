"""Per-embodiment action heads: readout features → an action chunk in that robot's layout."""

from __future__ import annotations

import torch
from torch import nn

from locksmith.policy.config import EmbodimentConfig


class ActionHead(nn.Module):
    """(B, R, D) readouts → (B, chunk_size, action_dim) normalized actions."""

    def __init__(self, emb: EmbodimentConfig, d_model: int, n_readouts: int, multiplier: int = 2):
        super().__init__()
        self.chunk_size = emb.chunk_size
        self.action_dim = emb.action_dim
        hidden = multiplier * d_model
        self.net = nn.Sequential(
            nn.Linear(n_readouts * d_model, hidden), nn.GELU(),
            nn.Linear(hidden, emb.chunk_size * emb.action_dim),
        )

    def forward(self, readouts: torch.Tensor) -> torch.Tensor:
        b = readouts.shape[0]
        return self.net(readouts.reshape(b, -1)).reshape(b, self.chunk_size, self.action_dim)
