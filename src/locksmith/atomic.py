"""Write-then-rename helpers: a reader sees the old artefact or the new one, never half of one."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path


def write_file_atomic(path: str | Path, data: bytes | str) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it, then ``os.replace`` it in."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: str | Path, data: object) -> None:
    """`write_file_atomic` of ``data`` as indented JSON."""
    write_file_atomic(path, json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stale(path: Path, marker: str) -> bool:
    """Whether ``path`` (``.<name><marker><pid>``) was left by a process that no longer runs."""
    pid = path.name.rpartition(marker)[2]
    return pid.isdigit() and not _pid_alive(int(pid))


def remove_stale_temporaries(target: Path) -> list[Path]:
    """Delete ``.<name>.tmp-<pid>`` folders/files beside ``target`` left by killed processes."""
    removed = []
    for path in target.parent.glob(f".{target.name}.tmp-*"):
        if _stale(path, ".tmp-"):
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def recover_swapped(target: Path) -> bool:
    """Undo a `swap_into_place` killed between its two renames: if ``target`` is missing and a
    complete old copy sits under ``.<name>.old-<pid>`` (its process gone), move it back."""
    if target.exists():
        return False
    olds = sorted((p for p in target.parent.glob(f".{target.name}.old-*") if _stale(p, ".old-")),
                  key=lambda p: p.stat().st_mtime, reverse=True)
    if not olds:
        return False
    olds[0].rename(target)
    return True
