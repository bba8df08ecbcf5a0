"""Pretrain the shared prior on a weighted mixture of robots' demonstrations."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import torch

from locksmith.data.loading import Demonstrations
from locksmith.data.mixture import ChunkSampler, Mixture, mixture_weights
from locksmith.embodiment.spec import EmbodimentSpec
from locksmith.policy.config import EmbodimentConfig, PolicyConfig
from locksmith.policy.normalize import training_stats
from locksmith.policy.policy import CrossEmbodimentPolicy
from locksmith.train.loop import TrainConfig, train
from locksmith.train.scene_frames import SceneFrames, scene_frames_loss

log = logging.getLogger(__name__)


def build_policy(demos: Mapping[str, Demonstrations], **trunk: int | float) -> CrossEmbodimentPolicy:
    """A fresh policy with one stem/head/normalizer per dataset's robot, stats from the data."""
    relative = bool(trunk.get("relative_actions", PolicyConfig.relative_actions))
    config = PolicyConfig(embodiments=tuple(EmbodimentConfig.from_spec(d.spec, relative_actions=relative)
                                            for d in demos.values()), **trunk)
    stats = {name: training_stats(d, config.embodiment(name)) for name, d in demos.items()}
    specs: dict[str, EmbodimentSpec] = {name: d.spec for name, d in demos.items()}
    return CrossEmbodimentPolicy(config, stats=stats, specs=specs)


def build_mixture(policy: CrossEmbodimentPolicy, demos: Mapping[str, Demonstrations],
                  weights: Mapping[str, float] | None = None, temperature: float = 1.0) -> Mixture:
    """Samplers for each robot's data (instructions embedded once, cached in the policy)."""
    texts = sorted({t for d in demos.values() for t in d.tasks})
    tokens, masks = policy.language.encode(texts)
    language = {t: (tokens[i], masks[i]) for i, t in enumerate(texts)}
    samplers = {name: ChunkSampler(d, policy.config.embodiment(name).chunk_size, language) for name, d in demos.items()}
    lam = mixture_weights({name: d.num_frames for name, d in demos.items()}, weights, temperature)
    log.info("mixture weights: %s", {k: round(v, 3) for k, v in lam.items()})
    return Mixture(samplers, lam)


def pretrain(demos: Mapping[str, Demonstrations], out: str | Path, train_config: TrainConfig,
             weights: Mapping[str, float] | None = None, temperature: float = 1.0, resume: bool = False,
             progress: bool = True, scene_frames: Mapping[str, SceneFrames] | None = None,
             **trunk: int | float) -> tuple[CrossEmbodimentPolicy, dict]:
    """Build a policy for ``demos``' robots and train it on their mixture; with ``scene_frames``
    (a pixel policy with ``scene_weight``) each step also takes the scene loss on a batch of them."""
    torch.manual_seed(train_config.seed)  # the initialization is part of the seeded run
    policy = build_policy(demos, **trunk)
    mixture = build_mixture(policy, demos, weights, temperature)
    log.info("policy: %d parameters", policy.num_parameters())
    extra_loss = (scene_frames_loss(policy, scene_frames, train_config.batch_size, train_config.seed)
                  if scene_frames else None)
    summary = train(policy, mixture, train_config, out, resume=resume, progress=progress, regularizer=extra_loss,
                    extra_config={
        **({"scene_frames": {robot: len(f) for robot, f in scene_frames.items()}} if scene_frames else {}),
        "policy": {"parameters": policy.num_parameters(), **{k: v for k, v in trunk.items()}},
        "datasets": {n: {"root": str(d.root), "episodes": d.num_episodes, "frames": d.num_frames,
                         "fingerprint": d.fingerprint} for n, d in demos.items()},
    })
    return policy, summary
