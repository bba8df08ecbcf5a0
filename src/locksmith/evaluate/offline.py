"""Offline evaluation for data without a simulator: action error on held-out episodes.

The error is the mean absolute difference between the policy's first predicted action and the
recorded one, each dimension divided by that dimension's action scale (half the q01..q99 range
of the training data, the policy's own normalizer), so robots and units compare.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from locksmith.data.loading import DatasetError, load_demonstrations
from locksmith.policy.policy import CheckpointError, CrossEmbodimentPolicy


def held_out_episodes(n_episodes: int, fraction: float) -> np.ndarray:
    """The last ``fraction`` of episodes (at least one), the ones adaptation never uses first."""
    if not 0 < fraction < 1:
        raise DatasetError(f"holdout fraction must be in (0, 1), got {fraction}")
    k = max(1, int(round(n_episodes * fraction)))
    return np.arange(n_episodes - k, n_episodes)


def offline_action_error(checkpoint: str | Path, dataset: str | Path, holdout_fraction: float = 0.2,
                         max_frames: int = 5000) -> dict:
    policy = CrossEmbodimentPolicy.from_pretrained(checkpoint).eval()
    demos = load_demonstrations(dataset)
    robot = demos.spec.name
    if robot not in policy.stems:
        raise CheckpointError(f"{checkpoint}: checkpoint is for robots {sorted(policy.stems)}, not {robot!r}")
    held = demos.subset(held_out_episodes(demos.num_episodes, holdout_fraction))
    idx = np.linspace(0, held.num_frames - 1, min(max_frames, held.num_frames)).astype(int)
    a = held.arrays
    pred = policy.predict_action_chunk(robot, a["observation.state"][idx], a["observation.environment_state"][idx],
                                       [held.tasks[i] for i in idx])[:, 0].cpu().numpy()
    scale = policy.normalizers[robot].action.scale.cpu().numpy()
    per_dim = np.abs(pred - a["action"][idx]).mean(0) / scale
    return {
        "metric": "offline_action_error", "robot": robot, "dataset": str(dataset), "checkpoint": str(checkpoint),
        "offline_action_error": float(per_dim.mean()), "per_dimension": dict(zip(demos.spec.names("action"), per_dim.tolist(), strict=True)),
        "episodes": held.num_episodes, "frames": int(len(idx)),
    }
