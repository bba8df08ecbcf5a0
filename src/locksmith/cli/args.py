"""Argument checks shared by the subcommands: typed counts and numbers, output folders and
files, robot and task names; `BadInput` is what every one of them raises (exit code 2)."""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

EXIT_BAD_INPUT = 2


class BadInput(Exception):
    """Raised by a subcommand for input the user must fix (exit code 2)."""


MAX_COUNT = 10_000_000  # any count on the command line (steps, episodes, demos, ...)


def _count(minimum: int = 1, maximum: int = MAX_COUNT):
    """An argparse type: an integer in [minimum, maximum] (``0`` workers or pixels is refused here)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if not minimum <= value <= maximum:
            raise argparse.ArgumentTypeError(f"expected an integer between {minimum} and {maximum:,}, got {value}")
        return value

    parse.__name__ = "count"
    return parse


def _number(minimum: float = 0.0, maximum: float = 1e6, low_open: bool = False, high_open: bool = False):
    """An argparse type: a finite number in the range (nan and inf are refused here)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        low_ok = value > minimum if low_open else value >= minimum
        high_ok = value < maximum if high_open else value <= maximum
        if not (math.isfinite(value) and low_ok and high_ok):
            lo, hi = "(" if low_open else "[", ")" if high_open else "]"
            raise argparse.ArgumentTypeError(f"expected a number in {lo}{minimum:g}, {maximum:g}{hi}, got {text}")
        return value

    parse.__name__ = "number"
    return parse


def _nearest_existing(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _check_out_folder(flag: str, path: Path | None) -> None:
    """Refuse, before any work, an output folder that is a file or cannot be created or written."""
    if path is None:
        return
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise BadInput(f"{flag}: {path} is an existing file, not a folder")
    _check_writable(flag, path)


def _check_out_file(flag: str, path: Path | None) -> None:
    """Refuse, before any work, an output file that is a folder or cannot be written."""
    if path is None:
        return
    path = Path(path)
    if path.is_dir():
        raise BadInput(f"{flag}: {path} is a folder, not a file")
    _check_writable(flag, path)


def _check_writable(flag: str, path: Path) -> None:
    existing = _nearest_existing(path)
    if existing != Path(os.path.abspath(path)) and not existing.is_dir():
        raise BadInput(f"{flag}: {path}: {existing} is a file, not a folder")
    read_only_mount = bool(os.statvfs(existing).f_flag & os.ST_RDONLY)  # os.access says yes to root
    if read_only_mount or not os.access(existing, os.W_OK | (os.X_OK if existing.is_dir() else 0)):
        raise BadInput(f"{flag}: {path}: {existing} is read-only")


def _check_names(flag: str, names: list[str], kind: str, known) -> None:
    """Raise `BadInput` for a name not in ``known``, listing the known ones."""
    for name in names:
        if name not in known:
            raise BadInput(f"{flag}: unknown {kind} {name!r}; known {kind}s: {', '.join(known)}")


def _check_robots_and_tasks(robots: list[str], tasks: list[str], plural: bool = False) -> None:
    from locksmith.embodiment.registry import known_robots, unknown_robot_message
    from locksmith.sim.tasks import TASKS

    known = known_robots()
    for name in robots:
        if name not in known:  # the message also says how to register one's own robot
            raise BadInput(f"{'--robots' if plural else '--robot'}: {unknown_robot_message(name)}")
    _check_names("--tasks" if plural else "--task", tasks, "task", list(TASKS))


