"""Run a transfer audit end to end: prior (cached) → target demos → threshold → sweep → report.

Layout of the audit folder ``out``:

    plan.yaml                     the resolved plan
    prior-<key>/                  the pretraining stage (data/, policy/, metrics); reused when
                                  the plan's prior section is unchanged, resumed when killed
    data/<robot>_<task>/          the targets' expert demonstrations (LeRobot datasets)
    expert/<target>.json          the scripted expert on the evaluation episodes (threshold)
    runs/<target>/<arm>/n<N>_s<S>/result.json   one file per finished run (see `sweep`)
    audit.json, report.md, report.html          the summary and the report

Every stage is a file, so a rerun after a crash redoes only what is missing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import yaml

from locksmith.audit.plan import PlanError, TargetSection, TransferPlan
from locksmith.audit.sweep import RunSpec, run_sweep
from locksmith.atomic import write_file_atomic, write_json_atomic

log = logging.getLogger(__name__)


class AuditError(ValueError):
    """The audit cannot run as planned (an incompatible target, too few demos, ...)."""


@dataclass(frozen=True)
class ResolvedTarget:
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


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def ensure_prior(plan: TransferPlan, out: Path, progress: bool = True) -> tuple[Path, dict]:
    """The prior's checkpoint folder, pretraining it (or resuming a killed pretraining) if needed."""
    from locksmith.train.loop import TrainConfig
    from locksmith.train.prior import PriorRecipe, run_pretrain

    section = plan.prior
    if section.checkpoint is not None:
        path = Path(section.checkpoint)
        if not (path / "config.json").is_file():
            raise PlanError(f"prior.checkpoint: {path} is not a locksmith checkpoint (no config.json)")
        return path, {"checkpoint": str(path), "cached": True, "pretrain_seconds": None}
    stage = out / f"prior-{section.cache_key()}"
    marker = stage / "prior.json"
    if marker.is_file() and (stage / "policy" / "config.json").is_file():
        info = json.loads(marker.read_text())
        return stage / "policy", {**info, "cached": True}
    t0 = time.perf_counter()
    recipe = PriorRecipe(robots=section.robots, tasks=section.tasks, demos_per_robot=section.demos_per_robot,
                         weights=section.weights, temperature=section.temperature, demo_noise=section.demo_noise,
                         trunk=dict(section.trunk))
    config = TrainConfig(steps=section.steps, batch_size=section.batch_size, lr=section.lr, seed=section.seed,
                         checkpoint_every=max(50, section.steps // 10))
    log.info("pretraining the prior into %s", stage)
    summary = run_pretrain(recipe, config, stage, resume=True, progress=progress)
    info = {"checkpoint": str(stage / "policy"), "robots": list(section.robots), "tasks": list(section.tasks),
            "pretrain_seconds": time.perf_counter() - t0, "samples_per_s": summary["samples_per_s"],
            "parameters": summary["parameters"], "final_loss": summary["final_loss"],
            "resumed_from": summary["resumed_from"]}
    write_json_atomic(marker, info)
    return stage / "policy", {**info, "cached": False}


def _resolve_target(plan: TransferPlan, target: TargetSection, prior, prior_dir: Path, out: Path) -> ResolvedTarget:
    from locksmith.data.loading import load_demonstrations
    from locksmith.evaluate.offline import held_out_episodes
    from locksmith.train.compat import check_compatibility
    from locksmith.train.prior import ensure_demos

    label = target.label()
    need = max(plan.budgets)
    if target.source == "sim":
        root = out / "data" / f"{target.robot}_{target.task}"
        demos = ensure_demos(target.robot, target.task, need, root)
        dataset = root
        train = tuple(range(need))
    else:
        dataset = Path(target.dataset)
        demos = load_demonstrations(dataset, target.spec)
        held = set(held_out_episodes(demos.num_episodes, plan.evaluation.holdout_fraction).tolist())
        train = tuple(i for i in range(demos.num_episodes) if i not in held)
        if need > len(train):
            raise AuditError(f"target {label!r}: budget {need} demos, but {dataset} has {len(train)} episodes "
                             f"outside the held-out {len(held)}")
    report = check_compatibility(prior, prior_dir, dataset, target.spec)
    if not report.ok:
        raise AuditError(f"target {label!r}: the compatibility check refuses {dataset}:\n{report.format()}")
    threshold = plan.threshold_for(target)
    expert = None
    if threshold.absolute is not None:
        value, rule = threshold.absolute, f"absolute {threshold.absolute:g}"
    else:
        if target.source != "sim":
            raise PlanError(f"target {label!r}: expert_fraction needs a simulator; give threshold.absolute")
        expert = _expert_success(plan, target, out / "expert" / f"{label}.json")
        value = threshold.expert_fraction * expert["success_rate"]
        rule = f"{threshold.expert_fraction:g} x expert success ({expert['success_rate']:.2f})"
    return ResolvedTarget(label, target, demos.spec.name, target.task, dataset, train, float(value), rule,
                          demos.fingerprint, expert)


def _expert_success(plan: TransferPlan, target: TargetSection, path: Path) -> dict:
    """The scripted expert on the audit's own evaluation episodes (cached)."""
    from locksmith.evaluate.evaluator import evaluate

    key = {"robot": target.robot, "task": target.task, "episodes": plan.evaluation.episodes,
           "slices": list(plan.evaluation.slices)}
    if path.is_file():
        cached = json.loads(path.read_text())
        if cached.get("key") == key:
            return cached
    result = evaluate(target.robot, target.task, plan.evaluation.episodes, list(plan.evaluation.slices),
                      checkpoint=None, seed=0)
    record = {"key": key, "success_rate": result["success_rate"], "ci95": result["ci95"],
              "per_slice": {k: v["success_rate"] for k, v in result["per_slice"].items()}}
    write_json_atomic(path, record)
    return record


def run_specs(plan: TransferPlan, targets: list[ResolvedTarget], prior_dir: Path, out: Path,
              budgets: dict[str, dict[str, list[int]]] | None = None) -> list[RunSpec]:
    """One `RunSpec` per (target, arm, budget, seed); ``budgets[target][arm]`` overrides the plan's."""
    specs = []
    architecture = prior_architecture(prior_dir)
    for t in targets:
        for arm in plan.arms:
            for budget in (budgets or {}).get(t.label, {}).get(arm, plan.budgets):
                for seed in plan.seeds:
                    specs.append(RunSpec(
                        target=t.label, arm=arm, budget=int(budget), seed=int(seed), robot=t.robot, task=t.task,
                        metric=t.section.metric, prior=str(prior_dir), dataset=str(t.dataset),
                        train_episodes=t.train_episodes, steps=plan.training.steps(int(budget)),
                        batch_size=plan.training.batch_size, lr=plan.training.lr, lora_rank=plan.lora_rank,
                        episodes=plan.evaluation.episodes, slices=plan.evaluation.slices,
                        holdout_fraction=plan.evaluation.holdout_fraction,
                        run_dir=str(out / "runs" / t.label / arm / f"n{int(budget):04d}_s{int(seed)}"),
                        prior_identity=architecture if arm in ARCHITECTURE_ONLY_ARMS else str(prior_dir),
                        dataset_fingerprint=t.fingerprint))
    return specs


ARCHITECTURE_ONLY_ARMS = ("scratch", "act")  # arms that use no prior weights


def prior_architecture(prior_dir: Path) -> str:
    """What a scratch arm takes from the prior: its config and instruction cache, hashed."""
    digest = hashlib.sha256()
    for name in ("config.json", "instructions.safetensors"):
        path = Path(prior_dir) / name
        digest.update(name.encode())
        digest.update(path.read_bytes() if path.is_file() else b"")
    return "architecture:" + digest.hexdigest()[:16]


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("locksmith", "torch", "lerobot", "mujoco", "mink", "peft", "accelerate", "numpy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def run_audit(plan: TransferPlan, out: str | Path, plan_file: str | None = None, workers: int | None = None,
              ray_address: str | None = None, progress: bool = True, quick: bool = False,
              command: str = "locksmith audit") -> dict:
    """Run (or resume) the whole audit; returns the audit dict also written to ``audit.json``."""
    from locksmith.audit.summary import refine_budgets, summarize

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started, t0 = _now(), time.perf_counter()
    write_file_atomic(out / "plan.yaml", yaml.safe_dump(plan.to_dict(), sort_keys=False))
    prior_dir, prior_info = ensure_prior(plan, out, progress)
    from locksmith.policy.policy import CrossEmbodimentPolicy

    prior = CrossEmbodimentPolicy.from_pretrained(prior_dir)  # read once for every target's check
    targets = [_resolve_target(plan, t, prior, prior_dir, out) for t in plan.targets]
    budgets: dict[str, dict[str, list[int]]] = {}
    specs = run_specs(plan, targets, prior_dir, out)
    results = run_sweep(specs, workers=workers, ray_address=ray_address, progress=progress)
    for _ in range(plan.refine_rounds):
        budgets = refine_budgets(plan, targets, results, budgets)
        extra = [s for s in run_specs(plan, targets, prior_dir, out, budgets) if s.run_dir not in
                 {r.run_dir for r in specs}]
        if not extra:
            break
        specs += extra
        results = run_sweep(specs, workers=workers, ray_address=ray_address, progress=progress)
    audit = summarize(plan, targets, results, prior_info)
    audit["plan_file"] = plan_file
    audit["quick"] = quick
    audit["reproducibility"] = {
        "seeds": list(plan.seeds), "versions": _versions(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "dataset_fingerprints": {t.label: t.fingerprint for t in targets},
        "started": started, "finished": _now(), "seconds": time.perf_counter() - t0, "command": command,
        "workers": workers, "ray_address": ray_address,
    }
    from locksmith.audit.report import write_audit_json, write_report

    write_audit_json(audit, out / "audit.json")
    write_report(audit, out)
    return audit
