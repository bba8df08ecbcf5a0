"""The joint bootstrap over training seeds and evaluation episodes, and per-arm intervals.

The data are crossed: every run (arm, budget, training seed) is scored on the same evaluation
episodes. One replicate draws S training seeds and E evaluation episodes with replacement, once,
and applies that draw to every arm and every budget (or checkpoint) it is given; a replicate mean
is then the mean of the outcome table restricted to the drawn seeds × the drawn episodes (scalar
metrics: the mean over the drawn seeds). Below `MIN_SEEDS_FOR_INTERVAL` training seeds no interval
is given at all: the seed-to-seed spread cannot be estimated from one or two seeds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from locksmith.audit.arms import ArmResults, CheckpointResults
from locksmith.audit.crossing import (
    Crossing,
    check_n_boot,
    crossing_of_sorted,
    demos_to_threshold,
    finite_number,
    json_number,
)

MIN_SEEDS_FOR_INTERVAL = 3  # with 1-2 seeds a nominal 95 % interval covered 53-80 % in simulation


def check_shared_design(arms: Sequence[ArmResults | CheckpointResults]) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """The seeds and episode keys every arm shares; a ValueError naming the arms that differ."""
    if len(arms) == 0:
        raise ValueError("the joint bootstrap needs at least one arm")
    first = arms[0]
    for other in arms[1:]:
        if other.seeds != first.seeds:
            raise ValueError(f"the joint bootstrap needs the same training seeds in every arm: {first.name!r} has "
                             f"{list(first.seeds)}, {other.name!r} has {list(other.seeds)}")
        if other.episode_keys != first.episode_keys:
            only = [(arm.name, [k for k in arm.episode_keys if k not in set(rest.episode_keys)])
                    for arm, rest in ((first, other), (other, first))]
            detail = ", ".join(f"{keys[0]!r} only in {name!r}" for name, keys in only if keys) \
                or "the same keys in another order"
            raise ValueError(f"the joint bootstrap needs the same evaluation episodes in every arm: {first.name!r} "
                             f"has {len(first.episode_keys)} episode keys, {other.name!r} has "
                             f"{len(other.episode_keys)} ({detail})")
    return first.seeds, first.episode_keys


def _draw_weights(n_items: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, n_items) how often each item is drawn in n_items draws with replacement, / n_items."""
    picks = rng.integers(0, n_items, size=(n_boot, n_items))
    rows = np.arange(n_boot)[:, None] * n_items
    counts = np.bincount((picks + rows).ravel(), minlength=n_boot * n_items).reshape(n_boot, n_items)
    return counts / n_items


def joint_weights(n_seeds: int, n_episodes: int, n_boot: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray | None]:
    """One draw of seeds and one of episodes per replicate, as weights.

    Seeds are drawn first, then episodes, from ``numpy.random.default_rng(seed)``, so the draw does
    not depend on how many arms share it.

    Returns:
        (n_boot, S) seed weights and (n_boot, E) episode weights (each row: counts / size, summing
        to 1); the episode weights are None when ``n_episodes`` is 0 (scalar metrics).
    """
    rng = np.random.default_rng(seed)
    seed_weights = _draw_weights(n_seeds, n_boot, rng)
    return seed_weights, (_draw_weights(n_episodes, n_boot, rng) if n_episodes else None)


def replicate_means(table: np.ndarray, seed_weights: np.ndarray, episode_weights: np.ndarray | None) -> np.ndarray:
    """(R, X) replicate means of an (X, S, E) or (X, S) table under (R, S) and (R, E) weights.

    The mean of ``table[x]`` over the drawn seeds × drawn episodes is the bilinear form
    ``seed_weights[r] @ table[x] @ episode_weights[r]``.
    """
    if table.ndim == 2:
        return seed_weights @ table.T
    per_seed = table @ episode_weights.T  # (X, S, R): each run's mean over the drawn episodes
    return np.einsum("xsr,rs->rx", per_seed, seed_weights)


def joint_replicate_curves(arms: Sequence[ArmResults], n_boot: int, seed: int = 0) -> list[np.ndarray]:
    """Bootstrap replicates of each arm's mean curve under one joint draw of seeds and episodes.

    Args:
        arms: arms with the same training seeds and the same episode keys (budgets may differ).
        n_boot: replicates R.
        seed: seeds the draw; the same seed gives the same draw for any set of arms.

    Returns:
        One (R, B_arm) array per arm, columns in the arm's sorted budgets; row r of every array
        comes from the same drawn seeds and episodes.
    """
    n_boot = check_n_boot(n_boot)
    seeds, keys = check_shared_design(arms)
    seed_weights, episode_weights = joint_weights(len(seeds), len(keys), n_boot, seed)
    return [replicate_means(arm.outcomes, seed_weights, episode_weights) for arm in arms]


def replicate_crossings(budgets: np.ndarray, curves: np.ndarray, threshold: float,
                        higher_is_better: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Demos-to-threshold of each replicate curve.

    Args:
        budgets: (B,) sorted unique budgets.
        curves: (R, B) replicate curves.

    Returns:
        (R,) demos, with the bound in place of a censored crossing (the largest budget when not
        reached, the smallest when at it already), and (R,) statuses.
    """
    sign = 1.0 if higher_is_better else -1.0
    log_budgets = np.log(budgets)
    demos = np.empty(len(curves))
    status = np.empty(len(curves), dtype=object)
    for r, curve in enumerate(sign * curves):
        crossing = crossing_of_sorted(budgets, log_budgets, curve, sign * threshold)
        demos[r], status[r] = crossing.demos_or_bound, crossing.status
    return demos, status.astype(str)


def arm_crossing(arm: ArmResults, threshold: float, higher_is_better: bool = True) -> Crossing:
    """`demos_to_threshold` of the arm's mean curve."""
    return demos_to_threshold(arm.budgets, arm.mean_curve(), threshold, higher_is_better)


@dataclass(frozen=True, eq=False)
class ArmCurve:
    """Per-budget mean over seeds with a 95 % percentile bootstrap interval; arrays are (B,).

    ``ci95_low``/``ci95_high`` are None below `MIN_SEEDS_FOR_INTERVAL` seeds.
    """

    name: str
    budgets: np.ndarray
    mean: np.ndarray
    ci95_low: np.ndarray | None
    ci95_high: np.ndarray | None
    n_seeds: int

    def to_dict(self) -> dict:
        ci = None if self.ci95_low is None else np.stack([self.ci95_low, self.ci95_high], 1).tolist()
        return {"budgets": [json_number(b) for b in self.budgets], "mean": self.mean.tolist(), "ci95": ci,
                "n_seeds": self.n_seeds}


def arm_curve(arm: ArmResults, n_boot: int = 2000, seed: int = 0) -> ArmCurve:
    """The arm's mean curve over sorted budgets and its joint-bootstrap 95 % interval."""
    n_boot = check_n_boot(n_boot)
    low = high = None
    if arm.n_seeds >= MIN_SEEDS_FOR_INTERVAL:
        (replicates,) = joint_replicate_curves([arm], n_boot, seed)
        low, high = np.percentile(replicates, [2.5, 97.5], axis=0)
    return ArmCurve(arm.name, arm.budgets, arm.mean_curve(), low, high, arm.n_seeds)


@dataclass(frozen=True)
class CrossingInterval:
    """A 95 % percentile interval of one arm's demos-to-threshold.

    Attributes:
        ci95: the interval over replicates (a censored replicate counts at its bound); None unless
            the point crossing is ``reached`` and there are at least `MIN_SEEDS_FOR_INTERVAL` seeds.
        censored_fraction: the fraction of replicates whose crossing is censored; 0.0 when no
            replicates were drawn (below `MIN_SEEDS_FOR_INTERVAL` seeds).
        n_seeds: the arm's training seeds.
    """

    ci95: tuple[float, float] | None
    censored_fraction: float
    n_seeds: int

    def to_dict(self) -> dict:
        return {"ci95": list(self.ci95) if self.ci95 is not None else None,
                "censored_fraction": self.censored_fraction, "n_seeds": self.n_seeds}


def crossing_interval(arm: ArmResults, threshold: float, higher_is_better: bool = True, n_boot: int = 2000,
                      seed: int = 0) -> CrossingInterval:
    """The bootstrap interval of `arm_crossing`: crossings of `joint_replicate_curves` replicates."""
    threshold = finite_number("threshold", threshold)
    n_boot = check_n_boot(n_boot)
    if arm.n_seeds < MIN_SEEDS_FOR_INTERVAL:
        return CrossingInterval(None, 0.0, arm.n_seeds)
    (curves,) = joint_replicate_curves([arm], n_boot, seed)
    demos, status = replicate_crossings(arm.budgets, curves, threshold, higher_is_better)
    ci = None
    if arm_crossing(arm, threshold, higher_is_better).status == "reached":
        low, high = np.percentile(demos, [2.5, 97.5])
        ci = (float(low), float(high))
    return CrossingInterval(ci, float(np.mean(status != "reached")), arm.n_seeds)
