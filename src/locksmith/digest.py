"""Content digests of checkpoint folders: the one hash that run keys and prior records use."""

from __future__ import annotations

import hashlib
from pathlib import Path


def folder_digest(folder: str | Path, names: tuple[str, ...] | None = None) -> str:
    """sha256 over the files of a checkpoint folder (``names`` only, when given), names included;
    a named file that is missing counts as empty."""
    folder = Path(folder)
    digest = hashlib.sha256()
    paths = ([folder / n for n in names] if names is not None
             else sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")))
    for path in paths:
        digest.update(str(path.relative_to(folder)).encode())
        digest.update(path.read_bytes() if path.is_file() else b"")
    return digest.hexdigest()


__all__ = ["folder_digest"]
