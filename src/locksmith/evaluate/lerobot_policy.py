"""Closed-loop control by a plain LeRobot checkpoint (``lerobot-train``'s ``pretrained_model``).

A folder whose ``config.json`` carries a LeRobot policy ``type`` (``act``, ``diffusion``, ...)
and no locksmith ``embodiments`` is read through lerobot's own loaders (config, policy class,
processors). The simulator's observations already carry LeRobot's feature names
(``observation.state``, ``observation.environment_state``, ``observation.images.<camera>``),
which are the names of a dataset written by `locksmith demos`, so the batch a checkpoint gets is
exactly the features it was trained on, nothing added: unlike the ACT peer
(`locksmith.train.act_peer`), a plain checkpoint reads no named cube or pad, only what its
dataset held. `ACTAgent` acts with it (one chunk per environment, re-planning every
``n_action_steps``), and the evaluator sends every action through the robot's safety shield,
whose data range is the checkpoint's own action stats (`checkpoint_action_stats`).

Loading checks, each failure a `CheckpointError` naming the file and the field:

    config.json         readable, a known LeRobot type that predicts a chunk from the current
                        observations alone (`CHUNK_TYPES`), no temporal ensembling; the others
                        (Diffusion keeps an observation history inside the policy) run through
                        ``lerobot-eval`` with the ``lerobot_env_locksmith`` plugin
    input_features      each one an observation the simulator gives the robot, of its shape
    output_features     ``action`` of the robot's action size
    train_config.json   (when lerobot-train wrote one and its dataset is still there) the
                        dataset's robot and feature names are the robot's
    model.safetensors   loads strictly into the policy the config builds
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from locksmith.embodiment.registry import load_robot_spec
from locksmith.embodiment.spec import EmbodimentSpec
from locksmith.policy.policy import CheckpointError
from locksmith.sim.cameras import IMAGE_PREFIX
from locksmith.train.lerobot_checkpoint import (
    CONFIG_FILE,
    TRAIN_CONFIG_FILE,
    WEIGHTS_FILE,
    is_lerobot_checkpoint,
    load_policy_weights,
    read_policy_config,
    read_raw_config,
    training_dataset,
)
from locksmith.train.lerobot_checkpoint import read_json as _read_json

log = logging.getLogger(__name__)

PREPROCESSOR_FILE = "policy_preprocessor.json"
POSTPROCESSOR_FILE = "policy_postprocessor.json"
UNNORMALIZER = "unnormalizer_processor"
CHUNK_TYPES = ("act",)
"""Policy types whose ``predict_action_chunk`` reads a batch of current observations and nothing
else, so that environments at different steps of their episodes share one call."""


def checkpoint_action_stats(directory: str | Path) -> dict[str, np.ndarray]:
    """The action stats (``mean``, ``std``, ``min``, ``max``, ``q01`` ... ``q99``) a LeRobot
    checkpoint unnormalizes with: the state file of its postprocessor's unnormalizer step."""
    from safetensors.numpy import load_file

    directory = Path(directory)
    pipeline = _read_json(directory / POSTPROCESSOR_FILE)
    steps = [s for s in pipeline.get("steps", []) if isinstance(s, dict) and s.get("registry_name") == UNNORMALIZER]
    if not steps or not isinstance(steps[0].get("state_file"), str):
        raise CheckpointError(f"{directory / POSTPROCESSOR_FILE}: steps: no {UNNORMALIZER} step with a state_file")
    state_file = directory / steps[0]["state_file"]
    try:
        tensors = load_file(state_file)
    except Exception as err:  # safetensors raises its own kinds for a missing or damaged file
        raise CheckpointError(f"{state_file}: cannot be read ({type(err).__name__}: "
                              f"{' '.join(str(err).split())[:300]})") from None
    stats = {key.removeprefix("action."): value.astype(np.float64) for key, value in tensors.items()
             if key.startswith("action.")}
    if not {"mean", "std", "min", "max"} <= set(stats):
        raise CheckpointError(f"{state_file}: action: expected mean, std, min and max, got {sorted(stats)}")
    return stats


def camera_image_size(spec: EmbodimentSpec, image_features: Mapping[str, tuple[int, ...]],
                      where: str) -> int | None:
    """The ``image_size`` a `TabletopEnv` renders the checkpoint's images at (None: the spec's own).

    Raises:
        CheckpointError: a camera the robot lacks, a shape that is not (3, H, W), or a size the
            simulator cannot render (not the spec's and not square).
    """
    cameras = {c.name: c for c in spec.cameras}
    sizes: set[int | None] = set()
    for key, shape in image_features.items():
        name = key.removeprefix(IMAGE_PREFIX)
        if name not in cameras:
            raise CheckpointError(f"{where}: input_features.{key}: {spec.name!r} has no camera {name!r}; "
                                  f"its cameras: {', '.join(cameras) or 'none'}")
        if len(shape) != 3 or shape[0] != 3:
            raise CheckpointError(f"{where}: input_features.{key}: shape {shape}, expected (3, H, W)")
        height, width = shape[1:]
        if (height, width) == (cameras[name].height, cameras[name].width):
            sizes.add(None)
        elif height == width:
            sizes.add(height)
        else:
            raise CheckpointError(f"{where}: input_features.{key}: {height}x{width} is neither the camera's "
                                  f"{cameras[name].height}x{cameras[name].width} nor square")
    if len(sizes) > 1:
        raise CheckpointError(f"{where}: input_features: images of different sizes {sorted(map(str, sizes))}")
    return next(iter(sizes), None)


@dataclass
class LeRobotPolicy:
    """A LeRobot `PreTrainedPolicy` for one robot, with its processors.

    Attributes:
        policy: the lerobot policy (one of `CHUNK_TYPES`), in eval mode, on the CPU.
        preprocessor / postprocessor: lerobot's pipelines loaded from the checkpoint.
        spec: the robot's embodiment spec.
        stats: ``{robot: {"action": {stat: (A,)}}}``, the checkpoint's action stats in the layout
            of `CrossEmbodimentPolicy.stats` (the safety shield reads its data range there).
        image_size: the square size the simulator renders the images at; None: the spec's.
    """

    policy: Any
    preprocessor: Any
    postprocessor: Any
    spec: EmbodimentSpec
    stats: dict[str, dict[str, dict[str, np.ndarray]]]
    image_size: int | None = None

    @property
    def robot(self) -> str:
        return self.spec.name

    @property
    def n_action_steps(self) -> int:
        return int(self.policy.config.n_action_steps)

    @property
    def observation_keys(self) -> tuple[str, ...]:
        """The observations the policy reads (its ``input_features``)."""
        return tuple(self.policy.config.input_features)

    @property
    def needs_images(self) -> bool:
        return any(k.startswith(IMAGE_PREFIX) for k in self.observation_keys)

    @torch.no_grad()
    def predict_from_observations(self, observations: Mapping[str, np.ndarray],
                                  instructions: Sequence[str]) -> torch.Tensor:
        """Observation batches by feature name, (B, ...), and B instruction texts → (B, H, A)
        actions in native units.

        Images come as the simulator renders them, (B, H, W, 3) uint8, and go in as lerobot's
        datasets give them, (B, 3, H, W) float in [0, 1].
        """
        batch: dict[str, Any] = {}
        for key in self.observation_keys:
            value = torch.as_tensor(np.asarray(observations[key])).float()
            if key.startswith(IMAGE_PREFIX):
                value = value.movedim(-1, -3) / 255.0  # (B, H, W, 3) → (B, 3, H, W)
            batch[key] = value
        batch["task"] = list(instructions)
        chunk = self.policy.predict_action_chunk(self.preprocessor(batch))  # (B, H, A), normalized
        return self.postprocessor(chunk)


def _check_features(config: Any, spec: EmbodimentSpec, where: Path) -> int | None:
    """Raise unless every input is an observation the simulator gives ``spec`` (its image size back)."""
    from locksmith.sim.env import env_state_dim

    shapes = {"observation.state": (spec.state_dim,),
              "observation.environment_state": (env_state_dim(len(spec.arms)),)}
    images = {}
    for key, feature in config.input_features.items():
        shape = tuple(feature.shape)
        if key.startswith(IMAGE_PREFIX):
            images[key] = shape
        elif key not in shapes:
            raise CheckpointError(f"{where}: input_features.{key}: the simulator gives {spec.name!r} no such "
                                  f"observation; it gives {', '.join(shapes)} and {IMAGE_PREFIX}<camera>")
        elif shape != shapes[key]:
            raise CheckpointError(f"{where}: input_features.{key}: shape {shape}, robot {spec.name!r} has "
                                  f"{shapes[key]}")
    action = config.output_features.get("action")
    if action is None or tuple(action.shape) != (spec.action_dim,):
        raise CheckpointError(f"{where}: output_features.action: shape "
                              f"{None if action is None else tuple(action.shape)}, robot {spec.name!r} has "
                              f"{(spec.action_dim,)}")
    return camera_image_size(spec, images, str(where))


def _check_training_dataset(directory: Path, spec: EmbodimentSpec) -> None:
    """Compare the dataset lerobot-train read (when it is still on disk) with the robot: its
    locksmith robot name and its feature names must be the ones the simulator gives."""
    from locksmith.data.record import META_FILE, dataset_features

    train_config = directory / TRAIN_CONFIG_FILE
    root = training_dataset(directory)
    if root is None:
        log.info("%s: the training dataset is not on disk; its feature names are not compared", train_config)
        return
    meta = _read_json(root / META_FILE) if (root / META_FILE).is_file() else {}
    if meta.get("robot") not in (None, spec.name):
        raise CheckpointError(f"{train_config}: dataset.root {root} holds demos of robot {meta['robot']!r}, "
                              f"not {spec.name!r}")
    recorded = _read_json(root / "meta" / "info.json").get("features", {})
    expected = dataset_features(spec, camera=False)
    for key in ("observation.state", "observation.environment_state", "action"):
        names = recorded.get(key, {}).get("names") if isinstance(recorded.get(key), dict) else None
        if names is not None and list(names) != list(expected[key]["names"]):
            raise CheckpointError(f"{root / 'meta' / 'info.json'}: features.{key}.names {list(names)[:4]}... are not "
                                  f"{spec.name!r}'s {list(expected[key]['names'])[:4]}...")


def load_lerobot_policy(directory: str | Path, robot: str) -> LeRobotPolicy:
    """Load a plain LeRobot checkpoint for ``robot`` (see the module docstring for the checks).

    Raises:
        CheckpointError: a missing or damaged file, a field that does not fit the robot.
    """
    from lerobot.policies.factory import make_pre_post_processors

    directory = Path(directory)
    raw = read_raw_config(directory)
    kind = raw["type"]
    if kind not in CHUNK_TYPES:
        raise CheckpointError(f"{directory / CONFIG_FILE}: type: {kind!r}; `locksmith eval` runs "
                              f"{', '.join(CHUNK_TYPES)} checkpoints; evaluate this one with lerobot-eval "
                              "--env.discover_packages_path=lerobot_env_locksmith --env.type=locksmith")
    if raw.get("temporal_ensemble_coeff") is not None:
        raise CheckpointError(f"{directory / CONFIG_FILE}: temporal_ensemble_coeff: "
                              f"{raw['temporal_ensemble_coeff']}; closed-loop evaluation re-plans from chunks "
                              "(set it to null)")
    for name in (WEIGHTS_FILE, PREPROCESSOR_FILE, POSTPROCESSOR_FILE):
        if not (directory / name).is_file():
            raise CheckpointError(f"{directory}: incomplete LeRobot checkpoint (no {name})")
    spec = load_robot_spec(robot)
    config = read_policy_config(directory)
    image_size = _check_features(config, spec, directory / CONFIG_FILE)
    _check_training_dataset(directory, spec)
    policy = load_policy_weights(config, directory)
    stats = checkpoint_action_stats(directory)
    try:
        preprocessor, postprocessor = make_pre_post_processors(
            config, pretrained_path=str(directory), preprocessor_overrides={"device_processor": {"device": "cpu"}},
            postprocessor_overrides={"device_processor": {"device": "cpu"}})
    except Exception as err:  # lerobot raises many kinds for a damaged processor
        raise CheckpointError(f"{directory}: processors cannot be loaded ({type(err).__name__}: "
                              f"{' '.join(str(err).split())[:300]})") from None
    return LeRobotPolicy(policy, preprocessor, postprocessor, spec, {spec.name: {"action": stats}}, image_size)


__all__ = ["CHUNK_TYPES", "LeRobotPolicy", "camera_image_size", "checkpoint_action_stats", "is_lerobot_checkpoint",
           "load_lerobot_policy"]
