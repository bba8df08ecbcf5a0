"""The audit report: Markdown headline and notes, atomic files, and the HTML in headless Chromium."""

from __future__ import annotations

import copy
import io
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from locksmith.audit.report import (
    OFFLINE_NOTE,
    format_gain,
    goal_check,
    headline_lines,
    render_html,
    render_markdown,
    write_audit_json,
    write_report,
)

BUDGETS = [5, 10, 20, 50]


def _arm(kind: str, mean: list[float], dtt: dict, seconds: float, slices=("nominal", "push")) -> dict:
    ci = [[max(0.0, m - 0.08), min(1.0, m + 0.08)] for m in mean]
    return {
        "kind": kind,
        "curve": {"budgets": BUDGETS, "mean": mean, "ci95": ci,
                  "per_seed": [[m + d for m in mean] for d in (-0.02, 0.0, 0.02)]},
        "per_slice": {s: {"budgets": BUDGETS, "mean": [max(0.0, m - 0.1 * i) for m in mean]}
                      for i, s in enumerate(slices)},
        "demos_to_threshold": dtt,
        "wallclock_seconds": {str(b): seconds * b for b in BUDGETS},
        "shield_interventions": {"joint_limit": 12, "workspace": 3} if kind == "adapted" else {"joint_limit": 40},
        "frames": {str(b): 240 * b for b in BUDGETS},
        "trainable_parameters": 41_000 if kind == "adapted" else 1_200_000,
        "checkpoints": [f"runs/x/{kind}/{b}" for b in BUDGETS],
    }


def _target(robot: str, arms: dict, gain: dict, **extra) -> dict:
    target = {
        "robot": robot, "task": "pick_place", "source": "sim", "dataset": None,
        "metric": "success", "higher_is_better": True, "threshold": 0.5,
        "threshold_rule": "0.8 x expert success (0.62)", "budgets": BUDGETS, "seeds": [0, 1, 2],
        "slices": ["nominal", "push"], "arms": arms, "baseline_arm": "scratch", "adapted_arm": "lora",
        "adaptation_gain": gain, "wallclock_gain": {"value": 5.5, "ci95": [3.9, 7.2],
                                                    "is_lower_bound": False, "is_upper_bound": False},
        "negative_transfer": [], "notes": [],
    }
    target.update(extra)
    return target


def synthetic_audit() -> dict:
    """Three targets: a reached gain, a lower-bound gain (scratch never got there), an offline one."""
    reached = _target("so101", {
        "scratch": _arm("scratch", [0.05, 0.2, 0.35, 0.55], {"demos": 44.0, "status": "reached",
                                                             "lower_bound": None, "ci95": [36.0, 50.0]}, 1.2),
        "act": _arm("peer", [0.02, 0.1, 0.3, 0.45], {"demos": None, "status": "not_reached",
                                                     "lower_bound": 50, "ci95": None}, 2.0),
        "lora": _arm("adapted", [0.48, 0.66, 0.8, 0.85], {"demos": 5.4, "status": "reached",
                                                          "lower_bound": None, "ci95": [4.4, 6.9]}, 0.4),
    }, {"value": 8.2, "ci95": [6.1, 10.4], "is_lower_bound": False, "is_upper_bound": False,
        "text": "8.2x [6.1, 10.4]"},
        negative_transfer=[{"arm": "lora", "budget": 5, "adapted": 0.48, "scratch": 0.6, "significant": True}],
        baseline_choice={"name": "scratch", "reason": "fewer_demos"},
        other_gains={"lora_vs_scratch": {"value": 8.2, "text": "8.2x [6.1, 10.4]"},
                     "lora_vs_act": {"value": 9.3, "is_lower_bound": True, "text": "> 9.3x [7.7, 11.4]"}})
    bound = _target("tiago_like", {
        "scratch": _arm("scratch", [0.0, 0.05, 0.1, 0.2], {"demos": None, "status": "not_reached",
                                                          "lower_bound": 50, "ci95": None}, 1.5),
        "lora": _arm("adapted", [0.55, 0.7, 0.8, 0.9], {"demos": 5, "status": "at_or_below_min",
                                                        "lower_bound": None, "ci95": None}, 0.5),
    }, {"value": 12.0, "ci95": None, "is_lower_bound": True, "is_upper_bound": False})  # no text: formatted
    offline = _target("aloha_real", {
        "scratch": _arm("scratch", [0.9, 0.7, 0.5, 0.35], {"demos": None, "status": "not_reached",
                                                          "lower_bound": 50, "ci95": None}, 1.0, slices=()),
        "lora": _arm("adapted", [0.6, 0.4, 0.3, 0.25], {"demos": 10.0, "status": "reached",
                                                        "lower_bound": None, "ci95": [7.5, 14.0]}, 0.3, slices=()),
    }, {"value": None, "ci95": None, "is_lower_bound": False, "is_upper_bound": False,
        "text": "n/a (scratch never reached the threshold; lower bound not computed offline)"},
        source="dataset", dataset="data/aloha_real", metric="offline_action_error",
        higher_is_better=False, threshold=0.4, threshold_rule="fixed", slices=[],
        wallclock_gain={"value": None, "ci95": None},
        notes=["no simulator: offline action error on held-out episodes, lower is better", "dataset-only target"],
        goal_met=False)
    return {
        "plan": {"targets": ["tabletop_arm", "mobile_manipulator", "bimanual_real"], "budgets": BUDGETS},
        "plan_file": None, "quick": False,
        "prior": {"checkpoint": "runs/prior/policy", "robots": ["panda", "ur5e", "vx300s"],
                  "pretrain_seconds": 412.0, "cached": True},
        "arms_ran": ["scratch", "act", "lora"],
        "targets": {"tabletop_arm": reached, "mobile_manipulator": bound, "bimanual_real": offline},
        "reproducibility": {"seeds": [0, 1, 2], "versions": {"locksmith": "0.1.0", "torch": "2.11.0"},
                            "machine": {"cpus": 2, "platform": "linux"},
                            "dataset_fingerprints": {"so101_pick_place": "abc123"},
                            "started": "2026-11-26T08:00:00", "finished": "2026-11-26T08:13:32",
                            "seconds": 812.3, "command": "locksmith audit"},
        "goal": {"demos_gain": 10, "demos_gain_lower": 5, "wallclock_gain": 5},
    }


HEADLINE = [
    "tabletop_arm: adaptation_gain=8.2x [6.1, 10.4]",
    "mobile_manipulator: adaptation_gain=> 12x",
    "bimanual_real: adaptation_gain=n/a (scratch never reached the threshold; lower bound not computed offline)",
]


def test_markdown_opens_with_one_headline_line_per_target():
    md = render_markdown(synthetic_audit())
    assert [line.rstrip() for line in md.splitlines()[:5]] == [*HEADLINE, "", "# Transfer audit"]
    assert all(line.endswith("  ") for line in md.splitlines()[:2])  # Markdown hard breaks keep one a line


def test_markdown_bounds_offline_note_baseline_and_flags():
    md = render_markdown(synthetic_audit())
    assert "Adaptation gain (lora vs scratch): > 12x." in md
    assert "| scratch | scratch | > 50 | n/a |" in md  # never reached: a lower bound on demos
    assert "| lora | adapted | ≤ 5 | n/a |" in md
    assert f"Metric: {OFFLINE_NOTE} (dataset data/aloha_real)." in md
    assert md.count(OFFLINE_NOTE) == 1  # only the dataset-only target
    assert "held-out episodes" not in md and "- dataset-only target" in md  # the audit's own note not repeated
    assert ("Baseline: scratch, the stronger from-scratch arm of scratch (44 demos), act (> 50 demos) "
            "(it reached the threshold with fewer demos); gains are measured against it.") in md
    assert "- lora vs act: > 9.3x [7.7, 11.4]" in md
    assert "lora worse than scratch at 5 demos: 0.48 vs 0.60 (significant)" in md
    assert "| lora | 12 | 3 | 15 |" in md  # shield interventions: joint_limit, workspace, total
    assert "Met on 1 of 3 targets." in md
    assert "| tabletop_arm | 8.2x [6.1, 10.4] | not met | 5.5x [3.9, 7.2] | met | not met |" in md
    assert "| mobile_manipulator | > 12x | met | 5.5x [3.9, 7.2] | met | met |" in md  # a bound above the goal
    assert ("| bimanual_real | n/a (scratch never reached the threshold; lower bound not computed offline) "
            "| undetermined | n/a (undefined) | undetermined | not met |") in md  # the audit's goal_met wins
    assert "![tabletop_arm: metric vs demonstrations](plots/1-tabletop_arm-curves.png)" in md
    assert "| dataset so101_pick_place | abc123 |" in md


def test_format_gain_and_goal_check_from_numbers():
    assert format_gain({"value": 8.2, "ci95": [6.1, 10.4]}) == "8.2x [6.1, 10.4]"
    assert format_gain({"value": 12.0, "is_lower_bound": True}) == "> 12x"
    assert format_gain({"value": 0.8, "is_upper_bound": True}) == "< 0.8x"
    assert format_gain({"value": 3.0}) == "3x"
    assert format_gain(None) == "n/a (undefined)"
    assert goal_check({"value": 12.0, "ci95": [6.0, 20.0]}, 10, 5) == "met"
    assert goal_check({"value": 12.0, "ci95": [4.0, 20.0]}, 10, 5) == "not met"
    assert goal_check({"value": 12.0, "is_lower_bound": True}, 10, 5) == "met"
    assert goal_check({"value": 6.0, "is_lower_bound": True}, 10, 5) == "undetermined"
    assert goal_check({"value": 6.0, "is_upper_bound": True}, 10) == "not met"
    assert goal_check({"value": None}, 10, 5) == "undetermined"


def test_missing_values_and_a_single_budget_still_render(tmp_path):
    audit = synthetic_audit()
    target = audit["targets"]["tabletop_arm"]
    target["budgets"] = [10]
    for arm in target["arms"].values():
        arm["curve"] = {"budgets": [10], "mean": [0.4], "ci95": [None]}
        arm["per_slice"] = {"nominal": {"budgets": [10], "mean": [None]}}
        arm["demos_to_threshold"] = {"demos": None, "status": "not_reached", "lower_bound": None, "ci95": None}
        for key in ("wallclock_seconds", "frames", "shield_interventions", "trainable_parameters"):
            arm.pop(key)
    target["adaptation_gain"] = {"value": None}
    del audit["reproducibility"], audit["goal"], audit["prior"]
    paths = write_report(audit, tmp_path)
    md = paths["markdown"].read_text()
    assert md.splitlines()[0].rstrip() == "tabletop_arm: adaptation_gain=n/a (undefined)"
    assert "| scratch | scratch | > 10 | n/a | n/a | n/a |" in md
    assert paths["1-tabletop_arm-curves.png"].stat().st_size > 1000


def test_files_are_written_atomically_and_replace_an_old_report(tmp_path):
    (tmp_path / "report.md").write_text("OLD-REPORT\n" * 1000)
    (tmp_path / "report.html").write_text("<p>OLD-REPORT</p>")
    audit = synthetic_audit()
    paths = write_report(audit, tmp_path)
    assert paths["markdown"].read_text() == render_markdown(audit)
    assert "OLD-REPORT" not in paths["html"].read_text()
    write_audit_json(audit, tmp_path / "audit.json")
    assert json.loads((tmp_path / "audit.json").read_text()) == audit
    every = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert not [p for p in every if ".tmp" in p or Path(p).name.startswith(".")], every
    assert set(every) == {"audit.json", "report.md", "report.html", "plots/gains.png",
                          "plots/1-tabletop_arm-curves.png", "plots/1-tabletop_arm-slices.png",
                          "plots/2-mobile_manipulator-curves.png", "plots/2-mobile_manipulator-slices.png",
                          "plots/3-bimanual_real-curves.png"}


def test_a_failed_write_leaves_the_old_report_whole(tmp_path, monkeypatch):
    (tmp_path / "report.md").write_text("old report\n")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_report(synthetic_audit(), tmp_path)
    assert (tmp_path / "report.md").read_text() == "old report\n"
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "report.md"]


def test_html_escapes_every_string():
    audit = copy.deepcopy(synthetic_audit())
    audit["targets"]["tabletop_arm"]["notes"] = ["<script>alert(1)</script> & more"]
    page = render_html(audit)
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in page
    assert "mobile_manipulator: adaptation_gain=&gt; 12x" in page


def _chromium() -> str | None:
    return shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)


def test_html_renders_in_headless_chromium(tmp_path):
    chromium = _chromium()
    if chromium is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing under CI: .ci/run installs Debian's chromium")
        pytest.skip("no /usr/bin/chromium (apt-get install chromium); CI installs it")
    paths = write_report(synthetic_audit(), tmp_path / "report")
    url = paths["html"].resolve().as_uri()
    base = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--enable-logging=stderr", "--v=0", "--window-size=1200,2000"]
    screenshot = tmp_path / "page.png"
    shot = subprocess.run([*base, f"--user-data-dir={tmp_path / 'profile-a'}", f"--screenshot={screenshot}", url],
                          capture_output=True, text=True, timeout=60)
    dom = subprocess.run([*base, f"--user-data-dir={tmp_path / 'profile-b'}", "--dump-dom", url],
                         capture_output=True, text=True, timeout=60)
    assert shot.returncode == 0 and dom.returncode == 0, shot.stderr[-2000:] + dom.stderr[-2000:]
    for stderr in (shot.stderr, dom.stderr):
        page_errors = [line for line in stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
        assert not page_errors, page_errors
    for line in HEADLINE:
        assert line.replace("&", "&amp;").replace(">", "&gt;") in dom.stdout
    assert dom.stdout.count('src="data:image/png;base64,') == 6
    pixels = np.asarray(Image.open(io.BytesIO(screenshot.read_bytes())).convert("L"), dtype=float)
    assert pixels.shape == (2000, 1200)
    assert pixels.std() > 10, "the screenshot is blank"
    assert (pixels < 128).mean() > 0.01  # text and plot lines are on the page
