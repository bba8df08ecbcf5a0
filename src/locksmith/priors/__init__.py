"""The published prior that ships with locksmith, and the one cache of priors a plan pretrains.

"Pretrain once, adapt many times": ``locksmith/priors/default/`` holds the pool prior that
``locksmith pretrain`` makes with its defaults (`locksmith.train.defaults`), its instruction
cache, ``pretrain.json`` (how it was built) and ``README.md``, its model card (pool, demos,
steps, training time and machine, closed-loop success per pool robot with 95 % intervals, the
weights' sha256 and the one command that rebuilds it: ``scripts/publish_prior.py``).
`locksmith audit` and `locksmith adapt` use it when no prior is named.

A shipped prior whose config does not match the code (a field the code has that the config
lacks, or the other way round) is refused with a message saying how to rebuild it, never
silently loaded with defaults filled in.

Priors that a plan pretrains itself are cached by the digest of their settings under
`cache_dir` (``$LOCKSMITH_CACHE`` or ``~/.cache/locksmith``) ``/priors/<key>/``, shared by every
audit folder.
"""

from __future__ import annotations

import json
import os
from dataclasses import fields
from pathlib import Path

SHIPPED_DIR = Path(__file__).parent / "default"
MODEL_CARD = "README.md"
REBUILD_COMMAND = "OMP_NUM_THREADS=1 .venv/bin/python scripts/publish_prior.py --threads 1"


def cache_dir() -> Path:
    """The user cache folder (``$LOCKSMITH_CACHE``, else ``~/.cache/locksmith``)."""
    return Path(os.environ.get("LOCKSMITH_CACHE") or Path.home() / ".cache" / "locksmith").expanduser()


def stale_fields(config_text: str) -> list[str]:
    """What differs between a checkpoint's config and the code's `PolicyConfig` (empty: current)."""
    from locksmith.policy import OMITTED_WHEN_DEFAULT
    from locksmith.policy.config import CONFIG_VERSION, EmbodimentConfig, PolicyConfig

    data = json.loads(config_text)
    problems = []
    if data.get("version") != CONFIG_VERSION:
        problems.append(f"config version {data.get('version')}, this locksmith writes {CONFIG_VERSION}")
    expected = {f.name for f in fields(PolicyConfig)}
    problems += [f"missing {k}" for k in sorted(expected - set(data) - set(OMITTED_WHEN_DEFAULT))]
    problems += [f"unknown {k}" for k in sorted(set(data) - expected)]
    expected_emb = {f.name for f in fields(EmbodimentConfig)}
    for emb in data.get("embodiments", []):
        problems += [f"{emb.get('name', '?')}: missing {k}" for k in sorted(expected_emb - set(emb))]
        problems += [f"{emb.get('name', '?')}: unknown {k}" for k in sorted(set(emb) - expected_emb)]
    return problems


def shipped_prior() -> Path:
    """The published prior's checkpoint folder, checked against the code.

    Raises:
        CheckpointError: it is missing from this install, or its config does not match the code.
    """
    from locksmith.policy.policy import CONFIG_FILE, CheckpointError

    config = SHIPPED_DIR / CONFIG_FILE
    if not config.is_file():
        raise CheckpointError(f"{SHIPPED_DIR}: the published prior is missing from this install "
                              f"(rebuild it with `{REBUILD_COMMAND}`, or name a prior)")
    problems = stale_fields(config.read_text())
    if problems:
        raise CheckpointError(f"{config}: the published prior does not match this version of locksmith "
                              f"({'; '.join(problems[:4])}); rebuild it with `{REBUILD_COMMAND}`")
    return SHIPPED_DIR


def shipped_record() -> dict:
    """``pretrain.json`` of the published prior (how it was built), {} when absent."""
    path = SHIPPED_DIR / "pretrain.json"
    return json.loads(path.read_text()) if path.is_file() else {}
