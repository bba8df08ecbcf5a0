"""The audit's sweep: every (target, arm, budget, seed) is an independent run whose result is a file.

    runs/<target>/<arm>/n<budget>_s<seed>-<key>/result.json   the finished run (written last, atomically)
    runs/<target>/<arm>/n<budget>_s<seed>-<key>/work/         its checkpoint and training files
    runs/<target>/<arm>/tune/lr<lr>_n<budget>_s<seed>-<key>/  a learning-rate candidate (validation seeds)

A run is keyed by its content (`RunSpec.key`): digests of the prior's weights (of its config and
instruction cache for the arms that only borrow its architecture; of ACT's size alone for ACT from
scratch beside our prior, which reads nothing of it), of the target's dataset and
spec, the scripted expert's version and every setting. A run whose ``result.json`` exists with the
same settings is never redone; re-pointing a prior folder at other weights, or re-recording a
dataset, gives other keys and so other runs. A sweep killed at any point (SIGKILL included)
resumes losing at most the runs in flight: their ``work/`` folders are cleared and they start
over. Runs go to local worker processes by default (one core each), or to a Ray cluster
(``ray_address``); both call the same `execute_run`.

Paired by construction: every arm of one (budget, seed) trains on the same demos (the resolved
dataset episode indices travel in the spec and are written into ``result.json``), with the same
training recipe, and every run of a target is scored on the same evaluation episodes, whose
per-episode outcomes ``result.json`` keeps keyed by slice and evaluation seed. Each run is also
evaluated at ``checkpoint_steps`` along training, so time to threshold is measured, not assumed.
"""

from __future__ import annotations

import fcntl
import hashlib
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
from locksmith.audit.plan import PEER_ARMS
from locksmith.train.lerobot_prior import LEROBOT_ARMS

log = logging.getLogger(__name__)

RESULT_FILE = "result.json"
ACT_ARMS = (*PEER_ARMS, *LEROBOT_ARMS)  # the arms `train_act_peer` trains
PATH_FIELDS = ("run_dir", "threads", "prior", "dataset", "spec_path")  # where things are, not what they are


@dataclass(frozen=True)
class RunSpec:
    """Everything one run needs; picklable, so it travels to a worker process or a Ray node."""

    target: str
    arm: str  # scratch, act, an adapter recipe, or lerobot_finetune (a LeRobot prior's)
    budget: int  # demonstrations
    seed: int  # training seed (demo subset, initialisation, batches)
    robot: str  # the embodiment's name
    task: str
    metric: str  # success | offline_action_error
    prior: str  # prior checkpoint folder (scratch and act use only its architecture; `audit.priors`)
    prior_digest: str  # sha256 of what the arm takes from the prior (weights, or config + instructions)
    dataset: str  # the target's demonstrations
    dataset_fingerprint: str  # content hash of the dataset's data files
    demo_episodes: tuple[int, ...]  # dataset episode indices this run trains on
    steps: int
    batch_size: int
    lr: float
    warmup_steps: int
    schedule: str
    grad_clip: float
    weight_decay: float
    weight: float  # λ: L2-SP for full, λ‖φ‖² for the other recipes, 0 for none
    lora_rank: int
    lora_alpha: float
    checkpoint_steps: tuple[int, ...]  # also evaluated at these steps (the final step always)
    episodes: int  # evaluation episodes per slice
    slices: tuple[str, ...]
    eval_seed_base: int  # evaluation (or validation) seeds: `evaluate.rollout.evaluation_seeds`
    eval_block: int
    holdout_fraction: float
    run_dir: str
    spec_path: str | None = None  # the target's spec file when it is not beside the dataset
    spec_digest: str = ""
    action_scale: tuple[float, ...] | None = None  # offline metric: the target's one fixed scale
    expert_version: int = 0
    purpose: str = "report"  # report | tune
    threads: int = 1
    image_size: int | None = None  # a pixel audit: every arm reads the robot's first camera at this size

    @property
    def settings(self) -> dict:
        """What decides the result (a finished run with other settings is redone)."""
        data = asdict(self)
        for key in PATH_FIELDS:
            data.pop(key)
        for key in ("slices", "demo_episodes", "checkpoint_steps"):
            data[key] = list(data[key])
        if data["action_scale"] is not None:
            data["action_scale"] = list(data["action_scale"])
        if data["image_size"] is None:  # the scene state: keyed as before pixels existed
            data.pop("image_size")
        return data

    @property
    def key(self) -> str:
        """The run's content key: a digest of its settings."""
        return hashlib.sha256(json.dumps(self.settings, sort_keys=True).encode()).hexdigest()[:16]

    def training_record(self) -> dict:
        return {"lr": self.lr, "warmup_steps": self.warmup_steps, "schedule": self.schedule,
                "grad_clip": self.grad_clip, "weight_decay": self.weight_decay, "steps": self.steps,
                "batch_size": self.batch_size, "weight": self.weight, "lora_rank": self.lora_rank,
                "lora_alpha": self.lora_alpha}


@dataclass
class SweepProgress:
    done: int = 0
    skipped: int = 0
    failed: list[str] = field(default_factory=list)


def _read_result(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        result = json.loads(path.read_text())
    except (json.JSONDecodeError, OSError):
        return None
    return result if isinstance(result, dict) else None


def load_result(spec: RunSpec) -> dict | None:
    """The finished result of this run with these settings, or None (`_keyed_by_prior` for runs
    of ACT from scratch finished under an earlier key)."""
    result = _read_result(Path(spec.run_dir) / RESULT_FILE)
    if result is not None and result.get("settings") == spec.settings:
        return result
    return _keyed_by_prior(spec)


def _keyed_by_prior(spec: RunSpec) -> dict | None:
    """A run of ACT from scratch beside our own prior, finished while its key still held the
    prior's architecture digest (which it never read): the same settings but that digest, trained
    at the size this key stands for (as its checkpoint's marker records). None otherwise."""
    if spec.arm not in PEER_ARMS:
        return None
    from locksmith.audit.priors import earlier_act_digest
    from locksmith.train.act_peer import DEFAULT_SIZE, MARKER_FILE

    for path in sorted(Path(spec.run_dir).parent.glob(f"n{spec.budget:04d}_s{spec.seed}-*/{RESULT_FILE}")):
        result = _read_result(path)
        old = (result or {}).get("settings")
        if not isinstance(old, dict):
            continue
        same = {**old, "prior_digest": spec.prior_digest} == spec.settings
        if not same or not earlier_act_digest(str(old.get("prior_digest", "")), spec.prior_digest):
            continue
        try:  # the checkpoint where `_train_act` writes it, wherever the audit folder has moved since
            size = json.loads((path.parent / "work" / "act" / MARKER_FILE).read_text())["train"]["size"]
        except (KeyError, TypeError, OSError, ValueError):
            continue
        if size == DEFAULT_SIZE:
            log.info("%s: finished under its earlier key, kept", path.parent)
            return result
    return None


def _train(spec: RunSpec, work: Path) -> tuple[Path, dict, list[dict]]:
    """Train this run's arm on its demos; returns (checkpoint, training record, snapshots).

    Snapshots are ``{"step", "train_seconds", "path"}`` along training, the final policy last.
    """
    from locksmith.data.loading import load_demonstrations
    from locksmith.train.adapt import adapt
    from locksmith.train.loop import TrainConfig

    data = load_demonstrations(spec.dataset, spec.spec_path, images=spec.image_size is not None,
                               image_size=spec.image_size)
    config = TrainConfig(steps=spec.steps, batch_size=spec.batch_size, lr=spec.lr, seed=spec.seed,
                         weight_decay=spec.weight_decay, warmup_steps=spec.warmup_steps,
                         grad_clip=spec.grad_clip, schedule=spec.schedule, checkpoint_every=spec.steps)
    if spec.arm in ACT_ARMS:
        return _train_act(spec, data, config, work)
    prior, recipe = None, spec.arm
    if spec.arm == "scratch_native":  # scratch with the prior's trunk and plain per-robot heads
        from locksmith.policy.adapters import native_twin
        from locksmith.policy.policy import CrossEmbodimentPolicy

        prior, recipe = native_twin(CrossEmbodimentPolicy.from_pretrained(spec.prior)), "scratch"
    record = adapt(spec.prior, spec.dataset, recipe, work, prior=prior, train_config=config, lora_rank=spec.lora_rank,
                   lora_alpha=spec.lora_alpha, weight=spec.weight, progress=False, data=data, spec=spec.spec_path,
                   episodes=spec.demo_episodes, checked=True, snapshot_steps=spec.checkpoint_steps)
    snapshots = [{"step": int(c["step"]), "train_seconds": float(c["seconds"]), "path": c["path"]}
                 for c in record["snapshots"]]
    snapshots.append({"step": spec.steps, "train_seconds": float(record["train_seconds"]),
                      "path": str(work / "policy")})
    return work / "policy", record, snapshots


def _train_act(spec: RunSpec, data, config, work: Path) -> tuple[Path, dict, list[dict]]:
    """The ACT arms, through the one ACT training path (`train_act_peer`): ``act`` from scratch
    (at the architecture of a LeRobot prior when the audit has one, else at the peer's default
    size), ``lerobot_finetune`` from the LeRobot prior's weights."""
    from locksmith.train.act_train import train_act_peer
    from locksmith.train.lerobot_checkpoint import is_lerobot_checkpoint
    from locksmith.train.lerobot_prior import load_lerobot_prior, read_architecture

    if spec.arm in LEROBOT_ARMS:
        options = {"prior": load_lerobot_prior(spec.prior)}
    elif is_lerobot_checkpoint(spec.prior):
        options = read_architecture(spec.prior)
    else:
        options = {}
    subset = data.subset(list(spec.demo_episodes))
    if spec.arm == "act_intent":  # ACT on intent, acting through the robot's decoder
        options["action_space"] = "intent"
    if spec.image_size is not None:  # ACT reads the camera our pixel arms read
        options["image_size"] = spec.image_size
    record = train_act_peer(subset, work / "act", config=config, checkpoint_steps=spec.checkpoint_steps,
                            progress=False, **options)
    record = {**record, "demos": len(spec.demo_episodes), "frames": subset.num_frames}
    snapshots = [{"step": int(c["step"]), "train_seconds": float(c["train_seconds"]), "path": str(c["path"])}
                 for c in record.pop("checkpoints")]
    return work / "act", record, snapshots


def _evaluate(spec: RunSpec, checkpoint: Path | str) -> dict:
    """The run's metric on its evaluation episodes, with every episode's outcome keyed."""
    if spec.metric == "offline_action_error":
        import numpy as np

        from locksmith.evaluate.offline import offline_action_error

        r = offline_action_error(checkpoint, spec.dataset, holdout_fraction=spec.holdout_fraction,
                                 spec=spec.spec_path, action_scale=np.asarray(spec.action_scale))
        return {"value": r["offline_action_error"], "episode_keys": [], "outcomes": [], "per_slice": {},
                "shield_interventions": {}, "offline": r}
    from locksmith.evaluate.evaluator import evaluate

    r = evaluate(spec.robot, spec.task, spec.episodes, list(spec.slices), checkpoint=checkpoint,
                 seed=spec.eval_block, workers=1, seed_base=spec.eval_seed_base)
    keys, outcomes, per_slice = [], [], {}
    for name in spec.slices:
        s = r["per_slice"][name]
        keys += [f"{name}/{seed}" for seed in s["seeds"]]
        outcomes += [int(o) for o in s["outcomes"]]
        per_slice[name] = {"successes": int(sum(s["outcomes"])), "episodes": s["episodes"],
                           "success_rate": s["success_rate"], "shield_interventions": s["shield_interventions"]}
    return {"value": r["success_rate"], "episode_keys": keys, "outcomes": outcomes, "per_slice": per_slice,
            "shield_interventions": r["shield_interventions"], "offline": None,
            "mean_episode_seconds": r["mean_episode_seconds"]}


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
    checkpoint, record, snapshots = _train(spec, work)
    t1 = time.perf_counter()
    checkpoints = []
    for snap in snapshots:
        final = snap is snapshots[-1]
        evaluation = _evaluate(spec, checkpoint if final else snap["path"])
        checkpoints.append({"step": snap["step"], "train_seconds": snap["train_seconds"],
                            "value": evaluation["value"], "outcomes": evaluation["outcomes"]})
        if not final:
            shutil.rmtree(snap["path"], ignore_errors=True)  # evaluated: only the final key is kept
    result = {
        "key": spec.key, "settings": spec.settings,
        "target": spec.target, "arm": spec.arm, "budget": spec.budget, "seed": spec.seed,
        "metric": spec.metric, "purpose": spec.purpose, **evaluation, "checkpoints": checkpoints,
        "train_seconds": snapshots[-1]["train_seconds"], "eval_seconds": time.perf_counter() - t1,
        "demo_episodes": list(spec.demo_episodes), "eval_seeds": _eval_seeds(spec),
        "demos": int(record.get("demos", spec.budget)), "frames": int(record.get("frames", 0)),
        "trainable_parameters": int(record.get("trainable_parameters", record.get("parameters", 0))),
        "final_loss": record.get("final_loss"), "checkpoint": str(checkpoint), "training": spec.training_record(),
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    write_json_atomic(run_dir / RESULT_FILE, result)
    return result


def _eval_seeds(spec: RunSpec) -> list[int]:
    from locksmith.evaluate.rollout import evaluation_seeds

    return evaluation_seeds(spec.episodes, spec.eval_block, spec.eval_seed_base) if spec.metric == "success" else []


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
              progress: bool = True, desc: str = "audit runs") -> list[dict]:
    """Run every spec not already finished; returns all results in the order of ``specs``.

    Args:
        workers: local processes (default: the number of cores); each run uses one thread.
        ray_address: a Ray cluster's address, or ``"local"`` to start a Ray instance here.
    """
    from tqdm import tqdm

    if not specs:
        return []
    results: dict[str, dict] = {}
    todo = []
    for spec in specs:
        done = load_result(spec)
        if done is not None:
            results[spec.run_dir] = done
        else:
            todo.append(spec)
    log.info("sweep: %d runs, %d already finished, %d to run", len(specs), len(results), len(todo))
    bar = tqdm(total=len(specs), initial=len(results), desc=desc, unit="run", disable=not progress)

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
