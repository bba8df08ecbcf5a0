"""What one arm measured, validated once: per-run outcomes on shared evaluation episodes.

Every run (arm, budget, training seed) is evaluated on the same evaluation episodes, named by
``episode_keys`` (e.g. ``"nominal/2000000003"``), so one run's outcomes are an (E,) array aligned
with the keys; a scalar metric (offline action error) is one number per run and has no keys.
Both containers hold their outcomes as one table, (X, S, E) or (X, S) for scalars, with X the
budgets (`ArmResults`) or the checkpoints (`CheckpointResults`) and S the sorted training seeds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from locksmith.audit.crossing import check_budgets

Outcome = float | Sequence[float] | np.ndarray


def _check_name(name: str, what: str) -> None:
    if not isinstance(name, str) or not name:
        raise ValueError(f"{what} name must be a non-empty string, got {name!r}")


def _check_episode_keys(keys: Sequence[str], where: str) -> tuple[str, ...]:
    if isinstance(keys, str) or not isinstance(keys, Sequence) or not all(isinstance(k, str) for k in keys):
        raise ValueError(f"{where}: episode_keys must be a sequence of strings, got {keys!r}")
    keys = tuple(keys)
    if len(set(keys)) != len(keys):
        repeated = sorted({k for k in keys if keys.count(k) > 1})
        raise ValueError(f"{where}: episode_keys must be unique, repeated: {repeated[:5]}")
    return keys


def _check_seed(seed: int, where: str) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"{where}: training seeds must be integers, got {seed!r}")
    return int(seed)


def _outcome(value: Outcome, n_episodes: int, where: str) -> np.ndarray:
    """One run's outcomes: (E,) aligned with the episode keys, or a 0-d scalar when E == 0."""
    try:
        a = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        a = None
    if n_episodes == 0:
        if a is None or a.ndim != 0 or not np.isfinite(a):
            raise ValueError(f"{where} must be one finite scalar (no episode_keys were given; per-episode "
                             f"outcomes need them), got {value!r}")
    elif a is None or a.shape != (n_episodes,) or not np.all(np.isfinite(a)):
        shape = None if a is None else a.shape
        raise ValueError(f"{where} must be {n_episodes} finite per-episode outcomes, one per episode key, "
                         f"got shape {shape}")
    return a


def outcome_table(entries: Mapping, episode_keys: tuple[str, ...], where: str,
                  key_label: str) -> tuple[tuple[int, ...], np.ndarray, dict]:
    """Validate ``{key: {seed: outcome}}`` (keys already sorted) into one table.

    Returns:
        The sorted seeds, the (X, S, E) or (X, S) table, and ``{key: {seed: outcome}}`` normalized.
    """
    seeds = None
    rows, normalized = [], {}
    for key, per_seed in entries.items():
        label = f"{where}: {key_label}[{key}]"
        if not isinstance(per_seed, Mapping) or len(per_seed) == 0:
            raise ValueError(f"{label} must map each training seed to its outcomes, got {per_seed!r}")
        these = tuple(sorted(_check_seed(s, label) for s in per_seed))
        if seeds is None:
            seeds = these
        elif these != seeds:
            raise ValueError(f"{label} has training seeds {list(these)}, but other entries have "
                             f"{list(seeds)}; every entry needs the same seeds")
        by_seed = {int(s): _outcome(v, len(episode_keys), f"{label}[{s}]") for s, v in per_seed.items()}
        normalized[key] = {s: by_seed[s] if episode_keys else float(by_seed[s]) for s in seeds}
        rows.append(np.stack([by_seed[s] for s in seeds]))
    table = np.stack(rows)
    table.flags.writeable = False
    return seeds, table, normalized


class _SeedTable:
    """What `ArmResults` and `CheckpointResults` share: sorted seeds and the outcome table."""

    episode_keys: tuple[str, ...]
    _seeds: tuple[int, ...]
    _table: np.ndarray

    @property
    def seeds(self) -> tuple[int, ...]:
        """(S,) sorted training seeds, the same in every cell."""
        return self._seeds

    @property
    def n_seeds(self) -> int:
        return len(self._seeds)

    @property
    def kind(self) -> Literal["episodes", "scalar"]:
        return "episodes" if self.episode_keys else "scalar"

    @property
    def outcomes(self) -> np.ndarray:
        """(cells, S, E) per-episode outcomes, or (cells, S) scalars; sorted; read-only."""
        return self._table


@dataclass(frozen=True, eq=False)
class ArmResults(_SeedTable):
    """One arm's results on one target: budget → training seed → outcomes.

    Attributes:
        name: the arm (``scratch``, ``lora``, ...).
        runs: budget (demos, at least 1) → {training seed → outcomes}: per-episode outcomes (E,)
            aligned with ``episode_keys``, or one scalar when there are no keys. Every budget has
            the same seeds (seed s trains at every budget, on nested demo subsets).
        episode_keys: (E,) the evaluation episodes every run was scored on; empty for scalars.
        train_seconds: optional budget → {training seed → training seconds}, same budgets and seeds.
    """

    name: str
    runs: Mapping[float, Mapping[int, Outcome]]
    episode_keys: tuple[str, ...] = ()
    train_seconds: Mapping[float, Mapping[int, float]] | None = None

    def __post_init__(self) -> None:
        _check_name(self.name, "ArmResults")
        where = f"ArmResults {self.name!r}"
        keys = _check_episode_keys(self.episode_keys, where)
        if not isinstance(self.runs, Mapping) or len(self.runs) == 0:
            raise ValueError(f"{where}: runs must map at least one budget to its per-seed outcomes")
        budgets = check_budgets(list(self.runs), name=f"{where}: runs budgets")
        if np.unique(budgets).size != budgets.size:
            raise ValueError(f"{where}: runs budgets repeat: {sorted(self.runs)}")
        ordered = {float(b): self.runs[b] for b in sorted(self.runs, key=float)}
        seeds, table, runs = outcome_table(ordered, keys, where, "runs")
        object.__setattr__(self, "episode_keys", keys)
        object.__setattr__(self, "runs", runs)
        object.__setattr__(self, "_seeds", seeds)
        object.__setattr__(self, "_table", table)
        if self.train_seconds is not None:
            seconds = {float(b): s for b, s in self.train_seconds.items()} \
                if isinstance(self.train_seconds, Mapping) else None
            if seconds is None or set(seconds) != set(runs):
                raise ValueError(f"{where}: train_seconds must map the runs budgets {list(runs)} to "
                                 f"per-seed seconds, got {self.train_seconds!r}")
            checked = {}
            for b in runs:
                per_seed = seconds[b]
                if not isinstance(per_seed, Mapping) or sorted(per_seed) != list(seeds):
                    raise ValueError(f"{where}: train_seconds[{b}] must map the seeds {list(seeds)} to seconds, "
                                     f"got {per_seed!r}")
                values = np.array([per_seed[s] for s in seeds], dtype=float)
                if not np.all(np.isfinite(values)) or np.any(values <= 0):
                    raise ValueError(f"{where}: train_seconds[{b}] must be positive seconds, got {values.tolist()}")
                checked[b] = dict(zip(seeds, values.tolist()))
            object.__setattr__(self, "train_seconds", checked)

    @property
    def budgets(self) -> np.ndarray:
        """(B,) sorted budgets."""
        return np.array(list(self.runs), dtype=float)

    def run_means(self, budget: float) -> np.ndarray:
        """(S,) each seed's mean outcome (or scalar) at ``budget``, in seed order."""
        if float(budget) not in self.runs:
            raise ValueError(f"ArmResults {self.name!r} has no budget {budget}; it has {list(self.runs)}")
        row = self._table[list(self.runs).index(float(budget))]
        return row.mean(axis=1) if row.ndim == 2 else row.copy()

    def mean_curve(self) -> np.ndarray:
        """(B,) mean over seeds of the run means, per sorted budget (each seed weighs the same)."""
        means = self._table.mean(axis=2) if self._table.ndim == 3 else self._table
        return means.mean(axis=1)

    def mean_train_seconds(self) -> np.ndarray:
        """(B,) mean over seeds of the training seconds, per sorted budget."""
        if self.train_seconds is None:
            raise ValueError(f"ArmResults {self.name!r} has no train_seconds")
        return np.array([np.mean(list(s.values())) for s in self.train_seconds.values()])


@dataclass(frozen=True, eq=False)
class CheckpointResults(_SeedTable):
    """One arm's checkpoints along training: (budget, step) → training seed → (seconds, outcomes).

    Attributes:
        name: the arm.
        cells: (budget, training step) → {training seed → (training seconds up to that checkpoint,
            outcomes)}; outcomes as in `ArmResults`. Every cell has the same seeds; seconds > 0.
        episode_keys: (E,) the evaluation episodes every checkpoint was scored on; empty for scalars.
    """

    name: str
    cells: Mapping[tuple[float, int], Mapping[int, tuple[float, Outcome]]]
    episode_keys: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_name(self.name, "CheckpointResults")
        where = f"CheckpointResults {self.name!r}"
        keys = _check_episode_keys(self.episode_keys, where)
        if not isinstance(self.cells, Mapping) or len(self.cells) == 0:
            raise ValueError(f"{where}: cells must map at least one (budget, step) to its per-seed results")
        cells, seconds = {}, {}
        for cell in self.cells:
            if not isinstance(cell, tuple) or len(cell) != 2 or isinstance(cell[1], bool) \
                    or not isinstance(cell[1], (int, np.integer)) or cell[1] < 0:
                raise ValueError(f"{where}: cells keys must be (budget, training step >= 0), got {cell!r}")
            budget = float(check_budgets([cell[0]], name=f"{where}: cells[{cell!r}] budget")[0])
            per_seed = self.cells[cell]
            if not isinstance(per_seed, Mapping):
                raise ValueError(f"{where}: cells[{cell!r}] must map training seeds to (seconds, outcomes)")
            pairs = {}
            for s, pair in per_seed.items():
                if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                    raise ValueError(f"{where}: cells[{cell!r}][{s}] must be (seconds, outcomes), got {pair!r}")
                pairs[s] = pair
            cells[(budget, int(cell[1]))] = {s: p[1] for s, p in pairs.items()}
            seconds[(budget, int(cell[1]))] = {s: p[0] for s, p in pairs.items()}
        if len(cells) != len(self.cells):
            raise ValueError(f"{where}: cells keys repeat: {sorted(self.cells)}")
        ordered = sorted(cells)
        seeds, table, outcomes = outcome_table({c: cells[c] for c in ordered}, keys, where, "cells")
        times = np.array([[seconds[c][s] for s in seeds] for c in ordered], dtype=float)  # (C, S)
        if not np.all(np.isfinite(times)) or np.any(times <= 0):
            bad = [c for c, row in zip(ordered, times) if not np.all(np.isfinite(row) & (row > 0))]
            raise ValueError(f"{where}: training seconds must be positive and finite; not so at cells {bad}")
        times.flags.writeable = False
        normalized = {c: {s: (float(seconds[c][s]), outcomes[c][s]) for s in seeds} for c in ordered}
        object.__setattr__(self, "episode_keys", keys)
        object.__setattr__(self, "cells", normalized)
        object.__setattr__(self, "_seeds", seeds)
        object.__setattr__(self, "_table", table)
        object.__setattr__(self, "_seconds", times)

    @property
    def cell_keys(self) -> list[tuple[float, int]]:
        """(C,) sorted (budget, step) keys."""
        return list(self.cells)

    @property
    def seconds(self) -> np.ndarray:
        """(C, S) training seconds up to each checkpoint; read-only."""
        return self._seconds

    def mean_outcomes(self) -> np.ndarray:
        """(C,) mean over seeds of each run's mean outcome (or scalar)."""
        means = self._table.mean(axis=2) if self._table.ndim == 3 else self._table
        return means.mean(axis=1)

    def mean_seconds(self) -> np.ndarray:
        """(C,) mean over seeds of the training seconds."""
        return self._seconds.mean(axis=1)
