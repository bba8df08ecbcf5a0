"""A LeRobot ACT checkpoint as the prior of a transfer audit: the ``lerobot_finetune`` arm.

A policy trained with ``lerobot-train`` on pool robots (say ACT on a Panda's `locksmith demos`)
is adapted to a new robot the way our ``head`` recipe treats our own prior, except that every
weight trains: the layers that read the robot's own features or write its action are new, sized
to the new robot, and everything else starts from the checkpoint.

    ACT weight                                   lerobot_finetune
    encoder_robot_state_input_proj               new: (S_target → d)
    encoder_env_state_input_proj                 new: (E + NAMED_DIM → d), the ACT peer's input
    vae_encoder_robot_state_input_proj           new: (S_target → d)
    vae_encoder_action_input_proj                new: (A_target → d)
    action_head                                  new: (d → A_target)
    everything else (transformer encoder and     from the checkpoint, exactly
    decoder, latent projections, the learned
    queries ``decoder_pos_embed``, ...)

The new robot's ACT reads what the audit's ACT peer reads (`locksmith.train.act_inputs`: state,
the scene, the named cube and pad), is normalized by the new robot's demos through lerobot's
processors, and trains through `locksmith.train.act_train.train_act_peer` with the audit's one
training recipe; the checkpoint's own processors, optimizer preset and normalization are not
used. The architecture (`LeRobotPrior.architecture`: sizes, chunk and re-planning horizon) is
the checkpoint's, so the ``act`` arm of the same audit trains this very architecture from random
initialisation: the two ACT arms differ in their starting weights only.

`load_lerobot_prior` checks the folder (each failure a `CheckpointError` naming file and field):
an ACT (`PRIOR_TYPES`) reading exactly ``observation.state`` and ``observation.environment_state``
(no camera: the audit's ACT arms see state and scene), writing ``action``, weights that load
strictly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from locksmith.digest import folder_digest
from locksmith.policy.policy import CheckpointError
from locksmith.train.lerobot_checkpoint import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    load_policy_weights,
    read_json,
    read_policy_config,
    read_raw_config,
    training_dataset,
)

LEROBOT_ARMS = {"lerobot_finetune": "the LeRobot prior's weights, new state, scene and action projections; "
                                    "every weight trains"}
"""The audit's adapted arm for a LeRobot prior (the counterpart of `locksmith.policy.adapters.RECIPES`)."""
PRIOR_TYPES = ("act",)
"""LeRobot policy types an audit adapts (those the audit's ACT arms train)."""
INPUT_KEYS = ("observation.state", "observation.environment_state")
ROBOT_PROJECTIONS = ("model.encoder_robot_state_input_proj.", "model.encoder_env_state_input_proj.",
                     "model.vae_encoder_robot_state_input_proj.", "model.vae_encoder_action_input_proj.",
                     "model.action_head.")
"""Name prefixes of the weights that read the robot's own features or write its action: new for
the target robot, never copied."""
ARCHITECTURE_FIELDS = ("dim_model", "n_heads", "dim_feedforward", "feedforward_activation", "pre_norm",
                       "n_encoder_layers", "n_decoder_layers", "use_vae", "latent_dim", "n_vae_encoder_layers",
                       "dropout", "kl_weight", "chunk_size", "n_action_steps")
"""The `ACTConfig` fields the target's ACT takes from the checkpoint (`act_peer.SIZE_FIELDS`)."""
DIGEST_FILES = (CONFIG_FILE, WEIGHTS_FILE)
"""What decides a fine-tuned run: the architecture and the weights (not the processors, whose
stats are the pool's and are not used, nor ``train_config.json``, which names folders)."""


def is_prior_weight(name: str) -> bool:
    """Whether the parameter ``name`` starts from the checkpoint (not a `ROBOT_PROJECTIONS` layer)."""
    return not name.startswith(ROBOT_PROJECTIONS)


def checkpoint_digest(directory: str | Path, names: tuple[str, ...] = DIGEST_FILES) -> str:
    """`folder_digest` of ``names`` in ``directory`` (the file names included)."""
    return folder_digest(directory, names)


def training_pool(directory: str | Path) -> dict[str, list[str]]:
    """``{"robots", "tasks"}`` the checkpoint was trained on, read from the `locksmith demos`
    dataset its ``train_config.json`` names while that is on disk; empty lists otherwise."""
    from locksmith.data.record import META_FILE

    root = training_dataset(Path(directory))
    meta = read_json(root / META_FILE) if root is not None and (root / META_FILE).is_file() else {}
    return {key: [meta[field]] if isinstance(meta.get(field), str) else []
            for key, field in (("robots", "robot"), ("tasks", "task"))}


def _check_config(config: Any, directory: Path) -> None:
    where = directory / CONFIG_FILE
    inputs = sorted(config.input_features)
    cameras = [k for k in inputs if k not in INPUT_KEYS]
    if cameras:
        raise CheckpointError(f"{where}: input_features.{cameras[0]}: the audit's ACT arms read "
                              f"{' and '.join(INPUT_KEYS)}, no camera; train the prior without images")
    missing = [k for k in INPUT_KEYS if k not in inputs]
    if missing:
        raise CheckpointError(f"{where}: input_features: no {missing[0]}; the audit's ACT arms read "
                              f"{' and '.join(INPUT_KEYS)} (a `locksmith demos` dataset holds both)")
    if "action" not in config.output_features:
        raise CheckpointError(f"{where}: output_features: no 'action'")


def _read_checked_config(directory: Path) -> Any:
    raw = read_raw_config(directory)
    if raw["type"] not in PRIOR_TYPES:
        raise CheckpointError(f"{directory / CONFIG_FILE}: type: {raw['type']!r}; an audit adapts LeRobot "
                              f"{', '.join(PRIOR_TYPES)} checkpoints (the policy its ACT arms train)")
    config = read_policy_config(directory)
    _check_config(config, directory)
    return config


def read_architecture(directory: str | Path) -> dict[str, Any]:
    """The checkpoint's `ARCHITECTURE_FIELDS`, from its config alone (what the ``act`` arm of an
    audit with this prior trains from random initialisation).

    Raises:
        CheckpointError: not an ACT checkpoint, or one the audit's ACT arms cannot read.
    """
    config = _read_checked_config(Path(directory))
    return {name: getattr(config, name) for name in ARCHITECTURE_FIELDS}


@dataclass(frozen=True)
class LeRobotPrior:
    """A LeRobot ACT checkpoint read as a prior.

    Attributes:
        directory: the ``pretrained_model`` folder.
        architecture: `ARCHITECTURE_FIELDS` → the checkpoint's values.
        weights: the checkpoint's state dict (strictly loaded).
        source_features: feature name → shape the checkpoint was trained on (its pool robot's).
        digest: `checkpoint_digest` of the folder.
    """

    directory: Path
    architecture: dict[str, Any]
    weights: Mapping[str, torch.Tensor]
    source_features: dict[str, tuple[int, ...]]
    digest: str

    def initialise(self, policy: torch.nn.Module) -> dict:
        """Copy every weight (and buffer) but the `ROBOT_PROJECTIONS` from the checkpoint into
        ``policy`` (a target ACT of this `architecture`); returns ``{"copied", "new",
        "copied_parameters", "new_parameters"}``: the state names sorted, the parameter counts.

        Raises:
            CheckpointError: a weight that should start from the checkpoint is missing there or has
                another shape (the target was not built with this architecture).
        """
        state = policy.state_dict()
        copied, new = [], []
        for name, value in state.items():
            if not is_prior_weight(name):
                new.append(name)
                continue
            source = self.weights.get(name)
            if source is None or tuple(source.shape) != tuple(value.shape):
                shape = None if source is None else tuple(source.shape)
                raise CheckpointError(f"{self.directory / WEIGHTS_FILE}: {name}: shape {shape}, the target's ACT "
                                      f"has {tuple(value.shape)}")
            state[name] = source.clone()
            copied.append(name)
        policy.load_state_dict(state, strict=True)
        count = {n: p.numel() for n, p in policy.named_parameters()}  # buffers are copied too, not counted
        return {"copied": sorted(copied), "new": sorted(new),
                "copied_parameters": sum(count.get(n, 0) for n in copied),
                "new_parameters": sum(count.get(n, 0) for n in new)}

    def record(self) -> dict:
        """What a fine-tuned checkpoint notes about its prior."""
        return {"checkpoint": str(self.directory), "sha256": self.digest, "architecture": self.architecture,
                "source_features": {k: list(v) for k, v in self.source_features.items()}}


def load_lerobot_prior(directory: str | Path) -> LeRobotPrior:
    """Read and check a LeRobot ACT checkpoint as a prior (see the module docstring).

    Raises:
        CheckpointError: naming the file and the field.
    """
    directory = Path(directory)
    config = _read_checked_config(directory)
    architecture = {name: getattr(config, name) for name in ARCHITECTURE_FIELDS}
    policy = load_policy_weights(config, directory)
    features = {k: tuple(f.shape) for k, f in {**config.input_features, **config.output_features}.items()}
    weights = {k: v.detach().clone() for k, v in policy.state_dict().items()}
    return LeRobotPrior(directory, architecture, weights, features, checkpoint_digest(directory))


__all__ = ["ARCHITECTURE_FIELDS", "DIGEST_FILES", "LEROBOT_ARMS", "PRIOR_TYPES", "ROBOT_PROJECTIONS",
           "LeRobotPrior", "checkpoint_digest", "is_prior_weight", "load_lerobot_prior", "read_architecture",
           "training_pool"]
