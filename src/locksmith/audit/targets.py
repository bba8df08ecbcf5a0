"""A plan's targets made concrete before any run: checked (`preflight`), their demos recorded or
read, their thresholds and evaluation episodes fixed (`ResolvedTarget`), and the demos each
(budget, seed) trains on (`demo_episodes`). `audit.run` runs the arms on them."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from locksmith.atomic import write_json_atomic
from locksmith.audit.plan import PlanError, TargetSection, TransferPlan
from locksmith.audit.priors import AuditError, check_prior
from locksmith.policy import DEFAULT_IMAGE_SIZE


@dataclass(frozen=True)
class ResolvedTarget:
    """One target once its data, spec, threshold and evaluation episodes are fixed.

    Attributes:
        train_episodes: the dataset episodes every run's demos are drawn from (held-out ones excluded).
        eval_seeds: the evaluation seeds every run of this target is scored on (closed loop).
        action_scale: (A,) offline targets: the one absolute-action scale every arm is scored in.
        recording_seconds: what recording the target's demo pool took (from the dataset's meta;
            None for a dataset target or a pool recorded before the field).
        image_size: a pixel audit's: its demos hold the robot's first camera at this size, which
            every arm reads (the prior's `PolicyConfig.image_size`); None: the scene state.
    """

    label: str
    section: TargetSection
    robot: str
    task: str
    dataset: Path
    train_episodes: tuple[int, ...]
    threshold: float
    threshold_rule: str
    fingerprint: str
    expert: dict | None
    spec_path: Path | None = None
    spec_digest: str = ""
    eval_seeds: tuple[int, ...] = ()
    action_scale: tuple[float, ...] | None = None
    recording_seconds: float | None = None
    image_size: int | None = None


DEMO_COPIES = 3  # a robot's frames are held about three times over (arrays, a subset, the sampler's chunks)


def _demo_bytes(robot: str, task: str, episodes: int, image_size: int | None = None) -> int:
    """Rough memory of ``episodes`` recorded demos held for training (full-length episodes), with
    each camera's pictures at ``image_size`` (held once: the sampler shares their memory)."""
    from locksmith.embodiment.registry import load_robot_spec
    from locksmith.sim.tasks import TASKS

    spec = load_robot_spec(robot)
    frames = episodes * TASKS[task].horizon_s * spec.control_rate_hz
    floats = 2 * spec.state_dim + 2 * spec.action_dim + 64  # state, action, environment state, intent, targets
    pictures = 0 if image_size is None else len(spec.cameras) * image_size * image_size * 3
    return int(frames * (floats * 4 * DEMO_COPIES + pictures))


def _check_memory(plan: TransferPlan) -> None:
    """Refuse a plan whose demonstrations cannot be held in this machine's memory (before recording)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not a POSIX machine: no bound known
        return
    limit = int(0.8 * total)
    section = plan.prior
    # a pixel plan's pictures: at the pretraining stage's size (a named prior's: the default, roughly)
    size = None if plan.observation != "pixels" else section.image_size if section is not None else DEFAULT_IMAGE_SIZE
    for i, target in enumerate(plan.targets):
        if target.source == "sim":
            need = _demo_bytes(target.robot, target.task, plan.pool_size(), size)
            if need > limit:
                raise PlanError(f"targets.{i} ({target.label()!r}): {plan.pool_size():,} demos (demo_pool_factor x "
                                f"the largest of 'budgets') need about {need / 2**30:.1f} GiB of memory; this machine "
                                f"has {total / 2**30:.1f} GiB: lower 'budgets' or 'demo_pool_factor'")
    if section is not None and section.checkpoint is None:
        need = sum(_demo_bytes(r, t, section.demos_per_robot, size) for r in section.robots for t in section.tasks)
        if need > limit:
            raise PlanError(f"prior.demos_per_robot: {section.demos_per_robot:,} demos per robot and task need about "
                            f"{need / 2**30:.1f} GiB of memory; this machine has {total / 2**30:.1f} GiB")


@dataclass(frozen=True)
class Preflight:
    """What `preflight` loaded, so that the audit reads none of it again.

    Attributes:
        prior_dir / prior: our policy scratch's architecture comes from and the targets are
            checked against, when it exists before the audit (the published or a named prior;
            the published one beside a LeRobot prior); None when the plan pretrains its own.
        targets: the dataset targets, resolved (compatibility-checked when ``prior`` is known).
        demos: their demonstrations, for the check that must wait for a plan's own prior.
    """

    prior_dir: Path | None
    prior: object | None
    targets: dict[int, ResolvedTarget]
    demos: dict[int, object]


def preflight(plan: TransferPlan, source: str | None = None) -> Preflight:
    """Everything about a plan that can be checked without recording or training, checked before
    anything is written: the memory its demos need, the prior's checkpoint and that the plan's
    recipes fit its kind (`priors.check_prior`), each dataset target (readable, its spec, enough
    episodes outside the held-out ones for the largest budget, compatible with the prior).

    Args:
        source: the plan file, named in the errors (default: the plan's name).

    Raises:
        PlanError, AuditError: naming the plan field and the file.
    """
    from locksmith.data.loading import DatasetError, load_demonstrations
    from locksmith.embodiment.spec import SpecError

    source = source or f"plan {plan.name!r}"
    try:
        _check_memory(plan)
    except PlanError as err:
        raise PlanError(f"{source}: {err}") from None
    checked = check_prior(plan, source)
    prior, prior_dir = checked.prior, checked.prior_dir
    targets, demos = {}, {}
    for i, target in enumerate(plan.targets):
        if target.source != "dataset":
            continue
        try:
            demos[i] = load_demonstrations(Path(target.dataset), None if target.spec is None else Path(target.spec))
        except (DatasetError, SpecError) as err:
            raise AuditError(f"{_field(i, target)}.dataset: {err}") from None
        targets[i] = resolve_dataset_target(plan, i, target, demos[i], prior, prior_dir)
    return Preflight(prior_dir, prior, targets, demos)


def _field(i: int, target: TargetSection) -> str:
    return f"targets.{i} ({target.label()!r})"


def resolve_dataset_target(plan: TransferPlan, i: int, target: TargetSection, demos, prior,
                            prior_dir: Path | None) -> ResolvedTarget:
    """A target given as a LeRobot dataset: its training episodes (the held-out ones excluded),
    the one offline action scale, its threshold; checked against the prior when one is given."""
    from locksmith.evaluate.offline import held_out_episodes, offline_action_scale
    from locksmith.train.compat import check_compatibility

    field = _field(i, target)
    dataset = Path(target.dataset)
    held = set(held_out_episodes(demos.num_episodes, plan.evaluation.holdout_fraction).tolist())
    train = tuple(e for e in range(demos.num_episodes) if e not in held)
    need = max(plan.budgets)
    if need > len(train):
        raise AuditError(f"{field}: budget {need} demos, but {dataset} has {len(train)} episodes outside the "
                         f"held-out {len(held)}; lower 'budgets' or record more")
    if prior is not None:
        report = check_compatibility(prior, prior_dir, dataset, demos.spec)
        if not report.ok:
            raise AuditError(f"{field}: the compatibility check refuses {dataset}:\n{report.format()}")
    threshold = plan.threshold_for(target)
    if threshold.absolute is None:  # the plan's validator requires it for dataset targets
        raise PlanError(f"{field}: expert_fraction needs a simulator; give threshold.absolute")
    return ResolvedTarget(
        target.label(), target, demos.spec.name, target.task, dataset, train, float(threshold.absolute),
        f"absolute {threshold.absolute:g}", demos.fingerprint, None,
        None if target.spec is None else Path(target.spec), _spec_digest(demos.spec), (),
        tuple(float(x) for x in offline_action_scale(demos, plan.evaluation.holdout_fraction)), None,
        prior.config.image_size if prior is not None and prior.config.pixels else None)


def _spec_digest(spec) -> str:
    return hashlib.sha256(spec.to_yaml().encode()).hexdigest()[:16]


def resolve_sim_target(plan: TransferPlan, target: TargetSection, prior, prior_dir: Path,
                        out: Path) -> ResolvedTarget:
    """A bundled (or registered) robot with its simulator: its demos recorded into the audit
    folder (`TransferPlan.pool_size`; with the camera at a pixel prior's size), its evaluation
    seeds and its threshold."""
    from locksmith.evaluate.rollout import evaluation_seeds
    from locksmith.train.compat import check_compatibility
    from locksmith.train.prior import ensure_demos

    label = target.label()
    pool = plan.pool_size()
    dataset = out / "data" / f"{target.robot}_{target.task}"
    image_size = prior.config.image_size if prior.config.pixels else None
    demos = ensure_demos(target.robot, target.task, pool, dataset, image_size=image_size)
    spec_path = None if target.spec is None else Path(target.spec)
    report = check_compatibility(prior, prior_dir, dataset, spec_path)
    if not report.ok:
        raise AuditError(f"target {label!r}: the compatibility check refuses {dataset}:\n{report.format()}")
    threshold = plan.threshold_for(target)
    expert = None
    if threshold.absolute is not None:
        value, rule = threshold.absolute, f"absolute {threshold.absolute:g}"
    else:
        expert = _expert_success(plan, target, out / "expert" / f"{label}.json")
        value = threshold.expert_fraction * expert["success_rate"]
        rule = f"{threshold.expert_fraction:g} x expert success ({expert['success_rate']:.2f})"
    return ResolvedTarget(label, target, demos.spec.name, target.task, dataset, tuple(range(pool)), float(value),
                          rule, demos.fingerprint, expert, spec_path, _spec_digest(demos.spec),
                          tuple(evaluation_seeds(plan.evaluation.episodes, plan.evaluation.seed_block)), None,
                          demos.meta.get("recording_seconds"), image_size)


def _expert_success(plan: TransferPlan, target: TargetSection, path: Path) -> dict:
    """The scripted expert on the audit's own evaluation episodes (cached, keyed by the expert's version)."""
    from locksmith.evaluate.evaluator import evaluate
    from locksmith.sim.expert import EXPERT_VERSION

    key = {"robot": target.robot, "task": target.task, "episodes": plan.evaluation.episodes,
           "slices": list(plan.evaluation.slices), "seed_block": plan.evaluation.seed_block,
           "expert_version": EXPERT_VERSION}
    if path.is_file():
        cached = json.loads(path.read_text())
        if cached.get("key") == key:
            return cached
    result = evaluate(target.robot, target.task, plan.evaluation.episodes, list(plan.evaluation.slices),
                      checkpoint=None, seed=plan.evaluation.seed_block)
    record = {"key": key, "success_rate": result["success_rate"], "ci95": result["ci95"],
              "per_slice": {k: v["success_rate"] for k, v in result["per_slice"].items()}}
    write_json_atomic(path, record)
    return record


def demo_episodes(target: ResolvedTarget, budget: int, seed: int) -> tuple[int, ...]:
    """The dataset episodes every arm of (budget, seed) trains on: a seeded draw from the pool,
    nested across budgets for one seed (`choose_episodes`), different between seeds."""
    from locksmith.train.adapt import choose_episodes

    positions = choose_episodes(len(target.train_episodes), budget, seed)
    return tuple(int(target.train_episodes[i]) for i in positions)


__all__ = ["Preflight", "ResolvedTarget", "demo_episodes", "preflight", "resolve_dataset_target",
           "resolve_sim_target"]
