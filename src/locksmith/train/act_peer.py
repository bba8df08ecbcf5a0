"""LeRobot's ACT as a second scratch arm of the transfer audit: the "peer baseline".

The peer is LeRobot 0.6.1's own `ACTPolicy` (its config, model, loss and processors), trained
from scratch on one robot's in-memory demos, so a transfer claim is measured against a
published architecture as well as against our own policy trained from scratch. It sees the
scene and the task, the task as the cube and pad the instruction names:

    observation.state (B, S) ─────────────────────────────────────────► normalize ─┐
    observation.environment_state (B, E) ─┬──────────────────────┐                 ├─► ACT (CVAE) ─► (B, H, A)
                                          ▼                      ▼                 │   ─► unnormalize ─► native
    instruction ──────► named_features (B, 12) ─► concat (B, E + 12) ─► normalize ─┘       units

ACT 0.6.1 reads exactly two vector inputs, so the task goes in as the last `NAMED_DIM` = 12
columns of its ``observation.environment_state``: `locksmith.train.act_inputs` says which and why.

With ``image_size`` (the audit's ACT beside a pixel prior) ACT reads pixels as our pixel policy
does, never the scene state: the robot's first camera (`policy.vision.camera_feature`) rendered
at that square size, through ACT's own ResNet-18 backbone (randomly initialised: no weights are
downloaded; it trains at the arm's rate with the rest, as every weight of an arm from scratch
does), normalized by the demos' per-channel image stats; its ``ENV`` input is the task alone,
`act_inputs.named_colours` (the named cube's and pad's colours):

    observation.state (B, S) ───────────────────────► normalize ─┐
    observation.images.<camera> (B, 3, H, W) ────────► normalize ─┼─► ACT (ResNet-18 + CVAE) ─► (B, H, A)
    instruction ─► named_colours (B, 2C) as ENV ─────► normalize ─┘

Actions are absolute, as lerobot's ACT predicts them (our policy may predict joint targets
relative to the joint state: that is part of what the comparison measures).

With ``action_space="intent"`` ACT learns the recorded ``intent`` (TCP velocity and closure per
arm, the base's velocity; `locksmith.sim.intent`) in place of the robot's command, normalized by
its own demos' stats as ACT normalizes everything, and acts through the robot's intent decoder
(`ACTAgent`), as an intent prior's keys do: the audit's ``act_intent`` arm, so that a gain of an
intent prior is measured against ACT given the same decoder. The shield still bounds the decoded
commands by the demos' native action stats.

Sizes and rules, chosen to make the comparison about the architecture, not the setup:

- chunk ``H`` ≈ one second at the robot's rate, ``n_action_steps`` ≈ half of it executed before
  re-planning: `EmbodimentConfig.from_spec`, the same numbers as our policy;
- default size (`DEFAULT_SIZE`) ≈ 0.92 M parameters on the Panda, our default policy ≈ 0.89 M
  (see ``benchmarks/train_throughput.py``); no vision backbone is built without images;
- batches from `ChunkSampler` (the same chunks and ``action_is_pad`` as our policy), drawn from an
  RNG keyed by (seed, 0, step) as in `locksmith.train.loop`;
- the training recipe is the caller's `TrainConfig`, the one every arm of an audit uses: AdamW
  (``lr``, ``weight_decay``; `loop.make_optimizer`), linear warm-up then ``schedule``
  (`loop.lr_lambda` in a ``LambdaLR``), gradient clipping at ``grad_clip``; ACT's own preset
  (constant lr, clip 10) is not used;
- normalization from the demos' own stats (``demos.stats``, those our policy uses) through
  lerobot's processors, mean/std for state, environment state and action (ACT's default modes;
  ACT's default map leaves ``ENV`` features raw, we normalize them as our policy does). The
  named-entity columns are normalized with the mean/std of the training frames' (`feature_stats`;
  saved under `NAMED_KEY` in ``normalizer_stats.json``). A dimension with std below
  `locksmith.policy.normalize.EPS` keeps a unit scale (as our normalizer does): lerobot's own
  ``std + 1e-8`` would turn an object that never moved in a one-demo budget, or the pad columns
  of a task without a pad, into a 1e8 input at evaluation.

Layout of ``out`` (written atomically: a temporary folder, then a rename):

    config.json, model.safetensors         ACTPolicy.save_pretrained (lerobot)
    policy_preprocessor.json, policy_postprocessor.json, *.safetensors   lerobot's processors
    normalizer_stats.json                  {robot: {feature: {stat: list}}}, the demos' stats and
                                           the named-entity columns' (`NAMED_KEY`)
    spec.yaml                              the robot's embodiment spec
    locksmith_peer.json                    {"kind": "act", "robot", "chunk_size", "n_action_steps",
                                            "environment_state_dim": E, "named_entities": {...}, ...}

Training (`train_act_peer`, with checkpoints along the way) is `locksmith.train.act_train`'s.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from locksmith.atomic import swap_into_place
from locksmith.embodiment.spec import EmbodimentSpec
from locksmith.policy import ACTION_SPACES
from locksmith.policy.config import EmbodimentConfig
from locksmith.policy.normalize import EPS
from locksmith.policy.policy import STATS_FILE
from locksmith.policy.vision import camera_feature
from locksmith.sim.intent import intent_size
from locksmith.train.act_inputs import (
    COLOUR_DIM,
    COLOUR_ENCODING,
    NAMED_DIM,
    NAMED_ENCODING,
    NAMED_KEY,
    feature_stats,
    named_colours,
    named_features,
)

log = logging.getLogger(__name__)

PEER_KIND = "act"
MARKER_FILE = "locksmith_peer.json"
SPEC_FILE = "spec.yaml"
INPUT_KEYS = ("observation.state", "observation.environment_state")

DEFAULT_SIZE: dict[str, Any] = {
    "dim_model": 128, "n_heads": 4, "dim_feedforward": 384,
    "n_encoder_layers": 2, "n_decoder_layers": 1, "n_vae_encoder_layers": 2,
}
"""≈ 0.92 M parameters on the Panda (8-D state and action, chunk 20); ACT's own default is 52 M."""

VISION_BACKBONE = "resnet18"  # ACT's own (`ACTConfig.vision_backbone`), the smallest it builds


def default_architecture_digest(image_size: int | None = None) -> str:
    """What an ACT from scratch at `DEFAULT_SIZE` depends on of its setup, as an audit run's
    ``prior_digest``: its size alone (beside our own prior it reads nothing of the prior), and
    for a pixel ACT its backbone and image size."""
    import hashlib

    setup = DEFAULT_SIZE if image_size is None else {**DEFAULT_SIZE, "vision_backbone": VISION_BACKBONE,
                                                      "image_size": int(image_size)}
    return "act:" + hashlib.sha256(json.dumps(setup, sort_keys=True).encode()).hexdigest()[:16]


SIZE_FIELDS = ("dim_model", "n_heads", "dim_feedforward", "feedforward_activation", "pre_norm",
               "n_encoder_layers", "n_decoder_layers", "use_vae", "latent_dim", "n_vae_encoder_layers",
               "dropout", "kl_weight", "chunk_size", "n_action_steps")
"""The `ACTConfig` fields a caller may set through ``**size`` (``chunk_size`` and
``n_action_steps`` default to the spec's, `EmbodimentConfig.from_spec`; a LeRobot prior sets them
all, `locksmith.train.lerobot_prior.ARCHITECTURE_FIELDS`)."""


def _stats_to_json(stats: Mapping[str, Mapping[str, Mapping[str, np.ndarray]]]) -> str:
    return json.dumps({r: {f: {k: np.asarray(v).tolist() for k, v in s.items()} for f, s in st.items()}
                       for r, st in stats.items()})



def processor_stats(stats: Mapping[str, Mapping[str, np.ndarray]],
                    camera: str | None = None) -> dict[str, dict[str, np.ndarray]]:
    """The stats handed to lerobot's (un)normalizer: ``observation.environment_state`` extended by
    the named-entity columns (`NAMED_KEY`), ``std`` below `EPS` replaced by 1 (see above). With
    ``camera`` (a pixel ACT) the ENV input is the task columns alone, and the camera's image
    stats are handed on."""
    scene = {camera: (camera,), "observation.environment_state": (NAMED_KEY,)} if camera else \
        {"observation.environment_state": ("observation.environment_state", NAMED_KEY)}
    sources = {"observation.state": ("observation.state",), **scene, "action": ("action",)}
    missing = [k for parts in sources.values() for k in parts if k not in stats]
    if missing:
        raise ValueError(f"normalization stats lack {missing}")
    out = {}
    for feature, parts in sources.items():
        s = {k: np.concatenate([np.asarray(stats[p][k], dtype=np.float64) for p in parts], axis=0)
             for k in ("mean", "std", "min", "max")}
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
            `CrossEmbodimentPolicy.stats`, so the safety shield reads either the same way), with
            the named-entity columns' stats under `NAMED_KEY` (a pixel ACT's: `named_colours`'
            columns there, and its camera's image stats).
        image_size: a pixel ACT's square camera size (it reads `camera`, not the scene state);
            None for an ACT on the scene state.
    """

    policy: Any
    preprocessor: Any
    postprocessor: Any
    spec: EmbodimentSpec
    stats: dict[str, dict[str, dict[str, np.ndarray]]]
    action_space: str = "native"  # what ACT predicts: the robot's command, or intent for its decoder
    image_size: int | None = None

    @property
    def camera(self) -> str | None:
        """The image feature a pixel ACT reads (the robot's first camera); None on the scene state."""
        return None if self.image_size is None else camera_feature(self.spec)

    @property
    def observation_keys(self) -> tuple[str, ...]:
        """What `predict_from_observations` reads."""
        return INPUT_KEYS if self.camera is None else ("observation.state", self.camera)

    @property
    def train_keys(self) -> tuple[str, ...]:
        """The batch keys ACT trains on (its inputs, the action and its padding)."""
        return (*INPUT_KEYS, *((self.camera,) if self.camera else ()), "action", "action_is_pad")

    @property
    def robot(self) -> str:
        return self.spec.name

    @property
    def chunk_size(self) -> int:
        return int(self.policy.config.chunk_size)

    @property
    def n_action_steps(self) -> int:
        return int(self.policy.config.n_action_steps)

    @property
    def environment_state_dim(self) -> int:
        """Width of the scene's environment state (ACT's ENV input less the named-entity columns;
        0 for a pixel ACT, which reads none)."""
        return 0 if self.camera else int(self.policy.config.env_state_feature.shape[0]) - NAMED_DIM

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.policy.parameters())

    def act_inputs(self, state: torch.Tensor | np.ndarray, scene: torch.Tensor | np.ndarray,
                   instructions: Sequence[str]) -> dict[str, torch.Tensor]:
        """ACT's raw (unnormalized) inputs: state (B, S) and ``scene``, the environment state
        (B, E), with `named_features` of each row's instruction in its own scene appended (B, E +
        NAMED_DIM); for a pixel ACT ``scene`` is the camera's images (B, H, W, 3) uint8, which go
        in as lerobot's datasets give them, (B, 3, H, W) in [0, 1], and the task as
        `named_colours` of the text."""
        state = torch.as_tensor(np.asarray(state), dtype=torch.float32)
        scene = torch.as_tensor(np.asarray(scene))
        if isinstance(instructions, str) or len(instructions) != len(state) or len(scene) != len(state):
            raise ValueError(f"one instruction text per row: got {len(state)} states, {len(scene)} "
                             f"{'images' if self.camera else 'environment states'} and instructions "
                             f"{instructions!r:.120}")
        if self.camera:
            want = (self.image_size, self.image_size, 3)
            if tuple(scene.shape[1:]) != want:
                raise ValueError(f"images of shape {tuple(scene.shape[1:])}; this ACT reads {want}")
            images = scene.float().movedim(-1, -3) / 255.0  # (B, H, W, 3) → (B, 3, H, W)
            return {"observation.state": state, self.camera: images,
                    "observation.environment_state": torch.as_tensor(named_colours(list(instructions)))}
        env_state = scene.float()
        if env_state.shape[-1] != self.environment_state_dim:
            raise ValueError(f"environment_state has width {env_state.shape[-1]}, this ACT peer was trained "
                             f"on {self.environment_state_dim}")
        named = torch.as_tensor(named_features(list(instructions), env_state.numpy()))  # (B, NAMED_DIM)
        return {"observation.state": state, "observation.environment_state": torch.cat([env_state, named], dim=-1)}

    def predict_from_observations(self, observations: Mapping[str, np.ndarray],
                                  instructions: Sequence[str]) -> torch.Tensor:
        """`predict_action_chunk` on observation batches keyed by feature name (`ACTAgent`'s call)."""
        return self.predict_action_chunk(observations["observation.state"],
                                         observations[self.camera or "observation.environment_state"], instructions)

    @torch.no_grad()
    def predict_action_chunk(self, state: torch.Tensor | np.ndarray, scene: torch.Tensor | np.ndarray,
                             instructions: Sequence[str]) -> torch.Tensor:
        """(B, state_dim), the scene (B, env_dim) (a pixel ACT: the camera's (B, H, W, 3) uint8),
        B instruction texts → (B, chunk_size, action_dim), native units (CPU)."""
        batch = self.act_inputs(state, scene, instructions)
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
                      "n_action_steps": self.n_action_steps, "environment_state_dim": self.environment_state_dim,
                      "named_entities": NAMED_ENCODING, **(extra or {})}
            if self.action_space != "native":  # a native peer's marker is written as before
                marker["action_space"] = self.action_space
            if self.camera:  # so is a peer's on the scene state
                marker.update(observation="pixels", image_size=self.image_size, camera=self.camera,
                              named_entities=COLOUR_ENCODING)
            (tmp / MARKER_FILE).write_text(json.dumps(marker, indent=2, default=str))
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        swap_into_place(tmp, out)
        return out


def build_act_peer(spec: EmbodimentSpec, stats: Mapping[str, Mapping[str, np.ndarray]], env_dim: int,
                   action_space: str = "native", image_size: int | None = None, **size: Any) -> ActPeer:
    """A fresh (randomly initialised: seed torch first) ACT for ``spec`` with normalization from ``stats``.

    Args:
        spec: the robot's spec (state and action sizes, control rate → chunk).
        stats: the demos' stats per feature (``Demonstrations.stats``) and the named-entity
            columns' under `NAMED_KEY` (`feature_stats` of the training frames' `named_features`).
        env_dim: width of the scene's ``observation.environment_state`` (ACT's ENV input is
            ``env_dim + NAMED_DIM`` wide).
        action_space: ``native`` (the robot's command) or ``intent`` (ACT's output is the recorded
            intent, normalized by ``stats["intent"]``; the robot's decoder acts on it).
        image_size: a pixel ACT: it reads the robot's first camera at this square size through
            `VISION_BACKBONE` and the task as `named_colours` (``stats`` then holds the camera's
            image stats and, under `NAMED_KEY`, the colour columns'; ``env_dim`` is 0).
        size: `ACTConfig` fields among `SIZE_FIELDS`, over `DEFAULT_SIZE`.
    """
    from lerobot.configs.types import FeatureType, NormalizationMode, PolicyFeature
    from lerobot.policies.act.configuration_act import ACTConfig
    from lerobot.policies.act.modeling_act import ACTPolicy
    from lerobot.policies.act.processor_act import make_act_pre_post_processors

    unknown = sorted(set(size) - set(SIZE_FIELDS))
    if unknown:
        raise ValueError(f"unknown ACT size field(s) {unknown}; known: {list(SIZE_FIELDS)}")
    if action_space not in ACTION_SPACES:
        raise ValueError(f"action_space={action_space!r}; known: {', '.join(ACTION_SPACES)}")
    intent = action_space == "intent"
    if intent and "intent" not in stats:
        raise ValueError("an intent ACT needs the intent stats of its demos (stats['intent'])")
    camera = None if image_size is None else camera_feature(spec)
    if camera and env_dim:
        raise ValueError(f"a pixel ACT reads no scene state; got env_dim={env_dim}")
    normalizer_stats = processor_stats({**stats, "action": stats["intent"]} if intent else stats, camera)
    emb = EmbodimentConfig.from_spec(spec)
    size = {"chunk_size": emb.chunk_size, "n_action_steps": emb.n_action_steps, **DEFAULT_SIZE, **size}
    inputs = {"observation.state": PolicyFeature(FeatureType.STATE, (spec.state_dim,))}
    if camera:
        inputs[camera] = PolicyFeature(FeatureType.VISUAL, (3, int(image_size), int(image_size)))
    inputs["observation.environment_state"] = PolicyFeature(FeatureType.ENV,
                                                            (COLOUR_DIM if camera else env_dim + NAMED_DIM,))
    config = ACTConfig(
        input_features=inputs,
        output_features={"action": PolicyFeature(FeatureType.ACTION,
                                                 (intent_size(spec) if intent else spec.action_dim,))},
        normalization_mapping={"VISUAL": NormalizationMode.MEAN_STD, "STATE": NormalizationMode.MEAN_STD,
                               "ENV": NormalizationMode.MEAN_STD, "ACTION": NormalizationMode.MEAN_STD},
        vision_backbone=VISION_BACKBONE,
        pretrained_backbone_weights=None,  # a random backbone: nothing to download (none without images)
        device="cpu",
        **size,
    )
    policy = ACTPolicy(config)
    preprocessor, postprocessor = make_act_pre_post_processors(config, normalizer_stats)
    kept = ("observation.state", camera) if camera else INPUT_KEYS
    raw = {f: {k: np.asarray(v) for k, v in stats[f].items()} for f in (*kept, NAMED_KEY, "action")}
    return ActPeer(policy, preprocessor, postprocessor, spec, {spec.name: raw}, action_space, image_size)


__all__ = ["DEFAULT_SIZE", "MARKER_FILE", "NAMED_DIM", "NAMED_ENCODING", "NAMED_KEY", "PEER_KIND", "SIZE_FIELDS",
           "SPEC_FILE", "VISION_BACKBONE", "ActPeer", "build_act_peer", "default_architecture_digest", "feature_stats",
           "named_features", "processor_stats"]
