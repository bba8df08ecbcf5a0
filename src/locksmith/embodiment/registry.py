"""The bundled embodiment specs (one YAML file per robot in ``embodiment/specs``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from locksmith.embodiment.spec import EmbodimentSpec, load_spec

SPECS_DIR = Path(__file__).parent / "specs"

# The order is the one `locksmith robots` prints: pretraining pool first, then the targets.
BUNDLED_ROBOTS = ("panda", "ur5e", "vx300s", "z1", "so101", "mobile_panda", "aloha")


def bundled_spec_path(name: str) -> Path:
    if name not in BUNDLED_ROBOTS:
        raise KeyError(f"unknown robot {name!r}; known robots: {', '.join(BUNDLED_ROBOTS)}")
    return SPECS_DIR / f"{name}.yaml"


@lru_cache(maxsize=None)
def load_bundled_spec(name: str) -> EmbodimentSpec:
    """The spec of a bundled robot; an unknown name lists the known ones."""
    return load_spec(bundled_spec_path(name))


def pretraining_pool() -> list[str]:
    return [n for n in BUNDLED_ROBOTS if load_bundled_spec(n).role == "pretrain"]
