"""Run a transfer audit end to end: prior (cached) → target demos → threshold → tuning → sweep → report.

The prior is the published one (`locksmith.priors`) unless the plan names a checkpoint (ours or
a LeRobot ACT's) or a pretraining stage; a plan's own prior is built once into the user cache
(``~/.cache/locksmith/priors/<digest of its settings>/``, resumed when killed) and shared by
every audit that names the same settings. What each arm takes from the prior: `audit.priors`.

Layout of the audit folder ``out``:

    plan.yaml                     the resolved plan
    data/<robot>_<task>/          the targets' expert demonstrations (LeRobot datasets):
                                  `TransferPlan.pool_size` episodes, twice the largest budget by default
    expert/<target>.json          the scripted expert on the evaluation episodes (threshold)
    runs/<target>/<arm>/tune/...  learning-rate candidates, scored on validation seeds
    runs/<target>/<arm>/n<N>_s<S>-<key>/result.json   one file per finished run (see `sweep`)
    panels/<target>-<arm>-...webp                    rollout clips of the headline and baseline arms
    audit.json, report.md, report.html                the summary and the report

Every stage is a file, so a rerun after a crash redoes only what is missing. Every choice is
made before the evaluation episodes are seen: the threshold and headline recipe are in the plan,
and each arm's learning rate is chosen on validation seeds (`VALIDATION_SEED_BASE`).
"""

from __future__ import annotations

import logging
import os
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

import yaml

from locksmith.atomic import write_file_atomic
from locksmith.audit.plan import PEER_ARMS, TransferPlan
from locksmith.audit.priors import (
    ARCHITECTURE_ONLY_ARMS,
    ArmSources,
    arm_sources,
    ensure_prior,
)
from locksmith.audit.sweep import RunSpec, run_sweep
from locksmith.audit.targets import (
    ResolvedTarget,
    demo_episodes,
    preflight,
    resolve_dataset_target,
    resolve_sim_target,
)
from locksmith.train.lerobot_prior import LEROBOT_ARMS

log = logging.getLogger(__name__)

def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _run_spec(plan: TransferPlan, t: ResolvedTarget, arm: str, budget: int, seed: int, lr: float, out: Path,
              sources: ArmSources, purpose: str = "report") -> RunSpec:
    from locksmith.evaluate.horizon import VALIDATION_SEED_BASE
    from locksmith.evaluate.rollout import EVAL_SEED_BASE
    from locksmith.sim.expert import EXPERT_VERSION

    rule = plan.training_for(t.section)
    recipe = rule.recipe(arm)
    steps = rule.steps(budget)
    tune = purpose == "tune"
    spec = RunSpec(
        target=t.label, arm=arm, budget=int(budget), seed=int(seed), robot=t.robot, task=t.task,
        metric=t.section.metric, prior=str(sources.directory(arm)), prior_digest=sources.digest(arm),
        dataset=str(t.dataset), dataset_fingerprint=t.fingerprint, demo_episodes=demo_episodes(t, budget, seed),
        steps=steps, batch_size=rule.batch_size, lr=float(lr), warmup_steps=rule.warmup_steps(steps),
        schedule=rule.schedule, grad_clip=rule.grad_clip, weight_decay=rule.weight_decay,
        weight=recipe.weight if arm not in (*ARCHITECTURE_ONLY_ARMS, *LEROBOT_ARMS) else 0.0,
        lora_rank=recipe.lora_rank, lora_alpha=recipe.alpha,
        checkpoint_steps=() if tune else rule.checkpoint_steps(steps),
        episodes=rule.tune_episodes if tune else plan.evaluation.episodes, slices=plan.evaluation.slices,
        eval_seed_base=VALIDATION_SEED_BASE if tune else EVAL_SEED_BASE,
        eval_block=plan.evaluation.seed_block, holdout_fraction=plan.evaluation.holdout_fraction, run_dir="",
        spec_path=None if t.spec_path is None else str(t.spec_path), spec_digest=t.spec_digest,
        action_scale=t.action_scale, expert_version=EXPERT_VERSION if t.section.source == "sim" else 0,
        purpose=purpose, image_size=t.image_size)
    folder = out / "runs" / t.label / arm
    name = f"n{int(budget):04d}_s{int(seed)}-{spec.key[:10]}"
    run_dir = folder / "tune" / f"lr{lr:g}_{name}" if tune else folder / name
    return RunSpec(**{**spec.__dict__, "run_dir": str(run_dir)})


def tuning_specs(plan: TransferPlan, targets: list[ResolvedTarget], sources: ArmSources,
                 out: Path) -> list[RunSpec]:
    """One validation run per (target, arm, learning rate) when the grid has more than one rate."""
    specs = []
    for t in targets:
        grid = plan.training_for(t.section).lr
        if len(grid) < 2:
            continue
        budget = min(plan.tune_budget(t.section), len(t.train_episodes))
        specs += [_run_spec(plan, t, arm, budget, plan.seeds[0], lr, out, sources, "tune")
                  for arm in plan.arms for lr in grid]
    return specs


def choose_learning_rates(plan: TransferPlan, targets: list[ResolvedTarget], results: list[dict]) -> dict:
    """``{target: {arm: TuningRecord}}``: per arm the rate with the best validation metric (the
    smaller rate on a tie); the grid's only rate when it has one."""
    from locksmith.audit.schema import TuningRecord

    chosen: dict[str, dict] = {}
    for t in targets:
        higher = t.section.metric == "success"
        grid = plan.training_for(t.section).lr
        chosen[t.label] = {}
        for arm in plan.arms:
            scores = {float(r["training"]["lr"]): float(r["value"]) for r in results
                      if r["target"] == t.label and r["arm"] == arm}
            if not scores:
                lr = grid[0]
                chosen[t.label][arm] = TuningRecord(arm=arm, grid=grid, budget=0, seed=plan.seeds[0],
                                                    validation_episodes=0, validation={}, chosen_lr=lr)
                continue
            best = max(sorted(scores), key=lambda lr: scores[lr] if higher else -scores[lr])
            sample = next(r for r in results if r["target"] == t.label and r["arm"] == arm)
            chosen[t.label][arm] = TuningRecord(
                arm=arm, grid=grid, budget=int(sample["budget"]), seed=int(sample["seed"]),
                validation_episodes=int(sample["settings"]["episodes"]) if higher else 0,
                validation={f"{lr:g}": v for lr, v in sorted(scores.items())}, chosen_lr=best)
    return chosen


def run_specs(plan: TransferPlan, targets: list[ResolvedTarget], sources: ArmSources, out: Path, tuning: dict,
              budgets: dict[str, dict[str, list[int]]] | None = None) -> list[RunSpec]:
    """One `RunSpec` per (target, arm, budget, seed); ``budgets[target][arm]`` overrides the plan's."""
    specs = []
    for t in targets:
        for arm in plan.arms:
            lr = tuning[t.label][arm].chosen_lr
            for budget in (budgets or {}).get(t.label, {}).get(arm, plan.budgets):
                for seed in plan.seeds:
                    specs.append(_run_spec(plan, t, arm, int(budget), int(seed), lr, out, sources))
    return specs


def _means(target: ResolvedTarget, results: list[dict], arm: str) -> dict[int, float]:
    """``{budget: mean metric over seeds}`` of ``arm`` on ``target`` so far."""
    by_budget: dict[int, list[float]] = {}
    for r in results:
        if r["target"] == target.label and r["arm"] == arm:
            by_budget.setdefault(int(r["budget"]), []).append(float(r["value"]))
    return {b: sum(v) / len(v) for b, v in sorted(by_budget.items())}


def _reaches(target: ResolvedTarget, value: float) -> bool:
    return value >= target.threshold if target.section.metric == "success" else value <= target.threshold


def peer_budget_cap(target: ResolvedTarget, results: list[dict]) -> float:
    """The largest budget at which a peer arm can still change which baseline is stronger.

    The stronger baseline is the one that reaches the threshold with fewer demos, so once our
    own scratch arm's mean over seeds has reached it at budget B, a peer that has not reached it
    by B cannot win: the peer runs at budgets up to B only (every budget while scratch has not
    reached the threshold).
    """
    return next((float(b) for b, m in _means(target, results, "scratch").items() if _reaches(target, m)),
                float("inf"))


def peer_budget_floor(target: ResolvedTarget, results: list[dict], arm: str) -> float:
    """The largest budget at which the peer ``arm``'s mean has missed the threshold (-inf: none yet).

    The crossing is read off a monotone curve (`crossing`), so a peer that misses the threshold at
    B demos has not crossed below B either: its runs below B cannot change its demos-to-threshold.
    """
    return max((float(b) for b, m in _means(target, results, arm).items() if not _reaches(target, m)),
               default=float("-inf"))


def _run_peers(targets: list[ResolvedTarget], peers: list[RunSpec], earlier: list[dict],
               sweep: dict) -> tuple[list[RunSpec], list[dict]]:
    """Run the peer's specs from the largest budget down, one budget (all seeds) at a time per
    (target, arm), dropping the budgets below one where its mean missed the threshold
    (`peer_budget_floor`, over ``earlier`` results and these)."""
    by_label = {t.label: t for t in targets}
    pending, ran, results = list(peers), [], []
    while True:
        floors = {(s.target, s.arm): peer_budget_floor(by_label[s.target], earlier + results, s.arm)
                  for s in pending}
        dropped = [s for s in pending if s.budget < floors[(s.target, s.arm)]]
        if dropped:
            log.info("peer runs skipped below a budget where the peer missed the threshold: %s",
                     sorted({(s.target, s.arm, s.budget) for s in dropped}))
        pending = [s for s in pending if s not in dropped]
        if not pending:
            return ran, results
        tops: dict[tuple[str, str], int] = {}
        for s in pending:
            tops[(s.target, s.arm)] = max(tops.get((s.target, s.arm), 0), s.budget)
        level = [s for s in pending if s.budget == tops[(s.target, s.arm)]]
        results += run_sweep(level, **sweep)
        ran += level
        pending = [s for s in pending if s not in level]


def _run_arms(plan: TransferPlan, targets: list[ResolvedTarget], specs: list[RunSpec], earlier: list[dict],
              sweep: dict) -> tuple[list[RunSpec], list[dict]]:
    """Run ``specs``: our own arms first, then the peer arms where they can still matter
    (`peer_budget_cap`, `peer_budget_floor`), unless the plan asks for every peer run.
    Returns (specs run, results)."""
    own = [s for s in specs if s.arm not in PEER_ARMS]
    results = run_sweep(own, **sweep)
    peers = [s for s in specs if s.arm in PEER_ARMS]
    if plan.peer_runs == "all":
        return own + peers, results + run_sweep(peers, **sweep)
    caps = {t.label: peer_budget_cap(t, earlier + results) for t in targets}
    skipped = [s for s in peers if s.budget > caps[s.target]]
    if skipped:
        log.info("peer runs skipped where scratch already reached the threshold: %s",
                 sorted({(s.target, s.budget) for s in skipped}))
    ran, peer_results = _run_peers(targets, [s for s in peers if s.budget <= caps[s.target]],
                                   earlier + results, sweep)
    return own + ran, results + peer_results


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
              command: str = "locksmith audit"):
    """Run (or resume) the whole audit; returns the `AuditResult` also written to ``audit.json``."""
    from locksmith.audit.summary import refine_budgets, summarize

    out = Path(out)
    checked = preflight(plan, plan_file)  # a refused plan leaves nothing on disk
    out.mkdir(parents=True, exist_ok=True)
    started, t0 = _now(), time.perf_counter()
    write_file_atomic(out / "plan.yaml", yaml.safe_dump(plan.to_dict(), sort_keys=False))
    prior_dir, prior_info = ensure_prior(plan, out, progress)
    # Our policy: the targets' compatibility check and scratch's architecture (the published one
    # beside a LeRobot prior, `audit.priors`).
    architecture_dir = checked.prior_dir if checked.prior_dir is not None else prior_dir
    prior = checked.prior
    if prior is None:  # the plan pretrained its own: read it once for every target's check
        from locksmith.policy.policy import CrossEmbodimentPolicy

        prior = CrossEmbodimentPolicy.from_pretrained(prior_dir)
    targets = []
    for i, t in enumerate(plan.targets):
        if t.source == "sim":
            targets.append(resolve_sim_target(plan, t, prior, architecture_dir, out))
        elif checked.prior is not None:  # resolved and checked before anything was written
            targets.append(checked.targets[i])
        else:  # its compatibility check had to wait for the plan's own prior
            targets.append(resolve_dataset_target(plan, i, t, checked.demos[i], prior, architecture_dir))
    image_size = prior.config.image_size if prior.config.pixels else None
    prior_info = {**prior_info, "image_size": image_size}
    sources = arm_sources(prior_dir, prior_info, architecture_dir, image_size)
    tune = tuning_specs(plan, targets, sources, out)
    tuned = run_sweep(tune, workers=workers, ray_address=ray_address, progress=progress, desc="tuning runs")
    tuning = choose_learning_rates(plan, targets, tuned)
    budgets: dict[str, dict[str, list[int]]] = {}
    sweep = dict(workers=workers, ray_address=ray_address, progress=progress)
    specs, results = _run_arms(plan, targets, run_specs(plan, targets, sources, out, tuning), [], sweep)
    for _ in range(plan.refine_rounds):
        budgets = refine_budgets(plan, targets, results, budgets)
        extra = [s for s in run_specs(plan, targets, sources, out, tuning, budgets)
                 if s.run_dir not in {r.run_dir for r in specs}]
        ran, new = _run_arms(plan, targets, extra, results, sweep)
        if not ran:
            break
        specs, results = specs + ran, results + new
    reproducibility = {
        "seeds": list(plan.seeds), "versions": _versions(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "dataset_fingerprints": {t.label: t.fingerprint for t in targets},
        "started": started, "finished": _now(), "seconds": time.perf_counter() - t0, "command": command,
        "workers": workers, "ray_address": ray_address,
    }
    audit = summarize(plan, targets, results, prior_info, tuning, plan_file=plan_file, quick=quick,
                      reproducibility=reproducibility, tuned=tuned)
    from locksmith.audit.panels import add_panels

    audit = add_panels(audit, results, out)  # rollout clips under out/panels/ (never fails the audit)
    from locksmith.audit.report import write_report
    from locksmith.audit.schema import write_audit_json

    write_audit_json(audit, out / "audit.json")
    write_report(audit, out)
    return audit
