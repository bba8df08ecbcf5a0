"""Where a learning curve reaches a threshold: isotonic fit on log demos, then interpolation.

The audit's overview of the method is the docstring of `locksmith.audit.stats`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.optimize import isotonic_regression

CrossingStatus = Literal["reached", "at_or_below_min", "not_reached"]
REACH_TOLERANCE = 1e-9  # relative: a fitted value this close to the threshold has reached it


def finite_number(name: str, value: float) -> float:
    """``value`` as a float, or a ValueError naming ``name``."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a finite number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return number


def check_n_boot(n_boot: int) -> int:
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot!r}")
    return int(n_boot)


def json_number(x: float | None) -> int | float | None:
    """A number as JSON shows it best: 50 rather than 50.0; None stays None."""
    if x is None:
        return None
    return int(x) if float(x).is_integer() else float(x)


def reach_margin(threshold: float) -> float:
    """How far below ``threshold`` a value may sit and still count as reaching it (rounding)."""
    return REACH_TOLERANCE * max(1.0, abs(threshold))


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
    """Where a curve first reaches the threshold (in demos; the wall-clock audit puts seconds here).

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
        return {"demos": json_number(self.demos), "status": self.status,
                "lower_bound": json_number(self.lower_bound), "upper_bound": json_number(self.upper_bound)}


def crossing_of_sorted(budgets: np.ndarray, log_budgets: np.ndarray, curve: np.ndarray, threshold: float,
                       weights: np.ndarray | None = None) -> Crossing:
    """`demos_to_threshold` on sorted unique budgets, higher is better; no validation (hot loop)."""
    fit = isotonic_regression(curve, weights=weights, increasing=True).x if curve.size > 1 else curve
    # "at the threshold" up to rounding: a mean of 0.5s pooled by the fit may come out an ulp below 0.5
    reached = fit >= threshold - reach_margin(threshold)
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


def check_budgets(budgets: Sequence[float] | np.ndarray, name: str = "budgets") -> np.ndarray:
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
    b = check_budgets(budgets)
    v = np.asarray(values, dtype=float)
    if v.shape != b.shape:
        raise ValueError(f"values must have one entry per budget: got {v.size} values for {b.size} budgets")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"values must be finite, got {v.tolist()}")
    threshold = finite_number("threshold", threshold)
    sign = 1.0 if higher_is_better else -1.0  # lower-is-better is higher-is-better of the negation
    unique_b, inverse = np.unique(b, return_inverse=True)
    counts = np.bincount(inverse).astype(float)  # a repeated budget weighs as its repeats
    pooled = np.bincount(inverse, weights=sign * v) / counts
    return crossing_of_sorted(unique_b, np.log(unique_b), pooled, sign * threshold, counts)
