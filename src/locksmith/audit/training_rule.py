"""The training rule of a transfer plan: one recipe every arm of a target trains with.

`TrainingRule` is the plan's ``training`` section; a target may override any of its fields
(``targets[i].training``), and then every arm on that target, ours and the peer's alike, trains
with the merged rule (`TransferPlan.training_for`).
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from locksmith.policy.adapters import RECIPES

MAX_EPISODES = 10_000  # evaluation episodes per slice
MAX_STEPS = 1_000_000  # training steps per run
MAX_BUDGET = 5_000  # demonstrations per run
MAX_BATCH = 8192  # samples per step


class Model(BaseModel):
    """Every plan section: unknown fields refused, frozen, no NaN or infinity."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def check_known(kind: str, name: str, names) -> str:
    if name not in names:
        raise ValueError(f"unknown {kind} {name!r}; known {kind}s: {', '.join(names)}")
    return name


class RecipeTraining(Model):
    """What one recipe trains with beyond the shared rule: its penalty and its LoRA size.

    ``weight`` is λ: L2-SP λ‖θ − θ*‖² toward the prior for ``full``, λ‖φ‖² on the trainable
    parameters for the other recipes; 0 turns the penalty off.
    """

    weight: float = Field(0.0, ge=0, le=1e6, allow_inf_nan=False)
    lora_rank: int = Field(8, ge=1, le=256)
    lora_alpha: float | None = Field(None, gt=0, le=1e4, allow_inf_nan=False)  # default 2 x rank

    @property
    def alpha(self) -> float:
        return float(self.lora_alpha if self.lora_alpha is not None else 2.0 * self.lora_rank)


class TrainingRule(Model):
    """The one training recipe every arm gets, ours and LeRobot's ACT alike.

    Steps follow the budget: ``steps = clip(steps_per_demo × demos, min_steps, max_steps)``.
    AdamW with ``weight_decay``, a linear warm-up over ``warmup_fraction`` of the steps (at most
    ``max_warmup_steps``), then the ``schedule``, gradient clipping at ``grad_clip`` (0: none).
    The learning rate is chosen per arm from ONE grid ``lr`` (a number or a list) on validation
    episodes: each arm trains at ``tune_budget`` demos (default: the median budget) with the
    plan's first seed once per candidate, and the candidate with the better validation metric
    (``tune_episodes`` episodes from the validation seeds) is used at every budget and seed.
    The evaluation seeds never enter the choice. ``checkpoint_fractions``: fractions of the steps
    at which each run is also evaluated, so that time to threshold is measured along training.
    """

    steps_per_demo: float = Field(40.0, gt=0, le=1e5, allow_inf_nan=False)
    min_steps: int = Field(300, ge=1, le=MAX_STEPS)
    max_steps: int = Field(2000, ge=1, le=MAX_STEPS)
    batch_size: int = Field(128, ge=1, le=MAX_BATCH)
    lr: tuple[Annotated[float, Field(allow_inf_nan=True)], ...] = (1e-3,)  # non-finite: refused by _lr, by value
    warmup_fraction: float = Field(0.1, ge=0, lt=1)
    max_warmup_steps: int = Field(100, ge=0, le=MAX_STEPS)
    schedule: Literal["cosine", "constant"] = "cosine"
    grad_clip: float = Field(1.0, ge=0, le=1e6, allow_inf_nan=False)
    weight_decay: float = Field(1e-4, ge=0, le=10, allow_inf_nan=False)
    recipes: dict[str, RecipeTraining] = {}
    tune_budget: int | None = Field(None, ge=1, le=MAX_BUDGET)
    tune_episodes: int = Field(50, ge=1, le=MAX_EPISODES)
    checkpoint_fractions: tuple[float, ...] = (0.5,)

    @field_validator("lr", mode="before")
    @classmethod
    def _lr_grid(cls, v: object) -> object:
        return (v,) if isinstance(v, (int, float)) and not isinstance(v, bool) else v

    @field_validator("lr")
    @classmethod
    def _lr(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if not v:
            raise ValueError("the learning-rate grid is empty")
        if len(v) > 8:
            raise ValueError(f"at most 8 learning rates in the grid, got {len(v)}")
        for lr in v:
            if not (math.isfinite(lr) and 0 < lr <= 1):
                raise ValueError(f"learning rate {lr} must be in (0, 1]")
        return tuple(sorted(set(v)))

    @field_validator("recipes")
    @classmethod
    def _recipes(cls, v: dict[str, RecipeTraining]) -> dict[str, RecipeTraining]:
        for name in v:
            check_known("recipe", name, RECIPES)
        return v

    @field_validator("checkpoint_fractions")
    @classmethod
    def _fractions(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        for f in v:
            if not (math.isfinite(f) and 0 < f < 1):
                raise ValueError(f"checkpoint fraction {f} must be in (0, 1) (the final policy is always evaluated)")
        if len(v) > 8:
            raise ValueError(f"at most 8 checkpoint fractions, got {len(v)}")
        return tuple(sorted(set(v)))

    @model_validator(mode="after")
    def _ordered(self) -> TrainingRule:
        if self.min_steps > self.max_steps:
            raise ValueError(f"min_steps={self.min_steps} > max_steps={self.max_steps}")
        return self

    def steps(self, demos: int) -> int:
        return int(min(self.max_steps, max(self.min_steps, round(self.steps_per_demo * demos))))

    def warmup_steps(self, steps: int) -> int:
        return int(min(self.max_warmup_steps, max(1, round(self.warmup_fraction * steps)))
                   if self.warmup_fraction > 0 else 0)

    def checkpoint_steps(self, steps: int) -> tuple[int, ...]:
        """The steps below ``steps`` at which a run is also evaluated (the final step always is)."""
        return tuple(sorted({k for f in self.checkpoint_fractions if 0 < (k := int(round(f * steps))) < steps}))

    def recipe(self, name: str) -> RecipeTraining:
        """The recipe's own settings (defaults when the plan names none)."""
        return self.recipes.get(name, RecipeTraining())
