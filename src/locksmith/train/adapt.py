"""Cut a key for a new robot: check compatibility, pick N demos, train the recipe's φ.

The N demos are a seeded subset of the dataset's episodes; the normalization stats are computed
from those N episodes only, for every recipe alike (scratch included), so no arm sees data
beyond its budget. The same training loop as pretraining runs; LoRA is merged for deployment.
The run writes ``out/policy`` (a checkpoint `locksmith eval` takes) and ``out/adapt.json``
(recipe, demos used and their episode indices, trainable parameters, wall-clock, loss).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from locksmith.atomic import write_json_atomic
from locksmith.data.loading import Demonstrations, load_demonstrations
from locksmith.data.mixture import ChunkSampler, Mixture
from locksmith.policy.adapters import build_adapted, get_recipe, make_regularizer, merge_lora
from locksmith.policy.policy import CrossEmbodimentPolicy
from locksmith.train.compat import CompatibilityReport, check_compatibility
from locksmith.train.loop import TrainConfig, train

log = logging.getLogger(__name__)


class AdaptRefused(ValueError):
    """The compatibility check found errors (pass force=True to adapt anyway)."""

    def __init__(self, report: CompatibilityReport):
        super().__init__(report.format())
        self.report = report


def choose_episodes(n_available: int, n: int | None, seed: int) -> np.ndarray:
    """A seeded subset of ``n`` episode positions (sorted); all of them when ``n`` is None."""
    if n is None:
        return np.arange(n_available)
    if not 1 <= n <= n_available:
        raise ValueError(f"--demos {n}: the dataset has {n_available} episodes")
    return np.sort(np.random.default_rng([seed, 7]).permutation(n_available)[:n])


def adapt(prior_dir: str | Path | None, dataset: str | Path, recipe: str, out: str | Path, demos: int | None = None,
          train_config: TrainConfig = TrainConfig(steps=1000), lora_rank: int = 8, lora_alpha: float = 16.0,
          weight: float = 0.0, force: bool = False, progress: bool = True,
          prior: CrossEmbodimentPolicy | None = None, data: Demonstrations | None = None) -> dict:
    """Adapt a prior (or train `scratch` with the prior's architecture) to a new robot's demos."""
    rec = get_recipe(recipe)
    out = Path(out)
    if prior is None:
        prior = CrossEmbodimentPolicy.from_pretrained(prior_dir)
    report = check_compatibility(prior, prior_dir, dataset)
    if not report.ok and not force:
        raise AdaptRefused(report)
    if data is None:
        # The check already loaded the data; load again only when forced past a load error.
        data = report.demos if report.demos is not None else load_demonstrations(dataset)
    episodes = choose_episodes(data.num_episodes, demos, train_config.seed)
    subset = data.subset(episodes)
    torch.manual_seed(train_config.seed)
    policy, info = build_adapted(prior, subset.spec, subset.stats, rec, lora_rank, lora_alpha, demos=subset)
    robot = subset.spec.name
    texts = sorted(set(subset.tasks))
    tokens, masks = policy.language.encode(texts)
    sampler = ChunkSampler(subset, policy.config.embodiment(robot).chunk_size,
                           {t: (tokens[i], masks[i]) for i, t in enumerate(texts)})
    regularizer = make_regularizer(policy, rec, weight, prior=prior if rec.name == "full" else None)
    start = time.perf_counter()
    summary = train(policy, Mixture({robot: sampler}, {robot: 1.0}), train_config, out,
                    regularizer=regularizer, progress=progress,
                    extra_config={"adapt": {**info, "dataset": str(dataset), "demos": len(episodes)}})
    if rec.lora:
        merge_lora(policy)
        policy.save_pretrained(out / "policy")
    seconds = time.perf_counter() - start
    record = {
        **info, "robot": robot, "prior": None if prior_dir is None else str(prior_dir), "dataset": str(dataset),
        "demos": int(len(episodes)), "episodes": episodes.tolist(), "frames": subset.num_frames,
        "wallclock_seconds": seconds, "final_loss": summary["final_loss"], "train": asdict(train_config),
        "weight": weight, "compatibility": report.to_dict(),
    }
    write_json_atomic(out / "adapt.json", record)
    return record
