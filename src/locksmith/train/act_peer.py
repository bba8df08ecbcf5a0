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

With ``checkpoint_steps``, `train_act_peer` also writes the same folder after each of those steps
to ``<out>_checkpoints/step-<k>`` (`intermediate_checkpoint`), so an audit can evaluate along
training; each one loads with `locksmith.evaluate.act_agent.load_act_peer`.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from locksmith.atomic import swap_into_place
from locksmith.data.loading import Demonstrations
from locksmith.data.mixture import ChunkSampler
from locksmith.data.targets import N_OBJECTS
from locksmith.embodiment.spec import EmbodimentSpec
from locksmith.policy import ACTION_SPACES
from locksmith.policy.config import EmbodimentConfig
from locksmith.policy.normalize import EPS
from locksmith.policy.policy import STATS_FILE
from locksmith.sim.intent import intent_size
from locksmith.train.act_inputs import NAMED_DIM, NAMED_ENCODING, NAMED_KEY, feature_stats, named_features
from locksmith.train.lerobot_prior import LeRobotPrior
from locksmith.train.loop import TrainConfig, lr_lambda, make_optimizer

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

def default_architecture_digest() -> str:
    """What an ACT from scratch at `DEFAULT_SIZE` depends on of its setup, as an audit run's
    ``prior_digest``: its size alone (beside our own prior it reads nothing of the prior)."""
    import hashlib

    return "act:" + hashlib.sha256(json.dumps(DEFAULT_SIZE, sort_keys=True).encode()).hexdigest()[:16]


SIZE_FIELDS = ("dim_model", "n_heads", "dim_feedforward", "feedforward_activation", "pre_norm",
               "n_encoder_layers", "n_decoder_layers", "use_vae", "latent_dim", "n_vae_encoder_layers",
               "dropout", "kl_weight", "chunk_size", "n_action_steps")
"""The `ACTConfig` fields a caller may set through ``**size`` (``chunk_size`` and
``n_action_steps`` default to the spec's, `EmbodimentConfig.from_spec`; a LeRobot prior sets them
all, `locksmith.train.lerobot_prior.ARCHITECTURE_FIELDS`)."""


def _stats_to_json(stats: Mapping[str, Mapping[str, Mapping[str, np.ndarray]]]) -> str:
    return json.dumps({r: {f: {k: np.asarray(v).tolist() for k, v in s.items()} for f, s in st.items()}
                       for r, st in stats.items()})



def processor_stats(stats: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, dict[str, np.ndarray]]:
    """The stats handed to lerobot's (un)normalizer: ``observation.environment_state`` extended by
    the named-entity columns (`NAMED_KEY`), ``std`` below `EPS` replaced by 1 (see above)."""
    missing = [k for k in (*INPUT_KEYS, NAMED_KEY, "action") if k not in stats]
    if missing:
        raise ValueError(f"normalization stats lack {missing}")
    out = {}
    for feature in (*INPUT_KEYS, "action"):
        s = {k: np.asarray(stats[feature][k], dtype=np.float64) for k in ("mean", "std", "min", "max")}
        if feature == "observation.environment_state":
            s = {k: np.concatenate([v, np.asarray(stats[NAMED_KEY][k], dtype=np.float64)]) for k, v in s.items()}
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
            the named-entity columns' stats under `NAMED_KEY`.
    """

    policy: Any
    preprocessor: Any
    postprocessor: Any
    spec: EmbodimentSpec
    stats: dict[str, dict[str, dict[str, np.ndarray]]]
    action_space: str = "native"  # what ACT predicts: the robot's command, or intent for its decoder
    observation_keys = INPUT_KEYS  # what `predict_from_observations` reads (a class attribute, not a field)

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
        """Width of the scene's environment state (ACT's ENV input less the named-entity columns)."""
        return int(self.policy.config.env_state_feature.shape[0]) - NAMED_DIM

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.policy.parameters())

    def act_inputs(self, state: torch.Tensor | np.ndarray, environment_state: torch.Tensor | np.ndarray,
                   instructions: Sequence[str]) -> dict[str, torch.Tensor]:
        """ACT's raw (unnormalized) inputs: state (B, S) and environment state ⊕ `named_features`
        of each row's instruction in its own scene (B, E + NAMED_DIM)."""
        state = torch.as_tensor(np.asarray(state), dtype=torch.float32)
        env_state = torch.as_tensor(np.asarray(environment_state), dtype=torch.float32)
        if isinstance(instructions, str) or len(instructions) != len(state) or len(env_state) != len(state):
            raise ValueError(f"one instruction text per row: got {len(state)} states, {len(env_state)} "
                             f"environment states and instructions {instructions!r:.120}")
        if env_state.shape[-1] != self.environment_state_dim:
            raise ValueError(f"environment_state has width {env_state.shape[-1]}, this ACT peer was trained "
                             f"on {self.environment_state_dim}")
        named = torch.as_tensor(named_features(list(instructions), env_state.numpy()))  # (B, NAMED_DIM)
        return {"observation.state": state, "observation.environment_state": torch.cat([env_state, named], dim=-1)}

    def predict_from_observations(self, observations: Mapping[str, np.ndarray],
                                  instructions: Sequence[str]) -> torch.Tensor:
        """`predict_action_chunk` on observation batches keyed by feature name (`ACTAgent`'s call)."""
        return self.predict_action_chunk(observations["observation.state"],
                                         observations["observation.environment_state"], instructions)

    @torch.no_grad()
    def predict_action_chunk(self, state: torch.Tensor | np.ndarray, environment_state: torch.Tensor | np.ndarray,
                             instructions: Sequence[str]) -> torch.Tensor:
        """(B, state_dim), (B, env_dim), B instruction texts → (B, chunk_size, action_dim), native units (CPU)."""
        batch = self.act_inputs(state, environment_state, instructions)
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
            (tmp / MARKER_FILE).write_text(json.dumps(marker, indent=2, default=str))
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        swap_into_place(tmp, out)
        return out


def build_act_peer(spec: EmbodimentSpec, stats: Mapping[str, Mapping[str, np.ndarray]], env_dim: int,
                   action_space: str = "native", **size: Any) -> ActPeer:
    """A fresh (randomly initialised: seed torch first) ACT for ``spec`` with normalization from ``stats``.

    Args:
        spec: the robot's spec (state and action sizes, control rate → chunk).
        stats: the demos' stats per feature (``Demonstrations.stats``) and the named-entity
            columns' under `NAMED_KEY` (`feature_stats` of the training frames' `named_features`).
        env_dim: width of the scene's ``observation.environment_state`` (ACT's ENV input is
            ``env_dim + NAMED_DIM`` wide).
        action_space: ``native`` (the robot's command) or ``intent`` (ACT's output is the recorded
            intent, normalized by ``stats["intent"]``; the robot's decoder acts on it).
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
    normalizer_stats = processor_stats({**stats, "action": stats["intent"]} if intent else stats)
    emb = EmbodimentConfig.from_spec(spec)
    size = {"chunk_size": emb.chunk_size, "n_action_steps": emb.n_action_steps, **DEFAULT_SIZE, **size}
    config = ACTConfig(
        input_features={
            "observation.state": PolicyFeature(FeatureType.STATE, (spec.state_dim,)),
            "observation.environment_state": PolicyFeature(FeatureType.ENV, (env_dim + NAMED_DIM,)),
        },
        output_features={"action": PolicyFeature(FeatureType.ACTION, (intent_size(spec) if intent else spec.action_dim,))},
        normalization_mapping={"STATE": NormalizationMode.MEAN_STD, "ENV": NormalizationMode.MEAN_STD,
                               "ACTION": NormalizationMode.MEAN_STD},
        pretrained_backbone_weights=None,  # no images: no backbone is built (and nothing to download)
        device="cpu",
        **size,
    )
    policy = ACTPolicy(config)
    preprocessor, postprocessor = make_act_pre_post_processors(config, normalizer_stats)
    raw = {f: {k: np.asarray(v) for k, v in stats[f].items()} for f in (*INPUT_KEYS, NAMED_KEY, "action")}
    return ActPeer(policy, preprocessor, postprocessor, spec, {spec.name: raw}, action_space)


def intermediate_checkpoint(out: str | Path, step: int) -> Path:
    """Where `train_act_peer` saves the checkpoint after ``step`` steps: ``<out>_checkpoints/step-<step>``."""
    out = Path(out)
    return out.parent / f"{out.name}_checkpoints" / f"step-{step}"


def train_act_peer(demos: Demonstrations, out: str | Path, config: TrainConfig,
                   checkpoint_steps: Sequence[int] = (), progress: bool = False,
                   prior: LeRobotPrior | None = None, action_space: str = "native", **size: Any) -> dict:
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
    size = dict(prior.architecture) if prior is not None else size
    out = Path(out)
    spec = demos.spec
    env_dim = demos.arrays["observation.environment_state"].shape[1]
    wanted = sorted({int(k) for k in checkpoint_steps if 0 < int(k) < config.steps})
    start = time.perf_counter()
    texts = sorted(set(demos.tasks))
    # Each frame's task as ACT reads it: its instruction's named cube and pad in its own scene.
    named = torch.as_tensor(named_features(demos.tasks, demos.arrays["observation.environment_state"]))  # (N, F)
    parsed = float(named[:, :N_OBJECTS].sum(1).mean())  # share of frames whose named cube was found
    if parsed < 1.0:
        log.warning("ACT peer: %.0f%% of the frames' instructions name no cube that named_entities finds "
                    "(free-form text?): ACT is task-blind on those", 100 * (1 - parsed))
    stats = {**demos.stats, NAMED_KEY: feature_stats(named.numpy())}
    if action_space == "intent":
        if "intent" not in demos.arrays:
            raise ValueError(f"{demos.root}: an intent ACT learns the demos' intent feature, which these demos lack")
        stats["intent"] = feature_stats(demos.arrays["intent"])
    torch.manual_seed(config.seed)  # the initialisation is part of the seeded run
    peer = build_act_peer(spec, stats, env_dim, action_space=action_space, **size)
    policy = peer.policy
    initialised = None
    if prior is not None:  # after the seeded build: the new projections are the seed's, the rest the prior's
        copy = prior.initialise(policy)
        initialised = {**prior.record(), "copied_parameters": copy["copied_parameters"],
                       "new_parameters": copy["new_parameters"], "new": copy["new"]}
    # ACT reads no language tokens: the sampler gets a one-number placeholder per text.
    sampler = ChunkSampler(demos, peer.chunk_size, {t: (np.zeros((1, 1), np.float32), np.zeros(1, bool))
                                                    for t in texts})
    params = [p for p in policy.parameters() if p.requires_grad]  # no image backbone: one group
    optimizer = make_optimizer(params, config)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(config))
    resolved = {"lerobot_policy": "act", "action_space": peer.action_space, "size": {**DEFAULT_SIZE, **size},
                "train": asdict(config),
                "checkpoint_steps": wanted, "chunk_size": peer.chunk_size, "n_action_steps": peer.n_action_steps,
                "instructions": texts, "named_entities": NAMED_ENCODING, "named_frames": parsed,
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
        raw["observation.environment_state"] = torch.cat([raw["observation.environment_state"], named[idx]],
                                                         dim=-1)  # (B, E + NAMED_DIM)
        if peer.action_space == "intent":  # ACT's output feature is named action whatever it holds
            raw["action"] = raw["intent"]
        batch = peer.preprocessor({k: raw[k] for k in TRAIN_KEYS})
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


__all__ = ["DEFAULT_SIZE", "MARKER_FILE", "NAMED_DIM", "NAMED_ENCODING", "NAMED_KEY", "PEER_KIND", "SIZE_FIELDS",
           "SPEC_FILE", "ActPeer", "build_act_peer", "default_architecture_digest", "feature_stats",
           "intermediate_checkpoint", "named_features", "processor_stats", "train_act_peer"]
