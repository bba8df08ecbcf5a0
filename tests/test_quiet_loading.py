"""Quiet loading: locksmith names its video backend, and importing it drops only lerobot's
torchcodec fallback traceback (FFmpeg's shared libraries absent), nothing else."""

import logging
import subprocess
import sys

import pytest

import locksmith  # noqa: F401  (installs the filter)
from locksmith.data.loading import load_demonstrations
from locksmith.data.record import VIDEO_BACKEND, record_demos

IMPORT_UTILS = "lerobot.utils.import_utils"
FALLBACK = "'torchcodec' is installed but cannot be loaded"


def _fallback_warns_here() -> bool:
    """Whether lerobot's default video backend choice logs a warning on this machine."""
    from lerobot.utils.import_utils import get_safe_default_video_backend

    logger = logging.getLogger(IMPORT_UTILS)
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    filters, logger.filters, logger.propagate = logger.filters, [], False  # seen by this handler alone
    logger.addHandler(handler)
    try:
        get_safe_default_video_backend()
    finally:
        logger.removeHandler(handler)
        logger.filters, logger.propagate = filters, True
    return any(r.levelno >= logging.WARNING for r in records)


def test_the_filter_drops_only_the_torchcodec_fallback(caplog):
    logger = logging.getLogger(IMPORT_UTILS)
    with caplog.at_level(logging.WARNING, logger=IMPORT_UTILS):
        logger.warning("Could not load libtorchcodec ...\n%s (see the error above).", FALLBACK)
        logger.warning("'peft' is required but not installed")
    assert [r.getMessage() for r in caplog.records] == ["'peft' is required but not installed"]


def test_locksmith_opens_every_dataset_with_its_backend(tmp_path, caplog, monkeypatch):
    """Recording, appending and loading never reach lerobot's default choice (the filter off)."""
    if not _fallback_warns_here():
        pytest.skip("lerobot's default video backend choice is silent on this machine")
    assert VIDEO_BACKEND == "pyav"
    monkeypatch.setattr(logging.getLogger(IMPORT_UTILS), "filters", [])
    with caplog.at_level(logging.WARNING, logger=IMPORT_UTILS):
        record_demos("panda", "reach", 1, tmp_path / "d", workers=1, progress=False)
        record_demos("panda", "reach", 1, tmp_path / "d", workers=1, progress=False, append=True)
        assert load_demonstrations(tmp_path / "d").num_episodes == 2
    assert not [r for r in caplog.records if r.name == IMPORT_UTILS]


def test_a_lerobot_dataset_load_beside_locksmith_prints_nothing(tmp_path):
    record_demos("panda", "reach", 1, tmp_path / "d", workers=1, progress=False)
    load = (f"from lerobot.datasets.lerobot_dataset import LeRobotDataset; "
            f"print(len(LeRobotDataset('local/d', root={str(tmp_path / 'd')!r})))")
    quiet = subprocess.run([sys.executable, "-c", "import locksmith; " + load], capture_output=True, text=True,
                           timeout=300)
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr[-2000:]
    if _fallback_warns_here():  # the same load without locksmith shows what is dropped
        loud = subprocess.run([sys.executable, "-c", load], capture_output=True, text=True, timeout=300)
        assert loud.returncode == 0 and FALLBACK in loud.stderr
