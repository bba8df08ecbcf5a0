"""Rollout clips of a finished audit: which runs and episodes, replayed from real checkpoints.

The audit's numbers come from `test_summary`'s sweep-shaped results; the simulated target's runs
get real tiny checkpoints (recorded demos, a few pretraining steps) and the outcomes of a real
evaluation of each, as `sweep.execute_run` writes them, so every clip is a real replay.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_summary import make_plan, resolve, sweep_results, synthetic_audit, tuning_records

from locksmith.audit.panels import (
    CLIP_SIZE,
    EVAL_BATCH,
    MAX_FRAMES,
    add_panels,
    panel_budget,
    pick_episodes,
    replay_episodes,
)
from locksmith.audit.report import read_clips, render_html, render_markdown, write_report
from locksmith.audit.schema import load_audit, write_audit_json
from locksmith.audit.summary import summarize
from locksmith.data.loading import load_demonstrations
from locksmith.data.record import record_demos
from locksmith.evaluate.evaluator import evaluate
from locksmith.evaluate.failures import OUTCOMES
from locksmith.train.loop import TrainConfig
from locksmith.train.pretrain import pretrain

EPISODES = 10  # two evaluation batches of 8 and 2
CURVES = {  # the simulated target's outcomes are replaced by real evaluations below
    "tabletop_arm": {"scratch": {5: 0.05, 10: 0.2, 20: 0.35, 50: 0.6}, "lora": {5: 0.3, 10: 0.65, 20: 0.8, 50: 0.85}},
    "bimanual_real": {"scratch": {5: 0.9, 10: 0.7, 20: 0.5, 50: 0.35}, "lora": {5: 0.6, 10: 0.4, 20: 0.3, 50: 0.25}}}


def _plan():
    return make_plan(targets=[{"name": "tabletop_arm", "robot": "panda", "task": "reach"},
                              {"name": "bimanual_real", "dataset": "data/aloha_real", "task": "pick_place",
                               "threshold": {"absolute": 0.4}}],
                     recipes=["lora"], headline_recipe="lora", peer_baseline="none",
                     evaluation={"episodes": EPISODES, "slices": ["nominal"]},
                     training={"lr": [1e-4, 1e-3], "recipes": {"lora": {"lora_rank": 8}}})


def _as_the_sweep_writes(result: dict, evaluation: dict, checkpoint: Path) -> dict:
    """A run's result with its checkpoint and its evaluation's outcomes (`sweep._evaluate`'s shape)."""
    s = evaluation["per_slice"]["nominal"]
    outcomes = [int(o) for o in s["outcomes"]]
    return {**result, "checkpoint": str(checkpoint), "value": evaluation["success_rate"],
            "episode_keys": [f"nominal/{seed}" for seed in s["seeds"]], "outcomes": outcomes,
            "per_slice": {"nominal": {"successes": sum(outcomes), "episodes": s["episodes"],
                                      "success_rate": s["success_rate"],
                                      "shield_interventions": s["shield_interventions"]}},
            "shield_interventions": evaluation["shield_interventions"],
            "checkpoints": [{**c, "outcomes": outcomes, "value": evaluation["success_rate"]}
                            for c in result["checkpoints"]]}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A two-target audit whose simulated target's runs are real tiny checkpoints, really evaluated."""
    root = tmp_path_factory.mktemp("panels")
    record_demos("panda", "reach", 2, root / "data", workers=1, progress=False)
    demos = {"panda": load_demonstrations(root / "data")}
    plan = _plan()
    targets = resolve(plan)
    checkpoints, evaluations = {}, {}
    for seed, arm in enumerate(("scratch", "lora")):
        pretrain(demos, root / arm, TrainConfig(steps=5, batch_size=8, seed=seed), progress=False, d_model=32,
                 n_layers=1, n_heads=2, d_feedforward=64, n_readouts=2)
        checkpoints[arm] = root / arm / "policy"
        # As the sweep evaluates a run: one worker, 8 environments batched.
        evaluations[arm] = evaluate("panda", "reach", EPISODES, ["nominal"], checkpoint=checkpoints[arm], workers=1)
    results = [_as_the_sweep_writes(r, evaluations[r["arm"]], checkpoints[r["arm"]])
               if r["target"] == "tabletop_arm" else r for r in sweep_results(plan, targets, curves=CURVES)]
    audit = summarize(plan, targets, results, {"checkpoint": "given", "cached": True}, tuning_records(plan, targets))
    out = root / "out"
    return {"root": root, "audit": audit, "results": results, "evaluations": evaluations,
            "checkpoints": checkpoints, "panelled": add_panels(audit, results, out), "out": out}


def test_the_budget_is_the_one_nearest_the_headline_crossing_in_log_demos():
    audit = synthetic_audit()
    for label in ("tabletop_arm", "mobile_manipulator"):
        t = audit.targets[label]
        crossing = t.arms[t.headline_arm].crossing
        assert crossing.status == "reached"
        budgets = np.array(t.budgets)
        assert panel_budget(t) == budgets[np.argmin(np.abs(np.log(budgets) - math.log(crossing.demos)))]
    assert panel_budget(audit.targets["tabletop_arm"]) == 10  # lora reaches the threshold at 7.43 demos


def test_the_first_successes_and_failures_are_picked_in_episode_order():
    keys = [f"nominal/{s}" for s in range(6)] + ["push/0", "push/1"]
    assert pick_episodes(keys, [0, 1, 0, 1, 1, 0, 1, 0]) == ["nominal/1", "nominal/3", "nominal/0", "nominal/2"]
    assert pick_episodes(keys[:3], [0, 0, 0]) == ["nominal/0", "nominal/1"]
    assert pick_episodes(keys, [1] * 8, per_outcome=1) == ["nominal/0"]


def test_replays_reproduce_the_recorded_evaluation_in_both_batches(tiny):
    evaluation = tiny["evaluations"]["lora"]["per_slice"]["nominal"]
    keys = [f"nominal/{s}" for s in evaluation["seeds"]]
    replays = replay_episodes(tiny["checkpoints"]["lora"], "panda", "reach", keys, {"nominal": evaluation["seeds"]},
                              size=24)
    assert [int(replays[k].success) for k in keys] == evaluation["outcomes"]
    total = Counter()
    for replay in replays.values():
        total.update(replay.interventions)
        assert 2 <= len(replay.frames) <= MAX_FRAMES and replay.frames[0].shape == (24, 24, 3)
    # Every episode replayed inside its own batch: the shield intervened exactly as often as recorded.
    assert dict(total) == evaluation["shield_interventions"]
    assert EVAL_BATCH == inspect.signature(evaluate).parameters["n_envs"].default  # the batches the sweep ran


def test_a_finished_audit_gets_clips_of_the_headline_and_baseline_arms(tiny):
    audit, panelled, out = tiny["audit"], tiny["panelled"], tiny["out"]
    t = panelled.targets["tabletop_arm"]
    assert panelled.targets["bimanual_real"].panels == () and panelled.targets["bimanual_real"].panels_note is None
    assert t.panels_note is None and {p.arm for p in t.panels} == {"lora", "scratch"}
    budget = panel_budget(audit.targets["tabletop_arm"])
    for arm in ("lora", "scratch"):
        mine = [p for p in t.panels if p.arm == arm]
        run = next(r for r in tiny["results"] if (r["target"], r["arm"], r["budget"], r["seed"])
                   == ("tabletop_arm", arm, budget, 0))
        assert [p.episode_key for p in mine] == pick_episodes(run["episode_keys"], run["outcomes"])
        assert all((p.budget, p.seed) == (budget, 0) for p in mine)
    for panel in t.panels:
        assert panel.success == panel.recorded_success  # the replay is the recorded episode
        assert panel.outcome in OUTCOMES and (panel.outcome == "success") == panel.success
        assert all(v > 0 for v in panel.interventions.values())
        path = out / panel.file
        assert path.parent == out / "panels" and path.suffix in (".webp", ".gif")
        assert path.stat().st_size < 120_000
        with Image.open(path) as clip:
            assert clip.size == (CLIP_SIZE, CLIP_SIZE) and panel.frames <= MAX_FRAMES
            assert 1 < clip.n_frames <= panel.frames  # the encoder merges repeated frames into longer ones
    write_audit_json(panelled, out / "audit.json")
    assert load_audit(out / "audit.json") == panelled


def test_the_report_embeds_and_links_every_clip(tiny):
    panelled, out = tiny["panelled"], tiny["out"]
    panels = panelled.targets["tabletop_arm"].panels
    paths = write_report(panelled, out)
    md, page = paths["markdown"].read_text(), paths["html"].read_text()
    assert "### Rollouts" in md and md.count("### Rollouts") == 1  # the offline target has none
    for panel in panels:
        assert f"- ![clip]({panel.file}) {panel.outcome}" in md
    assert page.count('src="data:image/webp;base64,') + page.count('src="data:image/gif;base64,') == len(panels)


def test_a_missing_checkpoint_leaves_a_note_not_a_failed_audit(tiny, tmp_path):
    results = [{**r, "checkpoint": str(tmp_path / "gone")} if r["arm"] == "scratch" else r for r in tiny["results"]]
    panelled = add_panels(tiny["audit"], results, tmp_path)
    t = panelled.targets["tabletop_arm"]
    assert {p.arm for p in t.panels} == {"lora"}
    assert t.panels_note.startswith("Rollout clips not rendered for scratch: FileNotFoundError: the checkpoint")
    assert t.panels_note in render_markdown(panelled)
    assert "(clip " not in render_html(panelled, clip_files=read_clips(panelled, tmp_path))


def test_without_opengl_the_audit_gets_a_note_instead_of_clips(tiny, tmp_path):
    write_audit_json(tiny["audit"], tmp_path / "audit.json")
    (tmp_path / "results.json").write_text(json.dumps(tiny["results"]))
    script = ("import json, sys; from locksmith.audit.panels import add_panels; "
              "from locksmith.audit.schema import load_audit, write_audit_json; d = sys.argv[1]; "
              "a = add_panels(load_audit(d + '/audit.json'), json.load(open(d + '/results.json')), d); "
              "write_audit_json(a, d + '/after.json')")
    env = {**os.environ, "MUJOCO_GL": "disable", "PYOPENGL_PLATFORM": "disable", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    t = load_audit(tmp_path / "after.json").targets["tabletop_arm"]
    assert t.panels == () and t.panels_note.startswith("Rollout clips not rendered: MuJoCo cannot render offscreen")
    assert not (tmp_path / "panels").exists()
