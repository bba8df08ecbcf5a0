"""The audit's sweep: every (target, arm, budget, seed) is an independent run whose result is a file.

    runs/<target>/<arm>/n<budget>_s<seed>/result.json   the finished run (written last, atomically)
    runs/<target>/<arm>/n<budget>_s<seed>/work/         its checkpoint and training files

A run whose ``result.json`` exists and was made by the same run settings is never redone, so a
sweep killed at any point (SIGKILL included) resumes losing at most the runs in flight: their
``work/`` folders are cleared and they start over. Runs go to local worker processes by default
(one core each), or to a Ray cluster (``ray_address``); both call the same `execute_run`.

Every arm of one (budget, seed) trains on the same seeded subset of the target's demos, with the
same step rule, and is evaluated on the same evaluation episodes (paired comparison).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from locksmith.atomic import write_json_atomic

log = logging.getLogger(__name__)

RESULT_FILE = "result.json"


@dataclass(frozen=True)
class RunSpec:
    """Everything one run needs; picklable, so it travels to a worker process or a Ray node."""

    target: str
    arm: str  # scratch, act, or an adapter recipe
    budget: int  # demonstrations
    seed: int
    robot: str  # the embodiment's name
    task: str
    metric: str  # success | offline_action_error
    prior: str  # prior checkpoint folder (scratch uses its architecture)
    dataset: str  # the target's demonstrations
    train_episodes: tuple[int, ...]  # positions in the dataset the subset is drawn from
    steps: int
    batch_size: int
    lr: float
    lora_rank: int
    episodes: int  # evaluation episodes per slice
    slices: tuple[str, ...]
    holdout_fraction: float
    run_dir: str
    threads: int = 1
    # What of the prior decides the result: its folder for an adapted arm; for the arms that
    # only borrow its architecture (scratch, act) a hash of its config and instructions, so
    # a retrained or moved prior of the same architecture does not redo them.
    prior_identity: str = ""
    # The target dataset's content fingerprint: a dataset re-recorded at the same path redoes
    # every run on it.
    dataset_fingerprint: str = ""

    @property
    def settings(self) -> dict:
        """What decides the result (a finished run with other settings is redone)."""
        data = asdict(self)
        for key in ("run_dir", "threads", "prior_identity"):
            data.pop(key)
        data["prior"] = self.prior_identity or self.prior
        data["slices"] = list(self.slices)
        data["train_episodes"] = list(self.train_episodes)
        return data


@dataclass
class SweepProgress:
    done: int = 0
    skipped: int = 0
    failed: list[str] = field(default_factory=list)


def load_result(spec: RunSpec) -> dict | None:
    """The finished result of this run with these settings, or None."""
    path = Path(spec.run_dir) / RESULT_FILE
    if not path.is_file():
        return None
    try:
        result = json.loads(path.read_text())
    except (json.JSONDecodeError, OSError):
        return None
    return result if result.get("settings") == spec.settings else None


def _train(spec: RunSpec, work: Path) -> tuple[Path, dict]:
    """Train this run's arm on its demo subset; returns (checkpoint, training record)."""
    import numpy as np

    from locksmith.data.loading import load_demonstrations
    from locksmith.train.adapt import adapt, choose_episodes
    from locksmith.train.loop import TrainConfig

    data = load_demonstrations(spec.dataset)
    pool = data.subset(list(spec.train_episodes)) if len(spec.train_episodes) != data.num_episodes else data
    config = TrainConfig(steps=spec.steps, batch_size=spec.batch_size, lr=spec.lr, seed=spec.seed,
                         checkpoint_every=spec.steps, warmup_steps=min(100, max(1, spec.steps // 10)))
    if spec.arm == "act":
        from locksmith.train.act_peer import train_act_peer

        positions = choose_episodes(pool.num_episodes, spec.budget, spec.seed)
        subset = pool.subset(positions)
        record = train_act_peer(subset, work / "act", steps=spec.steps, batch_size=spec.batch_size,
                                lr=spec.lr, seed=spec.seed, progress=False)
        record = {**record, "demos": int(len(positions)), "frames": subset.num_frames,
                  "episodes": np.asarray(positions).tolist()}
        return work / "act", record
    record = adapt(spec.prior, spec.dataset, spec.arm, work, demos=spec.budget, train_config=config,
                   lora_rank=spec.lora_rank, lora_alpha=2.0 * spec.lora_rank, progress=False, data=pool)
    record.pop("compatibility", None)
    return work / "policy", record


def _evaluate(spec: RunSpec, checkpoint: Path) -> dict:
    if spec.metric == "offline_action_error":
        from locksmith.evaluate.offline import offline_action_error

        r = offline_action_error(checkpoint, spec.dataset, holdout_fraction=spec.holdout_fraction)
        return {"value": r["offline_action_error"], "offline": r}
    from locksmith.evaluate.evaluator import evaluate

    r = evaluate(spec.robot, spec.task, spec.episodes, list(spec.slices), checkpoint=checkpoint, seed=0,
                 workers=1)
    per_slice = {name: {"successes": int(round(s["success_rate"] * s["episodes"])), "episodes": s["episodes"],
                        "success_rate": s["success_rate"], "shield_interventions": s["shield_interventions"]}
                 for name, s in r["per_slice"].items()}
    return {"value": r["success_rate"], "successes": int(round(r["success_rate"] * r["episodes"])),
            "episodes": r["episodes"], "per_slice": per_slice,
            "shield_interventions": r["shield_interventions"], "mean_episode_seconds": r["mean_episode_seconds"]}


def execute_run(spec: RunSpec) -> dict:
    """Train and evaluate one run; writes ``result.json`` last. Safe to call again after a kill."""
    import torch

    torch.set_num_threads(max(1, spec.threads))
    run_dir = Path(spec.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    # One process per run at a time: a worker orphaned by a killed sweep still holds the lock
    # (released by the OS when it dies), and the rerun waits for it instead of racing it.
    with open(run_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _execute_locked(spec, run_dir)


def _execute_locked(spec: RunSpec, run_dir: Path) -> dict:
    done = load_result(spec)
    if done is not None:
        return done
    work = run_dir / "work"
    if work.exists():  # left by a run that was killed: start it over
        shutil.rmtree(work)
    work.mkdir(parents=True)
    t0 = time.perf_counter()
    checkpoint, record = _train(spec, work)
    train_seconds = float(record.get("wallclock_seconds", time.perf_counter() - t0))
    t1 = time.perf_counter()
    evaluation = _evaluate(spec, checkpoint)
    result = {
        "settings": spec.settings,
        "target": spec.target, "arm": spec.arm, "budget": spec.budget, "seed": spec.seed,
        "metric": spec.metric, **evaluation,
        "train_seconds": train_seconds, "eval_seconds": time.perf_counter() - t1,
        "demos": int(record.get("demos", spec.budget)), "frames": int(record.get("frames", 0)),
        "trainable_parameters": int(record.get("trainable_parameters", record.get("parameters", 0))),
        "final_loss": record.get("final_loss"), "checkpoint": str(checkpoint),
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    write_json_atomic(run_dir / RESULT_FILE, result)
    return result


def _run_local(todo: Sequence[RunSpec], workers: int, on_result: Callable[[dict], None]) -> None:
    if workers <= 1:
        for spec in todo:
            on_result(execute_run(spec))
        return
    import multiprocessing as mp

    from locksmith.embodiment.registry import install_registrations, registrations

    # Robots registered in this process (a user's own) travel to the workers.
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                             initializer=install_registrations, initargs=(registrations(),)) as pool:
        pending = {pool.submit(execute_run, s) for s in todo}
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                on_result(fut.result())


def _execute_with_registrations(spec: RunSpec, robots) -> dict:
    """`execute_run` on a Ray worker, after installing the driver's registered robots."""
    from locksmith.embodiment.registry import install_registrations

    install_registrations(robots)
    return execute_run(spec)


def _run_ray(todo: Sequence[RunSpec], address: str, on_result: Callable[[dict], None]) -> None:
    import ray

    from locksmith.embodiment.registry import registrations

    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=None if address == "local" else address, include_dashboard=False,
                 log_to_driver=False, num_cpus=os.cpu_count() if address == "local" else None)
    try:
        remote = ray.remote(num_cpus=1)(_execute_with_registrations)
        robots = registrations()
        pending = [remote.remote(s, robots) for s in todo]
        while pending:
            finished, pending = ray.wait(pending, num_returns=1)
            for ref in finished:
                on_result(ray.get(ref))
    finally:
        if started_here:
            ray.shutdown()


def run_sweep(specs: Sequence[RunSpec], workers: int | None = None, ray_address: str | None = None,
              progress: bool = True) -> list[dict]:
    """Run every spec not already finished; returns all results in the order of ``specs``.

    Args:
        workers: local processes (default: the number of cores); each run uses one thread.
        ray_address: a Ray cluster's address, or ``"local"`` to start a Ray instance here.
    """
    from tqdm import tqdm

    results: dict[str, dict] = {}
    todo = []
    for spec in specs:
        done = load_result(spec)
        if done is not None:
            results[spec.run_dir] = done
        else:
            todo.append(spec)
    log.info("sweep: %d runs, %d already finished, %d to run", len(specs), len(results), len(todo))
    bar = tqdm(total=len(specs), initial=len(results), desc="audit runs", unit="run", disable=not progress)

    run_dirs = {json.dumps(s.settings, sort_keys=True): s.run_dir for s in todo}

    def on_result(result: dict) -> None:
        results[run_dirs[json.dumps(result["settings"], sort_keys=True)]] = result
        bar.set_postfix_str(f"{result['target']}/{result['arm']} n={result['budget']} s={result['seed']}: "
                            f"{result['value']:.3f}")
        bar.update(1)

    try:
        if todo:
            if ray_address:
                _run_ray(todo, ray_address, on_result)
            else:
                _run_local(todo, workers or min(2, os.cpu_count() or 1), on_result)
    finally:
        bar.close()
    return [results[s.run_dir] for s in specs]
