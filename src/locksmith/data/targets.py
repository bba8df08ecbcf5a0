"""Which object and pad each demonstration acts on, read off the recorded scene.

The instruction names a cube (and a pad) by colour among distractors; a policy trained by
behaviour cloning alone learns that binding only through the action loss, which is a weak
signal on a few hundred demos. The demonstrations themselves say which entity was meant, from
the environment state alone (no instruction parsing, so it holds for any dataset that records
the scene in this layout):

    target object: the object that moved most over the episode (it was grasped or pushed);
                   if none moved more than `MOVED_M`, the one nearest the TCP at the end (reach)
    target pad:    the pad nearest the target object's final position, if within `ON_PAD_M`;
                   otherwise none (-1)

These labels feed an auxiliary grounding loss (`policy.CrossEmbodimentPolicy.forward`).
"""

from __future__ import annotations

import numpy as np

from locksmith.sim.scene import N_OBJECTS, N_PADS

OBJECT_FIELDS, PAD_FIELDS, ARM_FIELDS = 7, 6, 4  # sim.env's environment_state layout
MOVED_M = 0.01
ON_PAD_M = 0.08


def episode_targets(environment_state: np.ndarray, episode_starts: np.ndarray,
                    episode_ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per frame, the episode's target object (0..N_OBJECTS-1) and target pad (-1: none).

    Args:
        environment_state: (N, env_dim) frames, episodes contiguous.
        episode_starts / episode_ends: (E,) frame ranges of the episodes.
    Returns:
        (N,) int64 object index and (N,) int64 pad index.
    """
    n = len(environment_state)
    objects = np.full(n, -1, dtype=np.int64)
    pads = np.full(n, -1, dtype=np.int64)
    o_end = N_OBJECTS * OBJECT_FIELDS
    p_end = o_end + N_PADS * PAD_FIELDS
    for start, end in zip(episode_starts, episode_ends, strict=True):
        x = environment_state[start:end]
        obj = x[:, :o_end].reshape(-1, N_OBJECTS, OBJECT_FIELDS)[:, :, :3]  # (T, 3, 3)
        pad = x[:, o_end:p_end].reshape(-1, N_PADS, PAD_FIELDS)[:, :, :3]  # (T, 2, 3)
        tcp = x[:, p_end:p_end + 3]  # first arm's TCP (T, 3)
        moved = np.linalg.norm(obj - obj[0], axis=-1).max(0)  # (3,)
        if moved.max() > MOVED_M:
            target = int(moved.argmax())
        else:
            target = int(np.linalg.norm(obj[-1] - tcp[-1], axis=-1).argmin())
        to_pad = np.linalg.norm(pad[-1] - obj[-1, target], axis=-1)  # (2,)
        objects[start:end] = target
        pads[start:end] = int(to_pad.argmin()) if to_pad.min() < ON_PAD_M else -1
    return objects, pads
