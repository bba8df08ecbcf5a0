"""Per-embodiment stems: a robot's own observation → tokens of the shared width.

Tokens produced for one robot (B = batch, D = d_model):

    state token      (B, 1, D)            from observation.state (the robot's own layout)
    entity tokens    (B, 3 + 2 + n_arms, D)  objects, pads, TCPs from observation.environment_state

The environment state's positions are in that robot's camera frame, so the entity projections
are local too: they learn the robot's own extrinsics.
"""

from __future__ import annotations

import torch
from torch import nn

from locksmith.policy.config import ARM_FIELDS, OBJECT_FIELDS, PAD_FIELDS, EmbodimentConfig
from locksmith.sim.scene import N_OBJECTS, N_PADS


def mlp(d_in: int, d_hidden: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d_hidden), nn.GELU(), nn.Linear(d_hidden, d_out))


class Stem(nn.Module):
    """One robot's stem (see the module docstring)."""

    def __init__(self, emb: EmbodimentConfig, d_model: int):
        super().__init__()
        self.n_arms = emb.n_arms
        self.state = mlp(emb.state_dim, d_model, d_model)
        self.object = mlp(OBJECT_FIELDS, d_model, d_model)
        self.pad = mlp(PAD_FIELDS, d_model, d_model)
        self.arm = mlp(ARM_FIELDS, d_model, d_model)

    @property
    def n_tokens(self) -> int:
        return 1 + N_OBJECTS + N_PADS + self.n_arms

    def forward(self, state: torch.Tensor, environment_state: torch.Tensor) -> torch.Tensor:
        """(B, state_dim), (B, env_dim) normalized → (B, n_tokens, D)."""
        b = state.shape[0]
        o_end = N_OBJECTS * OBJECT_FIELDS
        p_end = o_end + N_PADS * PAD_FIELDS
        objects = environment_state[:, :o_end].reshape(b, N_OBJECTS, OBJECT_FIELDS)
        pads = environment_state[:, o_end:p_end].reshape(b, N_PADS, PAD_FIELDS)
        arms = environment_state[:, p_end:].reshape(b, self.n_arms, ARM_FIELDS)
        return torch.cat([self.state(state)[:, None], self.object(objects), self.pad(pads), self.arm(arms)], dim=1)
