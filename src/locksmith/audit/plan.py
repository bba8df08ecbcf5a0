"""`TransferPlan`: what a transfer audit compares, on what, and by which metric (a YAML/TOML file).

A plan writes down, before anything runs, everything that decides the headline number:

    prior       a checkpoint, or the pretraining stage to run (cached under the audit folder)
    targets     new robots: a bundled robot + task (simulator and scripted expert), or an
                existing LeRobot dataset with its spec (no simulator: offline action error)
    recipes     the adapted arms to compare; `scratch` always runs, and LeRobot's ACT trained
                from scratch (`peer_baseline: act`) is a second scratch arm
    budgets     demonstration budgets (episodes), seeds, evaluation episodes and slices
    threshold   absolute, or a fraction of the scripted expert's success on the same episodes
    training    ONE step rule applied to every arm alike (steps from the number of demos)
    shared / local / claim   the statement of what the prior shares, what each robot keeps,
                and the exact metric that justifies calling the result a transfer

Bundled plans: ``default`` (the main job) and ``quick`` (a smoke run); see `bundled_plan`.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from locksmith.data.record import DEFAULT_DEMO_NOISE
from locksmith.embodiment.registry import known_robots, load_robot_spec
from locksmith.embodiment.spec import format_validation_error
from locksmith.policy.adapters import RECIPES
from locksmith.sim.slices import SLICES
from locksmith.sim.tasks import TASKS

PLANS_DIR = Path(__file__).parent / "plans"
PEER_ARMS = ("act",)
ROLE_ROBOTS = {"tabletop_arm": "so101", "mobile_manipulator": "mobile_panda", "bimanual_platform": "aloha"}


class PlanError(ValueError):
    """A transfer plan is invalid; the message names the file, the field and the value."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _known(kind: str, name: str, known) -> str:
    if name not in known:
        raise ValueError(f"unknown {kind} {name!r}; known {kind}s: {', '.join(known)}")
    return name


class PriorSection(_Model):
    """The prior: an existing checkpoint, or the pretraining stage that makes it."""

    checkpoint: Path | None = None
    robots: tuple[str, ...] = ("panda", "ur5e", "vx300s", "z1")
    tasks: tuple[str, ...] = ("pick_place",)
    demos_per_robot: int = Field(200, ge=1)
    steps: int = Field(3000, ge=1)
    batch_size: int = Field(256, ge=1)
    lr: float = Field(1e-3, gt=0)
    weights: dict[str, float] | None = None
    temperature: float = Field(1.0, gt=0)
    demo_noise: float = Field(DEFAULT_DEMO_NOISE, ge=0, allow_inf_nan=False)  # m, DART noise of the pool's demos
    seed: int = 0
    trunk: dict[str, int] = {}  # trunk sizes that differ from the policy's defaults (d_model, n_layers, ...)

    @field_validator("trunk")
    @classmethod
    def _trunk(cls, v: dict[str, int]) -> dict[str, int]:
        known = ("d_model", "n_layers", "n_heads", "d_feedforward", "n_readouts")
        for key in v:
            _known("trunk size", key, known)
        return v

    @field_validator("robots")
    @classmethod
    def _robots(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError("the pool needs at least one robot")
        return tuple(_known("robot", r, known_robots()) for r in v)

    @field_validator("tasks")
    @classmethod
    def _tasks(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError("the prior needs at least one task")
        return tuple(_known("task", t, TASKS) for t in v)

    def cache_key(self) -> str:
        """What decides the pretrained weights (the checkpoint path aside)."""
        data = self.model_dump(mode="json", exclude={"checkpoint"})
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


class Threshold(_Model):
    """Exactly one of an absolute value and a fraction of the expert's success."""

    absolute: float | None = None
    expert_fraction: float | None = None

    @model_validator(mode="after")
    def _one(self) -> Threshold:
        if (self.absolute is None) == (self.expert_fraction is None):
            raise ValueError("give exactly one of 'absolute' and 'expert_fraction'")
        if self.expert_fraction is not None and not 0 < self.expert_fraction <= 1:
            raise ValueError(f"expert_fraction={self.expert_fraction} must be in (0, 1]")
        return self


class TargetSection(_Model):
    """One new robot. ``name`` is how the report calls it (by default the robot's role)."""

    name: str | None = None
    robot: str | None = None
    task: str = "pick_place"
    dataset: Path | None = None
    spec: Path | None = None
    threshold: Threshold | None = None  # overrides the plan's (needed for the offline metric)

    @field_validator("robot")
    @classmethod
    def _robot(cls, v: str | None) -> str | None:
        return None if v is None else _known("robot", v, known_robots())

    @field_validator("task")
    @classmethod
    def _task(cls, v: str) -> str:
        return _known("task", v, TASKS)

    @model_validator(mode="after")
    def _source(self) -> TargetSection:
        if self.robot is None and self.dataset is None:
            raise ValueError("a target needs 'robot' (bundled simulator) or 'dataset' (a LeRobot dataset)")
        return self

    @property
    def source(self) -> Literal["sim", "dataset"]:
        return "dataset" if self.dataset is not None else "sim"

    @property
    def metric(self) -> Literal["success", "offline_action_error"]:
        return "offline_action_error" if self.source == "dataset" else "success"

    def label(self) -> str:
        if self.name:
            return self.name
        if self.robot is not None:
            return load_robot_spec(self.robot).role
        return Path(self.dataset).name


class Evaluation(_Model):
    episodes: int = Field(50, ge=1)
    slices: tuple[str, ...] = ("nominal",)
    holdout_fraction: float = Field(0.2, gt=0, lt=1)  # offline metric: episodes held out

    @field_validator("slices")
    @classmethod
    def _slices(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError("at least one slice")
        return tuple(_known("slice", s, SLICES) for s in v)


class TrainingRule(_Model):
    """The one training budget every arm gets: steps = clip(steps_per_demo × demos, min, max)."""

    steps_per_demo: float = Field(40.0, gt=0)
    min_steps: int = Field(300, ge=1)
    max_steps: int = Field(2000, ge=1)
    batch_size: int = Field(128, ge=1)
    lr: float = Field(1e-3, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> TrainingRule:
        if self.min_steps > self.max_steps:
            raise ValueError(f"min_steps={self.min_steps} > max_steps={self.max_steps}")
        return self

    def steps(self, demos: int) -> int:
        return int(min(self.max_steps, max(self.min_steps, round(self.steps_per_demo * demos))))


class TransferPlan(_Model):
    name: str = "plan"
    prior: PriorSection = PriorSection()
    targets: tuple[TargetSection, ...]
    recipes: tuple[str, ...] = ("lora",)
    peer_baseline: Literal["act", "none"] = "act"
    budgets: tuple[int, ...]
    seeds: tuple[int, ...] = (0, 1, 2)
    evaluation: Evaluation = Evaluation()
    threshold: Threshold = Threshold(expert_fraction=0.8)
    training: TrainingRule = TrainingRule()
    refine_rounds: int = Field(0, ge=0, le=4)  # bisection on log demos around each crossing
    lora_rank: int = Field(8, ge=1)
    shared: tuple[str, ...] = ()
    local: tuple[str, ...] = ()
    claim: str = ""

    @field_validator("recipes")
    @classmethod
    def _recipes(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for r in v:
            _known("recipe", r, RECIPES)
        adapted = tuple(dict.fromkeys(r for r in v if r != "scratch"))
        if not adapted:
            raise ValueError("name at least one adapted recipe (scratch always runs)")
        return adapted

    @field_validator("budgets")
    @classmethod
    def _budgets(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v:
            raise ValueError("the budget list is empty")
        if min(v) < 1:
            raise ValueError(f"budgets must be >= 1 demonstration, got {list(v)}")
        return tuple(sorted(set(v)))

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v:
            raise ValueError("the seed list is empty")
        return tuple(dict.fromkeys(v))

    @model_validator(mode="after")
    def _targets(self) -> TransferPlan:
        if not self.targets:
            raise ValueError("no targets")
        labels = [t.label() for t in self.targets]
        if len(set(labels)) != len(labels):
            raise ValueError(f"target names must be unique, got {labels}")
        for t in self.targets:
            th = t.threshold or self.threshold
            if t.metric == "success" and th.absolute is not None and not 0 <= th.absolute <= 1:
                raise ValueError(f"target {t.label()!r}: threshold.absolute={th.absolute} must be in [0, 1]")
            if t.metric == "offline_action_error" and th.absolute is None:
                raise ValueError(f"target {t.label()!r} has no simulator (offline action error): "
                                 "give it threshold: {absolute: <error>}")
        return self

    @property
    def arms(self) -> tuple[str, ...]:
        """Every arm that runs: scratch, the peer baseline, then the adapted recipes."""
        peers = PEER_ARMS if self.peer_baseline == "act" else ()
        return ("scratch", *peers, *self.recipes)

    def threshold_for(self, target: TargetSection) -> Threshold:
        return target.threshold or self.threshold

    def to_dict(self) -> dict:
        return self.model_dump(mode="json")


def parse_plan(data: object, source: str = "<memory>") -> TransferPlan:
    if not isinstance(data, dict):
        raise PlanError(f"{source}: expected a mapping at the top level, got {type(data).__name__}")
    try:
        return TransferPlan.model_validate(data)
    except ValidationError as err:
        raise PlanError(format_validation_error(source, err, "transfer plan")) from None


def load_plan(path: str | Path) -> TransferPlan:
    """Read and validate a plan (``.yaml``/``.yml`` or ``.toml``); errors name file and field."""
    path = Path(path)
    if not path.is_file():
        raise PlanError(f"{path}: plan file not found")
    text = path.read_text()
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as err:
        raise PlanError(f"{path}: cannot be parsed: {err}") from None
    return parse_plan(data, str(path))


def bundled_plans() -> list[str]:
    return sorted(p.stem for p in PLANS_DIR.glob("*.yaml"))


def bundled_plan(name: str) -> TransferPlan:
    """A plan shipped with locksmith (``default``, ``quick``); an unknown name lists them."""
    known = bundled_plans()
    if name not in known:
        import difflib

        hint = difflib.get_close_matches(name, known, n=1)
        raise PlanError(f"unknown bundled plan {name!r}; known plans: {', '.join(known)}"
                        + (f" (did you mean {hint[0]!r}?)" if hint else ""))
    return load_plan(PLANS_DIR / f"{name}.yaml")
