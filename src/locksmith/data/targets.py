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

`named_entities` answers the same question the other way round, for one frame at a time and
from what a policy sees at inference: the instruction text and the observed scene. It parses the
colour words of the bundled instruction templates (`locksmith.sim.tasks.TASKS`: "... the {obj}
cube ... the {pad} pad", colours from `locksmith.sim.scene.COLOURS`) and finds the object and pad
of that colour in the frame's environment state. It reads no privileged label (not the episode's
target, not the future of the episode), so a policy may take its answer as an input feature (the
ACT peer does: `locksmith.train.act_peer`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from locksmith.sim.scene import COLOURS, N_OBJECTS, N_PADS

OBJECT_FIELDS, PAD_FIELDS, ARM_FIELDS = 7, 6, 4  # sim.env's environment_state layout
MOVED_M = 0.01
ON_PAD_M = 0.08
NAMED_ONE_HOT_DIM = N_OBJECTS + N_PADS
"""Width of `named_one_hot`: the named object (N_OBJECTS) then the named pad (N_PADS)."""

_PALETTE_NAMES = tuple(COLOURS)
_PALETTE = np.array([COLOURS[c] for c in _PALETTE_NAMES])  # (C, 3) r, g, b
COLOUR_NAMES = _PALETTE_NAMES
COLOUR_DIM = 2 * len(COLOUR_NAMES)
"""Width of `named_colours`: one-hot of the named cube's colour, then of the named pad's."""
_NAMED = re.compile(r"\b(" + "|".join(_PALETTE_NAMES) + r")\s+(cube|pad)s?\b", re.IGNORECASE)


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


def parse_named_colours(instruction: str) -> tuple[str | None, str | None]:
    """The colour words of "the <colour> cube" and "the <colour> pad" in ``instruction``.

    ``None`` where the text names no cube (or pad) by one of the `COLOURS`, or names two
    different ones (ambiguous): free-form text gives ``(None, None)``, never an error.
    """
    found: dict[str, set[str]] = {"cube": set(), "pad": set()}
    for colour, noun in _NAMED.findall(instruction):
        found[noun.lower()].add(colour.lower())
    cube, pad = (next(iter(found[k])) if len(found[k]) == 1 else None for k in ("cube", "pad"))
    return cube, pad


def named_colours(instructions: Sequence[str]) -> np.ndarray:
    """The task as a pixel policy reads it (ours with ``colour_film``, and the pixel ACT peer):
    (N, COLOUR_DIM) float32, one-hot of the colour of the cube and of the pad each text names
    (`parse_named_colours`), zero where it names none. The text alone: no scene state."""
    if isinstance(instructions, str):
        raise TypeError("instructions must be a sequence of texts, one per frame, not one str")
    out = np.zeros((len(instructions), COLOUR_DIM), dtype=np.float32)
    texts = np.asarray(instructions, dtype=object)
    for text in set(instructions):
        rows = np.flatnonzero(texts == text)
        for offset, colour in zip((0, len(COLOUR_NAMES)), parse_named_colours(text), strict=True):
            if colour is not None:
                out[rows, offset + COLOUR_NAMES.index(colour)] = 1.0
    return out


def _nearest_of_colour(colour: str | None, rgb: np.ndarray) -> np.ndarray:
    """(N,) index of the entity whose rgb (N, K, 3) is nearest ``colour``'s, -1 where no entity's
    rgb is nearer that colour than any other palette colour (the named colour is not in the scene)."""
    if colour is None:
        return np.full(len(rgb), -1, dtype=np.int64)
    to_palette = np.linalg.norm(rgb[..., None, :] - _PALETTE, axis=-1)  # (N, K, C)
    is_colour = to_palette.argmin(-1) == _PALETTE_NAMES.index(colour)  # (N, K)
    distance = np.where(is_colour, to_palette[..., _PALETTE_NAMES.index(colour)], np.inf)  # (N, K)
    return np.where(is_colour.any(-1), distance.argmin(-1), -1).astype(np.int64)


def named_entity_indices(instructions: Sequence[str],
                         environment_state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`named_entities` for N frames: (N,) object and (N,) pad indices, -1 where unknown.

    Args:
        instructions: N texts, one per frame (each distinct text is parsed once).
        environment_state: (N, env_dim) frames in `sim.env.env_state_names` layout.
    """
    if isinstance(instructions, str):
        raise TypeError("instructions must be a sequence of texts, one per frame, not one str")
    x = np.asarray(environment_state, dtype=np.float64)
    if x.ndim != 2 or len(x) != len(instructions):
        raise ValueError(f"one instruction per frame: {len(instructions)} texts for environment states "
                         f"of shape {x.shape}")
    o_end = N_OBJECTS * OBJECT_FIELDS
    if x.shape[1] < o_end + N_PADS * PAD_FIELDS:
        raise ValueError(f"environment state of width {x.shape[1]} holds no {N_OBJECTS} objects and {N_PADS} pads "
                         f"(sim.env layout, at least {o_end + N_PADS * PAD_FIELDS} wide)")
    obj_rgb = x[:, :o_end].reshape(-1, N_OBJECTS, OBJECT_FIELDS)[:, :, 4:7]  # (N, 3, 3)
    pad_rgb = x[:, o_end:o_end + N_PADS * PAD_FIELDS].reshape(-1, N_PADS, PAD_FIELDS)[:, :, 3:6]  # (N, 2, 3)
    objects = np.full(len(x), -1, dtype=np.int64)
    pads = np.full(len(x), -1, dtype=np.int64)
    texts = np.asarray(instructions, dtype=object)
    for text in set(instructions):
        rows = np.flatnonzero(texts == text)
        cube, pad = parse_named_colours(text)
        objects[rows] = _nearest_of_colour(cube, obj_rgb[rows])
        pads[rows] = _nearest_of_colour(pad, pad_rgb[rows])
    return objects, pads


def named_entities(instruction: str, environment_state: np.ndarray) -> tuple[int, int]:
    """The object and the pad that ``instruction`` names, in the scene ``environment_state``.

    Uses only the instruction and the observed scene, exactly what a policy sees at inference
    (no privileged target label): the colour word before "cube" ("pad") in the bundled templates
    is matched to the object (pad) whose recorded r, g, b is nearest that colour's RGB.

    Args:
        instruction: the task text, e.g. "put the red cube on the blue pad".
        environment_state: (env_dim,) one frame in `sim.env.env_state_names` layout.
    Returns:
        (object index 0..N_OBJECTS-1, pad index 0..N_PADS-1), each -1 where the text names no
        cube (pad) this parser reads (free-form text, a task without a pad) or where no entity
        in the scene has the named colour: no information, never an error.
    """
    objects, pads = named_entity_indices([instruction], np.asarray(environment_state)[None])
    return int(objects[0]), int(pads[0])


def named_one_hot(objects: np.ndarray, pads: np.ndarray) -> np.ndarray:
    """(N, NAMED_ONE_HOT_DIM) float32: one-hot of the named object then of the named pad; all zero for -1."""
    out = np.zeros((len(objects), NAMED_ONE_HOT_DIM), dtype=np.float32)
    rows = np.arange(len(objects))
    objects, pads = np.asarray(objects), np.asarray(pads)
    out[rows[objects >= 0], objects[objects >= 0]] = 1.0
    out[rows[pads >= 0], N_OBJECTS + pads[pads >= 0]] = 1.0
    return out
