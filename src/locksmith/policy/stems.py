"""Per-embodiment stems: a robot's own observation → tokens of the shared width.

Tokens produced for one robot (B = batch, D = d_model):

    state token      (B, 1, D)            from observation.state (the robot's own layout)
    entity tokens    (B, 3 + 2 + n_arms, D)  objects, pads, TCPs from observation.environment_state

The environment state's positions are in that robot's camera frame, so the entity projections
are local too: they learn the robot's own extrinsics. Each object and pad token also sees its
offset from every TCP (metres x `RELATIVE_SCALE`, from the raw values): where the thing is
relative to the gripper is what a grasp needs to 1 cm, and a learned subtraction of two
normalized positions is much less precise.
"""

from __future__ import annotations

import torch
from torch import nn

from locksmith.policy.config import ARM_FIELDS, MAX_ARMS, OBJECT_FIELDS, PAD_FIELDS, EmbodimentConfig
from locksmith.sim.scene import N_OBJECTS, N_PADS

RELATIVE_SCALE = 10.0  # offsets in decimetres: order one over the workspace
RELATIVE_FIELDS = 3 * MAX_ARMS


def mlp(d_in: int, d_hidden: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d_hidden), nn.GELU(), nn.Linear(d_hidden, d_out))


def split_scene(environment_state: torch.Tensor, n_arms: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B, env_dim) scene state (`sim.env` layout) → objects (B, N_OBJECTS, OBJECT_FIELDS), pads
    (B, N_PADS, PAD_FIELDS) and arms (B, n_arms, ARM_FIELDS)."""
    b = environment_state.shape[0]
    o_end = N_OBJECTS * OBJECT_FIELDS
    p_end = o_end + N_PADS * PAD_FIELDS
    return (environment_state[:, :o_end].reshape(b, N_OBJECTS, OBJECT_FIELDS),
            environment_state[:, o_end:p_end].reshape(b, N_PADS, PAD_FIELDS),
            environment_state[:, p_end:].reshape(b, n_arms, ARM_FIELDS))


class Stem(nn.Module):
    """One robot's stem (see the module docstring)."""

    def __init__(self, emb: EmbodimentConfig, d_model: int):
        super().__init__()
        self.n_arms = emb.n_arms
        self.state = mlp(emb.state_dim, d_model, d_model)
        self.object = mlp(OBJECT_FIELDS + RELATIVE_FIELDS, d_model, d_model)
        self.pad = mlp(PAD_FIELDS + RELATIVE_FIELDS, d_model, d_model)
        self.arm = mlp(ARM_FIELDS, d_model, d_model)

    @property
    def n_tokens(self) -> int:
        return 1 + N_OBJECTS + N_PADS + self.n_arms

    def _split(self, environment_state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return split_scene(environment_state, self.n_arms)

    def forward(self, state: torch.Tensor, environment_state: torch.Tensor, raw_environment_state: torch.Tensor) -> torch.Tensor:
        """(B, state_dim), (B, env_dim) normalized, (B, env_dim) raw → (B, n_tokens, D)."""
        objects, pads, arms = self._split(environment_state)
        raw_objects, raw_pads, raw_arms = self._split(raw_environment_state)
        tcp = raw_arms[:, :, :3]  # (B, n_arms, 3)

        def offsets(positions: torch.Tensor) -> torch.Tensor:  # (B, N, 3) → (B, N, 3 * MAX_ARMS)
            rel = (positions[:, :, None, :] - tcp[:, None, :, :]) * RELATIVE_SCALE  # (B, N, n_arms, 3)
            rel = rel.flatten(2)
            return torch.nn.functional.pad(rel, (0, RELATIVE_FIELDS - rel.shape[-1]))

        object_in = torch.cat([objects, offsets(raw_objects[:, :, :3])], dim=-1)
        pad_in = torch.cat([pads, offsets(raw_pads[:, :, :3])], dim=-1)
        return torch.cat([self.state(state)[:, None], self.object(object_in), self.pad(pad_in), self.arm(arms)], dim=1)
