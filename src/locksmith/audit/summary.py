"""From the sweep's run files to the audit's numbers: curves, demos-to-threshold, gains, flags.

Per target, every arm's results become an `ArmResults` (per-episode outcomes per (budget, seed)
for closed-loop success; the scalar error for the offline metric). The *baseline* is the
stronger of the scratch arms (our architecture from scratch, LeRobot's ACT from scratch): the
gain is always reported against it. The *adapted* arm is the best adapted recipe. Everything
else (the weaker arms' gains, negative transfer at each budget) is reported beside it.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence

import numpy as np

from locksmith.audit import stats
from locksmith.audit.plan import PEER_ARMS, TransferPlan

GOAL = {"demos_gain": 10.0, "demos_gain_lower": 5.0, "wallclock_gain": 5.0}
N_BOOT = 2000


def _by(results: Sequence[dict], target: str, arm: str) -> dict[int, list[dict]]:
    """Results of one (target, arm), by budget, each budget's runs sorted by seed."""
    out: dict[int, list[dict]] = defaultdict(list)
    for r in results:
        if r["target"] == target and r["arm"] == arm:
            out[int(r["budget"])].append(r)
    return {b: sorted(rs, key=lambda r: r["seed"]) for b, rs in sorted(out.items())}


def arm_results(runs: dict[int, list[dict]], name: str, metric: str) -> stats.ArmResults:
    seconds = {b: [max(r["train_seconds"], 1e-6) for r in rs] for b, rs in runs.items()}
    if metric == "success":
        counts = {b: [(r["successes"], r["episodes"]) for r in rs] for b, rs in runs.items()}
        return stats.ArmResults.from_success_counts(name, counts, train_seconds=seconds)
    return stats.ArmResults(name, {b: [r["value"] for r in rs] for b, rs in runs.items()}, train_seconds=seconds)


def _arm_record(kind: str, arm: stats.ArmResults, runs: dict[int, list[dict]], threshold: float,
                higher_is_better: bool, metric: str) -> dict:
    curve = stats.arm_curve(arm, n_boot=N_BOOT).to_dict()
    curve["per_seed"] = [[r["value"] for r in rs] for rs in runs.values()]
    crossing = stats.arm_crossing(arm, threshold, higher_is_better).to_dict()
    reps = stats.bootstrap_demos_to_threshold(arm, threshold, N_BOOT, np.random.default_rng(1), higher_is_better)
    crossing["ci95"] = [float(x) for x in np.percentile(reps.demos, [2.5, 97.5])]
    crossing["ci_censored_fraction"] = reps.censored_fraction
    per_slice: dict[str, dict] = {}
    if metric == "success":
        names = list(next(iter(runs.values()))[0]["per_slice"])
        for name in names:
            per_slice[name] = {"budgets": list(runs), "mean": [
                float(np.mean([r["per_slice"][name]["success_rate"] for r in rs])) for rs in runs.values()]}
    interventions: Counter = Counter()
    for rs in runs.values():
        for r in rs:
            interventions.update(r.get("shield_interventions") or {})
    return {
        "kind": kind, "curve": curve, "per_slice": per_slice, "demos_to_threshold": crossing,
        "wallclock_seconds": {str(b): float(np.mean([r["train_seconds"] for r in rs])) for b, rs in runs.items()},
        "eval_seconds": {str(b): float(np.mean([r["eval_seconds"] for r in rs])) for b, rs in runs.items()},
        "shield_interventions": dict(interventions),
        "frames": {str(b): float(np.mean([r["frames"] for r in rs])) for b, rs in runs.items()},
        "trainable_parameters": int(next(iter(runs.values()))[0]["trainable_parameters"]),
        "checkpoints": [r["checkpoint"] for rs in runs.values() for r in rs],
    }


def _kind(arm: str) -> str:
    return "scratch" if arm == "scratch" else "peer" if arm in PEER_ARMS else "adapted"


def summarize_target(plan: TransferPlan, target, results: Sequence[dict]) -> dict:
    metric = target.section.metric
    higher = metric == "success"
    threshold = target.threshold
    raw = {arm: _by(results, target.label, arm) for arm in plan.arms}
    arms = {arm: arm_results(runs, arm, metric) for arm, runs in raw.items()}
    records = {arm: _arm_record(_kind(arm), arms[arm], raw[arm], threshold, higher, metric) for arm in plan.arms}
    scratch_arms = {a: arms[a] for a in plan.arms if _kind(a) != "adapted"}
    adapted_arms = {a: arms[a] for a in plan.arms if _kind(a) == "adapted"}
    baseline = stats.stronger_arm(scratch_arms, threshold, higher)
    best = stats.stronger_arm(adapted_arms, threshold, higher)
    gain = stats.adaptation_gain(arms[baseline.name], arms[best.name], threshold, higher, n_boot=N_BOOT)
    wall = stats.wallclock_gain(arms[baseline.name], arms[best.name], threshold, higher, n_boot=N_BOOT)
    other_gains = {}
    for a in adapted_arms:
        for s in scratch_arms:
            other_gains[f"{a}_vs_{s}"] = stats.adaptation_gain(arms[s], arms[a], threshold, higher,
                                                               n_boot=N_BOOT).to_dict()
    negative = []
    for a in adapted_arms:
        for row in stats.negative_transfer(arms[baseline.name], arms[a], higher, n_boot=N_BOOT):
            if row["below"]:
                negative.append({"arm": a, "versus": baseline.name, "budget": row["budget"],
                                 "adapted": row["adapted_mean"], "scratch": row["scratch_mean"],
                                 "difference": row["difference"], "ci95": row["ci95"],
                                 "significant": row["negative_transfer"]})
    notes = []
    if metric == "offline_action_error":
        notes.append("no simulator: offline action error on held-out episodes, lower is better")
    if gain.value is None:
        notes.append(gain.text)
    goal_met = bool(gain.value is not None and not gain.is_upper_bound and gain.value >= GOAL["demos_gain"]
                    and gain.ci95 is not None and gain.ci95[0] >= GOAL["demos_gain_lower"]
                    and wall.value is not None and wall.value >= GOAL["wallclock_gain"])
    budgets = sorted({b for runs in raw.values() for b in runs})
    return {
        "robot": target.robot, "task": target.task, "source": target.section.source,
        "dataset": str(target.dataset), "metric": metric, "higher_is_better": higher,
        "threshold": threshold, "threshold_rule": target.threshold_rule, "expert": target.expert,
        "budgets": budgets, "seeds": list(plan.seeds), "slices": list(plan.evaluation.slices),
        "arms": records, "baseline_arm": baseline.name, "baseline_choice": baseline.to_dict(),
        "adapted_arm": best.name, "adaptation_gain": gain.to_dict(), "wallclock_gain": wall.to_dict(),
        "other_gains": other_gains, "negative_transfer": negative, "goal_met": goal_met,
        "data_volume": {"demos_available": len(target.train_episodes), "max_budget": max(budgets),
                        "frames_at_max_budget": records[plan.arms[0]]["frames"][str(max(budgets))]},
        "notes": notes,
    }


def summarize(plan: TransferPlan, targets, results: Sequence[dict], prior_info: dict) -> dict:
    return {
        "plan": plan.to_dict(), "prior": prior_info, "arms_ran": list(plan.arms),
        "targets": {t.label: summarize_target(plan, t, results) for t in targets}, "goal": dict(GOAL),
    }


def refine_budgets(plan: TransferPlan, targets, results: Sequence[dict],
                   budgets: dict[str, dict[str, list[int]]]) -> dict[str, dict[str, list[int]]]:
    """One bisection step on log demos: add the geometric midpoint of the bracket of each crossing."""
    out: dict[str, dict[str, list[int]]] = {}
    for t in targets:
        higher = t.section.metric == "success"
        out[t.label] = {}
        for arm in plan.arms:
            runs = _by(results, t.label, arm)
            current = sorted(budgets.get(t.label, {}).get(arm, list(plan.budgets)))
            crossing = stats.arm_crossing(arm_results(runs, arm, t.section.metric), t.threshold, higher)
            if crossing.status == "reached":
                lo = max([b for b in current if b <= crossing.demos], default=current[0])
                hi = min([b for b in current if b >= crossing.demos], default=current[-1])
                mid = int(round(math.sqrt(lo * hi)))
                if lo < mid < hi and mid not in current:
                    current = sorted({*current, mid})
            out[t.label][arm] = current
    return out


def format_table(audit: dict) -> str:
    """The short summary `locksmith audit` prints: headline lines, then one row per arm."""
    lines = []
    for name, t in audit["targets"].items():
        lines.append(f"{name}: adaptation_gain={t['adaptation_gain']['text']}")
    for name, t in audit["targets"].items():
        unit = "success" if t["higher_is_better"] else "error"
        lines.append("")
        lines.append(f"{name} ({t['robot']}/{t['task']}, threshold {t['threshold']:.3g} = {t['threshold_rule']}; "
                     f"baseline {t['baseline_arm']}, adapted {t['adapted_arm']})")
        budgets = t["budgets"]
        lines.append(f"  {'arm':<10}" + "".join(f"{'n=' + str(b):>9}" for b in budgets)
                     + f"{'demos→thr':>14}{'train s@max':>13}")
        for arm, r in t["arms"].items():
            by_budget = dict(zip(r["curve"]["budgets"], r["curve"]["mean"], strict=True))
            cells = "".join(f"{by_budget[b]:>9.3f}" if b in by_budget else f"{'-':>9}" for b in budgets)
            c = r["demos_to_threshold"]
            demos = (f"{c['demos']:.1f}" if c["status"] == "reached" else
                     f"<= {c['upper_bound']:g}" if c["status"] == "at_or_below_min" else f"> {c['lower_bound']:g}")
            seconds = r["wallclock_seconds"][str(max(int(b) for b in r["curve"]["budgets"]))]
            lines.append(f"  {arm:<10}{cells}{demos:>14}{seconds:>13.0f}")
        lines.append(f"  ({unit} per budget, mean over seeds; wall-clock gain {t['wallclock_gain']['text']})")
        for flag in t["negative_transfer"]:
            if flag["significant"]:
                lines.append(f"  negative transfer: {flag['arm']} below {flag['versus']} at n={flag['budget']}")
    return "\n".join(lines)
