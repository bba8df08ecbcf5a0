"""`summarize`: from result dicts shaped as the sweep writes them to a validated `AuditResult`.

`sweep_results` writes what `sweep.execute_run` writes per run (keys, outcomes aligned with the
shared evaluation episodes, per-slice counts, checkpoints along training, the training recipe);
the report tests import it too, so every audit they render is one the pipeline can produce.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from locksmith.audit.estimates import GainRecord
from locksmith.audit.plan import parse_plan
from locksmith.audit.targets import ResolvedTarget
from locksmith.audit.schema import (
    AuditFileError,
    AuditResult,
    TuningRecord,
    load_audit,
    write_audit_json,
)
from locksmith.audit.summary import (
    SummaryError,
    check_demos_goal,
    check_wallclock_goal,
    format_table,
    refine_budgets,
    summarize,
)

EVAL_SEED_BASE = 2_000_000_000
PRIOR = {"checkpoint": "runs/prior/policy", "cached": False, "pretrain_seconds": 412.0,
         "robots": ["panda", "ur5e", "vx300s"], "tasks": ["pick_place"], "weights_sha256": "ab" * 32}

# The metric per (target, arm, budget): success (higher is better) or offline error (lower).
CURVES = {
    "tabletop_arm": {  # every arm reaches 0.5; full beats the headline lora, act is the weaker baseline
        "scratch": {5: 0.05, 10: 0.2, 20: 0.35, 50: 0.6}, "act": {5: 0.0, 10: 0.1, 20: 0.3, 50: 0.45},
        "lora": {5: 0.3, 10: 0.65, 20: 0.8, 50: 0.85}, "full": {5: 0.55, 10: 0.7, 20: 0.8, 50: 0.9}},
    "mobile_manipulator": {  # no from-scratch arm reaches 0.5: the gain is a lower bound; lora dips at 5
        "scratch": {5: 0.1, 10: 0.1, 20: 0.15, 50: 0.25}, "act": {5: 0.05, 10: 0.1, 20: 0.1, 50: 0.2},
        "lora": {5: 0.0, 10: 0.55, 20: 0.7, 50: 0.8}, "full": {5: 0.2, 10: 0.6, 20: 0.75, 50: 0.85}},
    "bimanual_real": {  # offline action error, threshold 0.4
        "scratch": {5: 0.9, 10: 0.7, 20: 0.5, 50: 0.35}, "act": {5: 0.95, 10: 0.8, 20: 0.6, 50: 0.45},
        "lora": {5: 0.6, 10: 0.4, 20: 0.3, 50: 0.25}, "full": {5: 0.5, 10: 0.35, 20: 0.3, 50: 0.2}},
}
SPEED = {"scratch": 1.0, "act": 1.5, "lora": 0.4, "full": 0.6}  # training seconds per demo


def make_plan(**overrides):
    data = {
        "name": "synthetic",
        "targets": [{"name": "tabletop_arm", "robot": "so101", "task": "pick_place"},
                    {"name": "mobile_manipulator", "robot": "mobile_panda", "task": "pick_place"},
                    {"name": "bimanual_real", "dataset": "data/aloha_real", "task": "pick_place",
                     "threshold": {"absolute": 0.4}}],
        "recipes": ["lora", "full"], "headline_recipe": "lora", "peer_baseline": "act",
        "budgets": [5, 10, 20, 50], "seeds": [0, 1, 2],
        "evaluation": {"episodes": 20, "slices": ["nominal", "push"]},
        "threshold": {"absolute": 0.5},
        "training": {"lr": [1e-4, 1e-3], "recipes": {"full": {"weight": 0.01}, "lora": {"lora_rank": 8}}},
    }
    return parse_plan({**data, **overrides})


def resolve(plan) -> list[ResolvedTarget]:
    """The targets as `run._resolve_sim_target` / `run._resolve_dataset_target` would resolve them (no data on disk)."""
    out = []
    for section in plan.targets:
        threshold = plan.threshold_for(section).absolute
        if section.source == "sim":
            eval_seeds = tuple(range(EVAL_SEED_BASE, EVAL_SEED_BASE + plan.evaluation.episodes))
            expert = {"key": {}, "success_rate": 0.62, "ci95": [0.5, 0.72], "per_slice": {"nominal": 0.7, "push": 0.54}}
            out.append(ResolvedTarget(section.label(), section, section.robot, section.task,
                                      Path("runs/data") / section.robot, tuple(range(100)), threshold,
                                      f"absolute {threshold:g}", "fp-" + section.label(), expert,
                                      eval_seeds=eval_seeds))
        else:
            out.append(ResolvedTarget(section.label(), section, "aloha", section.task, Path(section.dataset),
                                      tuple(range(80)), threshold, f"absolute {threshold:g}", "fp-real", None,
                                      action_scale=(0.1, 0.2, 0.05)))
    return out


def tuning_records(plan, targets) -> dict:
    """As `run.choose_learning_rates` makes them: the better of two rates on validation seeds."""
    grid = plan.training.lr
    return {t.label: {arm: TuningRecord(arm=arm, grid=grid, budget=10, seed=plan.seeds[0], validation_episodes=50,
                                        validation={f"{lr:g}": 0.3 + 0.2 * i for i, lr in enumerate(grid)},
                                        chosen_lr=grid[-1])
                      for arm in plan.arms} for t in targets}


def _outcomes(level: float, n: int, budget: int, seed: int) -> list[int]:
    """round(level·n) ± 1 successes (the ±1 averaging out over seeds 0, 1, 2), spread over the episodes."""
    k = int(np.clip(round(level * n) + (seed - 1), 0, n)) if 0 < level < 1 else round(level * n)
    out = np.zeros(n, dtype=int)
    out[np.random.default_rng(100 * budget + seed).permutation(n)[:k]] = 1
    return out.tolist()


def sweep_results(plan, targets, curves=CURVES, seeds=None, lr: float = 1e-3) -> list[dict]:
    """One dict per (target, arm, budget, seed), shaped as `sweep.execute_run` writes result.json."""
    results = []
    for t in targets:
        success = t.section.metric == "success"
        keys = [f"{s}/{e}" for s in plan.evaluation.slices for e in t.eval_seeds] if success else []
        for arm in plan.arms:
            for budget, level in curves[t.label][arm].items():
                for seed in seeds or plan.seeds:
                    steps = plan.training.steps(budget)
                    seconds = SPEED[arm] * budget * (1 + 0.05 * seed) + 1.0
                    if success:
                        outcomes = _outcomes(level, len(keys), budget, seed)
                        early = _outcomes(0.6 * level, len(keys), budget, seed)
                        value = float(np.mean(outcomes))
                        per_slice = {}
                        for s in plan.evaluation.slices:
                            picked = [o for k, o in zip(keys, outcomes) if k.startswith(s + "/")]
                            per_slice[s] = {"successes": sum(picked), "episodes": len(picked),
                                            "success_rate": sum(picked) / len(picked),
                                            "shield_interventions": {"joint_limit": budget // 5}
                                            if s == "nominal" else {}}
                        shield = {"joint_limit": budget // 5, **({"workspace": 2} if arm == "lora" else {})}
                        early_value, offline = float(np.mean(early)), None
                    else:
                        outcomes = early = []
                        value = level + 0.01 * (seed - 1)
                        early_value, per_slice, shield = 1.3 * value, {}, {}
                        offline = {"offline_action_error": value, "episodes": 16}
                    recipe = plan.training.recipe(arm)
                    results.append({
                        "key": f"{t.label}-{arm}-{budget}-{seed}-digest", "settings": {"arm": arm, "budget": budget},
                        "target": t.label, "arm": arm, "budget": budget, "seed": seed, "metric": t.section.metric,
                        "purpose": "report", "value": value, "episode_keys": keys, "outcomes": outcomes,
                        "per_slice": per_slice, "shield_interventions": shield, "offline": offline,
                        "checkpoints": [
                            {"step": steps // 2, "train_seconds": seconds / 2, "value": early_value, "outcomes": early},
                            {"step": steps, "train_seconds": seconds, "value": value, "outcomes": outcomes}],
                        "train_seconds": seconds, "eval_seconds": 3.0,
                        "demo_episodes": sorted(np.random.default_rng(seed).permutation(len(t.train_episodes))[:budget]
                                                .tolist()),
                        "eval_seeds": list(t.eval_seeds), "demos": budget, "frames": 120 * budget,
                        "trainable_parameters": 41_000 if arm == "lora" else 1_200_000, "final_loss": 0.1,
                        "checkpoint": f"runs/{t.label}/{arm}/n{budget:04d}_s{seed}/work/policy",
                        "finished": "2026-12-06T10:00:00+00:00",
                        "training": {"lr": lr, "warmup_steps": plan.training.warmup_steps(steps),
                                     "schedule": plan.training.schedule, "grad_clip": plan.training.grad_clip,
                                     "weight_decay": plan.training.weight_decay, "steps": steps,
                                     "batch_size": plan.training.batch_size,
                                     "weight": 0.0 if arm in ("scratch", "act") else recipe.weight,
                                     "lora_rank": recipe.lora_rank, "lora_alpha": recipe.alpha},
                    })
    return results


REPRODUCIBILITY = {"seeds": [0, 1, 2], "versions": {"locksmith": "0.1.0", "torch": "2.11.0"},
                   "machine": {"cpus": 2, "platform": "linux"}, "dataset_fingerprints": {"bimanual_real": "fp-real"},
                   "started": "2026-12-06T08:00:00", "finished": "2026-12-06T08:13:32", "seconds": 812.3,
                   "command": "locksmith audit", "workers": 2, "ray_address": None}


def synthetic_audit(prior: dict = PRIOR, **plan_overrides) -> AuditResult:
    """The three-target audit `summarize` makes from `sweep_results`."""
    plan = make_plan(**plan_overrides)
    targets = resolve(plan)
    return summarize(plan, targets, sweep_results(plan, targets), prior, tuning_records(plan, targets),
                     reproducibility=REPRODUCIBILITY)


@pytest.fixture(scope="module")
def audit() -> AuditResult:
    return synthetic_audit()


def test_the_headline_is_the_plans_recipe_against_the_stronger_scratch_arm(audit):
    t = audit.targets["tabletop_arm"]
    assert audit.headline_recipe == t.headline_arm == "lora"  # full does better, but was not named first
    assert t.arms["full"].crossing.demos < t.arms["lora"].crossing.demos
    assert t.baseline.name == "scratch" and t.baseline.reason == "fewer_demos"
    gain = t.adaptation_gain
    assert (gain.baseline_arm, gain.adapted_arm, gain.kind, gain.n_seeds) == ("scratch", "lora", "exact", 3)
    assert gain.value == pytest.approx(t.arms["scratch"].crossing.demos / t.arms["lora"].crossing.demos)
    assert gain.ci95[0] < gain.value < gain.ci95[1] and gain.text.startswith(f"{gain.value:.1f}x [")
    assert "(3 seeds" in gain.text
    pairs = {(g.adapted_arm, g.baseline_arm) for g in t.other_gains}
    assert pairs == {("lora", "act"), ("full", "scratch"), ("full", "act")}
    assert all(g.ci95 is not None or g.confidence_bound is not None for g in t.other_gains)


def test_format_table_starts_with_one_line_per_target_saying_what_it_compares(audit):
    lines = format_table(audit).splitlines()
    t = audit.targets["tabletop_arm"]
    scratch, lora = t.arms["scratch"].crossing.demos, t.arms["lora"].crossing.demos
    assert lines[0] == (f"tabletop_arm: adaptation_gain={t.adaptation_gain.text} "
                        f"(scratch {scratch:.3g} demos / lora {lora:.3g} demos)")
    assert lines[1].startswith("mobile_manipulator: adaptation_gain=> ") and "(scratch > 50 demos / lora " in lines[1]
    assert lines[2].startswith("bimanual_real: adaptation_gain=")
    assert lines[3] == ""
    assert "seeds" in lines[5] and lines[6].split()[:1] == ["scratch"] and lines[6].split()[5] == "3"


def test_a_baseline_that_never_reaches_gives_a_lower_bound(audit):
    t = audit.targets["mobile_manipulator"]
    gain = t.adaptation_gain
    assert gain.kind == "lower_bound" and gain.ci95 is None and gain.confidence_bound is not None
    assert gain.baseline.status == "not_reached" and gain.baseline.lower_bound == 50
    assert gain.value == pytest.approx(50 / t.arms["lora"].crossing.demos)
    assert t.baseline.reason == "area_under_curve"  # neither scratch arm reached: the better curve decides


def test_negative_transfer_is_flagged_only_with_an_interval(audit):
    rows = {(f.arm, f.budget): f for f in audit.targets["mobile_manipulator"].negative_transfer}
    dip = rows[("lora", 5)]
    assert dip.below and dip.significant and dip.ci95[1] < 0 and dip.n_seeds == 3
    assert not rows[("lora", 50)].below
    two = synthetic_audit(seeds=[0, 1])
    assert not any(f.significant or f.ci95 for t in two.targets.values() for f in t.negative_transfer)


def test_two_seeds_give_no_interval_anywhere():
    t = synthetic_audit(seeds=[0, 1]).targets["tabletop_arm"]
    for arm in t.arms.values():
        assert arm.curve.ci95 is None and arm.crossing.ci95 is None and arm.curve.n_seeds == 2
        assert arm.crossing.interval_text() == "no interval (2 seeds)"
    assert t.adaptation_gain.ci95 is None and "no interval (2 seeds)" in t.adaptation_gain.text


def test_wallclock_counts_adaptation_and_then_amortized_pretraining(audit):
    t = audit.targets["tabletop_arm"]
    wall, amortized = t.wallclock_gain, t.wallclock_gain_amortized
    assert wall.quantity == amortized.quantity == "seconds" and wall.extra_seconds == 0
    assert amortized.extra_seconds == pytest.approx(412.0 / 3)
    assert amortized.adapted_cost == pytest.approx(wall.adapted_cost + 412.0 / 3)
    assert amortized.value < wall.value
    unknown = synthetic_audit(prior={"checkpoint": "given/policy", "cached": True, "pretrain_seconds": None})
    gain = unknown.targets["tabletop_arm"].wallclock_gain_amortized
    assert gain.kind == "undefined" and gain.value is None and gain.text.startswith("n/a (pretraining time unknown")
    assert unknown.prior.robots == ()  # the prior's pool is not known for a given checkpoint


def test_arms_record_the_recipe_the_tuning_and_every_run(audit):
    arms = audit.targets["tabletop_arm"].arms
    assert arms["full"].training.weight == 0.01 and arms["full"].training.lora_rank is None
    assert (arms["lora"].training.lora_rank, arms["lora"].training.lora_alpha) == (8, 16.0)
    assert arms["lora"].tuning.chosen_lr == arms["lora"].training.lr == 1e-3
    assert arms["lora"].training.steps == {b: make_plan().training.steps(b) for b in (5, 10, 20, 50)}
    runs = arms["scratch"].runs
    assert {(r.budget, r.seed) for r in runs} == {(b, s) for b in (5, 10, 20, 50) for s in (0, 1, 2)}
    assert len(runs) == 12
    assert all(len(r.demo_episodes) == r.budget for r in runs)
    assert set(arms["lora"].per_slice) == {"nominal", "push"}
    assert arms["lora"].shield_interventions == {"joint_limit": 3 * (1 + 2 + 4 + 10), "workspace": 24}


def test_the_offline_target_keeps_its_action_scale_and_has_no_slices(audit):
    t = audit.targets["bimanual_real"]
    assert t.metric == "offline_action_error" and not t.higher_is_better and t.action_scale == (0.1, 0.2, 0.05)
    assert t.episode_keys == () and all(not arm.per_slice for arm in t.arms.values())
    assert t.arms["scratch"].crossing.status == "reached"


def test_runs_scored_on_different_episodes_are_refused():
    plan = make_plan()
    targets = resolve(plan)
    results = sweep_results(plan, targets)
    first = results[0]
    results[0] = {**first, "episode_keys": first["episode_keys"][:-1], "outcomes": first["outcomes"][:-1]}
    with pytest.raises(SummaryError, match="tabletop_arm.*2 different lists of evaluation episodes"):
        summarize(plan, targets, results, PRIOR, tuning_records(plan, targets))


def test_runs_of_one_arm_with_different_recipes_are_refused():
    plan = make_plan()
    targets = resolve(plan)
    results = sweep_results(plan, targets)
    results[0] = {**results[0], "training": {**results[0]["training"], "weight_decay": 0.5}}
    with pytest.raises(SummaryError, match="'scratch': its runs used 2 different training recipes"):
        summarize(plan, targets, results, PRIOR, tuning_records(plan, targets))


def test_a_tuning_record_that_disagrees_with_the_runs_is_refused():
    plan = make_plan()
    targets = resolve(plan)
    with pytest.raises(ValidationError, match="tuning chose lr=0.001 but the runs used lr=0.0001"):
        summarize(plan, targets, sweep_results(plan, targets, lr=1e-4), PRIOR, tuning_records(plan, targets))


def test_goal_verdicts_are_given_only_when_decidable(audit):
    def gain(kind, value, ci95=None, bound=None, n_seeds=3):
        crossing = {"demos": 5.0, "status": "reached"}
        return GainRecord(baseline_arm="scratch", adapted_arm="lora", value=value, kind=kind, ci95=ci95,
                          confidence_bound=bound, n_seeds=n_seeds, text="", quantity="demos", baseline_cost=None,
                          adapted_cost=None, baseline=crossing, adapted=crossing, ci_censored_fraction=0.0,
                          n_boot=2000, threshold=0.5, higher_is_better=True)

    assert check_demos_goal(gain("exact", 12.0, (6.0, 20.0)), 10, 5) == "met"
    assert check_demos_goal(gain("exact", 12.0, (4.0, 20.0)), 10, 5) == "not met"
    assert check_demos_goal(gain("exact", 12.0, n_seeds=2), 10, 5) == "undetermined"  # no interval
    assert check_demos_goal(gain("exact", 8.0, n_seeds=2), 10, 5) == "not met"  # the point alone misses
    assert check_demos_goal(gain("lower_bound", 12.0, bound=6.0), 10, 5) == "met"
    assert check_demos_goal(gain("lower_bound", 6.0, bound=3.0), 10, 5) == "undetermined"
    assert check_demos_goal(gain("upper_bound", 6.0), 10, 5) == "not met"
    assert check_demos_goal(gain("undefined", None), 10, 5) == "undetermined"
    assert check_wallclock_goal(gain("lower_bound", 3.0, bound=2.0), 5) == "undetermined"
    assert check_wallclock_goal(gain("exact", 3.0, (2.0, 4.0)), 5) == "not met"
    for t in audit.targets.values():
        verdicts = (t.goal_checks.demos, t.goal_checks.wallclock)
        assert t.goal_met is ({"met"} == set(verdicts) or (False if "not met" in verdicts else None))


def test_the_schema_rejects_states_the_pipeline_cannot_produce(audit):
    data = audit.model_dump(mode="json")
    target = data["targets"]["tabletop_arm"]

    def rejects(change, match):
        broken = json.loads(json.dumps(data))
        change(broken["targets"]["tabletop_arm"])
        with pytest.raises(ValidationError, match=match):
            AuditResult.model_validate(broken)

    rejects(lambda t: t.update(headline_arm="full"), "a headline gain compares lora with scratch")
    rejects(lambda t: t["adaptation_gain"].update(n_seeds=2), "an interval from 2 seeds")
    rejects(lambda t: t["arms"]["lora"]["curve"].update(n_seeds=1), "an interval from 1 seeds")
    rejects(lambda t: t["negative_transfer"][0].update(significant=True, ci95=None), "significant without")
    rejects(lambda t: t["adaptation_gain"].update(kind="undefined"), "kind 'undefined' with value")
    rejects(lambda t: t["arms"]["lora"].update(kind="scratch"), "headline arm must be adapted")
    rejects(lambda t: t["arms"]["scratch"]["crossing"].update(status="not_reached"), "crossing 'not_reached'")
    rejects(lambda t: t.update(surprise=1), "Extra inputs are not permitted")
    rejects(lambda t: t["arms"]["lora"]["train_seconds"].pop("5"), "train_seconds budgets")
    with pytest.raises(ValidationError, match="frozen"):
        audit.targets["tabletop_arm"].goal_met = True
    assert target["adaptation_gain"]["n_seeds"] == 3  # the originals are untouched


def test_audit_json_round_trips_exactly_and_a_bad_file_names_itself(audit, tmp_path):
    path = tmp_path / "audit.json"
    write_audit_json(audit, path)
    assert load_audit(path) == audit
    assert json.loads(path.read_text())["targets"]["tabletop_arm"]["adaptation_gain"]["text"] == \
        audit.targets["tabletop_arm"].adaptation_gain.text
    for text, why in (("{", "not JSON"), ('{"plan": {}}', "not a locksmith audit.json")):
        path.write_text(text)
        with pytest.raises(AuditFileError, match=why) as err:
            load_audit(path)
        assert str(path) in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(AuditFileError, match="cannot be read"):
        load_audit(tmp_path / "missing.json")


def test_each_targets_cost_sums_its_runs_and_tuning_runs_by_arm():
    plan = make_plan()
    targets = resolve(plan)
    targets[0] = dataclasses.replace(targets[0], recording_seconds=65.0)
    results = sweep_results(plan, targets)
    tuned = [{**r, "purpose": "tune", "train_seconds": 10.0, "eval_seconds": 2.0}
             for r in results if r["target"] == "tabletop_arm" and r["arm"] == "full"][:2]
    audit = summarize(plan, targets, results, PRIOR, tuning_records(plan, targets), tuned=tuned)
    cost = audit.targets["tabletop_arm"].cost
    full = sum(SPEED["full"] * b * (1 + 0.05 * s) + 1.0 for b in CURVES["tabletop_arm"]["full"] for s in plan.seeds)
    assert cost.training_seconds["full"] == pytest.approx(full + 2 * 10.0)
    assert cost.runs == {"scratch": 12, "act": 12, "lora": 12, "full": 14}
    assert cost.evaluation_seconds["full"] == pytest.approx(12 * 3.0 + 2 * 2.0)
    assert cost.recording_seconds == 65.0
    assert audit.targets["mobile_manipulator"].cost.recording_seconds is None
    assert audit.targets["mobile_manipulator"].cost.runs["full"] == 12  # another target's tuning runs not counted
    assert "  cost: recording 65 s; training scratch " in format_table(audit)
    assert load_audit_roundtrip(audit) == audit


def load_audit_roundtrip(audit: AuditResult) -> AuditResult:
    return AuditResult.model_validate_json(audit.model_dump_json())


def test_refinement_bisects_the_bracket_of_each_crossing_on_log_demos():
    plan = make_plan(targets=[{"name": "tabletop_arm", "robot": "so101", "task": "reach"}], budgets=[2, 8, 32],
                     peer_baseline="none", recipes=["lora"], training={})
    targets = resolve(plan)
    curves = {"tabletop_arm": {"scratch": {2: 0.0, 8: 0.1, 32: 0.9}, "lora": {2: 0.2, 8: 0.8, 32: 1.0}}}
    budgets = refine_budgets(plan, targets, sweep_results(plan, targets, curves), {})
    assert budgets["tabletop_arm"] == {"scratch": [2, 8, 16, 32], "lora": [2, 4, 8, 32]}
    # max budget / adapted crossing: 0.2 at 2 and 0.8 at 8 cross 0.5 half-way in log demos, at 4
    curves["tabletop_arm"]["scratch"] = {2: 0.0, 8: 0.0, 32: 0.1}
    audit = summarize(plan, targets, sweep_results(plan, targets, curves), PRIOR, None)
    gain = audit.targets["tabletop_arm"].adaptation_gain
    assert gain.kind == "lower_bound" and gain.value == pytest.approx(32 / 4) and math.isclose(gain.adapted.demos, 4)
    assert audit.targets["tabletop_arm"].arms["lora"].tuning is None
