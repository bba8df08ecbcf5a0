"""Sampling training batches: action chunks from one robot's demos, and a weighted mixture.

A sample at frame t of an episode is (state_t, environment_state_t, instruction, actions
t..t+H-1); steps past the episode's end repeat its last action and are marked in
``action_is_pad`` (as LeRobot's ``delta_timestamps`` does). With a scene state, a sample also
carries its episode's ``target_object`` / ``target_pad`` (see `data.targets`). Demonstrations
loaded with their camera pictures (`load_demonstrations(images=True)`) add each camera's
picture at frame t, (H, W, 3) uint8, under its feature name.

The mixture draws robot r's share of every batch in proportion to λ_r, so the loss is
Σ_r λ_r E_{τ~D_r}[ℓ]. λ is explicit, or proportional to dataset size with a temperature:
λ_r ∝ N_r^(1/T) (T = 1: by size; T → ∞: uniform).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from locksmith.data.loading import Demonstrations
from locksmith.data.targets import episode_targets, named_colours


class ChunkSampler:
    """Random action-chunk samples from one robot's in-memory demonstrations."""

    def __init__(self, demos: Demonstrations, chunk_size: int, language: Mapping[str, tuple[np.ndarray, np.ndarray]]):
        """``language[instruction] = (tokens (L, 384), padding mask (L,))``."""
        self.demos = demos
        self.chunk_size = chunk_size
        n = demos.num_frames
        ends = demos.episode_ends[demos.episode_index]  # (N,) one past each frame's episode end
        steps = np.arange(n)[:, None] + np.arange(chunk_size)[None, :]  # (N, H)
        self.action_is_pad = steps >= ends[:, None]
        self.chunk_index = np.minimum(steps, ends[:, None] - 1)
        texts = sorted(set(demos.tasks))
        self.task_ids = np.array([texts.index(t) for t in demos.tasks])
        self.language = torch.as_tensor(np.stack([language[t][0] for t in texts]))
        self.language_mask = torch.as_tensor(np.stack([language[t][1] for t in texts]))
        self.named_colours = torch.as_tensor(named_colours(texts))  # per text: what a colour_film encoder reads
        a = demos.arrays
        self.state = torch.as_tensor(a["observation.state"])
        # a real robot's data has no scene state: width 0, which only a pixel policy (never reading it) accepts
        scene = a.get("observation.environment_state", np.zeros((demos.num_frames, 0), np.float32))
        self.env_state = torch.as_tensor(scene)
        self.action = torch.as_tensor(a["action"])
        self.intent = torch.as_tensor(a["intent"]) if "intent" in a else None  # what intent policies learn
        self.images = {k: torch.as_tensor(v) for k, v in demos.images.items()}  # shares the arrays' memory
        self.image_tokens: dict[str, torch.Tensor] = {}  # camera → (N, T, D), `cache_image_tokens`
        if scene.shape[1]:
            objects, pads = episode_targets(scene, demos.episode_starts, demos.episode_ends)
        else:  # nothing to ground in: no target (-1), as for a task that names none
            objects = pads = np.full(demos.num_frames, -1, dtype=np.int64)
        self.target_object, self.target_pad = torch.as_tensor(objects), torch.as_tensor(pads)

    def __len__(self) -> int:
        return self.demos.num_frames

    @torch.no_grad()
    def cache_image_tokens(self, camera: str, encoder: torch.nn.Module, batch: int = 256) -> None:
        """Encode ``camera``'s every frame once with a frozen ``encoder``; samples then carry its
        tokens under ``camera`` in place of the picture (a pixel policy reads either)."""
        frames, colours = self.images[camera], self.named_colours[torch.as_tensor(self.task_ids)]
        self.image_tokens[camera] = torch.cat([encoder(frames[i:i + batch], colours[i:i + batch])
                                               for i in range(0, len(frames), batch)])

    def sample(self, batch_size: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        idx = rng.integers(0, len(self), size=batch_size)
        return self.gather(idx)

    def gather(self, idx: np.ndarray) -> dict[str, torch.Tensor]:
        t = torch.as_tensor(idx)
        intent = {} if self.intent is None else {"intent": self.intent[torch.as_tensor(self.chunk_index[idx])]}
        images = {k: self.image_tokens[k][t] if k in self.image_tokens else v[t]  # (B, H, W, 3) uint8, or tokens
                  for k, v in self.images.items()}
        return {**intent, **images,
            "observation.state": self.state[t],
            "observation.environment_state": self.env_state[t],
            "language": self.language[torch.as_tensor(self.task_ids[idx])],  # (B, L, 384)
            "language_mask": self.language_mask[torch.as_tensor(self.task_ids[idx])],  # (B, L)
            "named_colours": self.named_colours[torch.as_tensor(self.task_ids[idx])],  # (B, COLOUR_DIM)
            "action": self.action[torch.as_tensor(self.chunk_index[idx])],  # (B, H, A)
            "action_is_pad": torch.as_tensor(self.action_is_pad[idx]),  # (B, H)
            "target_object": self.target_object[t],  # (B,)
            "target_pad": self.target_pad[t],  # (B,) -1: no pad
        }


def mixture_weights(sizes: Mapping[str, int], weights: Mapping[str, float] | None = None,
                    temperature: float = 1.0) -> dict[str, float]:
    """λ_r: explicit weights normalized to sum 1, or ∝ size^(1/temperature)."""
    if weights:
        unknown = set(weights) - set(sizes)
        if unknown:
            raise ValueError(f"weights name robots without data: {sorted(unknown)}; robots: {sorted(sizes)}")
        missing = set(sizes) - set(weights)
        if missing:
            raise ValueError(f"weights missing for robots {sorted(missing)}")
        if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
            raise ValueError(f"weights must be >= 0 with a positive sum, got {dict(weights)}")
        total = sum(weights.values())
        return {r: weights[r] / total for r in sizes}
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    raw = {r: float(n) ** (1.0 / temperature) for r, n in sizes.items()}
    total = sum(raw.values())
    return {r: v / total for r, v in raw.items()}


class Mixture:
    """Batches grouped by robot, robot r contributing about λ_r of each batch (at least one sample)."""

    def __init__(self, samplers: Mapping[str, ChunkSampler], weights: Mapping[str, float]):
        self.samplers = dict(samplers)
        self.weights = dict(weights)
        self.robots = list(self.samplers)
        self._p = np.array([self.weights[r] for r in self.robots])

    def sample(self, batch_size: int, rng: np.random.Generator) -> dict[str, dict[str, torch.Tensor]]:
        counts = rng.multinomial(batch_size, self._p)
        batch = {}
        for robot, count in zip(self.robots, counts, strict=True):
            if count == 0:
                continue
            group = self.samplers[robot].sample(int(count), rng)
            group["weight"] = float(count)  # per-sample mean within the group, weighted by its share
            batch[robot] = group
        return batch
