"""Reading a plain LeRobot checkpoint folder (``lerobot-train``'s ``checkpoints/<step>/pretrained_model``).

One reader for both ways a LeRobot policy enters locksmith: closed-loop evaluation
(`locksmith.evaluate.lerobot_policy`) and the prior of a transfer audit
(`locksmith.train.lerobot_prior`). Each step fails with a `CheckpointError` that names the file
and, where there is one, the field:

    config.json         readable JSON object with a known LeRobot policy ``type``
                        (`read_raw_config`), then parsed by lerobot (`read_policy_config`)
    model.safetensors   loads strictly into the policy the config builds (`load_policy_weights`;
                        lerobot's own ``from_pretrained`` loads non-strictly, so a damaged file
                        would pass there)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from locksmith.policy.policy import CheckpointError

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
TRAIN_CONFIG_FILE = "train_config.json"


def read_json(path: Path) -> dict:
    """A JSON object from ``path``; `CheckpointError` naming the file when it is not one."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise CheckpointError(f"{path}: cannot be read ({' '.join(str(err).split())[:200]})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def is_lerobot_checkpoint(path: str | Path | None) -> bool:
    """Whether ``path`` holds a plain LeRobot checkpoint: a ``config.json`` with a policy ``type``
    and no locksmith ``embodiments`` (an ACT peer folder, which is one too, is told apart by
    `locksmith.evaluate.act_agent.is_act_checkpoint` where that matters)."""
    if path is None or not (Path(path) / CONFIG_FILE).is_file():
        return False
    try:
        config = json.loads((Path(path) / CONFIG_FILE).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and isinstance(config.get("type"), str) and "embodiments" not in config


def training_dataset(directory: Path) -> Path | None:
    """The dataset ``lerobot-train`` read (``train_config.json``'s ``dataset.root``), when it is
    still on disk (a relative root is read from the current folder); None otherwise."""
    path = Path(directory) / TRAIN_CONFIG_FILE
    if not path.is_file():
        return None
    dataset = read_json(path).get("dataset")
    root = dataset.get("root") if isinstance(dataset, dict) else None
    if not isinstance(root, str) or not (Path(root) / "meta" / "info.json").is_file():
        return None
    return Path(root)


def read_raw_config(directory: Path) -> dict:
    """``config.json`` as a dict whose ``type`` is a LeRobot policy type.

    Raises:
        CheckpointError: no folder, an unreadable config, or an unknown ``type``.
    """
    import lerobot.policies.factory  # noqa: F401  (registers the policy types)
    from lerobot.configs.policies import PreTrainedConfig

    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: checkpoint folder not found")
    raw = read_json(directory / CONFIG_FILE)
    known = sorted(PreTrainedConfig.get_known_choices())
    if raw.get("type") not in known:
        raise CheckpointError(f"{directory / CONFIG_FILE}: type: {raw.get('type')!r} is not a LeRobot policy type; "
                              f"known: {', '.join(known)}")
    return raw


def read_policy_config(directory: Path) -> Any:
    """lerobot's `PreTrainedConfig` of the folder, on the CPU, downloading nothing.

    Raises:
        CheckpointError: a config lerobot cannot parse.
    """
    from lerobot.configs.policies import PreTrainedConfig

    directory = Path(directory)
    try:
        config = PreTrainedConfig.from_pretrained(directory)
    except Exception as err:  # draccus raises many kinds for a damaged config
        message = " ".join(str(err).split())[:300]
        raise CheckpointError(f"{directory / CONFIG_FILE}: cannot be read ({type(err).__name__}: {message})") from None
    config.device = "cpu"
    if getattr(config, "pretrained_backbone_weights", None) is not None:
        config.pretrained_backbone_weights = None  # the trained backbone is in the weights; nothing to download
    return config


def load_policy_weights(config: Any, directory: Path) -> Any:
    """The policy ``config`` builds, with ``model.safetensors`` loaded strictly, in eval mode.

    Raises:
        CheckpointError: a missing, damaged or mismatched weights file.
    """
    from lerobot.policies.factory import get_policy_class
    from safetensors.torch import load_model

    path = Path(directory) / WEIGHTS_FILE
    if not path.is_file():
        raise CheckpointError(f"{directory}: incomplete LeRobot checkpoint (no {WEIGHTS_FILE})")
    policy = get_policy_class(config.type)(config)
    try:
        load_model(policy, path, strict=True, device="cpu")
    except Exception as err:  # safetensors / torch raise their own kinds
        raise CheckpointError(f"{path}: cannot be loaded ({type(err).__name__}: "
                              f"{str(err).strip().splitlines()[-1][:300]})") from None
    return policy.eval()


__all__ = ["CONFIG_FILE", "TRAIN_CONFIG_FILE", "WEIGHTS_FILE", "is_lerobot_checkpoint", "load_policy_weights",
           "read_json", "read_policy_config", "read_raw_config", "training_dataset"]
