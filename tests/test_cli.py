import argparse
import json
import subprocess
import sys

import pytest

from locksmith.cli import build_parser, main
from locksmith.embodiment.registry import BUNDLED_ROBOTS, bundled_spec_path


def test_robots_lists_every_bundled_robot(capsys):
    assert main(["robots", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == list(BUNDLED_ROBOTS)
    assert {"dof", "action_kind", "rate_hz", "role"} <= set(rows[0])


def test_spec_check_ok_and_bad(tmp_path, capsys):
    assert main(["spec", "check", str(bundled_spec_path("panda"))]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(bundled_spec_path("panda").read_text().replace("control_rate_hz: 20", "control_rate_hz: -5"))
    assert main(["spec", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "control_rate_hz" in err and "-5" in err


@pytest.mark.parametrize("argv, expect", [
    (["demos", "--robot", "optimus", "--task", "lift", "--episodes", "1"], "known robots"),
    (["demos", "--robot", "panda", "--task", "dance", "--episodes", "1"], "known tasks"),
    (["demos", "--robot", "panda", "--task", "reach", "--episodes", "1", "--noise", "-0.01"], "--noise"),
    (["pretrain", "--robots", "panda", "--demos-per-robot", "1", "--demo-noise", "-0.01"], "demo_noise"),
])
def test_bad_names_and_values_exit_2(tmp_path, capsys, argv, expect):
    assert main([*argv, "--out", str(tmp_path / "x")]) == 2
    assert expect in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_demos_refuses_a_non_empty_folder(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    assert main(["demos", "--robot", "panda", "--task", "reach", "--episodes", "1", "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "precious"


def test_every_flag_has_help():
    parser = build_parser()
    stack = [parser]
    while stack:
        p = stack.pop()
        for action in p._actions:
            if action.choices and isinstance(action.choices, dict):
                stack.extend(action.choices.values())
            elif action.dest != "help":
                assert action.help, f"{p.prog}: {action.dest} has no help"


def _help_pages() -> dict[tuple[str, ...], argparse.ArgumentParser]:
    """The top-level parser and every subcommand's (nested ones included), by their argv."""
    pages, stack = {}, [((), build_parser())]
    while stack:
        path, parser = stack.pop()
        pages[path] = parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                stack.extend(((*path, name), sub) for name, sub in action.choices.items())
    return pages


@pytest.mark.parametrize("path", sorted(_help_pages()), ids=lambda p: " ".join(p) or "locksmith")
def test_help_page_describes_every_flag_and_subcommand(path, capsys, monkeypatch):
    """`--help` renders (a stray % in a help string would crash it) and shows every help text."""
    monkeypatch.setenv("COLUMNS", "1000")  # no wrapping, so each help text appears whole
    parser = _help_pages()[path]
    with pytest.raises(SystemExit) as exit_:
        main([*path, "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                assert choice.help and choice.help in text, f"{parser.prog}: subcommand {choice.dest} undescribed"
            continue
        shown = action.help % {**vars(action), "prog": parser.prog}
        assert all(flag in text for flag in action.option_strings) and shown in text, f"{parser.prog}: {action.dest}"


def test_console_script_runs():
    result = subprocess.run([sys.executable, "-m", "locksmith.cli", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "demos" in result.stdout
