"""Content digests of checkpoint folders: the one hash that run keys and prior records use."""

from __future__ import annotations

import hashlib
from pathlib import Path


def folder_digest(folder: str | Path, names: tuple[str, ...] | None = None,
                  contents: dict[str, bytes] | None = None) -> str:
    """sha256 over the files of a checkpoint folder (``names`` only, when given), names included;
    a named file that is missing counts as empty. ``contents`` gives some files' bytes in place of
    what is on disk (the digest of the folder as it would be with them)."""
    contents = contents or {}
    folder = Path(folder)
    digest = hashlib.sha256()
    paths = ([folder / n for n in names] if names is not None
             else sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")))
    for path in paths:
        name = str(path.relative_to(folder))
        digest.update(name.encode())
        digest.update(contents[name] if name in contents else path.read_bytes() if path.is_file() else b"")
    return digest.hexdigest()


__all__ = ["folder_digest"]
