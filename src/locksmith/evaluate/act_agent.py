"""Closed-loop control by a LeRobot ACT peer checkpoint (see `locksmith.train.act_peer`).

`load_act_peer` reads the folder through lerobot's own loaders (config, weights, processors)
and the stats and spec saved beside them; `ACTAgent` acts for a batch of environments, one
batched inference for every environment whose queue ran out, with each environment's
instruction (ACT reads the cube and pad it names in the current scene, `act_peer.named_features`),
re-planning every ``n_action_steps`` as `PolicyAgent` does. Its actions are in the
robot's native units (an intent ACT's, once each environment's intent decoder has turned them
into the robot's command), so the evaluator sends them through the same safety shield.

`ACTAgent` also acts with a plain LeRobot ACT checkpoint (`locksmith.evaluate.lerobot_policy`):
both kinds read observation batches by feature name (``observation_keys``,
`predict_from_observations`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from locksmith.embodiment.spec import SpecError, load_spec
from locksmith.evaluate.lerobot_policy import LeRobotPolicy
from locksmith.evaluate.rollout import Agent
from locksmith.policy import ACTION_SPACES
from locksmith.policy.policy import STATS_FILE, CheckpointError
from locksmith.sim.intent import intent_size
from locksmith.train.act_inputs import COLOUR_DIM, COLOUR_ENCODING
from locksmith.train.act_peer import MARKER_FILE, NAMED_DIM, NAMED_ENCODING, PEER_KIND, SPEC_FILE, ActPeer

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
PROCESSOR_FILES = ("policy_preprocessor.json", "policy_postprocessor.json")


def is_act_checkpoint(path: str | Path | None) -> bool:
    """Whether ``path`` is a folder written by `train_act_peer` (it holds the peer marker).

    A damaged marker still counts: `load_act_peer` then says what is wrong with it.
    """
    return path is not None and (Path(path) / MARKER_FILE).is_file()


def _read_marker(directory: Path) -> dict:
    try:
        marker = json.loads((directory / MARKER_FILE).read_text())
    except (OSError, ValueError) as err:
        raise CheckpointError(f"{directory / MARKER_FILE}: cannot be read ({err})") from None
    if not isinstance(marker, dict) or marker.get("kind") != PEER_KIND or not isinstance(marker.get("robot"), str):
        raise CheckpointError(f"{directory / MARKER_FILE}: expected kind {PEER_KIND!r} and a robot name, "
                              f"got {str(marker)[:120]}")
    return marker


def load_act_peer(directory: str | Path, robot: str | None = None) -> ActPeer:
    """Load an ACT peer checkpoint, checking it is complete and (with ``robot``) for that robot.

    Raises:
        CheckpointError: missing folder or file, a damaged marker, config, weights or processor,
            stats or spec that contradict the config, or a checkpoint for another robot.
    """
    from lerobot.configs.policies import PreTrainedConfig
    from lerobot.policies.act.modeling_act import ACTPolicy
    from lerobot.policies.factory import make_pre_post_processors
    from safetensors.torch import load_model

    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: checkpoint folder not found")
    if not (directory / MARKER_FILE).is_file():
        raise CheckpointError(f"{directory}: not an ACT peer checkpoint (no {MARKER_FILE})")
    marker = _read_marker(directory)
    if robot is not None and marker["robot"] != robot:
        raise CheckpointError(f"{directory}: ACT peer checkpoint is for robot {marker['robot']!r}, not {robot!r}")
    pixels = marker.get("observation", "state") == "pixels"
    encoding = COLOUR_ENCODING if pixels else NAMED_ENCODING
    if not isinstance(marker.get("environment_state_dim"), int) or marker.get("named_entities") != encoding:
        raise CheckpointError(f"{directory / MARKER_FILE}: an ACT peer that does not read the task as this version "
                              "does (written before ACT was given the named cube and pad, "
                              "`act_peer.NAMED_ENCODING`): train it again")
    for name in (CONFIG_FILE, WEIGHTS_FILE, STATS_FILE, SPEC_FILE, *PROCESSOR_FILES):
        if not (directory / name).is_file():
            raise CheckpointError(f"{directory}: incomplete ACT peer checkpoint (no {name})")
    try:
        spec = load_spec(directory / SPEC_FILE)
    except SpecError as err:
        raise CheckpointError(str(err)) from None
    if spec.name != marker["robot"]:
        raise CheckpointError(f"{directory}: {SPEC_FILE} is for {spec.name!r}, {MARKER_FILE} for {marker['robot']!r}")
    try:
        config = PreTrainedConfig.from_pretrained(directory)
    except Exception as err:  # draccus and json raise many kinds for a damaged config
        raise CheckpointError(f"{directory / CONFIG_FILE}: cannot be read ({type(err).__name__}: {err})") from None
    if config.type != PEER_KIND:
        raise CheckpointError(f"{directory / CONFIG_FILE}: policy type {config.type!r}, expected {PEER_KIND!r}")
    action_space = marker.get("action_space", "native")
    if action_space not in ACTION_SPACES:
        raise CheckpointError(f"{directory / MARKER_FILE}: action_space {action_space!r}; known: "
                              f"{', '.join(ACTION_SPACES)}")
    action_dim = intent_size(spec) if action_space == "intent" else spec.action_dim
    shapes = {k: tuple(f.shape) for k, f in {**config.input_features, **config.output_features}.items()}
    expected = {"observation.state": (spec.state_dim,), "action": (action_dim,),
                "observation.environment_state": (marker["environment_state_dim"] + NAMED_DIM,)}
    image_size = None
    if pixels:  # a pixel ACT: the robot's first camera, square, and the task's colour columns
        from locksmith.policy.vision import camera_feature

        image_size = marker.get("image_size")
        if not isinstance(image_size, int) or image_size < 1 or marker.get("camera") != camera_feature(spec):
            raise CheckpointError(f"{directory / MARKER_FILE}: a pixel ACT names image_size {image_size!r} and "
                                  f"camera {marker.get('camera')!r}; {spec.name!r} reads {camera_feature(spec)!r}")
        expected.update({"observation.environment_state": (COLOUR_DIM,),
                         camera_feature(spec): (3, image_size, image_size)})
    extra = sorted(set(config.input_features) - set(expected))
    if extra:
        raise CheckpointError(f"{directory / CONFIG_FILE}: input_features {extra} are not what a "
                              f"{'pixel' if pixels else 'state'} ACT peer reads ({', '.join(expected)})")
    for key, shape in expected.items():
        if shapes.get(key) != shape:
            raise CheckpointError(f"{directory / CONFIG_FILE}: {key!r} has shape {shapes.get(key)}, "
                                  f"spec {spec.name!r} says {shape}")
    policy = ACTPolicy(config)
    try:
        # lerobot's `from_pretrained` loads non-strictly (and prints); a damaged file must fail here.
        load_model(policy, directory / WEIGHTS_FILE, strict=True, device="cpu")
    except Exception as err:  # safetensors / torch raise their own kinds
        raise CheckpointError(f"{directory / WEIGHTS_FILE}: cannot be loaded ({type(err).__name__}: "
                              f"{str(err).strip().splitlines()[-1][:300]})") from None
    policy.eval()
    try:
        preprocessor, postprocessor = make_pre_post_processors(config, pretrained_path=str(directory))
    except Exception as err:  # lerobot raises many kinds for a damaged processor
        raise CheckpointError(f"{directory}: processors cannot be loaded ({type(err).__name__}: {err})") from None
    try:
        raw = json.loads((directory / STATS_FILE).read_text())
        stats = {r: {f: {k: np.asarray(v) for k, v in s.items()} for f, s in st.items()} for r, st in raw.items()}
    except (ValueError, AttributeError) as err:
        raise CheckpointError(f"{directory / STATS_FILE}: cannot be read ({err})") from None
    if spec.name not in stats or "action" not in stats[spec.name]:
        raise CheckpointError(f"{directory / STATS_FILE}: no action stats for {spec.name!r}")
    return ActPeer(policy, preprocessor, postprocessor, spec, stats, action_space, image_size)


class ACTAgent(Agent):
    """An ACT peer (or a plain LeRobot checkpoint, `LeRobotPolicy`) acting for its robot, batched
    over environments, on each environment's instruction."""

    def __init__(self, peer: ActPeer | LeRobotPolicy, robot: str | None = None, n_steps: int | None = None):
        if robot is not None and robot != peer.robot:
            raise CheckpointError(f"ACT peer is for robot {peer.robot!r}, not {robot!r}")
        self.peer = peer
        self.n_steps = n_steps or peer.n_action_steps

    @classmethod
    def from_checkpoint(cls, directory: str | Path, robot: str | None = None) -> ACTAgent:
        return cls(load_act_peer(directory, robot))

    def reset(self, envs):
        from locksmith.sim.intent import decoder_for

        self.queues: list[list[np.ndarray]] = [[] for _ in envs]
        intent = getattr(self.peer, "action_space", "native") == "intent"
        self.decoders = [decoder_for(env) for env in envs] if intent else None

    def act(self, envs, active, obs):
        need = [k for k, i in enumerate(active) if not self.queues[i]]
        if need:
            batch = {key: np.stack([obs[k][key] for k in need])  # (B, ...) per feature
                     for key in self.peer.observation_keys}
            texts = [envs[active[k]].instruction for k in need]
            chunk = np.asarray(self.peer.predict_from_observations(batch, texts))  # (B, H, A)
            for row, k in enumerate(need):
                self.queues[active[k]] = list(chunk[row, : self.n_steps])
        if self.decoders is not None:  # an intent ACT: each robot's decoder turns intent into its command
            return np.stack([self.decoders[i].decode(self.queues[i].pop(0)) for i in active])
        return np.stack([self.queues[i].pop(0) for i in active])


__all__ = ["ACTAgent", "is_act_checkpoint", "load_act_peer"]
