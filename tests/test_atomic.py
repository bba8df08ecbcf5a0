import subprocess
import sys

from locksmith.atomic import recover_swapped, remove_stale_temporaries, swap_into_place
from locksmith.train.loop import _metrics_step


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_swap_replaces_whole_folders(tmp_path):
    target, new = tmp_path / "ckpt", tmp_path / "new"
    target.mkdir()
    (target / "a").write_text("old")
    new.mkdir()
    (new / "a").write_text("new")
    swap_into_place(new, target)
    assert (target / "a").read_text() == "new" and not new.exists()
    assert not list(tmp_path.glob(".ckpt.old-*"))


def test_a_swap_killed_between_its_renames_is_recovered(tmp_path):
    target = tmp_path / "last"
    old = tmp_path / f".last.old-{_dead_pid()}"  # what a kill after the first rename leaves
    old.mkdir()
    (old / "weights").write_text("complete")
    assert recover_swapped(target)
    assert (target / "weights").read_text() == "complete" and not old.exists()
    assert not recover_swapped(target)  # nothing to do when the target is there


def test_a_live_process_swap_is_left_alone(tmp_path):
    old = tmp_path / f".last.old-{subprocess.os.getpid()}"
    old.mkdir()
    assert not recover_swapped(tmp_path / "last") and old.exists()


def test_stale_temporaries_of_killed_processes_are_removed(tmp_path):
    target = tmp_path / "data"
    stale = tmp_path / f".data.tmp-{_dead_pid()}"
    live = tmp_path / f".data.tmp-{subprocess.os.getpid()}"
    other = tmp_path / f".other.tmp-{_dead_pid()}"
    for p in (stale, live, other):
        p.mkdir()
    assert remove_stale_temporaries(target) == [stale]
    assert not stale.exists() and live.exists() and other.exists()


def test_a_metrics_line_cut_short_counts_as_past_every_step():
    assert _metrics_step('{"step": 25, "loss": 0.1}') == 25
    assert _metrics_step('{"step": 50, "lo') == float("inf")
