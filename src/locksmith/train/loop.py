"""One training loop for pretraining and adaptation, through `accelerate`.

The same call runs on one CPU process or data-parallel on several processes, GPUs or nodes
(``accelerate launch``). AdamW, linear warm-up then cosine decay, gradient clipping, seeded
sampling, a progress bar (step, loss, samples/s), metrics as JSON lines, and checkpoints written
atomically every ``checkpoint_every`` steps; ``resume=True`` continues a killed run from its last
checkpoint and reproduces the uninterrupted loss curve (batches are drawn from an RNG keyed by
(seed, process, step), so no sampler state needs saving).

Layout of ``out``:

    train_config.json      the resolved training config
    metrics.jsonl          one line per logged step
    checkpoints/last/      policy (save_pretrained) + training_state.pt (optimizer, scheduler, step)
    policy/                the final policy
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from locksmith.atomic import recover_swapped, swap_into_place
from locksmith.data.mixture import Mixture
from locksmith.policy.policy import CrossEmbodimentPolicy

log = logging.getLogger(__name__)

TRAINING_STATE = "training_state.pt"


SCHEDULES = ("cosine", "constant")


@dataclass(frozen=True)
class TrainConfig:
    """One training recipe: steps, batch, AdamW (lr, weight decay), linear warm-up then the
    ``schedule`` (``cosine`` decay to zero, or ``constant``), and gradient clipping (0: none).
    Every arm of an audit (ours and LeRobot's ACT) trains with the same recipe."""

    steps: int = 3000
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    grad_clip: float = 1.0
    seed: int = 0
    checkpoint_every: int = 500
    log_every: int = 25
    schedule: str = "cosine"

    def __post_init__(self) -> None:
        for f in ("steps", "batch_size", "checkpoint_every", "log_every"):
            if getattr(self, f) < 1:
                raise ValueError(f"{f}={getattr(self, f)} must be >= 1")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr={self.lr} must be a finite number > 0")
        if self.warmup_steps < 0 or self.grad_clip < 0 or self.weight_decay < 0:
            raise ValueError(f"warmup_steps={self.warmup_steps}, grad_clip={self.grad_clip} and "
                             f"weight_decay={self.weight_decay} must be >= 0")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule={self.schedule!r}; known schedules: {', '.join(SCHEDULES)}")


def lr_lambda(config: TrainConfig) -> Callable[[int], float]:
    def f(step: int) -> float:
        if step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        if config.schedule == "constant":
            return 1.0
        progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return f


def _atomic_dir_write(target: Path, write: Callable[[Path], None]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        write(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    swap_into_place(tmp, target)


def train(
    policy: CrossEmbodimentPolicy,
    mixture: Mixture,
    config: TrainConfig,
    out: str | Path,
    resume: bool = False,
    regularizer: Callable[[nn.Module], torch.Tensor] | None = None,
    progress: bool = True,
    extra_config: dict | None = None,
    snapshot_steps: Sequence[int] = (),
    save_snapshot: Callable[[CrossEmbodimentPolicy, Path], None] | None = None,
) -> dict:
    """Train ``policy``'s trainable parameters on ``mixture``; returns a summary dict.

    Args:
        regularizer: optional penalty added to the loss (e.g. λ‖φ‖² or L2-SP toward a prior).
        extra_config: recorded in ``train_config.json`` beside the training config.
        snapshot_steps: steps (below ``config.steps``) after which the policy is saved to
            ``out/snapshots/step-<k>`` (by ``save_snapshot``, default ``save_pretrained``), so that
            it can be evaluated along training; the summary's ``snapshots`` list gives each one's
            training seconds so far, the time spent saving snapshots excluded.
    """
    from accelerate import Accelerator
    from tqdm import tqdm

    out = Path(out)
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    torch.manual_seed(config.seed)
    params = [p for p in policy.parameters() if p.requires_grad]
    if not params:
        raise ValueError("no trainable parameters")
    optimizer = make_optimizer(params, config)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(config))
    start_step = 0
    last = out / "checkpoints" / "last"
    if resume and recover_swapped(last):
        log.info("recovered the last checkpoint from an interrupted swap (%s)", last)
    if resume and (last / TRAINING_STATE).is_file():
        loaded = CrossEmbodimentPolicy.from_pretrained(last)
        policy.load_state_dict(loaded.state_dict())
        state = torch.load(last / TRAINING_STATE, map_location="cpu", weights_only=False)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_step = int(state["step"])
        log.info("resuming from step %d (%s)", start_step, last)
    elif resume:
        log.info("no checkpoint under %s: starting from step 0", last)
    model, optimizer, scheduler = accelerator.prepare(policy, optimizer, scheduler)
    unwrapped: CrossEmbodimentPolicy = accelerator.unwrap_model(model)
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        resolved = {"train": asdict(config), "mixture_weights": mixture.weights,
                    "trainable_parameters": sum(p.numel() for p in params),
                    "processes": accelerator.num_processes, **(extra_config or {})}
        (out / "train_config.json").write_text(json.dumps(resolved, indent=2, default=str))
        log.info("training config: %s", json.dumps(resolved, default=str))
    metrics_path = out / "metrics.jsonl"
    if accelerator.is_main_process and metrics_path.exists():
        kept = [ln for ln in metrics_path.read_text().splitlines() if _metrics_step(ln) <= start_step]
        metrics_path.write_text("".join(k + "\n" for k in kept))
    per_process = max(1, config.batch_size // accelerator.num_processes)
    bar = tqdm(total=config.steps, initial=start_step, desc="train", unit="step",
               disable=not (progress and accelerator.is_main_process))
    t0, samples, last_loss = time.perf_counter(), 0, float("nan")
    paused, snapshots = 0.0, []
    wanted = {int(k) for k in snapshot_steps if 0 < int(k) < config.steps}
    model.train()
    for step in range(start_step, config.steps):
        rng = np.random.default_rng([config.seed, accelerator.process_index, step])
        batch = mixture.sample(per_process, rng)
        batch = {r: {k: v.to(accelerator.device) if torch.is_tensor(v) else v for k, v in b.items()}
                 for r, b in batch.items()}
        loss, metrics = model(batch)
        if regularizer is not None:
            penalty = regularizer(unwrapped)
            loss = loss + penalty
            metrics["regularizer"] = float(penalty.detach())
        optimizer.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        if config.grad_clip > 0:
            accelerator.clip_grad_norm_(params, config.grad_clip)
        optimizer.step()
        scheduler.step()
        samples += per_process * accelerator.num_processes
        last_loss = metrics["loss"]
        done = step + 1
        if accelerator.is_main_process and (done % config.log_every == 0 or done == config.steps):
            rate = samples / max(time.perf_counter() - t0, 1e-9)
            record = {"step": done, **metrics, "lr": scheduler.get_last_lr()[0], "samples_per_s": rate}
            with metrics_path.open("a") as fh:
                fh.write(json.dumps(record) + "\n")
            bar.set_postfix(loss=f"{last_loss:.4f}", sps=f"{rate:.0f}")
        bar.update(1)
        if done in wanted and accelerator.is_main_process:
            seconds, pause = time.perf_counter() - t0 - paused, time.perf_counter()
            path = out / "snapshots" / f"step-{done}"
            (save_snapshot or _save_policy)(unwrapped, path)
            snapshots.append({"step": done, "seconds": seconds, "path": str(path)})
            paused += time.perf_counter() - pause
        if done % config.checkpoint_every == 0 and done < config.steps:
            pause = time.perf_counter()
            _save(accelerator, unwrapped, optimizer, scheduler, done, last)
            paused += time.perf_counter() - pause
    bar.close()
    elapsed = time.perf_counter() - t0 - paused
    _save(accelerator, unwrapped, optimizer, scheduler, config.steps, last)  # every process: barrier inside
    if accelerator.is_main_process:
        unwrapped.save_pretrained(out / "policy")
    accelerator.wait_for_everyone()
    return {"steps": config.steps, "final_loss": last_loss, "seconds": elapsed,
            "samples_per_s": samples / max(elapsed, 1e-9), "resumed_from": start_step, "snapshots": snapshots}


def _save_policy(policy: CrossEmbodimentPolicy, path: Path) -> None:
    policy.save_pretrained(path)  # atomic itself


def _metrics_step(line: str) -> float:
    """The step of one metrics line; a line cut short by a kill counts as past any step."""
    try:
        return float(json.loads(line)["step"])
    except (json.JSONDecodeError, KeyError, TypeError):
        return math.inf


def make_optimizer(params: list[torch.nn.Parameter], config: TrainConfig) -> torch.optim.AdamW:
    """AdamW with torch's fused kernel (one pass over all parameters: the same update as the
    default multi-tensor path up to float rounding, about 3x cheaper on a CPU core); the
    multi-tensor path on devices without the fused kernel."""
    fused = all(p.device.type in ("cpu", "cuda") and p.dtype.is_floating_point for p in params)
    return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay, fused=fused or None)


def _save(accelerator, policy: CrossEmbodimentPolicy, optimizer, scheduler, step: int, target: Path) -> None:
    accelerator.wait_for_everyone()
    if not accelerator.is_main_process:
        return

    def write(tmp: Path) -> None:
        policy.save_pretrained(tmp / "policy_tmp")
        for item in (tmp / "policy_tmp").iterdir():
            item.rename(tmp / item.name)
        (tmp / "policy_tmp").rmdir()
        torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "step": step},
                   tmp / TRAINING_STATE)

    _atomic_dir_write(target, write)
