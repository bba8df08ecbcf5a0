"""The statistics of the transfer audit: how many demos each arm needs, and what the prior saves.

One *arm* (a training recipe: ``scratch``, ``lora``, ``act``, ...) on one target robot is run at
several demo budgets and seeds; each (budget, seed) run gives per-episode outcomes (0/1 successes,
higher is better) or one scalar metric (e.g. offline action error, lower is better):

    curve(n)            mean over seeds of each run's mean outcome at budget n
    demos_to_threshold  isotonic fit of the curve against log(n), then linear interpolation in
                        log(n) of where the fit first reaches the threshold
    gain                scratch demos-to-threshold / adapted demos-to-threshold

A crossing outside the budget range is *censored*, and the gain then is a bound, never a plain
number: scratch not reaching the threshold within its largest budget N means it needs > N demos
(the gain is a lower bound); an arm at the threshold already at its smallest budget n0 needs <= n0
(a lower bound when it is the adapted arm, an upper bound when it is scratch).

Uncertainty is a two-level bootstrap: seeds are resampled with replacement and, inside each drawn
(budget, seed), its episodes are resampled with replacement (scalar metrics: seeds only). With
``same_seeds_at_every_budget`` (the sweep's layout: seed s trains at every budget on nested demo
subsets) one draw of seeds is shared by all budgets, which keeps the correlation between budgets.
A replicate whose crossing is censored uses the bound in its place, and the result says in what
fraction of replicates that happened.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy.optimize import isotonic_regression


CrossingStatus = Literal["reached", "at_or_below_min", "not_reached"]
REACH_TOLERANCE = 1e-9  # relative: a fitted value this close to the threshold has reached it


def _finite_number(name: str, value: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a finite number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return number


def _check_n_boot(n_boot: int) -> int:
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot!r}")
    return int(n_boot)


def _json_number(x: float | None) -> int | float | None:
    if x is None:
        return None
    return int(x) if float(x).is_integer() else float(x)


def isotonic_fit(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray,
                 weights: Sequence[float] | np.ndarray | None = None, increasing: bool = True) -> np.ndarray:
    """Least-squares monotone fit of ``y`` against ``x`` (pool-adjacent-violators, scipy's).

    Points with equal ``x`` are pooled to their weighted mean first, so they get one fitted value.

    Args:
        x: (N,) positions; any order.
        y: (N,) observations.
        weights: (N,) positive weights; None for all ones.
        increasing: fit a non-decreasing (True) or non-increasing (False) function of ``x``.

    Returns:
        (N,) fitted values, in the order of the inputs.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"x must be a non-empty 1-D sequence, got shape {x.shape}")
    if y.shape != x.shape:
        raise ValueError(f"y must have one entry per x: got shape {y.shape} for x of shape {x.shape}")
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float)
    if w.shape != x.shape:
        raise ValueError(f"weights must have one entry per x: got shape {w.shape} for x of shape {x.shape}")
    for name, arr in (("x", x), ("y", y), ("weights", w)):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must be finite, got {arr.tolist()}")
    if np.any(w <= 0):
        raise ValueError(f"weights must be positive, got {w.tolist()}")
    unique_x, inverse = np.unique(x, return_inverse=True)  # sorted
    pooled_w = np.bincount(inverse, weights=w)
    pooled_y = np.bincount(inverse, weights=w * y) / pooled_w
    fitted = isotonic_regression(pooled_y, weights=pooled_w, increasing=increasing).x
    return np.asarray(fitted)[inverse]


@dataclass(frozen=True)
class Crossing:
    """Where a monotone fit of the curve first reaches the threshold.

    Attributes:
        demos: the interpolated number of demos (``reached``); the smallest budget, an upper bound
            on the true value (``at_or_below_min``); None (``not_reached``).
        status: ``reached`` (inside the budget range), ``at_or_below_min`` (already at the threshold
            at the smallest budget) or ``not_reached`` (not within the largest budget).
        lower_bound: the largest budget when ``not_reached`` (the true value is above it), else None.
        upper_bound: the smallest budget when ``at_or_below_min``, else None.
    """

    demos: float | None
    status: CrossingStatus
    lower_bound: float | None = None
    upper_bound: float | None = None

    @property
    def censored(self) -> bool:
        return self.status != "reached"

    @property
    def demos_or_bound(self) -> float:
        """The demos, or the bound in their place when not reached (censored at the bound)."""
        return self.demos if self.demos is not None else self.lower_bound

    def to_dict(self) -> dict:
        return {"demos": _json_number(self.demos), "status": self.status,
                "lower_bound": _json_number(self.lower_bound), "upper_bound": _json_number(self.upper_bound)}


def _crossing_of_sorted(budgets: np.ndarray, log_budgets: np.ndarray, curve: np.ndarray, threshold: float,
                        weights: np.ndarray | None = None) -> Crossing:
    """`demos_to_threshold` on sorted unique budgets, higher is better; no validation (hot loop)."""
    fit = isotonic_regression(curve, weights=weights, increasing=True).x if curve.size > 1 else curve
    # "at the threshold" up to rounding: a mean of 0.5s pooled by the fit may come out an ulp below 0.5
    reached = fit >= threshold - REACH_TOLERANCE * max(1.0, abs(threshold))
    if reached[0]:
        return Crossing(float(budgets[0]), "at_or_below_min", upper_bound=float(budgets[0]))
    above = np.nonzero(reached)[0]
    if above.size == 0:
        return Crossing(None, "not_reached", lower_bound=float(budgets[-1]))
    i = int(above[0])  # fit[i-1] < threshold - tolerance <= fit[i], so fit[i] > fit[i-1]
    fraction = min(1.0, (threshold - fit[i - 1]) / (fit[i] - fit[i - 1]))
    log_demos = log_budgets[i - 1] + fraction * (log_budgets[i] - log_budgets[i - 1])
    demos = float(np.clip(np.exp(log_demos), budgets[i - 1], budgets[i]))  # exp(log 50) is 50.000000000000014
    return Crossing(demos, "reached")


def _check_budgets(budgets: Sequence[float] | np.ndarray, name: str = "budgets") -> np.ndarray:
    try:
        b = np.asarray(budgets, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be numbers of demos, got {budgets!r}") from None
    if b.ndim != 1 or b.size == 0:
        raise ValueError(f"{name} must hold at least one budget (a 1-D sequence), got shape {b.shape}")
    if not np.all(np.isfinite(b)) or np.any(b < 1):
        raise ValueError(f"{name} must be finite numbers of demos, each at least 1, got {b.tolist()}")
    return b


def demos_to_threshold(budgets: Sequence[float] | np.ndarray, values: Sequence[float] | np.ndarray,
                       threshold: float, higher_is_better: bool = True) -> Crossing:
    """Demos at which the monotone fit of ``values`` against log(``budgets``) first reaches ``threshold``.

    Args:
        budgets: (N,) demo budgets, each at least 1; any order; repeats are pooled to their mean
            and weigh as many points in the fit.
        values: (N,) the metric at each budget (e.g. mean success over seeds).
        threshold: the level to reach: ``>= threshold`` when higher is better, ``<=`` otherwise.
        higher_is_better: True for success rates, False for errors.

    Returns:
        The `Crossing`; censored (a bound) when the fit is outside the threshold at either end.
    """
    b = _check_budgets(budgets)
    v = np.asarray(values, dtype=float)
    if v.shape != b.shape:
        raise ValueError(f"values must have one entry per budget: got {v.size} values for {b.size} budgets")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"values must be finite, got {v.tolist()}")
    threshold = _finite_number("threshold", threshold)
    sign = 1.0 if higher_is_better else -1.0  # lower-is-better is higher-is-better of the negation
    unique_b, inverse = np.unique(b, return_inverse=True)
    counts = np.bincount(inverse).astype(float)  # a repeated budget weighs as its repeats
    pooled = np.bincount(inverse, weights=sign * v) / counts
    return _crossing_of_sorted(unique_b, np.log(unique_b), pooled, sign * threshold, counts)


@dataclass(frozen=True, eq=False)
class ArmResults:
    """One arm's results on one target: budget → one entry per seed.

    An entry is a run's per-episode outcomes, (E,) with E >= 1 and E free to differ between runs,
    or a run's scalar metric; all entries of one arm are of the same kind.

    Attributes:
        name: the arm (``scratch``, ``lora``, ...).
        runs: budget (demos, at least 1) → per-seed entries (at least one).
        train_seconds: optional budget → per-seed training seconds (same budgets and seed counts).
        same_seeds_at_every_budget: entry i is the same seed at every budget, so the bootstrap draws
            one set of seeds for all budgets (needs equal seed counts); False draws per budget.
    """

    name: str
    runs: Mapping[float, Sequence[float | Sequence[float] | np.ndarray]]
    train_seconds: Mapping[float, Sequence[float]] | None = None
    same_seeds_at_every_budget: bool = True
    kind: Literal["episodes", "scalar"] = field(init=False)

    def __post_init__(self) -> None:
        where = f"ArmResults {self.name!r}"
        if not isinstance(self.runs, Mapping) or len(self.runs) == 0:
            raise ValueError(f"{where}: runs must map at least one budget to its per-seed results")
        _check_budgets(list(self.runs), name=f"{where}: runs budgets")
        runs: dict[float, tuple[np.ndarray, ...]] = {}
        kinds = set()
        for budget in sorted(self.runs):
            entries = self.runs[budget]
            if isinstance(entries, (str, bytes)) or not isinstance(entries, Sequence) or len(entries) == 0:
                raise ValueError(f"{where}: runs[{budget}] must be a non-empty list over seeds, got {entries!r}")
            arrays = tuple(np.asarray(e, dtype=float) for e in entries)
            for seed, a in enumerate(arrays):
                if a.ndim > 1 or a.size == 0 or not np.all(np.isfinite(a)):
                    raise ValueError(f"{where}: runs[{budget}][{seed}] must be a finite scalar or a non-empty "
                                     f"1-D array of episode outcomes, got {entries[seed]!r}")
                kinds.add("scalar" if a.ndim == 0 else "episodes")
            runs[budget] = arrays
        if len(kinds) > 1:
            raise ValueError(f"{where}: runs mix scalar metrics and per-episode outcomes; use one kind")
        counts = {b: len(e) for b, e in runs.items()}
        if self.same_seeds_at_every_budget and len(set(counts.values())) > 1:
            raise ValueError(f"{where}: same_seeds_at_every_budget needs the same number of seeds at every "
                             f"budget, got {counts}; pass same_seeds_at_every_budget=False")
        if self.train_seconds is not None:
            seconds = {b: np.asarray(s, dtype=float) for b, s in self.train_seconds.items()}
            if set(seconds) != set(runs):
                raise ValueError(f"{where}: train_seconds budgets {sorted(seconds)} differ from runs "
                                 f"budgets {sorted(runs)}")
            for b, s in seconds.items():
                if s.shape != (counts[b],) or not np.all(np.isfinite(s)) or np.any(s <= 0):
                    raise ValueError(f"{where}: train_seconds[{b}] must be {counts[b]} positive seconds "
                                     f"(one per seed), got {s.tolist()}")
            object.__setattr__(self, "train_seconds", {b: seconds[b] for b in sorted(seconds)})
        object.__setattr__(self, "runs", runs)
        object.__setattr__(self, "kind", kinds.pop())

    @classmethod
    def from_success_counts(cls, name: str, counts: Mapping[float, Sequence[tuple[int, int]]],
                            **kwargs) -> ArmResults:
        """Build from (successes, episodes) per (budget, seed), as the sweep's results record them."""
        runs = {}
        for budget, per_seed in counts.items():
            runs[budget] = []
            for successes, episodes in per_seed:
                if not 0 <= successes <= episodes or episodes < 1:
                    raise ValueError(f"ArmResults {name!r}: counts[{budget}] needs 0 <= successes <= episodes "
                                     f"and episodes >= 1, got ({successes}, {episodes})")
                runs[budget].append(np.r_[np.ones(successes), np.zeros(episodes - successes)])
        return cls(name, runs, **kwargs)

    @property
    def budgets(self) -> np.ndarray:
        """(B,) sorted budgets."""
        return np.array(list(self.runs), dtype=float)

    def run_means(self, budget: float) -> np.ndarray:
        """(S,) each seed's mean outcome (or scalar) at ``budget``."""
        return np.array([a.mean() for a in self.runs[budget]])

    def mean_curve(self) -> np.ndarray:
        """(B,) mean over seeds of the run means, per sorted budget (each seed weighs the same)."""
        return np.array([self.run_means(b).mean() for b in self.runs])

    def mean_train_seconds(self) -> np.ndarray:
        if self.train_seconds is None:
            raise ValueError(f"ArmResults {self.name!r} has no train_seconds; wall-clock needs them")
        return np.array([s.mean() for s in self.train_seconds.values()])


def _replicate_curves(arm: ArmResults, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, B) bootstrap replicates of the mean curve (two-level: seeds, then episodes)."""
    n_seeds = len(next(iter(arm.runs.values())))
    shared = rng.integers(0, n_seeds, size=(n_boot, n_seeds)) if arm.same_seeds_at_every_budget else None
    curves = np.empty((n_boot, len(arm.runs)))
    for column, runs in enumerate(arm.runs.values()):
        draw = shared if shared is not None else rng.integers(0, len(runs), size=(n_boot, len(runs)))  # (R, S)
        if arm.kind == "scalar":
            curves[:, column] = np.array([float(a) for a in runs])[draw].mean(axis=1)
            continue
        slot_means = np.empty(draw.shape)  # every drawn slot resamples its episodes afresh
        for seed, episodes in enumerate(runs):
            mask = draw == seed
            n_slots = int(mask.sum())
            if n_slots:
                picks = rng.integers(0, episodes.size, size=(n_slots, episodes.size))
                slot_means[mask] = episodes[picks].mean(axis=1)
        curves[:, column] = slot_means.mean(axis=1)
    return curves


@dataclass(frozen=True, eq=False)
class ArmCurve:
    """Per-budget mean over seeds with a 95 % percentile bootstrap interval; arrays are (B,)."""

    name: str
    budgets: np.ndarray
    mean: np.ndarray
    ci95_low: np.ndarray
    ci95_high: np.ndarray
    n_seeds: tuple[int, ...]

    def to_dict(self) -> dict:
        return {"name": self.name, "budgets": [_json_number(b) for b in self.budgets],
                "mean": self.mean.tolist(), "ci95": np.stack([self.ci95_low, self.ci95_high], 1).tolist(),
                "n_seeds": list(self.n_seeds)}


def arm_curve(arm: ArmResults, n_boot: int = 2000, seed: int = 0) -> ArmCurve:
    """The arm's mean curve over sorted budgets and its two-level bootstrap 95 % interval."""
    n_boot = _check_n_boot(n_boot)
    replicates = _replicate_curves(arm, n_boot, np.random.default_rng(seed))
    low, high = np.percentile(replicates, [2.5, 97.5], axis=0)
    return ArmCurve(arm.name, arm.budgets, arm.mean_curve(), low, high, tuple(len(r) for r in arm.runs.values()))


@dataclass(frozen=True, eq=False)
class CrossingReplicates:
    """Bootstrap replicates of one arm's crossing: (R,) demos (censored at the bound) and statuses."""

    demos: np.ndarray
    status: np.ndarray

    @property
    def censored_fraction(self) -> float:
        return float(np.mean(self.status != "reached"))


def bootstrap_demos_to_threshold(arm: ArmResults, threshold: float, n_boot: int, rng: np.random.Generator,
                                 higher_is_better: bool = True) -> CrossingReplicates:
    """Demos-to-threshold recomputed on ``n_boot`` two-level bootstrap replicates of ``arm``.

    A replicate that does not reach the threshold gets the largest budget (a lower bound), one at it
    at the smallest budget gets the smallest budget (an upper bound); ``status`` tells them apart.
    """
    n_boot = _check_n_boot(n_boot)
    threshold = _finite_number("threshold", threshold)
    sign = 1.0 if higher_is_better else -1.0
    budgets = arm.budgets
    log_budgets = np.log(budgets)
    curves = sign * _replicate_curves(arm, n_boot, rng)
    demos = np.empty(n_boot)
    status = np.empty(n_boot, dtype=object)
    for r in range(n_boot):
        crossing = _crossing_of_sorted(budgets, log_budgets, curves[r], sign * threshold)
        demos[r], status[r] = crossing.demos_or_bound, crossing.status
    return CrossingReplicates(demos, status.astype(str))


def arm_crossing(arm: ArmResults, threshold: float, higher_is_better: bool = True) -> Crossing:
    """`demos_to_threshold` of the arm's mean curve."""
    return demos_to_threshold(arm.budgets, arm.mean_curve(), threshold, higher_is_better)


@dataclass(frozen=True)
class Gain:
    """What the prior saves: scratch's cost to reach the threshold over the adapted arm's.

    Attributes:
        value: the ratio from the full data; a bound when ``is_lower_bound``/``is_upper_bound``;
            None when undefined (neither arm reached, or both were at it at their smallest budget).
        ci95: 95 % percentile interval over paired bootstrap replicates (a replicate with a censored
            crossing uses the bound in its place), None when ``value`` is None.
        text: e.g. ``"8.2x [6.1, 10.4]"``, ``"> 12.0x [...] (scratch did not reach ...)"``.
        quantity: ``"demos"`` or ``"wall-clock seconds"``; ``scratch_cost``/``adapted_cost`` are
            each arm's amount of it at its crossing (or at the bound).
        ci_censored_fraction: the fraction of replicates with at least one censored crossing.
    """

    value: float | None
    ci95: tuple[float, float] | None
    is_lower_bound: bool
    is_upper_bound: bool
    text: str
    scratch: Crossing
    adapted: Crossing
    n_boot: int
    threshold: float
    higher_is_better: bool
    quantity: str = "demos"
    scratch_cost: float | None = None
    adapted_cost: float | None = None
    ci_censored_fraction: float = 0.0

    def to_dict(self) -> dict:
        return {"value": self.value, "ci95": list(self.ci95) if self.ci95 is not None else None,
                "is_lower_bound": self.is_lower_bound, "is_upper_bound": self.is_upper_bound,
                "text": self.text, "quantity": self.quantity, "threshold": self.threshold,
                "higher_is_better": self.higher_is_better, "n_boot": self.n_boot,
                "ci_censored_fraction": self.ci_censored_fraction,
                "scratch_cost": self.scratch_cost, "adapted_cost": self.adapted_cost,
                "scratch": self.scratch.to_dict(), "adapted": self.adapted.to_dict()}


def _format_ratio(x: float) -> str:
    return f"{x:.0f}" if x >= 1000 else f"{x:.1f}" if x >= 1 else f"{x:.2g}"


def _gain_direction(scratch: Crossing, adapted: Crossing) -> Literal["exact", "lower", "upper", "undefined"]:
    """Which bound scratch/adapted is: scratch > N or adapted <= n0 push it up (a lower bound)."""
    lower = scratch.status == "not_reached" or adapted.status == "at_or_below_min"
    upper = scratch.status == "at_or_below_min" or adapted.status == "not_reached"
    return "undefined" if lower and upper else "lower" if lower else "upper" if upper else "exact"


def _ratio_gain(scratch: Crossing, adapted: Crossing, scratch_cost: float, adapted_cost: float,
                replicate_ratios: np.ndarray, replicate_censored: np.ndarray, n_boot: int, threshold: float,
                higher_is_better: bool, quantity: str) -> Gain:
    direction = _gain_direction(scratch, adapted)
    common = dict(scratch=scratch, adapted=adapted, n_boot=n_boot, threshold=threshold,
                  higher_is_better=higher_is_better, quantity=quantity)
    if direction == "undefined":
        why = ("neither arm reached the threshold" if scratch.status == "not_reached"
               else "both arms were already at the threshold at their smallest budget")
        return Gain(None, None, False, False, f"n/a ({why})", **common)
    value = scratch_cost / adapted_cost
    lo, hi = (float(q) for q in np.percentile(replicate_ratios, [2.5, 97.5]))
    censored = float(np.mean(replicate_censored))
    body = f"{_format_ratio(value)}x [{_format_ratio(lo)}, {_format_ratio(hi)}]"
    notes = []
    if scratch.status == "not_reached":
        notes.append(f"scratch did not reach the threshold within {_json_number(scratch.lower_bound)} demos")
    if scratch.status == "at_or_below_min":
        notes.append(f"scratch was already at the threshold at {_json_number(scratch.upper_bound)} demos")
    if adapted.status == "not_reached":
        notes.append(f"adapted arm never reached the threshold within {_json_number(adapted.lower_bound)} demos")
    if adapted.status == "at_or_below_min":
        notes.append(f"adapted arm was already at the threshold at {_json_number(adapted.upper_bound)} demos")
    if direction == "exact" and censored > 0:
        notes.append(f"CI censored at the budget range in {100 * censored:.0f}% of replicates")
    prefix = {"exact": "", "lower": "> ", "upper": "< "}[direction]
    text = prefix + body + (f" ({'; '.join(notes)})" if notes else "")
    return Gain(float(value), (lo, hi), direction == "lower", direction == "upper", text,
                scratch_cost=float(scratch_cost), adapted_cost=float(adapted_cost),
                ci_censored_fraction=censored, **common)


def _gain_inputs(scratch: ArmResults, adapted: ArmResults, threshold: float, higher_is_better: bool,
                 n_boot: int, seed: int):
    threshold = _finite_number("threshold", threshold)
    n_boot = _check_n_boot(n_boot)
    rng = np.random.default_rng(seed)
    crossings = (arm_crossing(scratch, threshold, higher_is_better), arm_crossing(adapted, threshold, higher_is_better))
    replicates = tuple(bootstrap_demos_to_threshold(arm, threshold, n_boot, rng, higher_is_better)
                       for arm in (scratch, adapted))  # the two arms resampled independently
    censored = (replicates[0].status != "reached") | (replicates[1].status != "reached")
    return threshold, n_boot, crossings, replicates, censored


def adaptation_gain(scratch: ArmResults, adapted: ArmResults, threshold: float, higher_is_better: bool = True,
                    n_boot: int = 2000, seed: int = 0) -> Gain:
    """Scratch demos-to-threshold over the adapted arm's, with a paired-bootstrap 95 % interval."""
    threshold, n_boot, (s, a), (s_reps, a_reps), censored = _gain_inputs(
        scratch, adapted, threshold, higher_is_better, n_boot, seed)
    return _ratio_gain(s, a, s.demos_or_bound, a.demos_or_bound, s_reps.demos / a_reps.demos, censored,
                       n_boot, threshold, higher_is_better, "demos")


def _seconds_at(arm: ArmResults, demos: float | np.ndarray) -> np.ndarray:
    """Mean training seconds interpolated linearly in log-demos (inside the budget range)."""
    return np.interp(np.log(demos), np.log(arm.budgets), arm.mean_train_seconds())


def wallclock_gain(scratch: ArmResults, adapted: ArmResults, threshold: float, higher_is_better: bool = True,
                   extra_seconds: float = 0.0, n_boot: int = 2000, seed: int = 0) -> Gain:
    """The gain in training wall-clock: each arm's seconds at its own demos-to-threshold.

    Seconds (mean over seeds per budget) are interpolated linearly in log-demos at the crossing,
    or taken at the bound budget when censored. The seconds curve is held fixed in the bootstrap;
    only the crossings are resampled.

    Args:
        extra_seconds: added to the adapted arm's seconds (e.g. its share of the pretraining cost).
    """
    extra_seconds = _finite_number("extra_seconds", extra_seconds)
    if extra_seconds < 0:
        raise ValueError(f"extra_seconds must be >= 0, got {extra_seconds}")
    scratch.mean_train_seconds(), adapted.mean_train_seconds()  # both arms must have them
    threshold, n_boot, (s, a), (s_reps, a_reps), censored = _gain_inputs(
        scratch, adapted, threshold, higher_is_better, n_boot, seed)
    s_cost = float(_seconds_at(scratch, s.demos_or_bound))
    a_cost = float(_seconds_at(adapted, a.demos_or_bound)) + extra_seconds
    ratios = _seconds_at(scratch, s_reps.demos) / (_seconds_at(adapted, a_reps.demos) + extra_seconds)
    return _ratio_gain(s, a, s_cost, a_cost, ratios, censored, n_boot, threshold, higher_is_better,
                       "wall-clock seconds")


def negative_transfer(scratch: ArmResults, adapted: ArmResults, higher_is_better: bool = True,
                      n_boot: int = 2000, seed: int = 0) -> list[dict]:
    """Per shared budget, whether the adapted arm does worse than scratch.

    Returns:
        One dict per budget both arms ran, sorted: ``{"budget", "scratch_mean", "adapted_mean",
        "difference" (adapted - scratch), "ci95": [lo, hi] (bootstrap, arms resampled independently),
        "below": adapted on the worse side of scratch, "negative_transfer": below and the interval
        excludes zero}``. "Worse" is lower when higher is better, higher otherwise.
    """
    n_boot = _check_n_boot(n_boot)
    shared = sorted(set(scratch.runs) & set(adapted.runs))
    if not shared:
        raise ValueError(f"scratch budgets {sorted(scratch.runs)} and adapted budgets {sorted(adapted.runs)} "
                         "share none; negative transfer compares the same budget")
    rng = np.random.default_rng(seed)
    reps = [_replicate_curves(arm, n_boot, rng) for arm in (scratch, adapted)]
    columns = [[list(arm.runs).index(b) for b in shared] for arm in (scratch, adapted)]
    means = [arm.mean_curve()[c] for arm, c in zip((scratch, adapted), columns)]
    differences = reps[1][:, columns[1]] - reps[0][:, columns[0]]  # (R, B)
    low, high = np.percentile(differences, [2.5, 97.5], axis=0)
    rows = []
    for i, budget in enumerate(shared):
        difference = float(means[1][i] - means[0][i])
        below = difference < 0 if higher_is_better else difference > 0
        excludes_zero = high[i] < 0 if higher_is_better else low[i] > 0
        rows.append({"budget": _json_number(budget), "scratch_mean": float(means[0][i]),
                     "adapted_mean": float(means[1][i]), "difference": difference,
                     "ci95": [float(low[i]), float(high[i])], "below": bool(below),
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
    threshold = _finite_number("threshold", threshold)
    crossings = {name: arm_crossing(arm, threshold, higher_is_better) for name, arm in arms.items()}
    shared = sorted(set.intersection(*(set(arm.runs) for arm in arms.values())))
    if not shared:
        raise ValueError(f"arms share no budget: {({n: sorted(a.runs) for n, a in arms.items()})}")
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
