"""What the prior saves: the demos gain, negative transfer, and the stronger baseline arm.

The audit's overview of the method is the docstring of `locksmith.audit.stats`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

from locksmith.audit.arms import ArmResults
from locksmith.audit.bootstrap import (
    MIN_SEEDS_FOR_INTERVAL,
    arm_crossing,
    check_shared_design,
    joint_replicate_curves,
    replicate_crossings,
)
from locksmith.audit.crossing import Crossing, check_n_boot, finite_number, json_number

GainKind = Literal["exact", "lower_bound", "upper_bound", "undefined"]
Quantity = Literal["demos", "seconds"]


@dataclass(frozen=True)
class Gain:
    """The baseline's cost to reach the threshold over the adapted arm's, and how sure that is.

    Attributes:
        value: baseline_cost / adapted_cost from the full data; None when ``undefined``.
        kind: ``exact``; ``lower_bound`` (the baseline never reached the threshold, or the adapted
            arm was at it already at its smallest budget); ``upper_bound`` (the reverse);
            ``undefined`` (both pushes at once: neither reached, or both at it already).
        ci95: 95 % percentile interval of the paired replicate ratios; exact gains with at least
            `MIN_SEEDS_FOR_INTERVAL` seeds only.
        confidence_bound: for a bound with at least `MIN_SEEDS_FOR_INTERVAL` seeds, the one-sided
            95 % bound on its open side: the 5th percentile of the replicate ratios for a lower
            bound, the 95th for an upper bound (a censored replicate ratio is a bound of that side).
        n_seeds: training seeds, shared by both arms.
        text: what the CLI and the report print, e.g. ``8.2x [6.1, 10.4] (3 seeds)``,
            ``8.2x, no interval (2 seeds)``, ``> 2.3x (95 % lower confidence bound 1.3x, 3 seeds;
            scratch did not reach the threshold within 50 demos)``, ``n/a (neither arm reached the
            threshold)``.
        quantity: ``demos`` or ``seconds`` (training wall-clock).
        baseline_cost, adapted_cost: each arm's quantity at its crossing, or at the bound when
            censored; adapted_cost includes any extra seconds (the amortized pretraining).
        baseline, adapted: the point crossings (for seconds, ``demos`` holds seconds).
        ci_censored_fraction: the fraction of replicates where either arm's crossing is censored.
        n_boot: replicates drawn; 0 when none were (undefined, or below the seed minimum).
    """

    value: float | None
    kind: GainKind
    ci95: tuple[float, float] | None
    confidence_bound: float | None
    n_seeds: int
    text: str
    quantity: Quantity
    baseline_cost: float | None
    adapted_cost: float | None
    baseline: Crossing
    adapted: Crossing
    ci_censored_fraction: float
    n_boot: int
    threshold: float
    higher_is_better: bool

    def to_dict(self) -> dict:
        return {"value": self.value, "kind": self.kind,
                "ci95": list(self.ci95) if self.ci95 is not None else None,
                "confidence_bound": self.confidence_bound, "n_seeds": self.n_seeds, "text": self.text,
                "quantity": self.quantity, "baseline_cost": self.baseline_cost, "adapted_cost": self.adapted_cost,
                "baseline": self.baseline.to_dict(), "adapted": self.adapted.to_dict(),
                "ci_censored_fraction": self.ci_censored_fraction, "n_boot": self.n_boot,
                "threshold": self.threshold, "higher_is_better": self.higher_is_better}


def format_ratio(x: float) -> str:
    return f"{x:.0f}" if x >= 1000 else f"{x:.1f}" if x >= 1 else f"{x:.2g}"


def _format_amount(x: float, quantity: Quantity) -> str:
    if quantity == "demos":
        return f"{json_number(x)} demos"
    return f"{x:,.0f} s of training" if x >= 10 else f"{x:.2g} s of training"


def gain_kind(baseline: Crossing, adapted: Crossing) -> GainKind:
    """Which bound baseline/adapted is: baseline > N or adapted <= n0 push it up (a lower bound)."""
    lower = baseline.status == "not_reached" or adapted.status == "at_or_below_min"
    upper = baseline.status == "at_or_below_min" or adapted.status == "not_reached"
    return "undefined" if lower and upper else "lower_bound" if lower else "upper_bound" if upper else "exact"


def _censoring_notes(names: tuple[str, str], crossings: tuple[Crossing, Crossing], quantity: Quantity) -> list[str]:
    notes = []
    for name, crossing in zip(names, crossings):
        if crossing.status == "not_reached":
            notes.append(f"{name} did not reach the threshold within {_format_amount(crossing.lower_bound, quantity)}")
        elif crossing.status == "at_or_below_min":
            at = "at" if quantity == "demos" else "after"
            notes.append(f"{name} was already at the threshold {at} {_format_amount(crossing.upper_bound, quantity)}")
    return notes


def build_gain(names: tuple[str, str], baseline: Crossing, adapted: Crossing, baseline_cost: float,
               adapted_cost: float, n_seeds: int, replicates: tuple[np.ndarray, np.ndarray] | None,
               threshold: float, higher_is_better: bool, quantity: Quantity) -> Gain:
    """The `Gain` from the point crossings and costs, and the paired replicates when drawn.

    Args:
        names: (baseline, adapted) arm names for the text.
        replicates: (R,) replicate ratios and (R,) whether either crossing was censored in that
            replicate; None when no replicates were drawn.
    """
    kind = gain_kind(baseline, adapted)
    common = dict(quantity=quantity, baseline_cost=float(baseline_cost), adapted_cost=float(adapted_cost),
                  baseline=baseline, adapted=adapted, threshold=threshold, higher_is_better=higher_is_better)
    seeds = f"{n_seeds} seed{'s' if n_seeds != 1 else ''}"
    notes = _censoring_notes(names, (baseline, adapted), quantity)
    if kind == "undefined":
        why = ("neither arm reached the threshold" if baseline.status == "not_reached" else
               "both arms were already at the threshold at their smallest budget" if quantity == "demos" else
               "both arms were already at the threshold at their first checkpoint")
        return Gain(None, kind, None, None, n_seeds, f"n/a ({why})", ci_censored_fraction=0.0, n_boot=0, **common)
    value = baseline_cost / adapted_cost
    prefix = {"exact": "", "lower_bound": "> ", "upper_bound": "< "}[kind]
    head = f"{prefix}{format_ratio(value)}x"
    if replicates is None:
        missing = "no interval" if kind == "exact" else "no confidence bound"
        return Gain(float(value), kind, None, None, n_seeds, f"{head}, {missing} ({'; '.join([seeds, *notes])})",
                    ci_censored_fraction=0.0, n_boot=0, **common)
    ratios, censored = replicates
    censored_fraction = float(np.mean(censored))
    ci = bound = None
    if kind == "exact":
        low, high = (float(q) for q in np.percentile(ratios, [2.5, 97.5]))
        ci = (low, high)
        if censored_fraction > 0:
            where = "the budget range" if quantity == "demos" else "the checkpoints measured"
            notes.append(f"CI censored at {where} in {100 * censored_fraction:.0f}% of replicates")
        text = f"{head} [{format_ratio(low)}, {format_ratio(high)}] ({'; '.join([seeds, *notes])})"
    else:
        side = "lower" if kind == "lower_bound" else "upper"
        bound = float(np.percentile(ratios, 5 if side == "lower" else 95))
        text = f"{head} (95 % {side} confidence bound {format_ratio(bound)}x, {'; '.join([seeds, *notes])})"
    return Gain(float(value), kind, ci, bound, n_seeds, text, ci_censored_fraction=censored_fraction,
                n_boot=len(ratios), **common)


def adaptation_gain(baseline: ArmResults, adapted: ArmResults, threshold: float, higher_is_better: bool = True,
                    n_boot: int = 2000, seed: int = 0) -> Gain:
    """Baseline demos-to-threshold over the adapted arm's, with the joint paired bootstrap.

    Both arms must share training seeds and episode keys; each replicate is the ratio of the two
    arms' crossings under the same draw of seeds and episodes.
    """
    threshold = finite_number("threshold", threshold)
    n_boot = check_n_boot(n_boot)
    seeds, _ = check_shared_design([baseline, adapted])
    crossings = tuple(arm_crossing(arm, threshold, higher_is_better) for arm in (baseline, adapted))
    replicates = None
    if len(seeds) >= MIN_SEEDS_FOR_INTERVAL and gain_kind(*crossings) != "undefined":
        curves = joint_replicate_curves([baseline, adapted], n_boot, seed)
        (b_demos, b_status), (a_demos, a_status) = (replicate_crossings(arm.budgets, c, threshold, higher_is_better)
                                                    for arm, c in zip((baseline, adapted), curves))
        replicates = (b_demos / a_demos, (b_status != "reached") | (a_status != "reached"))
    return build_gain((baseline.name, adapted.name), *crossings, crossings[0].demos_or_bound,
                      crossings[1].demos_or_bound, len(seeds), replicates, threshold, higher_is_better, "demos")


def negative_transfer(baseline: ArmResults, adapted: ArmResults, higher_is_better: bool = True,
                      n_boot: int = 2000, seed: int = 0) -> list[dict]:
    """Per shared budget, whether the adapted arm does worse than the baseline.

    Returns:
        One dict per budget both arms ran, sorted: ``{"budget", "baseline_mean", "adapted_mean",
        "difference" (adapted - baseline), "ci95": [lo, hi] of the difference under the joint
        paired bootstrap (None below `MIN_SEEDS_FOR_INTERVAL` seeds), "below": adapted on the worse
        side of the baseline, "negative_transfer": below and the interval excludes zero (False
        without an interval)}``. "Worse" is lower when higher is better, higher otherwise.
    """
    n_boot = check_n_boot(n_boot)
    seeds, _ = check_shared_design([baseline, adapted])
    shared = sorted(set(baseline.runs) & set(adapted.runs))
    if not shared:
        raise ValueError(f"{baseline.name!r} budgets {list(baseline.runs)} and {adapted.name!r} budgets "
                         f"{list(adapted.runs)} share none; negative transfer compares the same budget")
    columns = [[list(arm.runs).index(b) for b in shared] for arm in (baseline, adapted)]
    means = [arm.mean_curve()[c] for arm, c in zip((baseline, adapted), columns)]
    low = high = None
    if len(seeds) >= MIN_SEEDS_FOR_INTERVAL:
        reps = joint_replicate_curves([baseline, adapted], n_boot, seed)
        differences = reps[1][:, columns[1]] - reps[0][:, columns[0]]  # (R, shared B)
        low, high = np.percentile(differences, [2.5, 97.5], axis=0)
    rows = []
    for i, budget in enumerate(shared):
        difference = float(means[1][i] - means[0][i])
        below = difference < 0 if higher_is_better else difference > 0
        excludes_zero = low is not None and (high[i] < 0 if higher_is_better else low[i] > 0)
        rows.append({"budget": json_number(budget), "baseline_mean": float(means[0][i]),
                     "adapted_mean": float(means[1][i]), "difference": difference,
                     "ci95": None if low is None else [float(low[i]), float(high[i])], "below": bool(below),
                     "negative_transfer": bool(below and excludes_zero)})
    return rows


@dataclass(frozen=True)
class StrongerArm:
    """The stronger scratch arm and why: ``fewer_demos``, ``area_under_curve`` or ``tie``."""

    name: str
    reason: Literal["fewer_demos", "area_under_curve", "tie"]
    crossings: dict[str, Crossing]
    areas: dict[str, float]

    def to_dict(self) -> dict:
        return {"name": self.name, "reason": self.reason, "areas": dict(self.areas),
                "crossings": {k: c.to_dict() for k, c in self.crossings.items()}}


def _mean_area(budgets: np.ndarray, values: np.ndarray) -> float:
    """Mean of the curve over log-demos (trapezoid area / log-range); the value itself for one budget."""
    if budgets.size == 1:
        return float(values[0])
    x = np.log(budgets)
    return float(np.trapezoid(values, x) / (x[-1] - x[0]))


def stronger_arm(arms: Mapping[str, ArmResults], threshold: float, higher_is_better: bool = True) -> StrongerArm:
    """Which of several scratch arms is the stronger baseline.

    Fewer demos to threshold wins (not reached counts as infinitely many; at-the-smallest-budget as
    that budget). A tie, or no arm reaching it, goes to the better mean area under the curve over
    log-demos on the budgets all arms share; a tie there too goes to the first name alphabetically.
    """
    if not arms:
        raise ValueError("arms must hold at least one arm")
    threshold = finite_number("threshold", threshold)
    crossings = {name: arm_crossing(arm, threshold, higher_is_better) for name, arm in arms.items()}
    shared = sorted(set.intersection(*(set(arm.runs) for arm in arms.values())))
    if not shared:
        raise ValueError(f"arms share no budget: {({n: list(a.runs) for n, a in arms.items()})}")
    sign = 1.0 if higher_is_better else -1.0
    areas = {}
    for name, arm in arms.items():
        columns = [list(arm.runs).index(b) for b in shared]
        areas[name] = _mean_area(np.array(shared, dtype=float), arm.mean_curve()[columns])
    demos = {n: c.demos if c.demos is not None else math.inf for n, c in crossings.items()}
    names = sorted(arms)
    fewest = min(demos.values())
    leaders = [n for n in names if math.isfinite(fewest) and math.isclose(demos[n], fewest, rel_tol=1e-9)]
    if len(leaders) == 1:
        return StrongerArm(leaders[0], "fewer_demos", crossings, areas)
    candidates = leaders or names
    best = max(candidates, key=lambda n: sign * areas[n])  # max keeps the first of equals
    tied = sum(math.isclose(areas[n], areas[best], rel_tol=1e-12) for n in candidates) > 1
    return StrongerArm(best, "tie" if tied else "area_under_curve", crossings, areas)
