"""Per-embodiment normalization from a dataset's own stats, never pooled across robots.

Observations use mean/std; actions use the q01..q99 range mapped onto [-1, 1] (robust to the
rare large command, and bounded, which suits an L1 loss). A near-constant dimension (std or
range below `EPS`, e.g. an unused joint, or a gripper that never moved in the data) keeps a
unit scale so that nothing is divided by ~0; it is only centred. The statistics are buffers of
an `nn.Module`, so they are saved with the weights and applied on the way in and out.

With relative actions (`EmbodimentConfig.action_state_index`) the action normalizer is built
from the stats of ``action[t + k] - state[t]`` over every chunk step k of every frame t
(``RELATIVE_ACTION_KEY``, computed by `relative_action_stats` from the training frames); the
absolute dimensions (gripper) get their plain action stats over the same (t, k) pairs.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

EPS = 1e-4
RELATIVE_ACTION_KEY = "action.relative"


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
    def from_stats(cls, stats: Mapping[str, Mapping[str, np.ndarray]], relative_actions: bool = False,
                   scene_dim: int | None = None) -> EmbodimentNormalizer:
        """From a dataset's stats. ``scene_dim``: for a policy that never reads the scene state (a
        pixel policy), its width; data without it (a real robot's) then gets a unit placeholder."""
        action_key = RELATIVE_ACTION_KEY if relative_actions else "action"
        if scene_dim is not None and "observation.environment_state" not in stats:
            stats = {**stats, "observation.environment_state": {"mean": np.zeros(scene_dim), "std": np.ones(scene_dim)}}
        missing = [k for k in ("observation.state", "observation.environment_state", action_key) if k not in stats]
        if missing:
            hint = " (relative actions: add them with policy.normalize.relative_action_stats)" if relative_actions else ""
            raise ValueError(f"normalization stats lack {missing}{hint}: the dataset has no such feature; "
                             "`locksmith check --dataset ...` says what the policy needs")
        return cls(
            FeatureNormalizer.mean_std(stats["observation.state"]),
            FeatureNormalizer.mean_std(stats["observation.environment_state"]),
            FeatureNormalizer.quantile_range(stats[action_key]),
        )

    @classmethod
    def identity(cls, state_dim: int, env_dim: int, action_dim: int) -> EmbodimentNormalizer:
        """Placeholder stats of the right shapes (replaced by `load_state_dict` on load)."""
        def unit(n: int) -> FeatureNormalizer:
            return FeatureNormalizer(np.zeros(n), np.ones(n))

        return cls(unit(state_dim), unit(env_dim), unit(action_dim))


def to_relative(action: torch.Tensor, state: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """(B, H, A) absolute actions, (B, S) states → (B, H, A) with ``action - state[index]`` where
    ``index >= 0`` (index: (A,) long)."""
    reference = torch.where(index >= 0, state[:, index.clamp_min(0)], torch.zeros_like(state[:, :1]))  # (B, A)
    return action - reference[:, None, :]


def to_absolute(relative: torch.Tensor, state: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Inverse of `to_relative`."""
    reference = torch.where(index >= 0, state[:, index.clamp_min(0)], torch.zeros_like(state[:, :1]))  # (B, A)
    return relative + reference[:, None, :]


def relative_action_stats(state: np.ndarray, action: np.ndarray, episode_ends: np.ndarray,
                          index: tuple[int, ...], chunk_size: int) -> dict[str, np.ndarray]:
    """Stats (mean/std/min/max/q01/q99) of the relative action chunks the policy is trained on.

    Args:
        state: (N, S) states; action: (N, A) actions of the same frames.
        episode_ends: (N,) one past the last frame of each frame's episode.
        index: (A,) state dimension each action dimension is relative to (-1: absolute).
        chunk_size: H; the steps a chunk would take past its episode's end (padding, not in
            the loss) are left out.
    """
    state = np.asarray(state, dtype=np.float64)
    action = np.asarray(action, dtype=np.float64)
    idx = np.asarray(index, dtype=int)
    reference = np.where(idx >= 0, state[:, np.maximum(idx, 0)], 0.0)  # (N, A)
    frames = np.arange(len(state))
    parts = []
    for k in range(chunk_size):
        keep = frames + k < episode_ends
        parts.append(action[frames[keep] + k] - reference[keep])
    x = np.concatenate(parts)  # (sum over k of kept frames, A)
    return {"mean": x.mean(0), "std": x.std(0), "min": x.min(0), "max": x.max(0),
            "q01": np.quantile(x, 0.01, axis=0), "q99": np.quantile(x, 0.99, axis=0)}


def training_stats(demos, emb) -> dict[str, dict[str, np.ndarray]]:
    """A `Demonstrations`' stats, plus `RELATIVE_ACTION_KEY` when ``emb`` (an
    `EmbodimentConfig`) has relative actions: everything the robot's normalizer needs."""
    stats = dict(demos.stats)
    if emb.relative_actions:
        ends = demos.episode_ends[demos.episode_index]  # (N,)
        stats[RELATIVE_ACTION_KEY] = relative_action_stats(
            demos.arrays["observation.state"], demos.arrays["action"], ends, emb.action_state_index, emb.chunk_size)
    return stats
