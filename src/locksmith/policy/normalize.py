"""Per-embodiment normalization from a dataset's own stats, never pooled across robots.

Observations use mean/std; actions use the q01..q99 range mapped onto [-1, 1] (robust to the
rare large command, and bounded, which suits an L1 loss). A near-constant dimension (std or
range below `EPS`, e.g. an unused joint, or a gripper that never moved in the data) keeps a
unit scale so that nothing is divided by ~0; it is only centred. The statistics are buffers of
an `nn.Module`, so they are saved with the weights and applied on the way in and out.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

EPS = 1e-4


class FeatureNormalizer(nn.Module):
    """``(x - shift) / scale`` for one feature; `unnormalize` inverts it exactly."""

    def __init__(self, shift: np.ndarray | torch.Tensor, scale: np.ndarray | torch.Tensor):
        super().__init__()
        shift = torch.as_tensor(np.asarray(shift, dtype=np.float32))
        scale = torch.as_tensor(np.asarray(scale, dtype=np.float32))
        if shift.shape != scale.shape or shift.ndim != 1:
            raise ValueError(f"shift {tuple(shift.shape)} and scale {tuple(scale.shape)} must be equal 1-D shapes")
        self.register_buffer("shift", shift)
        self.register_buffer("scale", scale)

    @classmethod
    def mean_std(cls, stats: Mapping[str, np.ndarray]) -> FeatureNormalizer:
        mean = np.asarray(stats["mean"], dtype=np.float64)
        std = np.asarray(stats["std"], dtype=np.float64)
        return cls(mean, np.where(std < EPS, 1.0, std))

    @classmethod
    def quantile_range(cls, stats: Mapping[str, np.ndarray]) -> FeatureNormalizer:
        """q01 → -1, q99 → +1 (falls back to min/max when quantiles are absent)."""
        low = np.asarray(stats.get("q01", stats.get("min")), dtype=np.float64)
        high = np.asarray(stats.get("q99", stats.get("max")), dtype=np.float64)
        half = (high - low) / 2.0
        return cls((high + low) / 2.0, np.where(half < EPS, 1.0, half))

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.shift) / self.scale

    def unnormalize(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.shift


class EmbodimentNormalizer(nn.Module):
    """The normalizers of one robot: state and environment state (mean/std), action (quantiles)."""

    def __init__(self, state: FeatureNormalizer, environment_state: FeatureNormalizer, action: FeatureNormalizer):
        super().__init__()
        self.state = state
        self.environment_state = environment_state
        self.action = action

    @classmethod
    def from_stats(cls, stats: Mapping[str, Mapping[str, np.ndarray]]) -> EmbodimentNormalizer:
        missing = [k for k in ("observation.state", "observation.environment_state", "action") if k not in stats]
        if missing:
            raise ValueError(f"normalization stats lack {missing}")
        return cls(
            FeatureNormalizer.mean_std(stats["observation.state"]),
            FeatureNormalizer.mean_std(stats["observation.environment_state"]),
            FeatureNormalizer.quantile_range(stats["action"]),
        )

    @classmethod
    def identity(cls, state_dim: int, env_dim: int, action_dim: int) -> EmbodimentNormalizer:
        """Placeholder stats of the right shapes (replaced by `load_state_dict` on load)."""
        def unit(n: int) -> FeatureNormalizer:
            return FeatureNormalizer(np.zeros(n), np.ones(n))

        return cls(unit(state_dim), unit(env_dim), unit(action_dim))
