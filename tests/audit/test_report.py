"""The audit report: a pure function of a validated `AuditResult`, built here through `summarize`.

Every audit rendered below comes from result dicts shaped as the sweep writes them
(`test_summary.sweep_results`), so the report is only tested on states the pipeline produces.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_summary import (
    make_plan,
    resolve,
    sweep_results,
    synthetic_audit,
    tuning_records,
)

from locksmith.audit.panels import encode_clip
from locksmith.audit.report import (
    OFFLINE_NOTE,
    headline_lines,
    render_html,
    render_markdown,
    write_report,
)
from locksmith.audit.schema import AuditResult, PanelRecord, load_audit, write_audit_json
from locksmith.audit.summary import format_table, summarize


@pytest.fixture(scope="module")
def audit() -> AuditResult:
    return synthetic_audit()


def _clip(color: tuple[int, int, int]) -> bytes:
    """A small animated clip: a square crossing the frame (the report only embeds the bytes)."""
    frames = np.zeros((6, 32, 32, 3), dtype=np.uint8)
    for k, frame in enumerate(frames):
        frame[10:20, 4 * k:4 * k + 10] = color
    return encode_clip(frames)[0]


def with_clips(audit: AuditResult, out_dir: Path) -> AuditResult:
    """``audit`` with clips of lora and scratch on tabletop_arm, recorded as `panels.add_panels` records
    them, their files written under ``out_dir/panels/``."""
    t = audit.targets["tabletop_arm"]
    keys = t.episode_keys
    rows = [("lora", keys[0], True, True, "success", {}), ("lora", keys[3], False, False, "dropped",
                                                            {"joint_limit": 2, "workspace": 1}),
            ("scratch", keys[1], True, False, "never_grasped", {}), ("scratch", keys[2], False, False,
                                                                     "not_released", {"gripper_range": 1})]
    panels = []
    for arm, key, recorded, success, outcome, interventions in rows:
        file = f"panels/1-tabletop_arm-{arm}-n10-s0-{key.replace('/', '-')}.webp"
        (out_dir / "panels").mkdir(parents=True, exist_ok=True)
        (out_dir / file).write_bytes(_clip((200, 40, 40) if success else (40, 40, 200)))
        panels.append(PanelRecord(arm=arm, budget=10, seed=0, episode_key=key, recorded_success=recorded,
                                  success=success, outcome=outcome, interventions=interventions, file=file,
                                  frames=6, fps=10.0))
    data = audit.model_dump()
    data["targets"]["tabletop_arm"]["panels"] = [p.model_dump() for p in panels]
    return AuditResult.model_validate(data)


@pytest.fixture(scope="module")
def md(audit) -> str:
    return render_markdown(audit)


def test_markdown_opens_with_the_lines_the_cli_prints_first(audit, md):
    lines = md.splitlines()
    assert [line.rstrip() for line in lines[:3]] == format_table(audit).splitlines()[:3] == headline_lines(audit)
    assert lines[3:5] == ["", "# Transfer audit"]
    assert all(line.endswith("  ") for line in lines[:2])  # Markdown hard breaks keep one a line
    assert lines[0].startswith("tabletop_arm: adaptation_gain=")
    assert lines[0].endswith("(scratch 34.7 demos / lora 7.43 demos)  ")


def test_markdown_states_gains_baseline_bounds_and_negative_transfer(audit, md):
    table_top, mobile = audit.targets["tabletop_arm"], audit.targets["mobile_manipulator"]
    assert f"Adaptation gain (lora vs scratch): {mobile.adaptation_gain.text}." in md
    assert mobile.adaptation_gain.text.startswith("> ")  # scratch never reached: a lower bound
    assert "| scratch | scratch | > 50 | none: not reached (3 seeds) |" in md
    assert "| full | adapted | ≤ 5 | none: already at the smallest budget (3 seeds) |" in md
    assert ("Baseline: scratch, the stronger from-scratch arm of scratch (34.7 demos), act (> 50 demos) "
            "(it reached the threshold with fewer demos); gains are measured against it.") in md
    for gain in table_top.other_gains:  # every other recipe's gain, with its interval or bound
        assert f"- {gain.adapted_arm} vs {gain.baseline_arm}: {gain.text}" in md
    assert "- lora worse than scratch at 5 demos: 0.00 vs 0.10, difference -0.10 [" in md
    assert "(3 seeds): significant" in md
    assert "Wall-clock gain, adaptation only (training seconds to the threshold, measured at checkpoints" in md
    assert "With pretraining amortized (137 s added to the headline arm: pretraining / 3 targets): " in md
    met = sum(t.goal_met is True for t in audit.targets.values())
    assert f"Met on {met} of 3 targets" in md
    verdicts = {True: "met", False: "not met", None: "undetermined"}
    assert (f"| tabletop_arm | {table_top.adaptation_gain.text} | {table_top.goal_checks.demos} | "
            f"{table_top.wallclock_gain.text} | {table_top.goal_checks.wallclock} | "
            f"{verdicts[table_top.goal_met]} |") in md


def test_markdown_states_the_recipe_evaluation_and_metric_of_every_arm(md):
    assert "| lora | stem + head + token + LoRA on the trunk | 0.001, chosen from 0.0001: 0.3, 0.001: 0.5 " in md
    assert "| L2-SP λ=0.01 (toward the prior) | - |" in md and "| none | rank 8, α 16 |" in md
    assert "cosine schedule, clip 1, weight decay 0.0001, batch 128" in md
    assert "5: 300 (30 warm-up), 10: 400 (40 warm-up)" in md
    assert "on 40 evaluation episodes, the same for every run (slices nominal, push; 20 evaluation seeds " \
           "2000000000–2000000019 per slice" in md
    assert (f"Metric: {OFFLINE_NOTE} (dataset data/aloha_real). The error is in units of one fixed absolute action "
            "scale (0.1, 0.2, 0.05), the same for every arm and budget.") in md
    assert md.count(OFFLINE_NOTE) == 1  # only the dataset-only target
    assert "| scratch | 0.05 [0.00, 0.11] | 0.20 [" in md and md.count("| seeds |\n|---") == 3
    assert "| lora | 51 | 24 | 75 |" in md  # shield interventions: joint_limit, workspace, total
    assert "| pretraining | 412 s |" in md and "| dataset bimanual_real | fp-real |" in md
    assert "![tabletop_arm: metric vs demonstrations](plots/1-tabletop_arm-curves.png)" in md
    # Where the time went: per arm, 12 runs of 3 s evaluation each; training as the synthetic SPEED gives it.
    assert md.count("### Where the time went") == 3 and "| scratch | 12 | " in md and "| 36 s |" in md


def test_two_seeds_print_no_interval_next_to_every_estimate(tmp_path):
    two = synthetic_audit(seeds=[0, 1])
    md = render_markdown(two)
    t = two.targets["tabletop_arm"]
    means = " | ".join(f"{m:.2f}" for m in t.arms["scratch"].curve.mean)
    assert f"| scratch | {means} | no interval (2 seeds) |" in md
    assert f"| lora | adapted | {t.arms['lora'].crossing.text()} | no interval (2 seeds) |" in md
    assert "no interval (2 seeds" in md.splitlines()[0]
    assert "lora worse than scratch at 5 demos" in md and "no interval (2 seeds): not tested" in md
    assert "significant" not in md
    assert write_report(two, tmp_path)["1-tabletop_arm-curves.png"].stat().st_size > 1000


def test_a_given_checkpoint_and_a_summary_outside_the_cli_say_what_is_unknown():
    plan = make_plan()
    targets = resolve(plan)
    audit = summarize(plan, targets, sweep_results(plan, targets),
                      {"checkpoint": "given/policy", "cached": True, "pretrain_seconds": None},
                      tuning_records(plan, targets))
    md = render_markdown(audit)
    assert "| pretraining | time unknown (the prior came as a ready checkpoint) |" in md
    assert "With pretraining amortized: n/a (pretraining time unknown: the prior came as a ready checkpoint)." in md
    assert "| prior robots | n/a |" in md and "Not recorded (this audit was summarized outside" in md


def test_files_are_written_atomically_and_audit_json_reads_back_to_the_same_report(audit, tmp_path):
    (tmp_path / "report.md").write_text("OLD-REPORT\n" * 1000)
    (tmp_path / "report.html").write_text("<p>OLD-REPORT</p>")
    paths = write_report(audit, tmp_path)
    assert paths["markdown"].read_text() == render_markdown(audit)
    assert "OLD-REPORT" not in paths["html"].read_text()
    write_audit_json(audit, tmp_path / "audit.json")
    again = load_audit(tmp_path / "audit.json")
    assert again == audit and render_markdown(again) == render_markdown(audit)
    every = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert not [p for p in every if ".tmp" in p or Path(p).name.startswith(".")], every
    assert set(every) == {"audit.json", "report.md", "report.html", "plots/gains.png",
                          "plots/1-tabletop_arm-curves.png", "plots/1-tabletop_arm-slices.png",
                          "plots/2-mobile_manipulator-curves.png", "plots/2-mobile_manipulator-slices.png",
                          "plots/3-bimanual_real-curves.png"}


def test_a_failed_write_leaves_the_old_report_whole(audit, tmp_path, monkeypatch):
    (tmp_path / "report.md").write_text("old report\n")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_report(audit, tmp_path)
    assert (tmp_path / "report.md").read_text() == "old report\n"
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "report.md"]


def test_rollouts_show_each_arms_clips_with_their_labels_and_shield_interventions(audit, tmp_path):
    clipped = with_clips(audit, tmp_path)
    md = render_markdown(clipped)
    assert md.count("### Rollouts") == 2  # the two simulated targets; the offline one has none
    assert ("the headline arm lora and the baseline scratch, both at 10 demos (the budget nearest lora's demos to "
            "threshold, 7.43), training seed 0") in md
    keys = clipped.targets["tabletop_arm"].episode_keys
    assert "lora (headline, adapted from the prior), 10 demos, seed 0:" in md
    assert f"- ![clip](panels/1-tabletop_arm-lora-n10-s0-nominal-{keys[0][8:]}.webp) success; {keys[0]}; " \
           "shield: no interventions" in md
    assert f"dropped (dropped the cube); {keys[3]}; shield: 3 (joint_limit 2, workspace 1)" in md
    assert (f"never_grasped (never grasped the named cube); {keys[1]}; shield: no interventions; the evaluation "
            "recorded a success (replay differs)") in md
    assert "No rollout clips in this audit" in md  # mobile_manipulator: summarized without clips
    paths = write_report(clipped, tmp_path)
    page = paths["html"].read_text()
    assert page.count('src="data:image/webp;base64,') == 4 and "(clip " not in page
    (tmp_path / clipped.targets["tabletop_arm"].panels[0].file).unlink()
    assert render_html(clipped).count("(clip panels/1-tabletop_arm-") == 4  # no clip bytes given: each named


def test_html_escapes_every_string(audit):
    hostile = AuditResult.model_validate({**audit.model_dump(), "plan_file": "<script>alert(1)</script> & more"})
    page = render_html(hostile)
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in page
    assert "mobile_manipulator: adaptation_gain=&gt; 5.3x" in page


def _chromium() -> str | None:
    return shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)


def test_html_renders_in_headless_chromium(audit, tmp_path):
    chromium = _chromium()
    if chromium is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing under CI: .ci/run installs Debian's chromium")
        pytest.skip("no /usr/bin/chromium (apt-get install chromium); CI installs it")
    audit = with_clips(audit, tmp_path / "report")
    paths = write_report(audit, tmp_path / "report")
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
    for line in headline_lines(audit):
        assert line.replace("&", "&amp;").replace(">", "&gt;") in dom.stdout
    assert dom.stdout.count('src="data:image/png;base64,') == 6
    assert dom.stdout.count('src="data:image/webp;base64,') == 4  # the rollout clips
    assert dom.stdout.count("<figcaption>") == 6 + 4
    pixels = np.asarray(Image.open(io.BytesIO(screenshot.read_bytes())).convert("L"), dtype=float)
    assert pixels.shape == (2000, 1200)
    assert pixels.std() > 10, "the screenshot is blank"
    assert (pixels < 128).mean() > 0.01  # text and plot lines are on the page

