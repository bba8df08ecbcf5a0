"""Offline evaluation for data without a simulator: action error on held-out episodes.

The error is the mean absolute difference between the policy's first predicted action and the
recorded one, each dimension divided by that dimension's action scale (half the q01..q99 range
of the training data, the policy's own normalizer), so robots and units compare. An ACT peer
checkpoint (`locksmith.train.act_peer`) is scored with the same scale, from its saved stats.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from locksmith.data.loading import DatasetError, load_demonstrations
from locksmith.evaluate.act_agent import is_act_checkpoint, load_act_peer
from locksmith.policy.normalize import FeatureNormalizer
from locksmith.policy.policy import CheckpointError, CrossEmbodimentPolicy


def held_out_episodes(n_episodes: int, fraction: float) -> np.ndarray:
    """The last ``fraction`` of episodes (at least one), the ones adaptation never uses first."""
    if not 0 < fraction < 1:
        raise DatasetError(f"holdout fraction must be in (0, 1), got {fraction}")
    k = max(1, int(round(n_episodes * fraction)))
    return np.arange(n_episodes - k, n_episodes)


def offline_action_error(checkpoint: str | Path, dataset: str | Path, holdout_fraction: float = 0.2,
                         max_frames: int = 5000) -> dict:
    """Offline action error of a checkpoint (ours or an ACT peer folder) on ``dataset``'s held-out episodes."""
    peer = load_act_peer(checkpoint) if is_act_checkpoint(checkpoint) else None
    policy = CrossEmbodimentPolicy.from_pretrained(checkpoint) if peer is None else None
    demos = load_demonstrations(dataset)
    robot = demos.spec.name
    robots = [peer.robot] if peer is not None else sorted(policy.stems)
    if robot not in robots:
        raise CheckpointError(f"{checkpoint}: checkpoint is for robots {robots}, not {robot!r}")
    held = demos.subset(held_out_episodes(demos.num_episodes, holdout_fraction))
    idx = np.linspace(0, held.num_frames - 1, min(max_frames, held.num_frames)).astype(int)
    a = held.arrays
    if peer is not None:
        pred = peer.predict_action_chunk(a["observation.state"][idx], a["observation.environment_state"][idx])
        # The same scale as our policy's action normalizer, from the training stats saved beside ACT.
        scale = FeatureNormalizer.quantile_range(peer.stats[robot]["action"]).scale.numpy()
    else:
        pred = policy.predict_action_chunk(robot, a["observation.state"][idx], a["observation.environment_state"][idx],
                                           [held.tasks[i] for i in idx])
        scale = policy.normalizers[robot].action.scale.cpu().numpy()
    pred = pred[:, 0].cpu().numpy()
    per_dim = np.abs(pred - a["action"][idx]).mean(0) / scale
    return {
        "metric": "offline_action_error", "robot": robot, "dataset": str(dataset), "checkpoint": str(checkpoint),
        "offline_action_error": float(per_dim.mean()), "per_dimension": dict(zip(demos.spec.names("action"), per_dim.tolist(), strict=True)),
        "episodes": held.num_episodes, "frames": int(len(idx)),
    }
