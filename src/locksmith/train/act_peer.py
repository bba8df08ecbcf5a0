"""LeRobot's ACT as a second scratch arm of the transfer audit: the "peer baseline".

The peer is LeRobot 0.6.1's own `ACTPolicy` (its config, model, loss and processors), trained
from scratch on one robot's in-memory demos, so a transfer claim is measured against a
published architecture as well as against our own policy trained from scratch. It sees what
our policy sees minus the instruction (ACT takes no language):

    observation.state (B, S)             ──► normalize ─┐
    observation.environment_state (B, E) ──► normalize ─┴─► ACT (CVAE, no images) ─► (B, H, A)
                                                              ─► unnormalize ─► native units

Actions are absolute, as lerobot's ACT predicts them (our policy may predict joint targets
relative to the joint state: that is part of what the comparison measures).

Sizes and rules, chosen to make the comparison about the architecture, not the setup:

- chunk ``H`` ≈ one second at the robot's rate, ``n_action_steps`` ≈ half of it executed before
  re-planning: `EmbodimentConfig.from_spec`, the same numbers as our policy;
- default size (`DEFAULT_SIZE`) ≈ 0.92 M parameters on the Panda, our default policy ≈ 0.96 M
  (see ``benchmarks/train_throughput.py``); no vision backbone is built without images;
- batches from `ChunkSampler` (the same chunks and ``action_is_pad`` as our policy), drawn from an
  RNG keyed by (seed, 0, step) as in `locksmith.train.loop`;
- normalization from the demos' own stats (``demos.stats``, those our policy uses) through
  lerobot's processors, mean/std for state, environment state and action (ACT's default modes;
  ACT's default map leaves ``ENV`` features raw, we normalize them as our policy does). A
  dimension with std below `locksmith.policy.normalize.EPS` keeps a unit scale (as our
  normalizer does): lerobot's own ``std + 1e-8`` would turn an object that never moved in a
  one-demo budget into a 1e8 input at evaluation;
- AdamW with ACT's weight decay and lerobot-train's gradient clipping (the optimizer preset's
  ``grad_clip_norm``) and a constant learning rate (ACT's preset has no scheduler); steps,
  batch and lr come from the caller, who applies the same rule to every arm.

Layout of ``out`` (written atomically: a temporary folder, then a rename):

    config.json, model.safetensors         ACTPolicy.save_pretrained (lerobot)
    policy_preprocessor.json, policy_postprocessor.json, *.safetensors   lerobot's processors
    normalizer_stats.json                  {robot: {feature: {stat: list}}}, the demos' stats
    spec.yaml                              the robot's embodiment spec
    locksmith_peer.json                    {"kind": "act", "robot", "chunk_size", "n_action_steps", ...}
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from locksmith.atomic import swap_into_place
from locksmith.data.loading import Demonstrations
from locksmith.data.mixture import ChunkSampler
from locksmith.embodiment.spec import EmbodimentSpec
from locksmith.policy.config import EmbodimentConfig
from locksmith.policy.normalize import EPS
from locksmith.policy.policy import STATS_FILE

log = logging.getLogger(__name__)

PEER_KIND = "act"
MARKER_FILE = "locksmith_peer.json"
SPEC_FILE = "spec.yaml"
INPUT_KEYS = ("observation.state", "observation.environment_state")
TRAIN_KEYS = (*INPUT_KEYS, "action", "action_is_pad")

DEFAULT_SIZE: dict[str, Any] = {
    "dim_model": 128, "n_heads": 4, "dim_feedforward": 384,
    "n_encoder_layers": 2, "n_decoder_layers": 1, "n_vae_encoder_layers": 2,
}
"""≈ 0.92 M parameters on the Panda (8-D state and action, chunk 20); ACT's own default is 52 M."""

SIZE_FIELDS = ("dim_model", "n_heads", "dim_feedforward", "feedforward_activation", "pre_norm",
               "n_encoder_layers", "n_decoder_layers", "use_vae", "latent_dim", "n_vae_encoder_layers",
               "dropout", "kl_weight")
"""The `ACTConfig` fields a caller may set through ``**size``."""


def _stats_to_json(stats: Mapping[str, Mapping[str, Mapping[str, np.ndarray]]]) -> str:
    return json.dumps({r: {f: {k: np.asarray(v).tolist() for k, v in s.items()} for f, s in st.items()}
                       for r, st in stats.items()})


def processor_stats(stats: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, dict[str, np.ndarray]]:
    """The stats handed to lerobot's (un)normalizer: ``std`` below `EPS` replaced by 1 (see above)."""
    out = {}
    for feature in (*INPUT_KEYS, "action"):
        s = {k: np.asarray(v, dtype=np.float64) for k, v in stats[feature].items()}
        s["std"] = np.where(s["std"] < EPS, 1.0, s["std"])
        out[feature] = s
    return out


@dataclass
class ActPeer:
    """A LeRobot ACT policy for one robot with its processors, spec and stats.

    Attributes:
        policy: lerobot's `ACTPolicy`.
        preprocessor / postprocessor: lerobot's pipelines (normalize inputs / unnormalize actions).
        spec: the robot's embodiment spec.
        stats: ``{robot: {feature: {stat: array}}}``, the raw demo stats (the layout of
            `CrossEmbodimentPolicy.stats`, so the safety shield reads either the same way).
    """

    policy: Any
    preprocessor: Any
    postprocessor: Any
    spec: EmbodimentSpec
    stats: dict[str, dict[str, dict[str, np.ndarray]]]

    @property
    def robot(self) -> str:
        return self.spec.name

    @property
    def chunk_size(self) -> int:
        return int(self.policy.config.chunk_size)

    @property
    def n_action_steps(self) -> int:
        return int(self.policy.config.n_action_steps)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.policy.parameters())

    @torch.no_grad()
    def predict_action_chunk(self, state: torch.Tensor | np.ndarray,
                             environment_state: torch.Tensor | np.ndarray) -> torch.Tensor:
        """(B, state_dim), (B, env_dim) → (B, chunk_size, action_dim), native units (on the CPU)."""
        batch = {"observation.state": torch.as_tensor(np.asarray(state), dtype=torch.float32),
                 "observation.environment_state": torch.as_tensor(np.asarray(environment_state), dtype=torch.float32)}
        chunk = self.policy.predict_action_chunk(self.preprocessor(batch))  # (B, H, A), normalized
        return self.postprocessor(chunk)

    def save(self, out: str | Path, extra: Mapping[str, Any] | None = None) -> Path:
        """Write the checkpoint folder atomically (see the module docstring for its layout)."""
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
        try:
            self.policy.save_pretrained(tmp)
            self.preprocessor.save_pretrained(tmp)
            self.postprocessor.save_pretrained(tmp)
            (tmp / STATS_FILE).write_text(_stats_to_json(self.stats))
            (tmp / SPEC_FILE).write_text(self.spec.to_yaml())
            marker = {"kind": PEER_KIND, "robot": self.robot, "chunk_size": self.chunk_size,
                      "n_action_steps": self.n_action_steps, **(extra or {})}
            (tmp / MARKER_FILE).write_text(json.dumps(marker, indent=2, default=str))
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        swap_into_place(tmp, out)
        return out


def build_act_peer(spec: EmbodimentSpec, stats: Mapping[str, Mapping[str, np.ndarray]], env_dim: int,
                   **size: Any) -> ActPeer:
    """A fresh (randomly initialised: seed torch first) ACT for ``spec`` with normalization from ``stats``.

    Args:
        spec: the robot's spec (state and action sizes, control rate → chunk).
        stats: the demos' stats per feature (``Demonstrations.stats``).
        env_dim: width of ``observation.environment_state``.
        size: `ACTConfig` fields among `SIZE_FIELDS`, over `DEFAULT_SIZE`.
    """
    from lerobot.configs.types import FeatureType, NormalizationMode, PolicyFeature
    from lerobot.policies.act.configuration_act import ACTConfig
    from lerobot.policies.act.modeling_act import ACTPolicy
    from lerobot.policies.act.processor_act import make_act_pre_post_processors

    unknown = sorted(set(size) - set(SIZE_FIELDS))
    if unknown:
        raise ValueError(f"unknown ACT size field(s) {unknown}; known: {list(SIZE_FIELDS)}")
    missing = [k for k in (*INPUT_KEYS, "action") if k not in stats]
    if missing:
        raise ValueError(f"normalization stats lack {missing}")
    emb = EmbodimentConfig.from_spec(spec)
    config = ACTConfig(
        input_features={
            "observation.state": PolicyFeature(FeatureType.STATE, (spec.state_dim,)),
            "observation.environment_state": PolicyFeature(FeatureType.ENV, (env_dim,)),
        },
        output_features={"action": PolicyFeature(FeatureType.ACTION, (spec.action_dim,))},
        chunk_size=emb.chunk_size,
        n_action_steps=emb.n_action_steps,
        normalization_mapping={"STATE": NormalizationMode.MEAN_STD, "ENV": NormalizationMode.MEAN_STD,
                               "ACTION": NormalizationMode.MEAN_STD},
        pretrained_backbone_weights=None,  # no images: no backbone is built (and nothing to download)
        device="cpu",
        **{**DEFAULT_SIZE, **size},
    )
    policy = ACTPolicy(config)
    preprocessor, postprocessor = make_act_pre_post_processors(config, processor_stats(stats))
    raw = {f: {k: np.asarray(v) for k, v in stats[f].items()} for f in (*INPUT_KEYS, "action")}
    return ActPeer(policy, preprocessor, postprocessor, spec, {spec.name: raw})


def train_act_peer(demos: Demonstrations, out: str | Path, steps: int, batch_size: int, lr: float, seed: int,
                   progress: bool = False, **size: Any) -> dict:
    """Train LeRobot's ACT from scratch on ``demos`` and write its checkpoint folder to ``out``.

    Args:
        demos: one robot's demos (already the budgeted subset; ``demos.stats`` normalizes).
        out: the checkpoint folder (replaced atomically).
        steps / batch_size / lr: the training step rule, the same for every arm of an audit.
        seed: seeds the initialisation, dropout, the CVAE's noise and the batches.
        progress: show a progress bar.
        size: `ACTConfig` size fields (see `SIZE_FIELDS`), over `DEFAULT_SIZE`.

    Returns:
        ``{"wallclock_seconds", "parameters", "final_loss", "steps", "batch_size", "samples_per_s",
        "final_l1_loss"}``; ``final_loss`` is ACT's loss (L1 + kl_weight · KL) at the last step.
    """
    from lerobot.optim import AdamWConfig
    from tqdm import tqdm

    for name, value in (("steps", steps), ("batch_size", batch_size)):
        if value < 1:
            raise ValueError(f"{name}={value} must be >= 1")
    if not lr > 0:
        raise ValueError(f"lr={lr} must be > 0")
    out = Path(out)
    spec = demos.spec
    env_dim = demos.arrays["observation.environment_state"].shape[1]
    start = time.perf_counter()
    torch.manual_seed(seed)  # the initialisation is part of the seeded run
    peer = build_act_peer(spec, demos.stats, env_dim, **size)
    policy = peer.policy
    # ACT ignores the instruction: the sampler gets a one-token placeholder per task.
    language = {t: (np.zeros((1, 1), np.float32), np.zeros(1, bool)) for t in set(demos.tasks)}
    sampler = ChunkSampler(demos, peer.chunk_size, language)
    optimizer_config = AdamWConfig(lr=lr, weight_decay=policy.config.optimizer_weight_decay)
    groups = [g for g in policy.get_optim_params() if g["params"]]  # the backbone group is empty
    optimizer = optimizer_config.build(groups)
    params = [p for g in groups for p in g["params"]]
    resolved = {"lerobot_policy": "act", "size": {**DEFAULT_SIZE, **size}, "steps": steps, "batch_size": batch_size,
                "lr": lr, "seed": seed, "weight_decay": optimizer_config.weight_decay,
                "grad_clip_norm": optimizer_config.grad_clip_norm, "chunk_size": peer.chunk_size,
                "n_action_steps": peer.n_action_steps, "parameters": peer.num_parameters()}
    log.info("ACT peer for %s: %s", spec.name, json.dumps(resolved))
    policy.train()
    metrics: dict[str, float] = {}
    loss_value = float("nan")
    t0 = time.perf_counter()
    bar = tqdm(total=steps, desc="act", unit="step", disable=not progress)
    for step in range(steps):
        rng = np.random.default_rng([seed, 0, step])
        raw = sampler.sample(batch_size, rng)
        batch = peer.preprocessor({k: raw[k] for k in TRAIN_KEYS})
        loss, metrics = policy.forward(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, optimizer_config.grad_clip_norm)
        optimizer.step()
        loss_value = float(loss.detach())
        bar.set_postfix(loss=f"{loss_value:.4f}")
        bar.update(1)
    bar.close()
    train_seconds = time.perf_counter() - t0
    policy.eval()
    summary = {"final_loss": loss_value, "final_l1_loss": float(metrics.get("l1_loss", float("nan"))),
               "steps": steps, "batch_size": batch_size, "parameters": peer.num_parameters(),
               "samples_per_s": steps * batch_size / max(train_seconds, 1e-9)}
    import lerobot

    peer.save(out, extra={
        "lerobot_version": lerobot.__version__, "train": resolved,
        "data": {"root": str(demos.root), "fingerprint": demos.fingerprint, "episodes": demos.num_episodes,
                 "frames": demos.num_frames},
        "final_loss": summary["final_loss"], "final_l1_loss": summary["final_l1_loss"],
    })
    summary["wallclock_seconds"] = time.perf_counter() - start
    return summary


__all__ = ["DEFAULT_SIZE", "MARKER_FILE", "PEER_KIND", "SIZE_FIELDS", "SPEC_FILE", "ActPeer", "build_act_peer",
           "processor_stats", "train_act_peer"]
