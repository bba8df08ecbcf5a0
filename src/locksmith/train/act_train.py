"""Training LeRobot's ACT for the audit (`train_act_peer`): from scratch as the peer baseline, or
fine-tuned from a LeRobot ACT prior; the policy, its inputs and its checkpoint folder are
`locksmith.train.act_peer`'s.

With ``checkpoint_steps``, `train_act_peer` also writes the checkpoint folder after each of those
steps to ``<out>_checkpoints/step-<k>`` (`intermediate_checkpoint`), so an audit can evaluate
along training; each one loads with `locksmith.evaluate.act_agent.load_act_peer`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from locksmith.data.loading import Demonstrations
from locksmith.data.mixture import ChunkSampler
from locksmith.data.targets import N_OBJECTS
from locksmith.policy.vision import camera_feature
from locksmith.train.act_inputs import (
    COLOUR_DIM,
    COLOUR_ENCODING,
    NAMED_ENCODING,
    NAMED_KEY,
    feature_stats,
    image_stats,
    named_colours,
    named_features,
)
from locksmith.train.act_peer import DEFAULT_SIZE, build_act_peer
from locksmith.train.lerobot_prior import LeRobotPrior
from locksmith.train.loop import TrainConfig, lr_lambda, make_optimizer

log = logging.getLogger(__name__)


def intermediate_checkpoint(out: str | Path, step: int) -> Path:
    """Where `train_act_peer` saves the checkpoint after ``step`` steps: ``<out>_checkpoints/step-<step>``."""
    out = Path(out)
    return out.parent / f"{out.name}_checkpoints" / f"step-{step}"


def train_act_peer(demos: Demonstrations, out: str | Path, config: TrainConfig,
                   checkpoint_steps: Sequence[int] = (), progress: bool = False,
                   prior: LeRobotPrior | None = None, action_space: str = "native", image_size: int | None = None,
                   **size: Any) -> dict:
    """Train LeRobot's ACT on ``demos`` and write its checkpoint folder to ``out``: from scratch,
    or, with ``prior``, fine-tuned from a LeRobot ACT checkpoint (``lerobot_finetune``).

    Args:
        demos: one robot's demos (already the budgeted subset; ``demos.stats`` normalizes).
        out: the checkpoint folder (replaced atomically).
        config: the training recipe, the same for every arm of an audit (steps, batch_size, lr,
            weight_decay, warmup_steps, schedule, grad_clip; ``seed`` seeds the initialisation,
            dropout, the CVAE's noise and the batches). Its checkpoint/log intervals are unused.
        checkpoint_steps: steps after which the checkpoint is also saved to
            `intermediate_checkpoint(out, k)`; those outside ``1 .. steps - 1`` are ignored (as
            `loop.train`'s ``snapshot_steps``), the final checkpoint being ``out``.
        progress: show a progress bar.
        prior: a LeRobot ACT read by `load_lerobot_prior`: the architecture is its
            (``size`` must be empty) and every weight but the robot's own input and output
            projections starts from it (`LeRobotPrior.initialise`); the rest as from scratch.
        action_space: ``native``, or ``intent``: ACT learns the demos' recorded intent and acts
            through the robot's intent decoder (`build_act_peer`).
        image_size: a pixel ACT (`build_act_peer`): the demos must hold the robot's first camera
            at this size (`load_demonstrations(images=True)`); it never reads their scene state.
        size: `ACTConfig` size fields (see `SIZE_FIELDS`), over `DEFAULT_SIZE`.

    Returns:
        ``{"wallclock_seconds", "train_seconds", "parameters", "final_loss", "final_l1_loss", "steps",
        "batch_size", "samples_per_s", "checkpoints"}``; ``final_loss`` is ACT's loss (L1 +
        kl_weight · KL) at the last step; ``checkpoints`` is ``[{"step", "train_seconds", "path"}]``
        in step order, ``out`` last, ``train_seconds`` counting optimisation only (no saving);
        with ``prior``, also ``"prior"``: `LeRobotPrior.record` and the weights copied and new.
    """
    import lerobot
    from tqdm import tqdm

    if prior is not None and size:
        raise ValueError(f"a prior fixes the architecture; got size fields {sorted(size)} as well")
    if prior is not None and image_size is not None:
        raise ValueError("fine-tuning a LeRobot prior on pixels is not built: its ACT reads the scene state")
    size = dict(prior.architecture) if prior is not None else size
    out = Path(out)
    spec = demos.spec
    camera = None if image_size is None else camera_feature(spec)
    if camera is not None and (camera not in demos.images or demos.images[camera].shape[1:3] != (image_size,) * 2):
        have = {k: tuple(v.shape[1:3]) for k, v in demos.images.items()}
        raise ValueError(f"{demos.root}: a pixel ACT reads {camera} at {image_size} px; the demos loaded hold "
                         f"{have or 'no images'} (record with the camera at that size, load with images=True)")
    env_dim = 0 if camera else demos.arrays["observation.environment_state"].shape[1]
    wanted = sorted({int(k) for k in checkpoint_steps if 0 < int(k) < config.steps})
    start = time.perf_counter()
    texts = sorted(set(demos.tasks))
    if camera:  # the task from the text alone: the scene is for the backbone to see
        named = torch.as_tensor(named_colours(demos.tasks))  # (N, COLOUR_DIM)
        parsed = float(named[:, :COLOUR_DIM // 2].sum(1).mean())
    else:  # each frame's task as ACT reads it: its instruction's named cube and pad in its own scene
        named = torch.as_tensor(named_features(demos.tasks, demos.arrays["observation.environment_state"]))  # (N, F)
        parsed = float(named[:, :N_OBJECTS].sum(1).mean())  # share of frames whose named cube was found
    if parsed < 1.0:
        log.warning("ACT peer: %.0f%% of the frames' instructions name no cube that ACT's task columns read "
                    "(free-form text?): ACT is task-blind on those", 100 * (1 - parsed))
    stats = {**demos.stats, NAMED_KEY: feature_stats(named.numpy())}
    if camera:
        stats[camera] = image_stats(demos.images[camera])
    if action_space == "intent":
        if "intent" not in demos.arrays:
            raise ValueError(f"{demos.root}: an intent ACT learns the demos' intent feature, which these demos lack")
        stats["intent"] = feature_stats(demos.arrays["intent"])
    torch.manual_seed(config.seed)  # the initialisation is part of the seeded run
    peer = build_act_peer(spec, stats, env_dim, action_space=action_space, image_size=image_size, **size)
    policy = peer.policy
    initialised = None
    if prior is not None:  # after the seeded build: the new projections are the seed's, the rest the prior's
        copy = prior.initialise(policy)
        initialised = {**prior.record(), "copied_parameters": copy["copied_parameters"],
                       "new_parameters": copy["new_parameters"], "new": copy["new"]}
    # ACT reads no language tokens: the sampler gets a one-number placeholder per text.
    sampler = ChunkSampler(demos, peer.chunk_size, {t: (np.zeros((1, 1), np.float32), np.zeros(1, bool))
                                                    for t in texts})
    # one group: a pixel ACT's random backbone trains at the arm's rate with the rest (ACT's preset
    # of a lower backbone rate is for ImageNet weights, which are not used here)
    params = [p for p in policy.parameters() if p.requires_grad]
    optimizer = make_optimizer(params, config)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(config))
    resolved = {"lerobot_policy": "act", "action_space": peer.action_space, "size": {**DEFAULT_SIZE, **size},
                "observation": "pixels" if camera else "state", "image_size": image_size,
                "train": asdict(config),
                "checkpoint_steps": wanted, "chunk_size": peer.chunk_size, "n_action_steps": peer.n_action_steps,
                "instructions": texts, "named_entities": COLOUR_ENCODING if camera else NAMED_ENCODING,
                "named_frames": parsed,
                "parameters": peer.num_parameters(), "prior": initialised}
    log.info("ACT %s for %s: %s", "fine-tuned from a LeRobot prior" if prior else "peer", spec.name,
             json.dumps(resolved))
    extra = {"lerobot_version": lerobot.__version__, "train": resolved,
             "data": {"root": str(demos.root), "fingerprint": demos.fingerprint, "episodes": demos.num_episodes,
                      "frames": demos.num_frames}}
    policy.train()
    metrics: dict[str, float] = {}
    loss_value = float("nan")
    checkpoints: list[dict] = []
    paused = 0.0  # seconds spent saving intermediate checkpoints, not training
    t0 = time.perf_counter()
    bar = tqdm(total=config.steps, desc="act", unit="step", disable=not progress)
    for step in range(config.steps):
        rng = np.random.default_rng([config.seed, 0, step])
        idx = rng.integers(0, len(sampler), size=config.batch_size)  # the draw of `ChunkSampler.sample`
        raw = sampler.gather(idx)
        if camera:  # (B, H, W, 3) uint8 → (B, 3, H, W) in [0, 1]; the task columns alone as ENV
            raw[camera] = raw[camera].float().movedim(-1, -3) / 255.0
            raw["observation.environment_state"] = named[idx]
        else:
            raw["observation.environment_state"] = torch.cat([raw["observation.environment_state"], named[idx]],
                                                             dim=-1)  # (B, E + NAMED_DIM)
        if peer.action_space == "intent":  # ACT's output feature is named action whatever it holds
            raw["action"] = raw["intent"]
        batch = peer.preprocessor({k: raw[k] for k in peer.train_keys})
        loss, metrics = policy.forward(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
        optimizer.step()
        scheduler.step()
        loss_value = float(loss.detach())
        bar.set_postfix(loss=f"{loss_value:.4f}")
        bar.update(1)
        done = step + 1
        if done in wanted:
            seconds, pause = time.perf_counter() - t0 - paused, time.perf_counter()
            path = peer.save(intermediate_checkpoint(out, done),
                             extra={**extra, "step": done, "final_loss": loss_value})
            checkpoints.append({"step": done, "train_seconds": seconds, "path": str(path)})
            paused += time.perf_counter() - pause
    bar.close()
    train_seconds = time.perf_counter() - t0 - paused
    policy.eval()
    summary = {"final_loss": loss_value, "final_l1_loss": float(metrics.get("l1_loss", float("nan"))),
               "steps": config.steps, "batch_size": config.batch_size, "parameters": peer.num_parameters(),
               "train_seconds": train_seconds,
               "samples_per_s": config.steps * config.batch_size / max(train_seconds, 1e-9)}
    peer.save(out, extra={**extra, "step": config.steps, "final_loss": summary["final_loss"],
                          "final_l1_loss": summary["final_l1_loss"]})
    checkpoints.append({"step": config.steps, "train_seconds": train_seconds, "path": str(out)})
    summary["checkpoints"] = checkpoints
    if initialised is not None:
        summary["prior"] = initialised
    summary["wallclock_seconds"] = time.perf_counter() - start
    return summary


__all__ = ["intermediate_checkpoint", "train_act_peer"]
