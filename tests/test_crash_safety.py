"""SIGKILL at seeded random points of `locksmith demos` and `locksmith pretrain`, then a rerun.

What must hold after any kill: nothing half-written sits where a reader looks (the dataset
folder is the old one or none, a checkpoint loads, metrics lines parse), and the rerun
completes. Each command runs as its own process group (the CLI as a user starts it) and the
whole group is killed; a kill waits for a sign of progress first, then a seeded random delay.
The audit's kill test lives in tests/audit/test_audit.py, the in-process kill-and-resume loss
curve in tests/train/test_loop.py.
"""

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from locksmith.cli import main
from locksmith.data.loading import load_demonstrations
from locksmith.data.record import record_demos
from locksmith.policy.policy import CrossEmbodimentPolicy

STEPS, EVERY, LOG_EVERY = 200, 10, 25  # LOG_EVERY: TrainConfig's default (the CLI has no flag for it)


def _start(argv: list, log: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with log.open("w") as fh:
        return subprocess.Popen([sys.executable, "-m", "locksmith.cli", *map(str, argv)], stdout=fh,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True)


def _kill_after(proc: subprocess.Popen, progressed: Callable[[], bool], delay: float, log: Path,
                timeout: float = 120) -> None:
    """Wait until ``progressed()``, then ``delay`` seconds more, then SIGKILL the process group."""
    deadline = time.monotonic() + timeout
    while not progressed():
        assert proc.poll() is None, f"exited ({proc.returncode}) before any progress:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"no progress within {timeout} s:\n{log.read_text()[-3000:]}"
        time.sleep(0.05)
    time.sleep(delay)
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # start_new_session: the group id is the pid
    except ProcessLookupError:
        pass  # it finished first: the kill landed after the end, which must be safe too
    proc.wait(timeout=60)


def _episode_saved(target: Path) -> bool:
    """Progress of a recording into ``target``: an episode saved in its temporary folder."""
    tmps = [p for p in target.parent.iterdir() if p.name.startswith(f".{target.name}.tmp")]
    return any(list(tmp.rglob("*.parquet")) for tmp in tmps)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_killed_recording_never_leaves_a_partial_dataset(tmp_path):
    rng = random.Random(1)
    # 1. Overwriting an existing dataset, killed mid-recording: the old one stays, byte for byte.
    out = tmp_path / "panda_reach"
    record_demos("panda", "reach", 2, out, workers=1, progress=False)
    old = _files(out)
    log = tmp_path / "overwrite.log"
    proc = _start(["demos", "--robot", "panda", "--task", "reach", "--episodes", 100, "--workers", 1,
                   "--overwrite", "--out", out], log)
    _kill_after(proc, lambda: _episode_saved(out), rng.uniform(0.0, 1.5), log)
    assert proc.returncode == -signal.SIGKILL, log.read_text()[-3000:]
    assert _files(out) == old
    assert load_demonstrations(out).num_episodes == 2

    # 2. A fresh recording killed at a random point around its end: no dataset, or a whole one.
    fresh = tmp_path / "fresh"
    log = tmp_path / "fresh.log"
    proc = _start(["demos", "--robot", "panda", "--task", "reach", "--episodes", 6, "--workers", 1,
                   "--out", fresh], log)
    _kill_after(proc, lambda: _episode_saved(fresh), rng.uniform(0.0, 1.2), log)
    if fresh.exists():
        assert load_demonstrations(fresh).num_episodes == 6
    else:
        assert proc.returncode == -signal.SIGKILL, log.read_text()[-3000:]

    # 3. The rerun completes and leaves a whole dataset, whatever the kill left behind.
    assert main(["demos", "--robot", "panda", "--task", "reach", "--episodes", "3", "--workers", "1",
                 "--overwrite", "--out", str(fresh)]) == 0
    assert load_demonstrations(fresh).num_episodes == 3


def _metrics(out: Path) -> list[str]:
    path = out / "metrics.jsonl"
    return path.read_text().splitlines() if path.exists() else []


def _assert_readable(out: Path) -> int:
    """Everything a reader (or --resume) opens after a kill is whole; returns the checkpoint's step."""
    for line in _metrics(out):
        json.loads(line)
    if (out / "policy").exists():
        CrossEmbodimentPolicy.from_pretrained(out / "policy")
    last = out / "checkpoints" / "last"
    if not last.exists():
        return 0
    CrossEmbodimentPolicy.from_pretrained(last)
    step = int(torch.load(last / "training_state.pt", map_location="cpu", weights_only=False)["step"])
    assert step % EVERY == 0 or step == STEPS, step
    return step


def _last_logged_step(out: Path) -> int:
    """The last step in metrics.jsonl (0 if none); a line being appended right now is skipped."""
    steps = [0]
    for line in _metrics(out):
        try:
            steps.append(json.loads(line)["step"])
        except json.JSONDecodeError:
            pass
    return max(steps)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("crash") / "panda_reach"
    record_demos("panda", "reach", 2, root, workers=1, progress=False)
    return root


def test_killed_pretraining_resumes_to_a_loadable_prior(dataset, tmp_path):
    rng = random.Random(2)
    out = tmp_path / "prior"
    argv = ["pretrain", "--datasets", dataset, "--steps", STEPS, "--checkpoint-every", EVERY, "--batch-size", 8,
            "--tune-episodes", 0, "--out", out]
    kept: list[str] = []
    for attempt in range(2):  # kill the first run, then kill its resumption
        log = tmp_path / f"run{attempt}.log"
        # Progress: one or two metrics lines past what is there (one is written every 25 steps,
        # a checkpoint every 10, so the kill falls between checkpoints, with lines past the last).
        target = _last_logged_step(out) + LOG_EVERY * rng.choice([1, 2])
        proc = _start([*argv, *(["--resume"] if attempt else [])], log)
        _kill_after(proc, lambda: _last_logged_step(out) >= target, rng.uniform(0.0, 0.3), log)
        assert proc.returncode == -signal.SIGKILL, log.read_text()[-3000:]  # >= 100 steps were left
        step = _assert_readable(out)  # 0 if the kill fell between a checkpoint swap's renames
        # The resumption kept the lines up to its checkpoint as they were (their samples/s
        # differ between runs, so a restart from step 0 would show).
        assert [ln for ln in _metrics(out) if json.loads(ln)["step"] <= step][: len(kept)] == kept
        kept = [ln for ln in _metrics(out) if json.loads(ln)["step"] <= step]

    assert main([*map(str, argv), "--resume"]) == 0
    policy = CrossEmbodimentPolicy.from_pretrained(out / "policy")
    assert sorted(policy.stems) == ["panda"]
    lines = _metrics(out)
    steps = [json.loads(ln)["step"] for ln in lines]
    assert steps == sorted(set(steps)) == [*range(LOG_EVERY, STEPS, LOG_EVERY), STEPS]
    assert lines[: len(kept)] == kept
    assert _assert_readable(out) == STEPS
