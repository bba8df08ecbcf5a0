"""Scene frames: rendered first frames of random layouts, a pixel prior's extra lesson in where things are.

A pixel policy pretrained on a few hundred demonstrations sees a few hundred scenes, and its
encoder learns those scenes by heart instead of where a named cube is in a new one
(docs/benchmarks.md, "Why the pixel policy never grasps"). Rendering a layout costs a few
milliseconds and needs no expert, so pretraining can show the encoder thousands more: each robot's
first frame (the arm at home) of ``n`` random layouts of its simulated task, with the recorded
scene state as the target of the scene loss (`CrossEmbodimentPolicy._scene_loss`, weight
``scene_weight``) and no action. They enter training as one more loss term per step
(`scene_frames_loss`, through `train`'s ``regularizer`` hook); the action loss still sees only the
demonstrations. The layouts' seeds come from their own stream (`SCENE_FRAME_SEED`), apart from the
recording, validation and evaluation seeds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from locksmith.data.targets import named_colours

SCENE_FRAME_SEED = 1_700_000_000  # first layout seed: demos lie below 1e9, validation from 1.5e9, evaluation from 2e9
MAX_SCENE_FRAMES = 100_000


@dataclass
class SceneFrames:
    """One robot's rendered first frames: (N, ...) arrays, and each frame's instruction."""

    state: np.ndarray
    scene: np.ndarray
    image: np.ndarray  # (N, H, W, 3) uint8, the robot's first camera
    instructions: list[str]
    target_object: np.ndarray
    target_pad: np.ndarray

    def __len__(self) -> int:
        return len(self.instructions)


def render_scene_frames(robot: str, task: str, n: int, image_size: int, progress: bool = True,
                        first_seed: int = SCENE_FRAME_SEED) -> SceneFrames:
    """The first frame of ``n`` random layouts of ``task`` on ``robot`` (layout seeds from
    ``first_seed`` on), its first camera at ``image_size``."""
    from locksmith.sim.env import TabletopEnv

    if not 1 <= n <= MAX_SCENE_FRAMES:
        raise ValueError(f"scene frames: {n}; between 1 and {MAX_SCENE_FRAMES}")
    env = TabletopEnv(robot, task, render=True, image_size=image_size)
    rows = []
    try:
        for seed in tqdm(range(first_seed, first_seed + n), desc=f"{robot} scene frames",
                         disable=not progress, leave=False):
            obs, _ = env.reset(seed=seed)
            camera = next(k for k in obs if k.startswith("observation.images."))
            rows.append((obs["observation.state"], obs["observation.environment_state"], obs[camera],
                         env.instruction, env.target_object, env.target_pad))
    finally:
        env.close()
    state, scene, image, texts, objects, pads = zip(*rows, strict=True)
    return SceneFrames(np.stack(state).astype(np.float32), np.stack(scene).astype(np.float32), np.stack(image),
                       list(texts), np.asarray(objects, np.int64), np.asarray(pads, np.int64))


def scene_frames_loss(policy, frames: Mapping[str, SceneFrames], batch_size: int,
                      seed: int = 0) -> Callable[[torch.nn.Module], torch.Tensor]:
    """The extra loss term of a training step: ``scene_weight`` times the scene loss on
    ``batch_size`` frames drawn for each robot, averaged over the robots."""
    if policy.trunk.scene is None:
        raise ValueError("scene frames train the scene head: the policy needs scene_weight > 0")
    rng = np.random.default_rng([seed, SCENE_FRAME_SEED])
    batches = {robot: _tensors(policy, robot, f) for robot, f in frames.items()}

    def loss(model: torch.nn.Module) -> torch.Tensor:
        total = 0.0
        for robot, data in batches.items():
            idx = torch.as_tensor(rng.integers(0, len(data["target_object"]), batch_size))
            b = {k: v[idx] for k, v in data.items() if k not in ("language", "language_mask")}
            b["language"], b["language_mask"] = data["language"][b["text"]], data["language_mask"][b["text"]]
            readouts = model._readouts({robot: model.batch_group(robot, b)})[robot]
            total = total + model._scene_loss(robot, readouts, b)
        return model.config.scene_weight * total / len(batches)

    return loss


def _tensors(policy, robot: str, frames: SceneFrames) -> dict[str, torch.Tensor]:
    texts = sorted(set(frames.instructions))
    tokens, mask = policy.embed_instructions(texts)  # one padded batch: every text the same length
    which = torch.as_tensor([texts.index(t) for t in frames.instructions])  # each frame's text
    return {"observation.state": torch.as_tensor(frames.state),
            "observation.environment_state": torch.as_tensor(frames.scene),
            policy.camera_feature(robot): torch.as_tensor(frames.image),
            "text": which, "language": tokens, "language_mask": mask,
            "named_colours": torch.as_tensor(named_colours(frames.instructions)),
            "target_object": torch.as_tensor(frames.target_object), "target_pad": torch.as_tensor(frames.target_pad)}
