"""`EmbodimentSpec`: the local contract of one robot, read from a YAML file.

Everything that differs between robots and that a shared policy must not guess lives here:
joint names and limits, the state layout, the action layout with its units and scaling, the
control rate, the gripper (geometry, closure threshold, polarity), the cameras (resolution,
timing, extrinsics), the safety envelope, stop conditions and the watchdog.

Units inside the spec's limits are SI (m, rad, N, N·m, s). The *native* units of the robot's
commands and state (degrees, millimetres, a 0-100 gripper scale, ...) are declared per layout
component with ``units`` and ``scale``: ``native = scale * SI`` for joint and Cartesian values;
gripper commands are native values between ``gripper.open_value`` and ``gripper.closed_value``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from locksmith.safe_yaml import InputFileError, bounded_repr, find_bool, load_yaml_file

SPEC_VERSION = 1

# Bounds on every number of a spec: sane for any real robot, far from overflow. Non-finite
# values (nan, inf) are refused everywhere, and so are true/false where a number is expected.
MAX_JOINT_RANGE = 1000.0  # |lower|, |upper| in rad or m; loose enough that limits written in degrees load, so `locksmith robot check` can name them
MAX_VELOCITY = 1e3  # rad/s or m/s
MAX_TORQUE = 1e5  # N·m or N
MIN_RATE_HZ, MAX_RATE_HZ = 1.0, 1000.0
MAX_SCALE = 1e6  # |scale| of a layout component, and at least 1 / MAX_SCALE
MAX_NATIVE = 1e6  # |gripper open/closed value|
MAX_WORKSPACE = 100.0  # |coordinate| in m of the workspace box, camera position and target
MAX_COMPONENTS = 64  # joints, arms, layout components, cameras, stop conditions

ActionKind = Literal["joint_position", "joint_velocity", "ee_delta", "base_velocity", "gripper"]
StateKind = Literal["joint_position", "joint_velocity", "gripper", "base_pose", "ee_position"]
Role = Literal["pretrain", "tabletop_arm", "mobile_manipulator", "bimanual_platform", "custom"]

# Units a layout component may declare, with the scale from SI each implies.
UNIT_SCALES: dict[str, float] = {
    "rad": 1.0,
    "deg": 57.29577951308232,
    "rad/s": 1.0,
    "deg/s": 57.29577951308232,
    "m": 1.0,
    "mm": 1000.0,
    "m/s": 1.0,
    "mixed": 1.0,
    "native": 1.0,
}


class SpecError(ValueError):
    """An embodiment spec file is invalid; the message names the file, field and value."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class JointSpec(_Model):
    """One actuated joint. Limits in SI units (rad or m; rad/s or m/s; N·m or N)."""

    name: str
    lower: float = Field(ge=-MAX_JOINT_RANGE, le=MAX_JOINT_RANGE)
    upper: float = Field(ge=-MAX_JOINT_RANGE, le=MAX_JOINT_RANGE)
    velocity_limit: float = Field(gt=0, le=MAX_VELOCITY)
    torque_limit: float = Field(gt=0, le=MAX_TORQUE)

    @model_validator(mode="after")
    def _ordered(self) -> JointSpec:
        if not self.lower < self.upper:
            raise ValueError(
                f"joint {self.name!r}: lower={self.lower} must be below upper={self.upper}"
            )
        return self


class GripperSpec(_Model):
    """Gripper geometry and command convention.

    ``open_value``/``closed_value`` are the native command values for fully open and fully
    closed; their order is the polarity (``open_high`` when open is the larger value). A
    closure fraction in [0, 1] maps linearly onto them. ``closure_threshold`` is the closure
    fraction above which the gripper counts as closed (for state and stop logic).
    """

    type: Literal["parallel_jaw", "single_jaw", "linkage"]
    max_opening_m: float = Field(gt=0, le=1)
    finger_length_m: float = Field(gt=0, le=1)
    open_value: float = Field(ge=-MAX_NATIVE, le=MAX_NATIVE)
    closed_value: float = Field(ge=-MAX_NATIVE, le=MAX_NATIVE)
    units: str = "native"
    closure_threshold: float = Field(ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _distinct(self) -> GripperSpec:
        if self.open_value == self.closed_value:
            raise ValueError(f"open_value and closed_value are both {self.open_value}")
        return self

    @property
    def polarity(self) -> Literal["open_high", "open_low"]:
        return "open_high" if self.open_value > self.closed_value else "open_low"

    def to_native(self, closure: float) -> float:
        """Closure fraction (0 open, 1 closed) → native command value."""
        return self.open_value + closure * (self.closed_value - self.open_value)

    def to_closure(self, native: float) -> float:
        """Native command value → closure fraction (0 open, 1 closed)."""
        return (native - self.open_value) / (self.closed_value - self.open_value)


class ArmSpec(_Model):
    """One arm: its joints (names from `EmbodimentSpec.joints`, in order) and its gripper."""

    name: str
    joints: list[str] = Field(min_length=1, max_length=MAX_COMPONENTS)
    gripper: GripperSpec


class BaseSpec(_Model):
    """A holonomic mobile base commanded by velocity (vx, vy in m/s, wz in rad/s)."""

    max_linear_speed: float = Field(gt=0, le=MAX_VELOCITY)
    max_angular_speed: float = Field(gt=0, le=MAX_VELOCITY)


class LayoutComponent(_Model):
    """One slice of the state or action vector.

    ``arm`` names the arm a joint/gripper/ee component belongs to. ``units`` must be one of
    `UNIT_SCALES` (or ``native`` for the gripper); ``scale`` defaults to the unit's scale
    from SI and may be overridden (e.g. an ee_delta scaled so that 1.0 means 1 cm).
    """

    name: str
    kind: str
    size: int = Field(ge=1, le=MAX_COMPONENTS)
    arm: str | None = None
    units: str
    scale: float | None = Field(None, ge=-MAX_SCALE, le=MAX_SCALE)
    # Its dimensions' feature names in a recorded dataset (LeRobot's ``names``). Left out:
    # ``<name>.<joint>``, ``<name>.x|y|z``, ``<name>.x|y|yaw`` or ``<name>``. A robot LeRobot has
    # takes LeRobot's names (the SO-101's ``shoulder_pan.pos``), so that a simulated dataset and a
    # `lerobot-record` one of the same arm have the same features.
    names: tuple[str, ...] | None = Field(None, max_length=MAX_COMPONENTS)

    @field_validator("names")
    @classmethod
    def _names(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None and not all(isinstance(n, str) and n.strip() for n in value):
            raise ValueError(f"every feature name must be a non-empty string, got {list(value)}")
        return value

    @field_validator("scale")
    @classmethod
    def _nonzero_scale(cls, value: float | None) -> float | None:
        if value is not None and abs(value) < 1 / MAX_SCALE:
            raise ValueError(f"scale={value} must be at least {1 / MAX_SCALE:g} in size (native = scale * SI)")
        return value

    @field_validator("units")
    @classmethod
    def _known_units(cls, value: str) -> str:
        if value not in UNIT_SCALES:
            raise ValueError(f"unknown units {value!r}; expected one of {sorted(UNIT_SCALES)}")
        return value

    @property
    def native_scale(self) -> float:
        return self.scale if self.scale is not None else UNIT_SCALES[self.units]


class ActionComponent(LayoutComponent):
    kind: ActionKind  # type: ignore[assignment]


class StateComponent(LayoutComponent):
    kind: StateKind  # type: ignore[assignment]


class CameraSpec(_Model):
    """A camera: resolution, field of view, timing offset and extrinsics in the robot base frame."""

    name: str
    width: int = Field(ge=8, le=2048)
    height: int = Field(ge=8, le=2048)
    fovy_deg: float = Field(gt=0, lt=180)
    position: tuple[float, float, float]
    look_at: tuple[float, float, float]
    timing_offset_s: float = Field(0.0, ge=-1, le=1)

    @field_validator("position", "look_at")
    @classmethod
    def _in_reach(cls, value: tuple[float, float, float]) -> tuple[float, float, float]:
        if max(abs(v) for v in value) > MAX_WORKSPACE:
            raise ValueError(f"coordinates must be within ±{MAX_WORKSPACE:g} m, got {list(value)}")
        return value


class SafetySpec(_Model):
    """Safety envelope: end-effector workspace box (m, robot base frame) and speed limits."""

    workspace_min: tuple[float, float, float]
    workspace_max: tuple[float, float, float]
    max_ee_speed_m_s: float = Field(gt=0, le=10)
    max_joint_step_rad: float = Field(gt=0, le=3.2)  # per control step; π is already a half turn

    @model_validator(mode="after")
    def _ordered(self) -> SafetySpec:
        for name, box in (("workspace_min", self.workspace_min), ("workspace_max", self.workspace_max)):
            if max(abs(v) for v in box) > MAX_WORKSPACE:
                raise ValueError(f"{name}: coordinates must be within ±{MAX_WORKSPACE:g} m, got {list(box)}")
        for axis, lo, hi in zip("xyz", self.workspace_min, self.workspace_max, strict=True):
            if not lo < hi:
                raise ValueError(f"workspace {axis}: min={lo} must be below max={hi}")
        return self


class StopCondition(_Model):
    """A condition under which the safety shield stops the robot."""

    kind: Literal["ee_outside_workspace", "joint_limit_margin", "nonfinite_action", "table_collision"]
    threshold: float = Field(0.0, ge=-MAX_NATIVE, le=MAX_NATIVE)


class EmbodimentSpec(_Model):
    """The local contract of one robot (see the module docstring)."""

    spec_version: int = SPEC_VERSION
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    robot_type: str
    role: Role
    description: str = ""
    control_rate_hz: float = Field(ge=MIN_RATE_HZ, le=MAX_RATE_HZ)
    joints: list[JointSpec] = Field(min_length=1, max_length=MAX_COMPONENTS)
    arms: list[ArmSpec] = Field(min_length=1, max_length=MAX_COMPONENTS)
    base: BaseSpec | None = None
    state: list[StateComponent] = Field(min_length=1, max_length=MAX_COMPONENTS)
    action: list[ActionComponent] = Field(min_length=1, max_length=MAX_COMPONENTS)
    cameras: list[CameraSpec] = Field(default_factory=list, max_length=MAX_COMPONENTS)
    safety: SafetySpec
    stop_conditions: list[StopCondition] = Field(default_factory=list, max_length=MAX_COMPONENTS)
    watchdog_timeout_s: float = Field(gt=0, le=60)

    @model_validator(mode="after")
    def _consistent(self) -> EmbodimentSpec:
        if self.spec_version > SPEC_VERSION:
            raise ValueError(
                f"spec_version={self.spec_version} is newer than this locksmith understands "
                f"({SPEC_VERSION})"
            )
        joint_names = [j.name for j in self.joints]
        if len(set(joint_names)) != len(joint_names):
            raise ValueError(f"joints: duplicate joint names in {joint_names}")
        arm_names = [a.name for a in self.arms]
        if len(set(arm_names)) != len(arm_names):
            raise ValueError(f"arms: duplicate arm names in {arm_names}")
        camera_names = [c.name for c in self.cameras]
        if len(set(camera_names)) != len(camera_names):
            raise ValueError(f"cameras: duplicate camera names in {camera_names}")
        for arm in self.arms:
            for joint in arm.joints:
                if joint not in joint_names:
                    raise ValueError(
                        f"arms.{arm.name}.joints: {joint!r} is not one of joints {joint_names}"
                    )
        for section, layout in (("state", self.state), ("action", self.action)):
            names = [c.name for c in layout]
            if len(set(names)) != len(names):
                raise ValueError(f"{section}: duplicate component names in {names}")
            for comp in layout:
                self._check_component(section, comp, arm_names)
                if comp.names is not None and len(comp.names) != comp.size:
                    raise ValueError(f"{section}.{comp.name}.names: {len(comp.names)} names for size {comp.size}")
            features = self.names(section)
            if len(set(features)) != len(features):
                repeated = sorted({n for n in features if features.count(n) > 1})
                raise ValueError(f"{section}: feature names repeat: {repeated}")
        if self.base is None and any(c.kind == "base_velocity" for c in self.action):
            raise ValueError("action: a base_velocity component needs a `base` section")
        if self.base is not None and not any(c.kind == "base_velocity" for c in self.action):
            raise ValueError("action: a robot with a `base` needs a base_velocity component")
        for arm in self.arms:
            if not any(c.kind == "gripper" and c.arm == arm.name for c in self.action):
                raise ValueError(f"action: arm {arm.name!r} has no gripper component")
            if not any(
                c.kind in ("joint_position", "joint_velocity", "ee_delta") and c.arm == arm.name
                for c in self.action
            ):
                raise ValueError(f"action: arm {arm.name!r} has no arm command component")
        return self

    def _check_component(self, section: str, comp: LayoutComponent, arm_names: list[str]) -> None:
        where = f"{section}.{comp.name}"
        if comp.kind == "base_velocity" or comp.kind == "base_pose":
            if comp.size != 3:
                raise ValueError(f"{where}.size: {comp.kind} has size 3 (x, y, yaw), got {comp.size}")
            return
        if comp.arm not in arm_names:
            raise ValueError(f"{where}.arm: {comp.arm!r} is not one of arms {arm_names}")
        arm = self.arm(comp.arm)
        expected = {
            "joint_position": len(arm.joints),
            "joint_velocity": len(arm.joints),
            "gripper": 1,
            "ee_delta": 3,
            "ee_position": 3,
        }[comp.kind]
        if comp.size != expected:
            raise ValueError(f"{where}.size: {comp.kind} of arm {arm.name!r} has size {expected}, got {comp.size}")

    # ----------------------------------------------------------------- derived views
    def arm(self, name: str) -> ArmSpec:
        for arm in self.arms:
            if arm.name == name:
                return arm
        raise KeyError(f"{self.name}: no arm {name!r}; arms are {[a.name for a in self.arms]}")

    def joint(self, name: str) -> JointSpec:
        for joint in self.joints:
            if joint.name == name:
                return joint
        raise KeyError(f"{self.name}: no joint {name!r}")

    def joint_limits(self, arm: str) -> tuple[list[float], list[float]]:
        """The lower and upper limits of ``arm``'s joints, in its joint order (rad or m)."""
        joints = [self.joint(j) for j in self.arm(arm).joints]
        return [j.lower for j in joints], [j.upper for j in joints]

    @property
    def dof(self) -> int:
        """Actuated degrees of freedom: arm joints, one per gripper, three for a mobile base."""
        return len(self.joints) + len(self.arms) + (3 if self.base is not None else 0)

    @property
    def state_dim(self) -> int:
        return sum(c.size for c in self.state)

    @property
    def action_dim(self) -> int:
        return sum(c.size for c in self.action)

    @property
    def action_kind(self) -> str:
        """A short label of the command convention, e.g. ``base_velocity+ee_delta``."""
        kinds = [c.kind for c in self.action if c.kind != "gripper"]
        return "+".join(dict.fromkeys(kinds))

    @property
    def control_period_s(self) -> float:
        return 1.0 / self.control_rate_hz

    def slices(self, section: Literal["state", "action"]) -> dict[str, slice]:
        """Component name → slice into the flat state or action vector."""
        out, start = {}, 0
        for comp in getattr(self, section):
            out[comp.name] = slice(start, start + comp.size)
            start += comp.size
        return out

    def names(self, section: Literal["state", "action"]) -> list[str]:
        """Per-dimension names (LeRobot's ``names`` for a feature)."""
        names: list[str] = []
        for comp in getattr(self, section):
            if comp.names is not None:
                names += comp.names
            elif comp.kind in ("joint_position", "joint_velocity"):
                joints = self.arm(comp.arm).joints  # type: ignore[arg-type]
                names += [f"{comp.name}.{j}" for j in joints]
            elif comp.kind in ("ee_delta", "ee_position"):
                names += [f"{comp.name}.{a}" for a in "xyz"]
            elif comp.kind in ("base_velocity", "base_pose"):
                names += [f"{comp.name}.{a}" for a in ("x", "y", "yaw")]
            else:
                names.append(comp.name)
        return names

    def to_yaml(self) -> str:
        """The spec as YAML, written beside every dataset and digested into audit run keys.

        An optional field added to the schema after specs were written (``names``) is left out
        while unset, so a spec that does not use it is written, and digested, as before.
        """
        data = self.model_dump(mode="json")
        for section in ("state", "action"):
            for comp in data[section]:
                if comp.get("names") is None:
                    comp.pop("names", None)
        return yaml.safe_dump(data, sort_keys=False)


def format_validation_error(path: str, err: ValidationError, what: str = "embodiment spec") -> str:
    """One line per problem of a pydantic error: the file, the dotted field, the value."""
    lines = [f"{path}: invalid {what} ({err.error_count()} problem(s))"]
    for item in err.errors():
        field = ".".join(str(p) for p in item["loc"]) or "<root>"
        if item["type"] == "missing":
            lines.append(f"  field {field!r}: required field is missing")
            continue
        value = item.get("input")
        shown = bounded_repr(value) if not isinstance(value, dict) else "{...}"  # never expands a huge value
        msg = item["msg"].removeprefix("Value error, ")
        if len(msg) > 300:
            msg = msg[:297] + "..."
        lines.append(f"  field {field!r}: {msg} (got {shown})")
    return "\n".join(lines)


def parse_spec(data: object, source: str = "<memory>") -> EmbodimentSpec:
    """Validate a mapping as an `EmbodimentSpec`; errors name ``source``, field and value."""
    if not isinstance(data, dict):
        raise SpecError(f"{source}: expected a mapping at the top level, got {type(data).__name__}")
    where = find_bool(data)
    if where is not None:
        raise SpecError(f"{source}: invalid embodiment spec (1 problem(s))\n  field "
                        f"{'.'.join(map(str, where))!r}: expected a number or text, got a yes/no value")
    try:
        return EmbodimentSpec.model_validate(data)
    except ValidationError as err:
        raise SpecError(format_validation_error(source, err)) from None


def load_spec(path: str | Path) -> EmbodimentSpec:
    """Read and validate a spec file (YAML). Raises `SpecError` naming the file and field."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: spec file not found")
    try:
        data = load_yaml_file(path)  # bounded: size, nesting, aliases, duplicate keys
    except InputFileError as err:
        raise SpecError(str(err)) from None
    return parse_spec(data, str(path))
