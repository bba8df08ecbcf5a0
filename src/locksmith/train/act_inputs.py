"""What LeRobot's ACT reads in the audit: the robot's state and the scene, with the task as the
named cube and pad.

ACT 0.6.1 reads exactly two vector inputs, ``observation.state`` and one ``ENV`` feature (the
batch key ``observation.environment_state``; `ACT.forward` builds one encoder token from each),
so the task goes in as the last `NAMED_DIM` = 12 columns of ACT's ``observation.environment_state``:

    one-hot of the named object (3) | one-hot of the named pad (2) |
    the named object's x, y, z, half_size (4) | the named pad's x, y, z (3)

all zero where the instruction names none (``lift`` names no pad; free-form text names nothing).
`locksmith.data.targets.named_entities` reads them off the frame's instruction text and its own
environment state (colour word → the entity of that colour), exactly what a policy sees at
inference, no privileged target label; training computes them per frame from the frame's task
text, `ActPeer.predict_action_chunk(state, environment_state, instructions)` the same way per row.

Why this input (measured on panda ``lift``, 2026-12; chance is 1/3; "new layouts" are evaluation
seeds disjoint from the demos', each layout run with each of its three cubes named; the cube
counted is the one nearest the TCP when the gripper first closes, ``tests/train/test_act_task.py``):

    ACT's extra ENV columns                          tiny size (the test's), default size, 2,000 steps,
                                                     8 layouts × 3 namings, 120 recorded-style demos
                                                     300 steps              (one naming per layout)
    none (instruction-blind)                         16/48                  chance by construction
    pooled sentence embedding (384; the previous)    15/48                  19-21/48 (6,000 steps)
    one-hot of the named object and pad (5)          16/48                  17/48
    one-hot + embedding                              18/48                  -
    one-hot + the named object's and pad's fields    42, 42, 44/48          46/48
      (12; `named_features`)                         (seeds 0, 1, 2)
    the same + embedding                             31, 26, 30/48          45/48

A one-hot says which entity is meant but leaves ACT to select that entity's position out of its
one environment token, a multiplicative gating its linear token projection does not learn at
these sizes (our reading); the named entity's own fields hand it the target as a single-object
scene would. The sentence embedding is dropped: beside the named entities it cost 11-16 of 48 at
the small budget (384 columns constant per text give ACT another way to fit the training layouts)
and gained nothing at 120 demos, and alone it never generalized; dropping it also keeps the
sentence encoder out of the ACT arm. The price: on free-form text that `named_entities` cannot
parse, ACT is task-blind (our policy still reads the words), and training logs a warning.

A pixel ACT (the audit's ACT beside a pixel prior) never reads the scene state: its ``ENV``
columns are `named_colours`, the colours of the named cube and pad read off the text alone, and
where they are is for its vision backbone to find, as our pixel policy must.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from locksmith.data.targets import (  # named_colours and its sizes: re-exported for the ACT peer
    COLOUR_DIM,
    COLOUR_NAMES,
    N_OBJECTS,
    N_PADS,
    OBJECT_FIELDS,
    PAD_FIELDS,
    named_colours,
    named_entity_indices,
    named_one_hot,
)

NAMED_KEY = "observation.named_entities"
"""The stats key of the named-entity columns (ACT's ENV input is ``environment_state ⊕ named_features``)."""
NAMED_OBJECT_FIELDS, NAMED_PAD_FIELDS = 4, 3  # x, y, z, half_size of the named object; x, y, z of the named pad
NAMED_DIM = N_OBJECTS + N_PADS + NAMED_OBJECT_FIELDS + NAMED_PAD_FIELDS
"""Width of `named_features`: one-hot object (3), one-hot pad (2), the named object's and pad's fields (4 + 3)."""
NAMED_ENCODING = {"source": "locksmith.data.targets.named_entities", "dim": NAMED_DIM,
                  "columns": [f"object{i}.named" for i in range(N_OBJECTS)] + [f"pad{j}.named" for j in range(N_PADS)]
                  + ["named_object.x", "named_object.y", "named_object.z", "named_object.half_size",
                     "named_pad.x", "named_pad.y", "named_pad.z"]}
"""Recorded in the marker: what the named-entity columns hold."""


def named_features(instructions: Sequence[str], environment_state: np.ndarray) -> np.ndarray:
    """The named cube and pad as ACT input columns (N, NAMED_DIM) float32, per frame.

    ``[one-hot object (3) | one-hot pad (2) | named object x, y, z, half_size | named pad x, y, z]``
    from `locksmith.data.targets.named_entity_indices` (the instruction's colour words matched in
    the frame's own scene); a cube or pad the text does not name (free-form text, ``lift``'s
    missing pad) gives zeros in its columns.
    """
    x = np.asarray(environment_state, dtype=np.float32)  # (N, E)
    objects, pads = named_entity_indices(instructions, x)
    rows = np.arange(len(x))
    o_end = N_OBJECTS * OBJECT_FIELDS
    obj = x[:, :o_end].reshape(-1, N_OBJECTS, OBJECT_FIELDS)[rows, np.maximum(objects, 0), :NAMED_OBJECT_FIELDS]
    pad = x[:, o_end:o_end + N_PADS * PAD_FIELDS].reshape(-1, N_PADS, PAD_FIELDS)[rows, np.maximum(pads, 0),
                                                                                    :NAMED_PAD_FIELDS]
    return np.concatenate([named_one_hot(objects, pads), obj * (objects >= 0)[:, None],
                           pad * (pads >= 0)[:, None]], axis=1).astype(np.float32)  # (N, NAMED_DIM)


def feature_stats(x: np.ndarray) -> dict[str, np.ndarray]:
    """Mean/std/min/max over the rows of ``x`` (N, D), as float64."""
    x = np.asarray(x, dtype=np.float64)
    return {"mean": x.mean(0), "std": x.std(0), "min": x.min(0), "max": x.max(0)}


COLOUR_ENCODING = {"source": "locksmith.data.targets.parse_named_colours", "dim": COLOUR_DIM,
                   "columns": [f"cube.{c}" for c in COLOUR_NAMES] + [f"pad.{c}" for c in COLOUR_NAMES]}
"""Recorded in a pixel ACT's marker: what its task columns hold."""


def image_stats(images: np.ndarray, batch: int = 4096) -> dict[str, np.ndarray]:
    """Per-channel mean/std/min/max of (N, H, W, 3) uint8 images in [0, 1], each (3, 1, 1), the
    shape lerobot's normalizer broadcasts over a (B, 3, H, W) image."""
    total, squares, n = np.zeros(3), np.zeros(3), 0
    for i in range(0, len(images), batch):
        x = np.asarray(images[i:i + batch], dtype=np.float64).reshape(-1, 3) / 255.0
        total += x.sum(0)
        squares += (x * x).sum(0)
        n += len(x)
    mean = total / max(n, 1)
    std = np.sqrt(np.maximum(squares / max(n, 1) - mean * mean, 0.0))
    shape = (3, 1, 1)
    return {"mean": mean.reshape(shape), "std": std.reshape(shape), "min": np.zeros(shape), "max": np.ones(shape)}


__all__ = ["COLOUR_DIM", "COLOUR_ENCODING", "NAMED_DIM", "NAMED_ENCODING", "NAMED_KEY", "feature_stats",
           "image_stats", "named_colours", "named_features"]
