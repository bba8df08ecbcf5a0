"""Offline evaluation for data without a simulator: action error on held-out episodes.

The error is the mean absolute difference between the policy's first predicted action and the
recorded one, each dimension divided by ONE fixed scale per dataset: half the q01..q99 range of
the recorded (absolute) actions over the episodes that are not held out (`offline_action_scale`).
The scale depends on the dataset alone, never on the policy: every arm and every demo budget of
an audit is scored in the same units (a policy's own normalizer would change the unit with its
training subset, and differs between relative and absolute action heads). A dimension whose range
is below `EPS` gets a unit scale. An ACT peer checkpoint (`locksmith.train.act_peer`) is scored
the same way.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from locksmith.data.loading import DatasetError, Demonstrations, load_demonstrations
from locksmith.embodiment.spec import EmbodimentSpec
from locksmith.evaluate.act_agent import is_act_checkpoint, load_act_peer
from locksmith.evaluate.lerobot_policy import is_lerobot_checkpoint
from locksmith.policy.normalize import EPS
from locksmith.policy.policy import CheckpointError, CrossEmbodimentPolicy
from locksmith.policy.vision import camera_feature


def held_out_episodes(n_episodes: int, fraction: float) -> np.ndarray:
    """The last ``fraction`` of episodes (at least one), the ones adaptation never uses first."""
    if not 0 < fraction < 1:
        raise DatasetError(f"holdout fraction must be in (0, 1), got {fraction}")
    k = max(1, int(round(n_episodes * fraction)))
    return np.arange(n_episodes - k, n_episodes)


def offline_action_scale(demos: Demonstrations, holdout_fraction: float) -> np.ndarray:
    """(A,) the fixed absolute-action scale of a dataset: half its q01..q99 range over the
    episodes that are not held out (at least `EPS`, else 1)."""
    held = set(held_out_episodes(demos.num_episodes, holdout_fraction).tolist())
    train = demos.subset([i for i in range(demos.num_episodes) if i not in held])
    low, high = np.quantile(train.arrays["action"], [0.01, 0.99], axis=0)
    half = (high - low) / 2.0
    return np.where(half < EPS, 1.0, half)


def offline_action_error(checkpoint: str | Path, dataset: str | Path, holdout_fraction: float = 0.2,
                         max_frames: int = 5000, spec: EmbodimentSpec | str | Path | None = None,
                         action_scale: np.ndarray | None = None) -> dict:
    """Offline action error of a checkpoint (ours or an ACT peer folder) on ``dataset``'s held-out episodes.

    Args:
        spec: the robot's spec when it is not beside the dataset.
        action_scale: (A,) the scale to divide by; by default `offline_action_scale` of the dataset.
    """
    peer = load_act_peer(checkpoint) if is_act_checkpoint(checkpoint) else None
    if peer is None and is_lerobot_checkpoint(checkpoint):
        config = Path(checkpoint) / "config.json"
        raise CheckpointError(f"{config}: a LeRobot {json.loads(config.read_text())['type']!r} policy, not a "
                              "locksmith policy: offline action error scores locksmith checkpoints; "
                              "`locksmith eval` runs it closed loop (--robot ROBOT, without --dataset)")
    policy = CrossEmbodimentPolicy.from_pretrained(checkpoint) if peer is None else None
    if (policy is not None and policy.config.intent) or (peer is not None and peer.action_space == "intent"):
        where = "config.json" if peer is None else "locksmith_peer.json"
        raise CheckpointError(f"{Path(checkpoint) / where}: an intent policy (action_space 'intent'): its "
                              "commands come from the robot's intent decoder, which needs the robot's model; "
                              "`locksmith eval` scores it closed loop")
    # a pixel policy (or pixel ACT) is scored on the pictures it reads, fitted to its size
    size = peer.image_size if peer is not None else policy.config.image_size if policy.config.pixels else None
    demos = load_demonstrations(dataset, spec, images=size is not None, image_size=size)
    robot = demos.spec.name
    robots = [peer.robot] if peer is not None else sorted(policy.stems)
    if robot not in robots:
        raise CheckpointError(f"{checkpoint}: checkpoint is for robots {robots}, not {robot!r}")
    scale = offline_action_scale(demos, holdout_fraction) if action_scale is None else np.asarray(action_scale)
    if scale.shape != (len(demos.spec.names("action")),):
        raise ValueError(f"action_scale has shape {scale.shape}, the action has {len(demos.spec.names('action'))} "
                         "dimensions")
    held = demos.subset(held_out_episodes(demos.num_episodes, holdout_fraction))
    idx = np.linspace(0, held.num_frames - 1, min(max_frames, held.num_frames)).astype(int)
    a = held.arrays
    tasks = [held.tasks[i] for i in idx]
    camera = None if size is None else camera_feature(demos.spec)
    if camera is not None and camera not in held.images:
        raise DatasetError(f"{Path(dataset) / 'meta' / 'info.json'}: no {camera!r}; the checkpoint reads the "
                           f"spec's first camera, and the dataset has {sorted(held.images) or 'no cameras'}")
    # the scene state, which a pixel policy never reads (a real robot's dataset has none)
    scene = a.get("observation.environment_state", np.zeros((held.num_frames, 0), np.float32))[idx]
    if peer is not None:
        pred = peer.predict_action_chunk(a["observation.state"][idx], scene if camera is None
                                         else held.images[camera][idx], tasks)
    else:
        pred = policy.predict_action_chunk(robot, a["observation.state"][idx], scene, tasks,
                                           None if camera is None else held.images[camera][idx])
    pred = pred[:, 0].cpu().numpy()
    per_dim = np.abs(pred - a["action"][idx]).mean(0) / scale
    return {
        "metric": "offline_action_error", "robot": robot, "dataset": str(dataset), "checkpoint": str(checkpoint),
        "offline_action_error": float(per_dim.mean()),
        "per_dimension": dict(zip(demos.spec.names("action"), per_dim.tolist(), strict=True)),
        "action_scale": scale.tolist(), "episodes": held.num_episodes, "frames": int(len(idx)),
    }
