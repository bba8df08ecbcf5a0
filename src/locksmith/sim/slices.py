"""Evaluation slices: named, seeded transformations of an environment.

Each slice reproduces a failure mode that a narrow policy collapses on. A slice draws its
perturbation from the episode's seed, so an evaluation is reproducible episode by episode.

| slice             | what changes                                                          |
|-------------------|-----------------------------------------------------------------------|
| `nominal`         | nothing                                                               |
| `camera_moved`    | every camera shifted 5-10 cm and re-aimed (extrinsics change)         |
| `gripper_changed` | other finger geometry, and the gripper's closure calibration offset  |
| `object_geometry` | objects 0.75-1.25x their size, half the episodes cylinders not boxes  |
| `push`            | a horizontal push on the target object in the middle of the episode   |
| `lighting`        | the light 0.4-1.6x as bright and tilted up to ~35°, the table re-tinted |

`lighting` changes only what a camera sees (the physics and the scene state are those of
`nominal`): a state policy is blind to it, a pixel policy is not.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

SLICES = ("nominal", "camera_moved", "gripper_changed", "object_geometry", "push", "lighting")


def check_slice(name: str) -> str:
    if name not in SLICES:
        raise KeyError(f"unknown slice {name!r}; known slices: {', '.join(SLICES)}")
    return name


@dataclass(frozen=True)
class SliceDraw:
    """The concrete perturbation of one episode."""

    camera_offset: np.ndarray  # (3,) m, added to every camera position
    gripper_variant: str
    closure_offset: float  # added to the commanded closure fraction (a recalibrated gripper)
    object_shape: str
    object_scale: float
    push_time_fraction: float | None  # of the horizon; None: no push
    push_velocity: np.ndarray  # (2,) m/s given to the target object
    light_scale: float = 1.0  # multiplies the light's diffuse colour
    light_tilt: tuple[float, float] = (0.0, 0.0)  # added to the light direction's x and y (it points down)
    table_tint: tuple[float, float, float] = (0.0, 0.0, 0.0)  # added to the table's colour


def draw_slice(name: str, seed: int) -> SliceDraw:
    """The perturbation that slice ``name`` applies to the episode with ``seed``."""
    check_slice(name)
    rng = np.random.default_rng([seed, SLICES.index(name), 7919])
    draw = SliceDraw(np.zeros(3), "default", 0.0, "box", 1.0, None, np.zeros(2))
    if name == "camera_moved":
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction)
        return replace(draw, camera_offset=direction * rng.uniform(0.05, 0.1))
    if name == "gripper_changed":
        return replace(draw, gripper_variant="changed", closure_offset=float(rng.uniform(-0.1, 0.1)))
    if name == "object_geometry":
        return replace(draw, object_shape="cylinder" if rng.random() < 0.5 else "box",
                       object_scale=float(rng.uniform(0.75, 1.25)))
    if name == "lighting":
        return replace(draw, light_scale=float(rng.uniform(0.4, 1.6)),
                       light_tilt=tuple(float(x) for x in rng.uniform(-0.7, 0.7, 2)),
                       table_tint=tuple(float(x) for x in rng.uniform(-0.15, 0.15, 3)))
    if name == "push":
        angle = rng.uniform(0, 2 * np.pi)
        return replace(draw, push_time_fraction=float(rng.uniform(0.2, 0.4)),
                       push_velocity=0.5 * np.array([np.cos(angle), np.sin(angle)]))
    return draw
