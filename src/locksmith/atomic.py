"""Write-then-rename helpers: a reader sees the old artefact or the new one, never half of one."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def swap_into_place(tmp: Path, target: Path) -> None:
    """Replace the folder ``target`` by the complete folder ``tmp`` with renames.

    A crash between the two renames leaves the old folder under a hidden ``.<name>.old-<pid>``
    name and the new one complete under its temporary name: nothing half-written is at ``target``.
    """
    if target.exists():
        old = target.parent / f".{target.name}.old-{os.getpid()}"
        target.rename(old)
        tmp.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(target)
