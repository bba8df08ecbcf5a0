"""From the sweep's run files to the audit's numbers: one validated `AuditResult`.

Per target, every arm's runs become a `stats.ArmResults` (per-episode outcomes per (budget, seed)
for closed-loop success, keyed by the evaluation episodes every run shares; the scalar error for
the offline metric) and a `stats.CheckpointResults` (the same along training, for time to
threshold). The *baseline* is the stronger of the from-scratch arms (`stats.stronger_arm`); the
*headline* arm is the plan's ``headline_recipe``, fixed before anything ran (picking the best
recipe afterwards would be a choice made on the reported episodes). Every other (adapted,
from-scratch) pair's gain, negative transfer at each budget and the wall-clock gains are
reported beside it.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence

import numpy as np

from locksmith.audit import stats
from locksmith.audit.estimates import (
    ArmCrossingRecord,
    BaselineRecord,
    CrossingRecord,
    CurveRecord,
    GainRecord,
    NegativeTransferRecord,
)
from locksmith.audit.plan import PEER_ARMS, SCRATCH_ARMS, TransferPlan
from locksmith.audit.schema import (
    ArmKind,
    ArmRecord,
    AuditResult,
    ExpertRecord,
    GoalChecks,
    GoalRecord,
    PriorRecord,
    Reproducibility,
    RunRecord,
    TargetCost,
    TargetResult,
    TrainingRecord,
    TuningRecord,
    Verdict,
)
from locksmith.policy.adapters import RECIPES
from locksmith.train.lerobot_prior import LEROBOT_ARMS

GOAL = {"demos_gain": 10.0, "demos_gain_lower": 5.0, "wallclock_gain": 5.0}
N_BOOT = 2000
BOOT_SEED = 0  # one seed for every bootstrap: the audit is a deterministic function of its runs

Runs = dict[int, dict[int, dict]]  # budget → seed → result.json


class SummaryError(ValueError):
    """The runs cannot be summarized (missing arm, runs scored on different episodes, ...)."""


def arm_kind(arm: str) -> ArmKind:
    return "scratch" if arm in SCRATCH_ARMS else "peer" if arm in PEER_ARMS else "adapted"


def arm_description(arm: str) -> str:
    """What the arm trains, in words (the recipe's own description)."""
    if arm in RECIPES:
        return RECIPES[arm].description
    if arm in LEROBOT_ARMS:
        return LEROBOT_ARMS[arm]
    return {"act": "LeRobot's ACT, every weight from random init (peer baseline)",
            "act_intent": "LeRobot's ACT predicting intent, acting through the robot's intent decoder, every "
                          "weight from random init (peer baseline)",
            "scratch_native": "the prior's trunk with plain per-robot heads (no intent decoder), every weight "
                              "from random init"}.get(arm, arm)


# --- run files → stats inputs ------------------------------------------------------------------

def runs_of(results: Sequence[dict], target: str, arm: str) -> Runs:
    """The report runs of one (target, arm): budget → seed → result, both sorted."""
    out: dict[int, dict[int, dict]] = defaultdict(dict)
    for r in results:
        if r["target"] == target and r["arm"] == arm and r.get("purpose", "report") == "report":
            out[int(r["budget"])][int(r["seed"])] = r
    if not out:
        raise SummaryError(f"target {target!r}: no finished runs of arm {arm!r}")
    return {b: dict(sorted(seeds.items())) for b, seeds in sorted(out.items())}


def episode_keys(results: Sequence[dict], target: str) -> tuple[str, ...]:
    """The evaluation episodes every run of ``target`` was scored on (the same list for all)."""
    found = {tuple(r["episode_keys"]) for r in results if r["target"] == target
             and r.get("purpose", "report") == "report"}
    if len(found) != 1:
        lengths = sorted(len(k) for k in found)
        raise SummaryError(f"target {target!r}: runs were scored on {len(found)} different lists of evaluation "
                           f"episodes (lengths {lengths}); every run of a target must share them")
    return found.pop()


def _outcome(r: dict, metric: str) -> list[int] | float:
    return list(r["outcomes"]) if metric == "success" else float(r["value"])


def arm_results(runs: Runs, name: str, metric: str, keys: tuple[str, ...],
                episodes: Sequence[int] | None = None) -> stats.ArmResults:
    """`stats.ArmResults` of one arm; ``episodes`` picks positions in ``keys`` (one slice)."""
    def entry(r: dict):
        out = _outcome(r, metric)
        return out if episodes is None or metric != "success" else [out[i] for i in episodes]

    picked = keys if episodes is None else tuple(keys[i] for i in episodes)
    return stats.ArmResults(
        name, {b: {s: entry(r) for s, r in seeds.items()} for b, seeds in runs.items()},
        episode_keys=picked if metric == "success" else (),
        train_seconds={b: {s: float(r["train_seconds"]) for s, r in seeds.items()} for b, seeds in runs.items()})


def checkpoint_results(runs: Runs, name: str, metric: str, keys: tuple[str, ...]) -> stats.CheckpointResults:
    """`stats.CheckpointResults` of one arm: every checkpoint evaluated along each run's training."""
    cells: dict[tuple[int, int], dict[int, tuple]] = defaultdict(dict)
    for b, seeds in runs.items():
        for s, r in seeds.items():
            for c in r["checkpoints"]:
                outcome = list(c["outcomes"]) if metric == "success" else float(c["value"])
                cells[(b, int(c["step"]))][s] = (float(c["train_seconds"]), outcome)
    return stats.CheckpointResults(name, dict(cells), episode_keys=keys if metric == "success" else ())


# --- one arm --------------------------------------------------------------------------------------

def _training_record(runs: Runs, arm: str) -> TrainingRecord:
    """The recipe the arm's runs used: all the same but for the step counts, which follow the budget."""
    shared, steps = set(), {}
    for b, seeds in runs.items():
        for r in seeds.values():
            t = r["training"]
            shared.add((t["lr"], t["schedule"], t["grad_clip"], t["weight_decay"], t["batch_size"], t["weight"],
                        t["lora_rank"], t["lora_alpha"]))
            if steps.setdefault(b, (t["steps"], t["warmup_steps"])) != (t["steps"], t["warmup_steps"]):
                raise SummaryError(f"arm {arm!r}: runs at {b} demos trained for different numbers of steps")
    if len(shared) != 1:
        raise SummaryError(f"arm {arm!r}: its runs used {len(shared)} different training recipes: {sorted(shared)}")
    lr, schedule, clip, decay, batch, weight, rank, alpha = shared.pop()
    uses_lora = arm in RECIPES and RECIPES[arm].lora
    return TrainingRecord(lr=lr, schedule=schedule, grad_clip=clip, weight_decay=decay, batch_size=batch,
                          weight=weight, lora_rank=rank if uses_lora else None, lora_alpha=alpha if uses_lora else None,
                          steps={b: s for b, (s, _) in steps.items()},
                          warmup_steps={b: w for b, (_, w) in steps.items()})


def _slice_positions(keys: tuple[str, ...]) -> dict[str, list[int]]:
    """Positions of each slice's episodes in ``keys`` (``<slice>/<evaluation seed>``)."""
    out: dict[str, list[int]] = defaultdict(list)
    for i, key in enumerate(keys):
        out[key.partition("/")[0]].append(i)
    return dict(out)


def _mean_by_budget(runs: Runs, field: str) -> dict[int, float]:
    return {b: float(np.mean([r[field] for r in seeds.values()])) for b, seeds in runs.items()}


def _curve(arm: stats.ArmResults) -> CurveRecord:
    return CurveRecord.model_validate(stats.arm_curve(arm, n_boot=N_BOOT, seed=BOOT_SEED).to_dict())


def arm_record(arm: str, runs: Runs, results: stats.ArmResults, checkpoints: stats.CheckpointResults, target,
               tuning: TuningRecord | None) -> ArmRecord:
    """One arm on one target: its recipe, curves, crossing with its interval, time to threshold, runs."""
    metric, threshold, keys = target.section.metric, target.threshold, results.episode_keys
    higher = metric == "success"
    crossing = stats.arm_crossing(results, threshold, higher).to_dict()
    interval = stats.crossing_interval(results, threshold, higher, n_boot=N_BOOT, seed=BOOT_SEED).to_dict()
    seconds = stats.time_to_threshold(checkpoints, threshold, higher)
    per_slice = {}
    if metric == "success":
        per_slice = {name: _curve(arm_results(runs, arm, metric, keys, positions))
                     for name, positions in _slice_positions(keys).items()}
    interventions: Counter = Counter()
    for seeds in runs.values():
        for r in seeds.values():
            interventions.update(r["shield_interventions"])
    first = next(iter(next(iter(runs.values())).values()))
    return ArmRecord(
        name=arm, kind=arm_kind(arm), description=arm_description(arm), training=_training_record(runs, arm),
        tuning=tuning, curve=_curve(results),
        per_slice=per_slice, crossing=ArmCrossingRecord(**crossing, **interval),
        seconds_to_threshold=CrossingRecord.model_validate(seconds.to_dict()),
        train_seconds=_mean_by_budget(runs, "train_seconds"), eval_seconds=_mean_by_budget(runs, "eval_seconds"),
        frames=_mean_by_budget(runs, "frames"), trainable_parameters=int(first["trainable_parameters"]),
        shield_interventions=dict(interventions),
        runs=tuple(RunRecord(budget=b, seed=s, value=float(r["value"]), demo_episodes=tuple(r["demo_episodes"]),
                             train_seconds=float(r["train_seconds"]), key=str(r["key"]))
                   for b, seeds in runs.items() for s, r in seeds.items()))


# --- gains and the goal ---------------------------------------------------------------------------

def _gain(gain: stats.Gain, baseline: str, adapted: str, extra_seconds: float = 0.0) -> GainRecord:
    return GainRecord(baseline_arm=baseline, adapted_arm=adapted, extra_seconds=extra_seconds, **gain.to_dict())


def _undefined(like: GainRecord, why: str) -> GainRecord:
    """``like`` with its value withdrawn: the gain cannot be computed, and ``why`` says so."""
    return GainRecord.model_validate({**like.model_dump(), "value": None, "kind": "undefined", "ci95": None,
                                      "confidence_bound": None, "adapted_cost": None, "ci_censored_fraction": 0.0,
                                      "n_boot": 0, "text": f"n/a ({why})"})


def check_demos_goal(gain: GainRecord, point: float, lower: float) -> Verdict:
    """Point ≥ ``point`` and the interval's lower end ≥ ``lower``; decided only when it can be.

    A lower bound can only show the goal met, an upper bound only missed; without an interval
    (fewer than 3 seeds) a point below ``point`` still decides "not met".
    """
    if gain.kind == "undefined":
        return "undetermined"
    if gain.kind == "upper_bound":
        return "not met" if gain.value < point else "undetermined"
    if gain.kind == "lower_bound":
        met = gain.value >= point and gain.lower_end is not None and gain.lower_end >= lower
        return "met" if met else "undetermined"
    if gain.value < point or (gain.lower_end is not None and gain.lower_end < lower):
        return "not met"
    return "met" if gain.lower_end is not None else "undetermined"


def check_wallclock_goal(gain: GainRecord, point: float) -> Verdict:
    if gain.kind == "undefined":
        return "undetermined"
    if gain.value >= point:
        return "undetermined" if gain.kind == "upper_bound" else "met"
    return "undetermined" if gain.kind == "lower_bound" else "not met"


def _goal(demos: Verdict, wallclock: Verdict) -> bool | None:
    if "not met" in (demos, wallclock):
        return False
    return True if demos == wallclock == "met" else None


# --- one target, the audit --------------------------------------------------------------------------

def summarize_target(plan: TransferPlan, target, results: Sequence[dict], prior: PriorRecord,
                     tuning: Mapping[str, TuningRecord], n_targets: int,
                     cost: TargetCost | None = None) -> TargetResult:
    metric, threshold = target.section.metric, target.threshold
    higher = metric == "success"
    keys = episode_keys(results, target.label)
    raw = {arm: runs_of(results, target.label, arm) for arm in plan.arms}
    arms = {arm: arm_results(runs, arm, metric, keys) for arm, runs in raw.items()}
    checkpoints = {arm: checkpoint_results(runs, arm, metric, keys) for arm, runs in raw.items()}
    records = {arm: arm_record(arm, raw[arm], arms[arm], checkpoints[arm], target, tuning.get(arm))
               for arm in plan.arms}
    from_scratch = [a for a in plan.arms if arm_kind(a) != "adapted"]
    adapted = [a for a in plan.arms if arm_kind(a) == "adapted"]
    headline = plan.headline
    if headline not in adapted:
        raise SummaryError(f"headline recipe {headline!r} is not among the adapted arms {adapted}")
    choice = stats.stronger_arm({a: arms[a] for a in from_scratch}, threshold, higher)
    base = choice.name

    def gain(baseline: str, arm: str) -> GainRecord:
        return _gain(stats.adaptation_gain(arms[baseline], arms[arm], threshold, higher, n_boot=N_BOOT,
                                           seed=BOOT_SEED), baseline, arm)

    def wallclock(extra: float) -> GainRecord:
        return _gain(stats.wallclock_gain(checkpoints[base], checkpoints[headline], threshold, higher,
                                          extra_seconds=extra, n_boot=N_BOOT, seed=BOOT_SEED), base, headline, extra)

    wall = wallclock(0.0)
    if prior.pretrain_seconds is None:
        amortized = _undefined(wall, "pretraining time unknown: the prior came as a ready checkpoint")
    else:
        amortized = wallclock(prior.pretrain_seconds / n_targets)
    negative = []
    for a in adapted:
        n_seeds = min(arms[base].n_seeds, arms[a].n_seeds)
        for row in stats.negative_transfer(arms[base], arms[a], higher, n_boot=N_BOOT, seed=BOOT_SEED):
            negative.append(NegativeTransferRecord(
                arm=a, versus=base, budget=row["budget"], baseline_mean=row["baseline_mean"],
                adapted_mean=row["adapted_mean"], difference=row["difference"], ci95=row["ci95"], n_seeds=n_seeds,
                below=row["below"], significant=row["negative_transfer"]))
    headline_gain = gain(base, headline)
    checks = GoalChecks(demos=check_demos_goal(headline_gain, GOAL["demos_gain"], GOAL["demos_gain_lower"]),
                        wallclock=check_wallclock_goal(wall, GOAL["wallclock_gain"]))
    budgets = sorted({b for runs in raw.values() for b in runs})
    notes = []
    added = sorted(set(budgets) - set(plan.budgets))
    if added:
        notes.append(f"budgets {', '.join(map(str, added))} were added by bisection around the crossings "
                     f"(refine_rounds={plan.refine_rounds}), for the arms whose crossing they bracket")
    expert = None
    if target.expert is not None:
        expert = ExpertRecord(success_rate=target.expert["success_rate"], ci95=target.expert.get("ci95"),
                              per_slice=target.expert.get("per_slice") or {})
    return TargetResult(
        label=target.label, robot=target.robot, task=target.task, source=target.section.source,
        dataset=str(target.dataset), metric=metric, higher_is_better=higher, threshold=threshold,
        threshold_rule=target.threshold_rule, expert=expert, action_scale=target.action_scale, budgets=budgets,
        seeds=tuple(plan.seeds), slices=tuple(plan.evaluation.slices) if higher else (),
        eval_seeds=tuple(target.eval_seeds), episode_keys=keys, demos_available=len(target.train_episodes),
        arms=records, baseline=BaselineRecord.model_validate(choice.to_dict()), headline_arm=headline,
        adaptation_gain=headline_gain,
        other_gains=tuple(gain(s, a) for a in adapted for s in from_scratch if (a, s) != (headline, base)),
        wallclock_gain=wall, wallclock_gain_amortized=amortized, negative_transfer=tuple(negative),
        goal_checks=checks, goal_met=_goal(checks.demos, checks.wallclock), notes=tuple(notes), cost=cost)


def target_cost(target, results: Sequence[dict]) -> TargetCost:
    """Seconds spent on ``target``: its recording, and each arm's training and evaluation summed
    over ``results`` (its report and tuning runs)."""
    train: dict[str, float] = defaultdict(float)
    evaluation: dict[str, float] = defaultdict(float)
    runs: dict[str, int] = defaultdict(int)
    for r in results:
        if r["target"] == target.label:
            train[r["arm"]] += float(r["train_seconds"])
            evaluation[r["arm"]] += float(r["eval_seconds"])
            runs[r["arm"]] += 1
    return TargetCost(recording_seconds=target.recording_seconds, training_seconds=dict(train),
                      evaluation_seconds=dict(evaluation), runs=dict(runs))


def summarize(plan: TransferPlan, targets: Sequence, results: Sequence[dict], prior_info: dict,
              tuning: Mapping[str, Mapping[str, TuningRecord]] | None, *, plan_file: str | None = None,
              quick: bool = False, reproducibility: Reproducibility | dict | None = None,
              tuned: Sequence[dict] = ()) -> AuditResult:
    """The audit from the sweep's results.

    Args:
        targets: `run.ResolvedTarget`s, in the plan's order.
        results: every run's ``result.json`` dict (the sweep's output).
        prior_info: `run.ensure_prior`'s dict (checkpoint, cached, pretrain_seconds, ...).
        tuning: ``{target: {arm: TuningRecord}}``, how each arm's learning rate was chosen.
        tuned: the tuning runs' ``result.json`` dicts (their seconds count in each target's cost).
    """
    prior = PriorRecord.from_info(prior_info)
    tuning = tuning or {}
    if isinstance(reproducibility, dict):
        reproducibility = Reproducibility.model_validate(reproducibility)
    return AuditResult(
        plan=plan.to_dict(), plan_file=plan_file, quick=quick, prior=prior, arms_ran=tuple(plan.arms),
        headline_recipe=plan.headline, goal=GoalRecord(**GOAL),
        targets={t.label: summarize_target(plan, t, results, prior, tuning.get(t.label, {}), len(targets),
                                           cost=target_cost(t, [*results, *tuned]))
                 for t in targets},
        reproducibility=reproducibility)


def refine_budgets(plan: TransferPlan, targets: Sequence, results: Sequence[dict],
                   budgets: dict[str, dict[str, list[int]]]) -> dict[str, dict[str, list[int]]]:
    """One bisection step on log demos: add the geometric midpoint of the bracket of each crossing."""
    out: dict[str, dict[str, list[int]]] = {}
    for t in targets:
        metric = t.section.metric
        keys = episode_keys(results, t.label)
        out[t.label] = {}
        for arm in plan.arms:
            current = sorted(budgets.get(t.label, {}).get(arm, list(plan.budgets)))
            runs = arm_results(runs_of(results, t.label, arm), arm, metric, keys)
            crossing = stats.arm_crossing(runs, t.threshold, metric == "success")
            if crossing.status == "reached":
                lo = max([b for b in current if b <= crossing.demos], default=current[0])
                hi = min([b for b in current if b >= crossing.demos], default=current[-1])
                mid = int(round(math.sqrt(lo * hi)))
                if lo < mid < hi and mid not in current:
                    current = sorted({*current, mid})
            out[t.label][arm] = current
    return out


def format_table(audit: AuditResult) -> str:
    """The short summary `locksmith audit` prints: one headline line per target, then its table."""
    lines = [t.headline() for t in audit.targets.values()]
    for name, t in audit.targets.items():
        unit = "success" if t.higher_is_better else "error"
        lines += ["", f"{name} ({t.robot}/{t.task}, threshold {t.threshold:.3g} = {t.threshold_rule}; "
                      f"baseline {t.baseline.name}, headline {t.headline_arm})"]
        width = max(10, 2 + max(map(len, t.arms)))  # lerobot_finetune is wider than our recipes
        lines.append(f"  {'arm':<{width}}" + "".join(f"{'n=' + str(b):>9}" for b in t.budgets)
                     + f"{'seeds':>7}{'demos→thr':>12}{'train s@max':>13}")
        for arm, r in t.arms.items():
            cells = "".join(f"{m[0]:>9.3f}" if (m := r.curve.at(b)) else f"{'-':>9}" for b in t.budgets)
            seconds = r.train_seconds[max(r.curve.budgets)]
            lines.append(f"  {arm:<{width}}{cells}{r.curve.n_seeds:>7}{r.crossing.text():>12}{seconds:>13.0f}")
        lines.append(f"  ({unit} per budget, mean over seeds; wall-clock gain, adaptation only: "
                     f"{t.wallclock_gain.text}; with pretraining amortized: {t.wallclock_gain_amortized.text})")
        if t.cost is not None:
            lines.append(f"  cost: {t.cost.text()}")
        for g in t.other_gains:
            lines.append(f"  {g.adapted_arm} vs {g.baseline_arm}: {g.text}")
        for flag in t.negative_transfer:
            if flag.significant:
                lines.append(f"  negative transfer: {flag.arm} below {flag.versus} at n={flag.budget}")
    return "\n".join(lines)
