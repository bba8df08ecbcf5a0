"""Typed, validated configuration of the cross-embodiment policy."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace

from locksmith.embodiment.spec import EmbodimentSpec
from locksmith.sim.scene import N_OBJECTS, N_PADS

CONFIG_VERSION = 1
OBJECT_FIELDS, PAD_FIELDS, ARM_FIELDS = 7, 6, 4  # must match sim.env's environment_state layout
MAX_ARMS = 2


@dataclass(frozen=True)
class EmbodimentConfig:
    """The sizes of one robot's stems and head.

    ``chunk_size`` is about one second of control at the robot's rate; ``n_action_steps`` of a
    predicted chunk are executed before the policy predicts again.
    """

    name: str
    state_dim: int
    env_dim: int
    action_dim: int
    n_arms: int
    chunk_size: int
    n_action_steps: int

    def __post_init__(self) -> None:
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

    @classmethod
    def from_spec(cls, spec: EmbodimentSpec, chunk_seconds: float = 1.0, execute_fraction: float = 0.5) -> EmbodimentConfig:
        chunk = max(2, int(round(chunk_seconds * spec.control_rate_hz)))
        n_arms = len(spec.arms)
        return cls(
            name=spec.name,
            state_dim=spec.state_dim,
            env_dim=N_OBJECTS * OBJECT_FIELDS + N_PADS * PAD_FIELDS + n_arms * ARM_FIELDS,
            action_dim=spec.action_dim,
            n_arms=n_arms,
            chunk_size=chunk,
            n_action_steps=max(1, int(round(chunk * execute_fraction))),
        )


@dataclass(frozen=True)
class PolicyConfig:
    """Sizes of the shared trunk and the embodiments it serves (stems/heads per embodiment)."""

    embodiments: tuple[EmbodimentConfig, ...]
    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    d_feedforward: int = 384
    n_readouts: int = 4
    dropout: float = 0.0
    language_dim: int = 384
    version: int = CONFIG_VERSION
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.version > CONFIG_VERSION:
            raise ValueError(f"config version {self.version} is newer than this locksmith ({CONFIG_VERSION})")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} must be divisible by n_heads={self.n_heads}")
        for f in ("d_model", "n_layers", "n_heads", "d_feedforward", "n_readouts"):
            if getattr(self, f) < 1:
                raise ValueError(f"{f}={getattr(self, f)} must be >= 1")
        names = [e.name for e in self.embodiments]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate embodiments in {names}")

    def embodiment(self, name: str) -> EmbodimentConfig:
        for emb in self.embodiments:
            if emb.name == name:
                return emb
        raise KeyError(f"this policy has no embodiment {name!r}; it knows {[e.name for e in self.embodiments]}")

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> PolicyConfig:
        data = json.loads(text)
        data["embodiments"] = tuple(EmbodimentConfig(**e) for e in data["embodiments"])
        return cls(**data)

    def with_embodiment(self, emb: EmbodimentConfig) -> PolicyConfig:
        """A copy that also serves ``emb`` (replacing one of the same name)."""
        kept = tuple(e for e in self.embodiments if e.name != emb.name)
        return replace(self, embodiments=kept + (emb,))
