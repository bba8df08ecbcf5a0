"""Cut a key for a new robot: check compatibility, pick N demos, train the recipe's φ.

The N demos are a seeded subset of the dataset's episodes; the normalization stats are computed
from those N episodes only, for every recipe alike (scratch included), so no arm sees data
beyond its budget. The same training loop as pretraining runs; LoRA is merged for deployment.
The run writes ``out/policy`` (a checkpoint `locksmith eval` takes) and ``out/adapt.json``
(recipe, demos used and their episode indices, trainable parameters, wall-clock, loss).
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from locksmith.atomic import write_json_atomic
from locksmith.data.loading import Demonstrations, load_demonstrations
from locksmith.data.mixture import ChunkSampler, Mixture
from locksmith.embodiment.spec import EmbodimentSpec
from locksmith.policy.adapters import (
    build_adapted,
    get_recipe,
    make_regularizer,
    merge_lora,
    zero_shot_key,
)
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
          prior: CrossEmbodimentPolicy | None = None, data: Demonstrations | None = None,
          spec: EmbodimentSpec | str | Path | None = None, episodes: Sequence[int] | None = None,
          checked: bool = False, snapshot_steps: Sequence[int] = ()) -> dict:
    """Adapt a prior (or train `scratch` with the prior's architecture) to a new robot's demos.

    Args:
        spec: the robot's spec when it is not beside the dataset.
        episodes: the positions in ``data`` to train on (default: `choose_episodes` of ``demos``).
        checked: the caller already ran the compatibility check on this prior and dataset (the
            audit checks once per target, not once per run).
        snapshot_steps: steps at which the key is also saved (`train`'s snapshots, LoRA merged).
    """
    rec = get_recipe(recipe)
    out = Path(out)
    if prior is None:
        prior = CrossEmbodimentPolicy.from_pretrained(prior_dir)
    if demos == 0:
        return _zero_shot(prior, prior_dir, dataset, spec, out)
    report = None
    if not checked:
        report = check_compatibility(prior, prior_dir, dataset, spec)
        if not report.ok and not force:
            raise AdaptRefused(report)
    if data is None:
        # The check already loaded the data; load again only when forced past a load error.
        data = report.demos if report is not None and report.demos is not None else load_demonstrations(dataset, spec)
    if prior.config.pixels:  # a pixel key trains on the camera's pictures, at the prior's size
        from locksmith.policy.vision import camera_feature

        camera, size = camera_feature(data.spec), prior.config.image_size
        held = data.images.get(camera)
        if held is None or held.shape[1:3] != (size, size):
            data = load_demonstrations(dataset, spec, images=True, image_size=size)
    episodes = (choose_episodes(data.num_episodes, demos, train_config.seed) if episodes is None
                else np.asarray(sorted(int(e) for e in episodes)))
    subset = data.subset(episodes)
    torch.manual_seed(train_config.seed)
    policy, info = build_adapted(prior, subset.spec, subset.stats, rec, lora_rank, lora_alpha, demos=subset)
    robot = subset.spec.name
    texts = sorted(set(subset.tasks))
    tokens, masks = policy.language.encode(texts)
    sampler = ChunkSampler(subset, policy.config.embodiment(robot).chunk_size,
                           {t: (tokens[i], masks[i]) for i, t in enumerate(texts)})
    if rec.freeze_vision:  # the encoder never changes: its tokens once per frame, not once per sample
        sampler.cache_image_tokens(policy.camera_feature(robot), policy.trunk.vision)
    regularizer = make_regularizer(policy, rec, weight, prior=prior if rec.name == "full" else None)
    start = time.perf_counter()
    def save_key(trained: CrossEmbodimentPolicy, path: Path) -> None:
        (merge_lora(copy.deepcopy(trained)) if rec.lora else trained).save_pretrained(path)

    summary = train(policy, Mixture({robot: sampler}, {robot: 1.0}), train_config, out,
                    regularizer=regularizer, progress=progress,
                    extra_config={"adapt": {**info, "dataset": str(dataset), "demos": len(episodes)}},
                    snapshot_steps=snapshot_steps, save_snapshot=save_key)
    if rec.lora:
        merge_lora(policy)
        policy.save_pretrained(out / "policy")
    seconds = time.perf_counter() - start
    record = {
        **info, "robot": robot, "prior": None if prior_dir is None else str(prior_dir), "dataset": str(dataset),
        "demos": int(len(episodes)), "episodes": episodes.tolist(), "frames": subset.num_frames,
        "wallclock_seconds": seconds, "final_loss": summary["final_loss"], "train": asdict(train_config),
        "weight": weight, "compatibility": None if report is None else report.to_dict(),
        "train_seconds": summary["seconds"], "snapshots": summary["snapshots"],
    }
    write_json_atomic(out / "adapt.json", record)
    return record


def _zero_shot(prior: CrossEmbodimentPolicy, prior_dir: str | Path | None, dataset: str | Path | None,
               spec: EmbodimentSpec | str | Path | None, out: Path) -> dict:
    """`adapt` with 0 demos: an intent prior's zero-shot key (`zero_shot_key`), saved as a key is."""
    from locksmith.embodiment.spec import load_spec

    if spec is None:
        if dataset is None:
            raise ValueError("a zero-shot key needs the robot's spec: give a spec or a dataset with one beside it")
        spec = load_demonstrations(dataset).spec
    elif not isinstance(spec, EmbodimentSpec):
        spec = load_spec(spec)
    start = time.perf_counter()
    policy, info = zero_shot_key(prior, spec)
    policy.save_pretrained(out / "policy")
    record = {**info, "robot": spec.name, "prior": None if prior_dir is None else str(prior_dir),
              "dataset": None if dataset is None else str(dataset), "demos": 0, "episodes": [], "frames": 0,
              "wallclock_seconds": time.perf_counter() - start, "final_loss": None, "train": None, "weight": 0.0,
              "compatibility": None, "train_seconds": 0.0, "snapshots": []}
    write_json_atomic(out / "adapt.json", record)
    return record
