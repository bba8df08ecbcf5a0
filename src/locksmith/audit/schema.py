"""The audit's result as one typed, validated object: written by `summarize`, read by the report.

``audit.json`` is ``AuditResult.model_dump(mode="json")``; `load_audit` reads it back into the
same object (``load_audit(path) == audit``). Every record is frozen and forbids unknown fields,
and the validators reject states the pipeline cannot produce (a headline arm that is not the plan's
or did not run, a tuning record whose learning rate the runs did not use, per-budget numbers for
budgets that did not run, and, in `locksmith.audit.estimates`, an interval from fewer than
``MIN_SEEDS_FOR_INTERVAL`` seeds or a "significant" negative transfer without one), so the report
and its tests only ever see states the pipeline can produce.

    AuditResult
    ├── plan, plan_file, quick, arms_ran, headline_recipe, goal (GoalRecord)
    ├── prior: PriorRecord
    ├── reproducibility: Reproducibility | None
    └── targets: {label: TargetResult}
        ├── robot, task, source, metric, threshold, expert, action_scale, budgets, seeds, eval_seeds
        ├── arms: {arm: ArmRecord}
        │   ├── training: TrainingRecord, tuning: TuningRecord | None
        │   ├── curve: CurveRecord, per_slice: {slice: CurveRecord}
        │   ├── crossing: ArmCrossingRecord, seconds_to_threshold: CrossingRecord
        │   └── runs: (RunRecord, ...)        budget, seed, demo episodes, value per run
        ├── baseline: BaselineRecord           the stronger from-scratch arm and why
        ├── adaptation_gain, wallclock_gain, wallclock_gain_amortized: GainRecord
        ├── other_gains: (GainRecord, ...)     every other (adapted, from-scratch) pair
        ├── negative_transfer: (NegativeTransferRecord, ...)
        ├── goal_checks: GoalChecks, goal_met: bool | None, notes
        ├── panels: (PanelRecord, ...), panels_note   rollout clips (`locksmith.audit.panels`)
        └── cost: TargetCost                   recording, training and evaluation seconds per arm
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Literal

from pydantic import JsonValue, ValidationError, model_validator

from locksmith.atomic import write_json_atomic
from locksmith.audit.estimates import (
    ArmCrossingRecord,
    BaselineRecord,
    CrossingRecord,
    CurveRecord,
    GainRecord,
    Interval,
    NegativeTransferRecord,
    Record,
)
from locksmith.evaluate.failures import Outcome

SCHEMA_VERSION = 1

ArmKind = Literal["scratch", "peer", "adapted"]
Verdict = Literal["met", "not met", "undetermined"]


class AuditFileError(ValueError):
    """An ``audit.json`` that cannot be read back; the message names the file."""


# --- inputs: the prior, the tuning, the training recipe -------------------------------------

class PriorRecord(Record):
    """The prior every adapted arm starts from; ``pretrain_seconds`` None when not measured here.

    ``kind`` is ``lerobot`` for a LeRobot policy's checkpoint (`locksmith.audit.priors`); then
    ``scratch_architecture`` names our policy whose architecture the scratch arm trains.
    ``image_size`` is a pixel prior's (the plan's ``observation: pixels``): every arm read the
    robot's first camera at that size; None: the scene state.
    """

    checkpoint: str
    cached: bool
    source: str = "checkpoint"  # published | checkpoint | pretrained by the plan | LeRobot act checkpoint
    kind: Literal["locksmith", "lerobot"] = "locksmith"
    scratch_architecture: str | None = None
    pretrain_seconds: float | None = None
    robots: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ()
    weights_sha256: str | None = None
    image_size: int | None = None

    @classmethod
    def from_info(cls, info: dict) -> PriorRecord:
        """From `run.ensure_prior`'s dict; its other keys (loss, throughput) stay in prior.json."""
        return cls(checkpoint=str(info["checkpoint"]), cached=bool(info["cached"]),
                   source=str(info.get("source", "checkpoint")), kind=info.get("kind", "locksmith"),
                   scratch_architecture=info.get("scratch_architecture"), pretrain_seconds=info.get("pretrain_seconds"),
                   robots=tuple(info.get("robots") or ()), tasks=tuple(info.get("tasks") or ()),
                   weights_sha256=info.get("weights_sha256"), image_size=info.get("image_size"))


class TuningRecord(Record):
    """How one arm's learning rate was chosen: on validation seeds, never on evaluation seeds.

    Attributes:
        grid: the learning rates tried.
        budget, seed: the demo budget and training seed of the tuning runs (budget 0: not tuned).
        validation_episodes: validation episodes per learning rate.
        validation: learning rate (as a string) → validation success rate (or offline error);
            empty when the grid holds one rate and nothing was tuned.
        chosen_lr: the one every run of this arm then used.
    """

    arm: str
    grid: tuple[float, ...]
    budget: int
    seed: int
    validation_episodes: int
    validation: dict[str, float]
    chosen_lr: float

    @model_validator(mode="after")
    def _chosen_from_grid(self) -> TuningRecord:
        if not any(math.isclose(self.chosen_lr, lr, rel_tol=1e-9) for lr in self.grid):
            raise ValueError(f"tuning of {self.arm!r}: chosen_lr={self.chosen_lr} is not in the grid {list(self.grid)}")
        return self


class TrainingRecord(Record):
    """The training recipe one arm ran with: the same for all its runs, but for the step counts."""

    lr: float
    schedule: str
    grad_clip: float | None
    weight_decay: float
    batch_size: int
    weight: float  # λ: of L2-SP toward the prior (full), of λ‖φ‖² (other recipes); 0 when none
    lora_rank: int | None = None
    lora_alpha: float | None = None
    steps: dict[int, int]  # budget → training steps (the plan's one step rule)
    warmup_steps: dict[int, int]  # budget → linear warm-up steps


# --- one arm, one target, the audit ------------------------------------------------------------

class RunRecord(Record):
    """One finished (budget, seed) run: what it trained on and what it scored."""

    budget: int
    seed: int
    value: float
    demo_episodes: tuple[int, ...]
    train_seconds: float
    key: str  # the run's content digest (result.json "key")


class ArmRecord(Record):
    """One arm on one target. Per-budget dicts are means over seeds."""

    name: str
    kind: ArmKind
    description: str  # what the recipe trains, e.g. "stem + head + token + LoRA on the trunk"
    training: TrainingRecord
    tuning: TuningRecord | None
    curve: CurveRecord
    per_slice: dict[str, CurveRecord]  # success metric only: the curve on each slice's episodes
    crossing: ArmCrossingRecord
    seconds_to_threshold: CrossingRecord  # along training (checkpoints); seconds in .demos
    train_seconds: dict[int, float]
    eval_seconds: dict[int, float]
    frames: dict[int, float]
    trainable_parameters: int
    shield_interventions: dict[str, int]  # summed over every evaluation episode of every run
    runs: tuple[RunRecord, ...]

    @model_validator(mode="after")
    def _budgets(self) -> ArmRecord:
        for name in ("train_seconds", "eval_seconds", "frames"):
            if sorted(getattr(self, name)) != list(self.curve.budgets):
                raise ValueError(f"arm {self.name!r}: {name} budgets {sorted(getattr(self, name))} differ from "
                                 f"the curve's {list(self.curve.budgets)}")
        if sorted({r.budget for r in self.runs}) != list(self.curve.budgets):
            raise ValueError(f"arm {self.name!r}: runs and curve cover different budgets")
        if self.tuning is not None and not math.isclose(self.tuning.chosen_lr, self.training.lr, rel_tol=1e-9):
            raise ValueError(f"arm {self.name!r}: tuning chose lr={self.tuning.chosen_lr} but the runs used "
                             f"lr={self.training.lr}")
        return self


class ExpertRecord(Record):
    """The scripted expert on the audit's own evaluation episodes (sets a relative threshold)."""

    success_rate: float
    ci95: Interval | None = None
    per_slice: dict[str, float] = {}


class GoalRecord(Record):
    """The goal every target is checked against (`summary.GOAL`; fixed in code, not in the plan)."""

    demos_gain: float
    demos_gain_lower: float
    wallclock_gain: float


class GoalChecks(Record):
    demos: Verdict  # the adaptation gain: point ≥ demos_gain and lower end ≥ demos_gain_lower
    wallclock: Verdict  # the adaptation-only wall-clock gain ≥ wallclock_gain


class PanelRecord(Record):
    """One rollout clip: an evaluation episode of one run, replayed from its seed and rendered.

    Attributes:
        arm, budget, seed: the run (training seed) whose final checkpoint acted.
        episode_key: the evaluation episode, ``<slice>/<evaluation seed>`` (`TargetResult.episode_keys`).
        recorded_success: the episode's outcome as the run's evaluation recorded it (it chose the clip).
        success, outcome: the replay's success and its label (`locksmith.evaluate.failures`).
        interventions: the safety shield's interventions in the replayed episode, by kind (non-zero only).
        file: the clip, relative to the audit folder (``panels/...``); frames, fps: its length and speed.
    """

    arm: str
    budget: int
    seed: int
    episode_key: str
    recorded_success: bool
    success: bool
    outcome: Outcome
    interventions: dict[str, int]
    file: str
    frames: int
    fps: float

    @model_validator(mode="after")
    def _consistent(self) -> PanelRecord:
        if (self.outcome == "success") != self.success:
            raise ValueError(f"panel {self.file}: outcome {self.outcome!r} with success={self.success}")
        if not self.file.startswith("panels/") or ".." in self.file:
            raise ValueError(f"panel file {self.file!r} is not under panels/")
        return self


class TargetCost(Record):
    """Where one target's time went, in wall-clock seconds of the processes that did the work.

    Attributes:
        recording_seconds: recording the target's demo pool (None: a dataset target, or a pool
            recorded before the field was kept).
        training_seconds, evaluation_seconds, runs: per arm, summed over every run of this audit
            (the learning-rate tuning runs included); each run used one thread on one worker.
    """

    recording_seconds: float | None
    training_seconds: dict[str, float]
    evaluation_seconds: dict[str, float]
    runs: dict[str, int]

    @model_validator(mode="after")
    def _same_arms(self) -> TargetCost:
        if not (set(self.training_seconds) == set(self.evaluation_seconds) == set(self.runs)):
            raise ValueError("cost: training, evaluation and run counts name different arms")
        return self

    def text(self) -> str:
        """``recording 65 s; training scratch 410 s (9 runs), full ...; evaluation 380 s``."""
        recording = "n/a" if self.recording_seconds is None else f"{self.recording_seconds:.0f} s"
        arms = ", ".join(f"{a} {s:.0f} s ({self.runs[a]} runs)" for a, s in self.training_seconds.items())
        return (f"recording {recording}; training {arms}; "
                f"evaluation {sum(self.evaluation_seconds.values()):.0f} s")


class TargetResult(Record):
    """Everything measured on one target robot."""

    label: str
    robot: str
    task: str
    source: Literal["sim", "dataset"]
    dataset: str
    metric: Literal["success", "offline_action_error"]
    higher_is_better: bool
    threshold: float
    threshold_rule: str
    expert: ExpertRecord | None
    action_scale: tuple[float, ...] | None  # offline: the one absolute action scale of every error
    budgets: tuple[int, ...]
    seeds: tuple[int, ...]
    slices: tuple[str, ...]
    eval_seeds: tuple[int, ...]
    episode_keys: tuple[str, ...]  # success metric: the evaluation episodes every run was scored on
    demos_available: int
    arms: dict[str, ArmRecord]
    baseline: BaselineRecord
    headline_arm: str
    adaptation_gain: GainRecord  # headline_arm vs the baseline, in demos
    other_gains: tuple[GainRecord, ...]  # every other (adapted, from-scratch) pair
    wallclock_gain: GainRecord  # adaptation only: training seconds of each arm
    wallclock_gain_amortized: GainRecord  # + pretraining seconds / number of targets
    negative_transfer: tuple[NegativeTransferRecord, ...]
    goal_checks: GoalChecks
    goal_met: bool | None  # None: undetermined
    notes: tuple[str, ...]
    panels: tuple[PanelRecord, ...] = ()  # rollout clips (`locksmith.audit.panels`); none for offline targets
    panels_note: str | None = None  # why clips are missing (no GL, a checkpoint gone, ...)
    cost: TargetCost | None = None  # None in an audit.json written before the field

    @model_validator(mode="after")
    def _consistent(self) -> TargetResult:
        where = f"target {self.label!r}"
        if (self.metric == "success") != self.higher_is_better or (self.metric == "success") != (self.source == "sim"):
            raise ValueError(f"{where}: metric {self.metric!r} with source {self.source!r} and "
                             f"higher_is_better={self.higher_is_better}")
        for arm in {self.headline_arm, self.baseline.name}:
            if arm not in self.arms:
                raise ValueError(f"{where}: arm {arm!r} did not run; arms: {', '.join(self.arms)}")
        if self.arms[self.headline_arm].kind != "adapted" or self.arms[self.baseline.name].kind == "adapted":
            raise ValueError(f"{where}: the headline arm must be adapted and the baseline from scratch")
        for gain in (self.adaptation_gain, self.wallclock_gain, self.wallclock_gain_amortized):
            if (gain.adapted_arm, gain.baseline_arm) != (self.headline_arm, self.baseline.name):
                raise ValueError(f"{where}: a headline gain compares {gain.adapted_arm} with {gain.baseline_arm}")
        for gain in self.other_gains:
            if gain.adapted_arm not in self.arms or gain.baseline_arm not in self.arms:
                raise ValueError(f"{where}: gain of unknown arms {gain.adapted_arm}, {gain.baseline_arm}")
        if list(self.budgets) != sorted({b for a in self.arms.values() for b in a.curve.budgets}):
            raise ValueError(f"{where}: budgets {list(self.budgets)} are not the arms' budgets")
        if self.metric == "offline_action_error" and self.action_scale is None:
            raise ValueError(f"{where}: an offline error needs its action scale")
        return self

    @model_validator(mode="after")
    def _panels(self) -> TargetResult:
        where = f"target {self.label!r}"
        if self.panels and self.source != "sim":
            raise ValueError(f"{where}: rollout clips for an offline target")
        for panel in self.panels:
            if panel.arm not in self.arms or panel.budget not in self.arms[panel.arm].curve.budgets:
                raise ValueError(f"{where}: clip {panel.file} of arm {panel.arm!r} at {panel.budget} demos, "
                                 "which did not run")
            if panel.seed not in self.seeds or panel.episode_key not in self.episode_keys:
                raise ValueError(f"{where}: clip {panel.file} of seed {panel.seed}, episode {panel.episode_key!r}, "
                                 "which is not among the target's seeds and evaluation episodes")
        return self

    def headline(self) -> str:
        """``tabletop_arm: adaptation_gain=6.1x [3.8, 9.7] (3 seeds) (scratch 180 demos / full 30 demos)``:
        the gain as the statistics print it (interval, seeds, bounds), then what it compares."""
        gain = self.adaptation_gain
        return (f"{self.label}: adaptation_gain={gain.text} ({gain.baseline_arm} {gain.baseline.text()} demos / "
                f"{gain.adapted_arm} {gain.adapted.text()} demos)")

    def kind_of(self, arm: str) -> ArmKind:
        return self.arms[arm].kind


class Reproducibility(Record):
    """What is needed to rerun the audit as it ran."""

    seeds: tuple[int, ...]
    versions: dict[str, str | None]
    machine: dict[str, JsonValue]
    dataset_fingerprints: dict[str, str]
    started: str
    finished: str
    seconds: float
    command: str
    workers: int | None = None
    ray_address: str | None = None


class AuditResult(Record):
    """The whole audit; ``audit.json`` is its JSON dump."""

    schema_version: Literal[1] = SCHEMA_VERSION
    plan: dict[str, JsonValue]  # `TransferPlan.to_dict()`
    plan_file: str | None = None
    quick: bool = False
    prior: PriorRecord
    arms_ran: tuple[str, ...]
    headline_recipe: str  # the adapted arm of every headline, fixed in the plan before the runs
    goal: GoalRecord
    targets: dict[str, TargetResult]
    reproducibility: Reproducibility | None = None

    @model_validator(mode="after")
    def _consistent(self) -> AuditResult:
        for label, target in self.targets.items():
            if label != target.label:
                raise ValueError(f"target {target.label!r} filed under {label!r}")
            if target.headline_arm != self.headline_recipe:
                raise ValueError(f"target {label!r}: headline arm {target.headline_arm!r} is not the plan's "
                                 f"headline recipe {self.headline_recipe!r}")
            if set(target.arms) - set(self.arms_ran):
                raise ValueError(f"target {label!r}: arms {sorted(set(target.arms) - set(self.arms_ran))} "
                                 f"are not among the arms that ran {list(self.arms_ran)}")
        return self


# --- audit.json ---------------------------------------------------------------------------------

def write_audit_json(audit: AuditResult, path: str | Path) -> None:
    """Write ``audit.json`` atomically: the JSON dump of ``audit``, indented, UTF-8."""
    write_json_atomic(path, audit.model_dump(mode="json"))


def load_audit(path: str | Path) -> AuditResult:
    """Read an ``audit.json`` back; a missing, unparsable or invalid file raises `AuditFileError`."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise AuditFileError(f"{path}: cannot be read ({err.strerror or err})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise AuditFileError(f"{path}: not JSON ({err})") from None
    try:
        return AuditResult.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(map(str, first["loc"])) or "top level"
        raise AuditFileError(f"{path}: not a locksmith audit.json (schema version {SCHEMA_VERSION}): {where}: "
                             f"{first['msg']} ({err.error_count()} error(s))") from None
