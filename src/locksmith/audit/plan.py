"""`TransferPlan`: what a transfer audit compares, on what, and by which metric (a YAML/TOML file).

A plan writes down, before anything runs, everything that decides the headline number:

    prior       left out: the published prior (`locksmith.priors`); or a checkpoint; or the
                pretraining stage to run (cached by its settings in the user cache folder;
                `audit.prior_section.PriorSection`)
    targets     new robots: a bundled robot + task (simulator and scripted expert), or an
                existing LeRobot dataset with its spec (no simulator: offline action error)
    recipes     the adapted arms to compare; `scratch` always runs, and LeRobot's ACT trained
                from scratch (`peer_baseline: act`) is a second scratch arm; the headline
                gain is the `headline_recipe`'s (default: the first recipe), fixed here. Our
                prior is cut into keys (head, token, lora, full); a LeRobot policy given as
                ``prior.checkpoint`` is fine-tuned (`LEROBOT_ARMS`, `audit.priors.check_recipes_fit_prior`)
    budgets     demonstration budgets (episodes), seeds (at least 3 for an interval), the
                evaluation seed block, episodes and slices; each target records
                `demo_pool_factor` x the largest budget, so seeds draw their own demos
    threshold   absolute, or a fraction of the scripted expert's success on the same episodes
    training    ONE training recipe applied to every arm alike: the step rule (steps from the
                number of demos), warm-up, schedule, clipping, weight decay, the learning-rate
                grid chosen per arm on validation seeds, λ and LoRA size per recipe; a target may
                override any of it (``targets[i].training``), for all of its arms alike
    shared / local / claim   the statement of what the prior shares, what each robot keeps,
                and the exact metric that justifies calling the result a transfer

Bundled plans: ``default`` (the main job) and ``quick`` (a smoke run); see `bundled_plan`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

from pydantic import (
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from locksmith.audit.prior_section import MAX_LIST, PriorSection
from locksmith.audit.training_rule import (
    MAX_BUDGET,
    MAX_EPISODES,
    Model,
    TrainingRule,
    check_known,
)
from locksmith.embodiment.registry import known_robots, load_robot_spec
from locksmith.embodiment.spec import format_validation_error
from locksmith.policy.adapters import RECIPES
from locksmith.safe_yaml import InputFileError, find_bool, load_toml_file, load_yaml_file
from locksmith.sim.slices import SLICES
from locksmith.sim.tasks import TASKS
from locksmith.train.lerobot_prior import LEROBOT_ARMS

PLANS_DIR = Path(__file__).parent / "plans"
# LeRobot's ACT from scratch: on the robot's command ("act"), and with ``peer_baseline:
# act_and_intent`` also on intent through the robot's decoder ("act_intent", `train.act_peer`)
PEER_ARMS = ("act", "act_intent")
PEER_BASELINES = {"act": ("act",), "act_and_intent": PEER_ARMS, "none": ()}
# Our architecture from scratch: the prior's own ("scratch"), and beside an intent prior the plain
# per-robot head's, the published prior's ("scratch_native", `TransferPlan.scratch_architectures`).
SCRATCH_ARMS = ("scratch", "scratch_native")
ROLE_ROBOTS = {"tabletop_arm": "so101", "mobile_manipulator": "mobile_panda", "bimanual_platform": "aloha"}


class PlanError(ValueError):
    """A transfer plan is invalid; the message names the file, the field and the value."""


class Threshold(Model):
    """Exactly one of an absolute value and a fraction of the expert's success."""

    absolute: float | None = Field(None, allow_inf_nan=False)
    expert_fraction: float | None = Field(None, allow_inf_nan=False)

    @model_validator(mode="after")
    def _one(self) -> Threshold:
        if (self.absolute is None) == (self.expert_fraction is None):
            raise ValueError("give exactly one of 'absolute' and 'expert_fraction'")
        if self.expert_fraction is not None and not 0 < self.expert_fraction <= 1:
            raise ValueError(f"expert_fraction={self.expert_fraction} must be in (0, 1]")
        return self


class TargetSection(Model):
    """One new robot. ``name`` is how the report calls it (by default the robot's role)."""

    name: str | None = None
    robot: str | None = None
    task: str = "pick_place"
    dataset: Path | None = None
    spec: Path | None = None
    threshold: Threshold | None = None  # overrides the plan's (needed for the offline metric)
    # overrides of the plan's training rule on this target, for every arm alike (e.g. a robot whose
    # key needs more steps or a larger batch than another's: {batch_size: 128, min_steps: 3000})
    training: dict[str, object] = {}

    @field_validator("robot")
    @classmethod
    def _robot(cls, v: str | None) -> str | None:
        return None if v is None else check_known("robot", v, known_robots())

    @field_validator("task")
    @classmethod
    def _task(cls, v: str) -> str:
        return check_known("task", v, TASKS)

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


class Evaluation(Model):
    """The evaluation episodes every run is scored on.

    ``seed_block`` names the block of evaluation seeds, fixed in the plan before anything runs:
    episode i of block b is seed ``EVAL_SEED_BASE + 100_000 b + i``, disjoint from every
    demonstration seed and from the validation seeds on which every choice is made.
    """

    episodes: int = Field(50, ge=1, le=MAX_EPISODES)
    slices: tuple[str, ...] = Field(("nominal",), max_length=MAX_LIST)
    holdout_fraction: float = Field(0.2, gt=0, lt=1)  # offline metric: episodes held out
    seed_block: int = Field(0, ge=0, le=9_999)

    @field_validator("slices")
    @classmethod
    def _slices(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError("at least one slice")
        return tuple(check_known("slice", s, SLICES) for s in v)


class TransferPlan(Model):
    name: str = "plan"
    prior: PriorSection | None = None  # None: the published prior that ships with locksmith
    targets: tuple[TargetSection, ...] = Field(max_length=MAX_LIST)
    recipes: tuple[str, ...] = Field(("lora",), max_length=MAX_LIST)
    # the peer from scratch: LeRobot's ACT on the robot's command, also ACT on intent through the
    # robot's decoder (act_and_intent: beside an intent prior, ACT given the same decoder), or none
    peer_baseline: Literal["act", "act_and_intent", "none"] = "act"
    # until_scratch_crosses: the peer runs only at budgets where it can still be the stronger
    # baseline (up to the first budget at which scratch reaches the threshold); all: everywhere
    peer_runs: Literal["until_scratch_crosses", "all"] = "until_scratch_crosses"
    # which of our architectures train from scratch: the prior's ("prior"), or also the published
    # prior's per-robot stems and plain heads ("prior_and_native", arm `scratch_native`): beside an
    # intent prior, whose scratch arm shares the intent decoder, the baseline is then the strongest
    # of every from-scratch arm, so a gain measures the prior and not the decoder
    scratch_architectures: Literal["prior", "prior_and_native"] = "prior"
    # what every arm sees of the scene: the privileged scene state (every cube's and pad's pose,
    # size and colour), or the pixels of the robot's first camera, as a real robot has them: the
    # prior then reads pixels (a pretraining stage is given this observation), the targets are
    # recorded with the camera at the prior's image size, scratch trains that architecture and
    # LeRobot's ACT reads the same camera through its own backbone (`train.act_peer`)
    observation: Literal["state", "pixels"] = "state"
    budgets: tuple[int, ...] = Field(max_length=MAX_LIST)
    seeds: tuple[int, ...] = Field((0, 1, 2), max_length=MAX_LIST)
    evaluation: Evaluation = Evaluation()
    threshold: Threshold = Threshold(expert_fraction=0.8)
    training: TrainingRule = TrainingRule()
    refine_rounds: int = Field(0, ge=0, le=4)  # bisection on log demos around each crossing
    headline_recipe: str | None = None  # the adapted arm of the headline gain; default the first recipe
    demo_pool_factor: float = Field(2.0, ge=1.0, le=10.0)  # demos recorded per target / largest budget
    shared: tuple[str, ...] = ()
    local: tuple[str, ...] = ()
    claim: str = ""

    @model_validator(mode="before")
    @classmethod
    def _prior_sees_as_the_plan(cls, data: object) -> object:
        """A pretraining stage pretrains a prior that sees what the plan's arms see."""
        if not isinstance(data, dict):
            return data
        section = data.get("prior")
        if isinstance(section, PriorSection):
            section = section.model_dump(exclude_unset=True)
        if not isinstance(section, dict) or section.get("checkpoint") is not None:
            return data
        observation = data.get("observation", "state")
        given = section.get("observation", observation)
        if given != observation:
            raise ValueError(f"prior.observation {given!r} differs from the plan's observation {observation!r}; the "
                             f"plan's field decides what every arm sees (set observation: {given})")
        return {**data, "prior": {**section, "observation": observation}}

    @field_validator("recipes")
    @classmethod
    def _recipes(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for r in v:
            check_known("recipe", r, (*RECIPES, *LEROBOT_ARMS))
        adapted = tuple(dict.fromkeys(r for r in v if r != "scratch"))
        if not adapted:
            raise ValueError("name at least one adapted recipe (scratch always runs)")
        return adapted

    @model_validator(mode="after")
    def _headline(self) -> TransferPlan:
        if self.headline_recipe is not None and self.headline_recipe not in self.recipes:
            raise ValueError(f"headline_recipe {self.headline_recipe!r} is not one of the plan's recipes "
                             f"{list(self.recipes)}")
        if unused := self._unused_recipes(self.training):
            raise ValueError(f"training.recipes names {unused}, which the plan does not run ({list(self.recipes)})")
        return self

    def _unused_recipes(self, rule: TrainingRule) -> list[str]:
        """The recipes ``rule`` gives settings for that the plan does not run."""
        return sorted(set(rule.recipes) - set(self.recipes) - set(SCRATCH_ARMS))

    @property
    def headline(self) -> str:
        """The adapted arm the headline gain is reported for, fixed before anything runs."""
        return self.headline_recipe or self.recipes[0]

    def tune_budget(self, target: TargetSection) -> int:
        """The budget at which learning rates are chosen on ``target`` (its rule's, else the median budget)."""
        return self.training_for(target).tune_budget or self.budgets[(len(self.budgets) - 1) // 2]

    def pool_size(self) -> int:
        """Demos recorded per simulated target: enough that seeds draw different demos at every budget."""
        return int(math.ceil(self.demo_pool_factor * max(self.budgets)))

    @field_validator("budgets")
    @classmethod
    def _budgets(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v:
            raise ValueError("the budget list is empty")
        if min(v) < 1 or max(v) > MAX_BUDGET:
            raise ValueError(f"budgets must be between 1 and {MAX_BUDGET} demonstrations, got {list(v)}")
        return tuple(sorted(set(v)))

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v:
            raise ValueError("the seed list is empty")
        if min(v) < 0 or max(v) > 99_999:
            raise ValueError(f"seeds must be between 0 and 99999, got {list(v)}")
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
            if self.peer_baseline == "act_and_intent" and self.observation == "pixels":
                raise ValueError("peer_baseline: act_and_intent is ACT on an intent prior's decoder, and a pixel "
                                 "prior predicts each robot's command (observation: pixels needs action_space native)")
            if self.peer_baseline == "act_and_intent" and t.metric != "success":
                raise ValueError(f"target {t.label()!r} has no simulator, and peer_baseline: act_and_intent's ACT "
                                 "acts through the robot's intent decoder, closed loop only: use peer_baseline: act")
            if t.metric == "success" and th.absolute is not None and not 0 <= th.absolute <= 1:
                raise ValueError(f"target {t.label()!r}: threshold.absolute={th.absolute} must be in [0, 1]")
            if t.metric == "offline_action_error" and th.absolute is None:
                raise ValueError(f"target {t.label()!r} has no simulator (offline action error): "
                                 "give it threshold: {absolute: <error>}")
            try:
                rule = self.training_for(t)
            except ValidationError as err:
                first = err.errors()[0]
                field = ".".join(("training", *map(str, first["loc"])))
                raise ValueError(f"target {t.label()!r}: {field}: {first['msg']}") from None
            if unused := self._unused_recipes(rule):
                raise ValueError(f"target {t.label()!r}: training.recipes names {unused}, which the plan "
                                 f"does not run ({list(self.recipes)})")
        return self

    def training_for(self, target: TargetSection) -> TrainingRule:
        """The rule every arm on ``target`` trains with: the plan's, with the target's overrides."""
        if not target.training:
            return self.training
        return TrainingRule.model_validate({**self.training.model_dump(), **target.training})

    @property
    def arms(self) -> tuple[str, ...]:
        """Every arm that runs: scratch (and the plain-head scratch), the peer baseline, then the
        adapted recipes."""
        peers = PEER_BASELINES[self.peer_baseline]
        both = self.scratch_architectures == "prior_and_native"
        return (*SCRATCH_ARMS[: 2 if both else 1], *peers, *self.recipes)

    def threshold_for(self, target: TargetSection) -> Threshold:
        return target.threshold or self.threshold

    def to_dict(self) -> dict:
        return self.model_dump(mode="json")


def parse_plan(data: object, source: str = "<memory>") -> TransferPlan:
    if not isinstance(data, dict):
        raise PlanError(f"{source}: expected a mapping at the top level, got {type(data).__name__}")
    where = find_bool(data)
    if where is not None:
        raise PlanError(f"{source}: invalid transfer plan (1 problem(s))\n  field "
                        f"{'.'.join(map(str, where))!r}: expected a number or text, got a yes/no value")
    try:
        return TransferPlan.model_validate(data)
    except ValidationError as err:
        raise PlanError(format_validation_error(source, err, "transfer plan")) from None


def load_plan(path: str | Path) -> TransferPlan:
    """Read and validate a plan (``.yaml``/``.yml`` or ``.toml``); errors name file and field."""
    path = Path(path)
    if not path.is_file():
        raise PlanError(f"{path}: plan file not found")
    try:  # bounded: size, nesting, aliases, duplicate keys
        data = load_toml_file(path) if path.suffix == ".toml" else load_yaml_file(path)
    except InputFileError as err:
        raise PlanError(str(err)) from None
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
