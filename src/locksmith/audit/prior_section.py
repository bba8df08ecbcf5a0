"""`PriorSection`: a plan's ``prior:`` section, the checkpoint it names or the pretraining stage
that makes it, and the key that stage is cached under (`locksmith.audit.plan`)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pydantic import Field, field_validator, model_validator

from locksmith.audit.training_rule import MAX_BATCH, MAX_BUDGET, MAX_EPISODES, MAX_STEPS, Model, check_known
from locksmith.data.record import DEFAULT_DEMO_NOISE
from locksmith.embodiment.registry import known_robots
from locksmith.policy import (
    ACTION_SPACES,
    DEFAULT_IMAGE_SIZE,
    INTENT_FEATURES,
    OBSERVATIONS,
    OMITTED_WHEN_DEFAULT,
    check_image_size,
    omit_defaults,
)
from locksmith.sim.tasks import TASKS
from locksmith.train import defaults

MAX_TRUNK = {"d_model": 2048, "n_layers": 48, "n_heads": 64, "d_feedforward": 8192, "n_readouts": 64}
MAX_LIST = 64  # targets, budgets, seeds, recipes, slices, pool robots and tasks
# Fields added after plans' priors were cached, left out of the cache key while at their default.
KEY_OMITS_AT_DEFAULT = {**OMITTED_WHEN_DEFAULT, "demo_start_jitter": defaults.DEMO_START_JITTER}


class PriorSection(Model):
    """The prior: an existing checkpoint, or the pretraining stage that makes it (the plan leaves
    the section out for the published prior). Defaults are `locksmith pretrain`'s
    (`locksmith.train.defaults`), so ``prior: {}`` rebuilds the published prior's recipe."""

    checkpoint: Path | None = None  # ours, or a LeRobot ACT's pretrained_model folder (told apart by config.json)
    robots: tuple[str, ...] = Field(defaults.POOL_ROBOTS, max_length=MAX_LIST)
    tasks: tuple[str, ...] = Field(defaults.POOL_TASKS, max_length=MAX_LIST)
    demos_per_robot: int = Field(defaults.DEMOS_PER_ROBOT, ge=1, le=MAX_BUDGET)
    steps: int = Field(defaults.PRETRAIN_STEPS, ge=1, le=MAX_STEPS)
    batch_size: int = Field(defaults.PRETRAIN_BATCH_SIZE, ge=1, le=MAX_BATCH)
    lr: float = Field(defaults.PRETRAIN_LR, gt=0, le=1, allow_inf_nan=False)
    weights: dict[str, float] | None = None
    temperature: float = Field(1.0, ge=1e-3, le=1e3, allow_inf_nan=False)
    demo_noise: float = Field(DEFAULT_DEMO_NOISE, ge=0, le=0.1, allow_inf_nan=False)  # m, DART noise of pool demos
    # m per axis, how far each pool demo's TCP starts from home (`TabletopEnv.start_jitter`)
    demo_start_jitter: float = Field(defaults.DEMO_START_JITTER, ge=0, le=defaults.MAX_START_JITTER,
                                     allow_inf_nan=False)
    seed: int = Field(0, ge=0, le=2**31 - 1)
    tune_episodes: int = Field(defaults.TUNE_EPISODES, ge=0, le=MAX_EPISODES)  # horizon choice (0: none)
    trunk: dict[str, int] = {}  # trunk sizes that differ from the policy's defaults (d_model, n_layers, ...)
    action_space: str = "native"  # what the trunk predicts: each robot's command, or shared intent (policy.intent)
    intent_features: str = "absolute"  # what an intent trunk reads of the scene (policy.INTENT_FEATURES)
    # what the prior sees of the scene (policy.OBSERVATIONS): set from the plan's `observation`
    observation: str = "state"
    image_size: int = DEFAULT_IMAGE_SIZE  # px, a pixel prior's square camera (`policy.check_image_size`)

    @field_validator("observation")
    @classmethod
    def _observation(cls, v: str) -> str:
        return check_known("observation", v, OBSERVATIONS)

    @field_validator("image_size")
    @classmethod
    def _image_size(cls, v: int) -> int:
        return check_image_size(v)

    @field_validator("action_space")
    @classmethod
    def _action_space(cls, v: str) -> str:
        return check_known("action space", v, ACTION_SPACES)

    @field_validator("intent_features")
    @classmethod
    def _intent_features(cls, v: str) -> str:
        return check_known("intent features", v, INTENT_FEATURES)

    @field_validator("trunk")
    @classmethod
    def _trunk(cls, v: dict[str, int]) -> dict[str, int]:
        known = ("d_model", "n_layers", "n_heads", "d_feedforward", "n_readouts")
        for key, size in v.items():
            check_known("trunk size", key, known)
            if not 1 <= size <= MAX_TRUNK[key]:
                raise ValueError(f"trunk.{key}={size} must be between 1 and {MAX_TRUNK[key]}")
        return v

    @field_validator("weights")
    @classmethod
    def _weights(cls, v: dict[str, float] | None) -> dict[str, float] | None:
        if v is None:
            return v
        for robot, w in v.items():
            if not 0 <= w <= 1e6:
                raise ValueError(f"weight of {robot!r} is {w}; mixture weights must be between 0 and 1e6")
        if not sum(v.values()) > 0:
            raise ValueError("the mixture weights are all zero")
        return v

    @field_validator("robots")
    @classmethod
    def _robots(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError("the pool needs at least one robot")
        if len(set(v)) != len(v):
            raise ValueError(f"a robot is named twice in the pool {list(v)}")
        return tuple(check_known("robot", r, known_robots()) for r in v)

    @field_validator("tasks")
    @classmethod
    def _tasks(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError("the prior needs at least one task")
        if len(set(v)) != len(v):
            raise ValueError(f"a task is named twice in {list(v)}")
        return tuple(check_known("task", t, TASKS) for t in v)

    @model_validator(mode="after")
    def _weights_name_pool(self) -> PriorSection:
        if self.weights is not None and set(self.weights) != set(self.robots):
            raise ValueError(f"weights name {sorted(self.weights)}, but the pool is {list(self.robots)}")
        return self

    @model_validator(mode="after")
    def _features_need_intent(self) -> PriorSection:
        if self.intent_features != "absolute" and self.action_space != "intent":
            raise ValueError(f"intent_features {self.intent_features!r} needs action_space: intent")
        if self.observation == "pixels" and self.action_space == "intent":
            raise ValueError("observation 'pixels' with action_space 'intent' is not built yet: an intent "
                             "policy's shared stem reads the scene state")
        return self

    def policy_fields(self) -> dict[str, str]:
        """The PolicyConfig fields this section sets apart from trunk sizes, those at their default
        left out (`OMITTED_WHEN_DEFAULT`)."""
        return omit_defaults({k: getattr(self, k) for k in OMITTED_WHEN_DEFAULT if k in type(self).model_fields})

    def cache_key(self) -> str:
        """What decides the pretrained weights (the checkpoint path aside)."""
        # later fields at their default are left out: the keys of priors cached before them stay valid
        data = omit_defaults(self.model_dump(mode="json", exclude={"checkpoint"}), KEY_OMITS_AT_DEFAULT)
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


__all__ = ["MAX_LIST", "MAX_TRUNK", "PriorSection"]
