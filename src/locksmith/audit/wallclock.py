"""The wall-clock gain: training seconds to the threshold, measured from checkpoints along training.

The audit's overview of the method is the docstring of `locksmith.audit.stats`.
"""

from __future__ import annotations

import numpy as np

from locksmith.audit.arms import CheckpointResults
from locksmith.audit.bootstrap import (
    MIN_SEEDS_FOR_INTERVAL,
    check_shared_design,
    joint_weights,
    replicate_means,
)
from locksmith.audit.crossing import Crossing, check_n_boot, finite_number, reach_margin
from locksmith.audit.gains import Gain, build_gain, gain_kind


def _time_crossings(seconds: np.ndarray, outcomes: np.ndarray, threshold: float,
                    higher_is_better: bool) -> tuple[np.ndarray, np.ndarray]:
    """Time to threshold of each row of (R, C) mean seconds and mean outcomes.

    Returns:
        (R,) seconds (the bound when censored) and (R,) statuses: ``reached``; ``at_or_below_min``
        when the cheapest checkpoint measured already reaches it (the time is at most that);
        ``not_reached`` with the most seconds measured (the time is more).
    """
    sign = 1.0 if higher_is_better else -1.0
    reached = sign * outcomes >= sign * threshold - reach_margin(threshold)  # (R, C)
    any_reached = reached.any(axis=1)
    first = np.where(reached, seconds, np.inf).min(axis=1)
    value = np.where(any_reached, first, seconds.max(axis=1))
    status = np.where(~any_reached, "not_reached",
                      np.where(first <= seconds.min(axis=1), "at_or_below_min", "reached"))
    return value, status


def _as_crossing(value: float, status: str) -> Crossing:
    if status == "not_reached":
        return Crossing(None, "not_reached", lower_bound=float(value))
    if status == "at_or_below_min":
        return Crossing(float(value), "at_or_below_min", upper_bound=float(value))
    return Crossing(float(value), "reached")


def time_to_threshold(cp: CheckpointResults, threshold: float, higher_is_better: bool = True) -> Crossing:
    """Training seconds until the arm first reaches the threshold, from its checkpoints.

    The smallest mean-over-seeds training seconds among checkpoints whose mean-over-seeds outcome
    reaches the threshold (no interpolation). The result is a `Crossing` whose ``demos`` holds
    seconds: ``reached``; ``at_or_below_min`` (upper_bound set) when that is the cheapest checkpoint
    measured; ``not_reached`` with lower_bound the most mean seconds measured.
    """
    threshold = finite_number("threshold", threshold)
    value, status = _time_crossings(cp.mean_seconds()[None], cp.mean_outcomes()[None], threshold, higher_is_better)
    return _as_crossing(value[0], status[0])


def wallclock_gain(baseline: CheckpointResults, adapted: CheckpointResults, threshold: float,
                   higher_is_better: bool = True, extra_seconds: float = 0.0, n_boot: int = 2000,
                   seed: int = 0) -> Gain:
    """Baseline seconds-to-threshold over the adapted arm's (plus ``extra_seconds``), paired bootstrap.

    Each replicate redraws seeds and episodes jointly for both arms and every checkpoint (the seed
    draw also averages the seconds), recomputes both `time_to_threshold` crossings and takes their
    ratio; censored replicates count at their bound.

    Args:
        extra_seconds: added to the adapted arm's seconds (its amortized share of pretraining);
            the ``adapted`` crossing of the result is without it, ``adapted_cost`` with it.
    """
    threshold = finite_number("threshold", threshold)
    n_boot = check_n_boot(n_boot)
    extra_seconds = finite_number("extra_seconds", extra_seconds)
    if extra_seconds < 0:
        raise ValueError(f"extra_seconds must be >= 0, got {extra_seconds}")
    seeds, keys = check_shared_design([baseline, adapted])
    b_cross, a_cross = (time_to_threshold(cp, threshold, higher_is_better) for cp in (baseline, adapted))
    replicates = None
    if len(seeds) >= MIN_SEEDS_FOR_INTERVAL and gain_kind(b_cross, a_cross) != "undefined":
        seed_weights, episode_weights = joint_weights(len(seeds), len(keys), n_boot, seed)
        (b_time, b_status), (a_time, a_status) = (
            _time_crossings(replicate_means(cp.seconds, seed_weights, None),
                            replicate_means(cp.outcomes, seed_weights, episode_weights), threshold, higher_is_better)
            for cp in (baseline, adapted))
        replicates = (b_time / (a_time + extra_seconds), (b_status != "reached") | (a_status != "reached"))
    return build_gain((baseline.name, adapted.name), b_cross, a_cross, b_cross.demos_or_bound,
                      a_cross.demos_or_bound + extra_seconds, len(seeds), replicates, threshold, higher_is_better,
                      "seconds")
