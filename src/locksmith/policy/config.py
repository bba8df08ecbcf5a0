"""Typed, validated configuration of the cross-embodiment policy."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace

from locksmith.embodiment.spec import EmbodimentSpec
from locksmith.policy import (
    ACTION_SPACES,
    DEFAULT_IMAGE_SHIFT,
    DEFAULT_IMAGE_SIZE,
    INTENT_FEATURES,
    OBSERVATIONS,
    check_image_size,
    omit_defaults,
)
from locksmith.sim.scene import N_OBJECTS, N_PADS

CONFIG_VERSION = 1
OBJECT_FIELDS, PAD_FIELDS, ARM_FIELDS = 7, 6, 4  # must match sim.env's environment_state layout
MAX_ARMS = 2


@dataclass(frozen=True)
class EmbodimentConfig:
    """The sizes of one robot's stems and head.

    ``chunk_size`` is about one second of control at the robot's rate; ``n_action_steps`` of a
    predicted chunk are executed before the policy predicts again.

    ``action_state_index`` makes actions relative: for each action dimension, the state
    dimension it is predicted relative to (the head predicts ``action - state[index]``, and
    `CrossEmbodimentPolicy.predict_action_chunk` adds the current state back), or -1 where the
    action stays absolute (gripper, and commands that are already relative: ee_delta, velocity).
    Empty: every dimension absolute (checkpoints written before relative actions existed).
    """

    name: str
    state_dim: int
    env_dim: int
    action_dim: int
    n_arms: int
    chunk_size: int
    n_action_steps: int
    action_state_index: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "action_state_index", tuple(int(i) for i in self.action_state_index))  # JSON lists
        index = self.action_state_index
        if index and len(index) != self.action_dim:
            raise ValueError(f"embodiment {self.name!r}: action_state_index has {len(index)} entries, "
                             f"action_dim={self.action_dim}")
        bad = [i for i in index if not -1 <= i < self.state_dim]
        if bad:
            raise ValueError(f"embodiment {self.name!r}: action_state_index entries {bad} outside -1..{self.state_dim - 1}")
        for f in ("state_dim", "env_dim", "action_dim", "chunk_size", "n_action_steps"):
            if getattr(self, f) < 1:
                raise ValueError(f"embodiment {self.name!r}: {f}={getattr(self, f)} must be >= 1")
        if not 1 <= self.n_arms <= MAX_ARMS:
            raise ValueError(f"embodiment {self.name!r}: n_arms={self.n_arms} must be 1..{MAX_ARMS}")
        expected = N_OBJECTS * OBJECT_FIELDS + N_PADS * PAD_FIELDS + self.n_arms * ARM_FIELDS
        if self.env_dim != expected:
            raise ValueError(f"embodiment {self.name!r}: env_dim={self.env_dim}, the scene layout gives {expected}")
        if self.n_action_steps > self.chunk_size:
            raise ValueError(f"embodiment {self.name!r}: n_action_steps={self.n_action_steps} > chunk_size={self.chunk_size}")

    @property
    def relative_actions(self) -> bool:
        return any(i >= 0 for i in self.action_state_index)

    @classmethod
    def from_spec(cls, spec: EmbodimentSpec, chunk_seconds: float = 1.0, execute_fraction: float = 0.5,
                  relative_actions: bool = True) -> EmbodimentConfig:
        chunk = max(2, int(round(chunk_seconds * spec.control_rate_hz)))
        index = relative_action_index(spec) if relative_actions else ()
        n_arms = len(spec.arms)
        return cls(
            name=spec.name,
            state_dim=spec.state_dim,
            env_dim=N_OBJECTS * OBJECT_FIELDS + N_PADS * PAD_FIELDS + n_arms * ARM_FIELDS,
            action_dim=spec.action_dim,
            n_arms=n_arms,
            chunk_size=chunk,
            n_action_steps=max(1, int(round(chunk * execute_fraction))),
            action_state_index=index if any(i >= 0 for i in index) else (),
        )


def relative_action_index(spec: EmbodimentSpec) -> tuple[int, ...]:
    """Per action dimension, the state dimension a relative action is taken from (-1: absolute).

    A ``joint_position`` action component is relative to the ``joint_position`` state component
    of the same arm (same size and units); every other action kind stays absolute.
    """
    index = [-1] * spec.action_dim
    state_slices = spec.slices("state")
    action_slices = spec.slices("action")
    for comp in spec.action:
        if comp.kind != "joint_position":
            continue
        match = [s for s in spec.state if s.kind == "joint_position" and s.arm == comp.arm]
        if not match or match[0].size != comp.size or match[0].native_scale != comp.native_scale:
            continue  # no state in the same units to be relative to: keep it absolute
        a, s = action_slices[comp.name], state_slices[match[0].name]
        index[a] = list(range(s.start, s.stop))
    return tuple(index)




@dataclass(frozen=True)
class PolicyConfig:
    """Sizes of the shared trunk and the embodiments it serves (stems/heads per embodiment)."""

    embodiments: tuple[EmbodimentConfig, ...]
    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    d_feedforward: int = 384
    n_readouts: int = 2
    head_multiplier: int = 2  # hidden width of each action head, in units of d_model
    dropout: float = 0.0
    language_dim: int = 384
    relative_actions: bool = True  # joint-position actions predicted relative to the joint state
    grounding_weight: float = 0.3  # auxiliary loss: which object/pad the instruction names (shared head)
    language_prefix: bool = True  # language attends only to language, computed once per instruction
    action_space: str = "native"  # see ACTION_SPACES
    intent_features: str = "absolute"  # an intent policy's scene features, see INTENT_FEATURES
    observation: str = "state"  # the scene as privileged state or as pixels, see OBSERVATIONS
    image_size: int = DEFAULT_IMAGE_SIZE  # px, a pixel policy's square camera image
    image_shift: int = DEFAULT_IMAGE_SHIFT  # px, a pixel policy's random shift of its pictures in training
    keypoints: int = 0  # a pixel policy's spatial-softmax keypoints (one more image token; 0: none)
    scene_weight: float = 0.0  # a pixel policy's auxiliary loss: where the named cube and pad are (training only)
    colour_film: bool = False  # a pixel policy's encoder conditioned (FiLM) on the colours its instruction names
    version: int = CONFIG_VERSION
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.version > CONFIG_VERSION:
            raise ValueError(f"config version {self.version} is newer than this locksmith ({CONFIG_VERSION})")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} must be divisible by n_heads={self.n_heads}")
        for f in ("d_model", "n_layers", "n_heads", "d_feedforward", "n_readouts", "head_multiplier"):
            if getattr(self, f) < 1:
                raise ValueError(f"{f}={getattr(self, f)} must be >= 1")
        if self.grounding_weight < 0:
            raise ValueError(f"grounding_weight={self.grounding_weight} must be >= 0")
        if self.action_space not in ACTION_SPACES:
            raise ValueError(f"action_space={self.action_space!r}; known: {', '.join(ACTION_SPACES)}")
        if self.intent_features not in INTENT_FEATURES:
            raise ValueError(f"intent_features={self.intent_features!r}; known: {', '.join(INTENT_FEATURES)}")
        if self.intent_features != "absolute" and not self.intent:
            raise ValueError(f"intent_features={self.intent_features!r} needs action_space 'intent' (a native "
                             "policy reads each robot's own state)")
        if self.observation not in OBSERVATIONS:
            raise ValueError(f"observation={self.observation!r}; known: {', '.join(OBSERVATIONS)}")
        if self.pixels and self.intent:
            raise ValueError("observation 'pixels' with action_space 'intent' is not built yet: an intent policy's "
                             "shared stem reads the scene state")
        if self.pixels and self.grounding_weight > 0:
            raise ValueError("observation 'pixels' has no object and pad tokens for the grounding head: give "
                             "grounding_weight 0")
        if self.scene_weight < 0:
            raise ValueError(f"scene_weight={self.scene_weight} must be >= 0")
        if self.colour_film and not self.pixels:
            raise ValueError("colour_film needs observation 'pixels' (it conditions the vision encoder)")
        if self.scene_weight > 0 and not self.pixels:
            raise ValueError("scene_weight > 0 needs observation 'pixels' (a state policy reads the scene it would "
                             "predict)")
        check_image_size(self.image_size)
        if not 0 <= self.keypoints <= 256:
            raise ValueError(f"keypoints={self.keypoints} must be between 0 and 256")
        if not 0 <= self.image_shift <= self.image_size // 4:
            raise ValueError(f"image_shift={self.image_shift} must be between 0 and a quarter of image_size "
                             f"({self.image_size // 4})")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout={self.dropout} must be in [0, 1)")
        names = [e.name for e in self.embodiments]
        if not self.relative_actions:
            relative = [e.name for e in self.embodiments if e.relative_actions]
            if relative:
                raise ValueError(f"relative_actions=False but embodiments {relative} have an action_state_index")
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate embodiments in {names}")

    def embodiment(self, name: str) -> EmbodimentConfig:
        for emb in self.embodiments:
            if emb.name == name:
                return emb
        raise KeyError(f"this policy has no embodiment {name!r}; it knows {[e.name for e in self.embodiments]}")

    @property
    def intent(self) -> bool:
        return self.action_space == "intent"

    @property
    def pixels(self) -> bool:
        return self.observation == "pixels"

    def to_json(self) -> str:
        # later fields at their default are left out: as written before them, same file, same digest
        return json.dumps(omit_defaults(asdict(self)), indent=2)

    @classmethod
    def from_json(cls, text: str) -> PolicyConfig:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise TypeError(f"expected a JSON object, got {type(data).__name__}")
        if "embodiments" not in data:
            kind = f" (a {data['type']!r} policy config, e.g. from lerobot-train)" if isinstance(data.get("type"), str) else ""
            raise KeyError(f"not a locksmith policy config{kind}: no 'embodiments' field; `locksmith eval` takes "
                           "a policy from `locksmith pretrain` or `locksmith adapt` (their policy/ folder)")
        if not isinstance(data["embodiments"], list) or not all(isinstance(e, dict) for e in data["embodiments"]):
            raise TypeError("field 'embodiments' must be a list of objects")
        data.setdefault("relative_actions", False)  # configs written before relative actions
        data.setdefault("grounding_weight", 0.0)  # ... and before the grounding head
        data.setdefault("language_prefix", False)  # ... and before the language prefix
        data["embodiments"] = tuple(EmbodimentConfig(**e) for e in data["embodiments"])
        return cls(**data)

    def with_embodiment(self, emb: EmbodimentConfig) -> PolicyConfig:
        """A copy that also serves ``emb`` (replacing one of the same name)."""
        kept = tuple(e for e in self.embodiments if e.name != emb.name)
        return replace(self, embodiments=kept + (emb,))
