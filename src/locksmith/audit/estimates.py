"""What the statistics estimated, as validated records (one per `locksmith.audit.stats` result).

Each record mirrors a ``to_dict()`` of `stats` (`Crossing`, `ArmCurve` with `CrossingInterval`,
`Gain`, a `negative_transfer` row, `StrongerArm`) and refuses the states `stats` cannot produce:
an interval from fewer than ``MIN_SEEDS_FOR_INTERVAL`` seeds, an exact gain without a value, a
"significant" negative transfer without an interval. `locksmith.audit.schema` assembles them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator

from locksmith.audit.stats import MIN_SEEDS_FOR_INTERVAL

CrossingStatus = Literal["reached", "at_or_below_min", "not_reached"]
Interval = tuple[float, float]


class Record(BaseModel):
    """Every audit record: frozen, no unknown fields, no NaN or infinity (audit.json is plain JSON)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def short_number(x: float | None) -> str:
    """3 significant digits, thousands separated from 1,000 on; ``n/a`` for None."""
    if x is None:
        return "n/a"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.3g}"


def no_interval(n_seeds: int) -> str:
    return f"no interval ({n_seeds} seed{'s' if n_seeds != 1 else ''})"


def _check_interval(where: str, ci: Interval | None, n_seeds: int) -> None:
    if ci is not None and n_seeds < MIN_SEEDS_FOR_INTERVAL:
        raise ValueError(f"{where}: an interval from {n_seeds} seeds (needs {MIN_SEEDS_FOR_INTERVAL})")
    if ci is not None and ci[0] > ci[1]:
        raise ValueError(f"{where}: interval {list(ci)} has its ends swapped")


class CrossingRecord(Record):
    """Where a mean curve first reaches the threshold (`stats.Crossing.to_dict`).

    ``demos`` holds seconds when the crossing is along training time (`stats.time_to_threshold`).
    """

    demos: float | None
    status: CrossingStatus
    lower_bound: float | None = None
    upper_bound: float | None = None

    @model_validator(mode="after")
    def _consistent(self) -> CrossingRecord:
        ok = {"reached": self.demos is not None,
              "not_reached": self.demos is None and self.lower_bound is not None,
              "at_or_below_min": self.upper_bound is not None}[self.status]
        if not ok:
            raise ValueError(f"crossing {self.status!r} with demos={self.demos}, lower_bound={self.lower_bound}, "
                             f"upper_bound={self.upper_bound}")
        return self

    def text(self) -> str:
        """``23.4``, ``≤ 5`` (already there at the smallest budget), ``> 50`` (not reached)."""
        if self.status == "not_reached":
            return f"> {short_number(self.lower_bound)}"
        if self.status == "at_or_below_min":
            return f"≤ {short_number(self.upper_bound)}"
        return short_number(self.demos)


class ArmCrossingRecord(CrossingRecord):
    """An arm's demos to threshold with its bootstrap interval (`stats.crossing_interval`)."""

    ci95: Interval | None
    censored_fraction: float | None
    n_seeds: int

    @model_validator(mode="after")
    def _interval(self) -> ArmCrossingRecord:
        _check_interval("demos to threshold", self.ci95, self.n_seeds)
        return self

    def interval_text(self) -> str:
        """``[36, 50] (3 seeds)``, with the share of censored draws; why there is none otherwise."""
        if self.n_seeds < MIN_SEEDS_FOR_INTERVAL:
            return no_interval(self.n_seeds)
        if self.ci95 is None:
            where = "not reached" if self.status == "not_reached" else "already at the smallest budget"
            return f"none: {where} ({self.n_seeds} seeds)"
        share = 100 * (self.censored_fraction or 0.0)
        censored = "" if share == 0 else f"; {share:.0f}% of draws censored" if share >= 1 else \
            "; <1% of draws censored"
        return f"[{short_number(self.ci95[0])}, {short_number(self.ci95[1])}] ({self.n_seeds} seeds{censored})"


class CurveRecord(Record):
    """Mean over seeds per budget with its 95% interval (`stats.arm_curve`); all (B,)."""

    budgets: tuple[int, ...]
    mean: tuple[float, ...]
    ci95: tuple[Interval, ...] | None
    n_seeds: int

    @model_validator(mode="after")
    def _aligned(self) -> CurveRecord:
        if len(self.mean) != len(self.budgets) or (self.ci95 is not None and len(self.ci95) != len(self.budgets)):
            raise ValueError(f"curve: {len(self.budgets)} budgets, {len(self.mean)} means, "
                             f"{None if self.ci95 is None else len(self.ci95)} intervals")
        if list(self.budgets) != sorted(set(self.budgets)):
            raise ValueError(f"curve: budgets {list(self.budgets)} are not sorted and unique")
        for ci in self.ci95 or ():
            _check_interval("curve", ci, self.n_seeds)
        return self

    def at(self, budget: int) -> tuple[float, Interval | None] | None:
        """(mean, interval) at ``budget``; None when this arm did not run it."""
        if budget not in self.budgets:
            return None
        i = self.budgets.index(budget)
        return self.mean[i], None if self.ci95 is None else self.ci95[i]


class GainRecord(Record):
    """One gain (`stats.Gain.to_dict`) and the two arms it compares.

    ``kind``: ``exact``, ``lower_bound`` (the true gain is larger), ``upper_bound`` (smaller) or
    ``undefined`` (``value`` None). ``ci95`` only for an exact gain, ``confidence_bound`` only for
    a bound, each from at least ``MIN_SEEDS_FOR_INTERVAL`` seeds. ``extra_seconds`` is what was
    added to the adapted arm's training time (its share of pretraining) for the amortized gain.
    """

    baseline_arm: str
    adapted_arm: str
    value: float | None
    kind: Literal["exact", "lower_bound", "upper_bound", "undefined"]
    ci95: Interval | None
    confidence_bound: float | None
    n_seeds: int
    text: str
    quantity: Literal["demos", "seconds"]
    baseline_cost: float | None
    adapted_cost: float | None
    baseline: CrossingRecord
    adapted: CrossingRecord
    ci_censored_fraction: float | None
    n_boot: int
    threshold: float
    higher_is_better: bool
    extra_seconds: float = 0.0

    @model_validator(mode="after")
    def _consistent(self) -> GainRecord:
        where = f"gain {self.adapted_arm} vs {self.baseline_arm}"
        if (self.value is None) != (self.kind == "undefined"):
            raise ValueError(f"{where}: kind {self.kind!r} with value {self.value}")
        if self.ci95 is not None and self.kind != "exact":
            raise ValueError(f"{where}: an interval on a {self.kind} gain")
        if self.confidence_bound is not None and self.kind not in ("lower_bound", "upper_bound"):
            raise ValueError(f"{where}: a confidence bound on a {self.kind} gain")
        _check_interval(where, self.ci95, self.n_seeds)
        if self.confidence_bound is not None and self.n_seeds < MIN_SEEDS_FOR_INTERVAL:
            raise ValueError(f"{where}: a confidence bound from {self.n_seeds} seeds")
        return self

    @property
    def lower_end(self) -> float | None:
        """The interval's lower end: ci95[0] (exact) or the lower confidence bound (lower bound)."""
        if self.kind == "exact" and self.ci95 is not None:
            return self.ci95[0]
        return self.confidence_bound if self.kind == "lower_bound" else None


class NegativeTransferRecord(Record):
    """One adapted arm against the baseline at one budget (`stats.negative_transfer`).

    ``below``: the adapted mean is on the worse side; ``significant``: below and the difference's
    95% interval excludes zero (only with an interval, i.e. enough seeds).
    """

    arm: str
    versus: str
    budget: int
    baseline_mean: float
    adapted_mean: float
    difference: float  # adapted - baseline
    ci95: Interval | None
    n_seeds: int
    below: bool
    significant: bool

    @model_validator(mode="after")
    def _significant_needs_interval(self) -> NegativeTransferRecord:
        _check_interval(f"negative transfer {self.arm} at {self.budget}", self.ci95, self.n_seeds)
        if self.significant and (self.ci95 is None or not self.below):
            raise ValueError(f"negative transfer {self.arm} at {self.budget}: significant without an interval "
                             "or without being below the baseline")
        return self


class BaselineRecord(Record):
    """The stronger from-scratch arm (`stats.stronger_arm`) and why it won."""

    name: str
    reason: Literal["fewer_demos", "area_under_curve", "tie"]
    areas: dict[str, float]
    crossings: dict[str, CrossingRecord]
