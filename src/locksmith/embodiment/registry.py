"""The robots locksmith knows: the bundled ones (one YAML file each in ``embodiment/specs``) and
the ones a user registers without editing the package.

A user's robot is a spec (an `EmbodimentSpec` or its YAML file) plus a MuJoCo builder with the
bundled builders' contract (``build(spec, parent, variant) -> RobotRig``, see `locksmith.sim.rig`)
given as a module-level callable or a ``"module:function"`` string. Three ways in, all ending in
`register_robot`:

    in code            locksmith.register_robot("my_arm.yaml", builder="my_pkg.arm:build")
    environment        LOCKSMITH_ROBOTS="my_pkg.robots,other.mod:register"  (imported, the
                       function called, the first time a robot name is looked up)
    entry points       an installed package's ``[project.entry-points."locksmith.robots"]``
                       ``my_arm = "my_pkg.robots:register"`` (found the same way)

Registration is per process. The worker processes that `record_demos` and `evaluate` spawn get
the parent's registrations through their pool initializer (`registrations` →
`install_registrations`); the environment variable and entry points reach any process anyway.
The builder is kept as given (not a copy), so a callable must be importable by name (a
module-level function, not a lambda) for the workers to unpickle it.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import entry_points
from pathlib import Path

from locksmith.embodiment.spec import EmbodimentSpec, SpecError, load_spec

log = logging.getLogger(__name__)

SPECS_DIR = Path(__file__).parent / "specs"

# The order is the one `locksmith robots` prints: pretraining pool first, then the targets.
BUNDLED_ROBOTS = ("panda", "ur5e", "vx300s", "z1", "so101", "mobile_panda", "aloha")

ROBOTS_ENV = "LOCKSMITH_ROBOTS"
"""Environment variable: comma-separated ``module`` or ``module:function`` entries that register robots."""
ENTRY_POINT_GROUP = "locksmith.robots"
"""Entry-point group: each entry names a module or a zero-argument function that registers robots."""


class RegistryError(ValueError):
    """A robot registration is invalid (bad builder, name clash, failing discovery entry)."""


@dataclass(frozen=True)
class RobotRegistration:
    """One user robot: its spec, its builder (callable or ``"module:function"``), where it came from."""

    spec: EmbodimentSpec
    builder: Callable | str
    source: str = "<memory>"

    @property
    def name(self) -> str:
        return self.spec.name


_REGISTERED: dict[str, RobotRegistration] = {}
_DISCOVERED: set[str] = set()  # env-var entries and entry points already imported in this process


def bundled_spec_path(name: str) -> Path:
    if name not in BUNDLED_ROBOTS:
        raise KeyError(f"unknown robot {name!r}; known robots: {', '.join(BUNDLED_ROBOTS)}")
    return SPECS_DIR / f"{name}.yaml"


@lru_cache(maxsize=None)
def load_bundled_spec(name: str) -> EmbodimentSpec:
    """The spec of a bundled robot; an unknown name lists the known ones."""
    return load_spec(bundled_spec_path(name))


def pretraining_pool() -> list[str]:
    return [n for n in BUNDLED_ROBOTS if load_bundled_spec(n).role == "pretrain"]


# ---------------------------------------------------------------------- registration
def resolve_builder(builder: Callable | str) -> Callable:
    """The callable a builder reference names (``"module:function"``, dotted attributes allowed)."""
    if callable(builder):
        return builder
    if not isinstance(builder, str) or builder.count(":") != 1:
        raise RegistryError(f"builder {builder!r}: expected a callable or 'module:function'")
    module_name, attr = builder.split(":")
    try:
        target = importlib.import_module(module_name)
    except ImportError as err:
        raise RegistryError(f"builder {builder!r}: cannot import module {module_name!r}: {err}") from err
    for part in attr.split("."):
        if not hasattr(target, part):
            raise RegistryError(f"builder {builder!r}: module {module_name!r} has no attribute {attr!r}")
        target = getattr(target, part)
    if not callable(target):
        raise RegistryError(f"builder {builder!r}: {attr!r} is not callable")
    return target


def _check_importable(builder: Callable) -> None:
    """Worker processes unpickle the builder by its module and name: refuse what they cannot."""
    qualname = getattr(builder, "__qualname__", "")
    if not getattr(builder, "__module__", None) or not qualname or "<" in qualname:
        raise RegistryError(
            f"builder {builder!r}: must be a module-level function (worker processes import it by "
            f"name); a lambda or a nested function cannot be sent to them; pass 'module:function'"
        )


def register_robot(
    spec: EmbodimentSpec | str | Path,
    builder: Callable | str,
    *,
    replace: bool = False,
) -> EmbodimentSpec:
    """Make a user's robot known to the simulator, experts, IK, recorder, evaluator and listing.

    Args:
        spec: the robot's `EmbodimentSpec`, or the path of its YAML file.
        builder: ``build(spec: MjSpec, parent: MjsBody, variant: str) -> RobotRig`` (see
            `locksmith.sim.rig`), as a module-level callable or a ``"module:function"`` string.
        replace: allow replacing an earlier registration of the same name with a different one.

    Returns:
        The registered spec. Registering the same spec and builder again is a no-op.

    Raises:
        SpecError: the spec file is invalid.
        RegistryError: the name is a bundled robot's, or already registered differently (without
            ``replace``), or the builder cannot be resolved or sent to worker processes.
    """
    source = "<memory>"
    if not isinstance(spec, EmbodimentSpec):
        source = str(Path(spec).resolve())
        spec = load_spec(spec)
    if spec.name in BUNDLED_ROBOTS:
        raise RegistryError(f"robot {spec.name!r} is a bundled robot; give your spec another name")
    resolved = resolve_builder(builder)
    if not isinstance(builder, str):
        _check_importable(resolved)
    registration = RobotRegistration(spec, builder, source)
    previous = _REGISTERED.get(spec.name)
    if previous is not None and previous != registration and not replace:
        raise RegistryError(
            f"robot {spec.name!r} is already registered (from {previous.source}) with another spec "
            f"or builder; pass replace=True to replace it"
        )
    _REGISTERED[spec.name] = registration
    log.debug("registered robot %s (spec from %s, builder %r)", spec.name, source, builder)
    return spec


def unregister_robot(name: str) -> None:
    """Forget a registered robot (bundled robots cannot be removed)."""
    if name not in _REGISTERED:
        raise KeyError(f"robot {name!r} is not registered; registered robots: {', '.join(_REGISTERED) or 'none'}")
    del _REGISTERED[name]


def registrations() -> tuple[RobotRegistration, ...]:
    """This process's registrations, picklable: what worker processes need to know them too."""
    return tuple(_REGISTERED.values())


def install_registrations(items: Iterable[RobotRegistration]) -> None:
    """Register ``items`` in this process (a worker pool's initializer)."""
    for item in items:
        register_robot(item.spec, item.builder, replace=True)


# ---------------------------------------------------------------------- discovery
def _run_entry(label: str, load: Callable[[], object]) -> None:
    try:
        target = load()
        if callable(target):
            target()
    except (SpecError, RegistryError) as err:
        raise RegistryError(f"{label}: {err}") from err
    except Exception as err:  # a user's module may fail in any way: name it
        raise RegistryError(f"{label}: registering robots failed: {type(err).__name__}: {err}") from err


def discover_robots() -> None:
    """Import the registration modules named in `ROBOTS_ENV` and the `ENTRY_POINT_GROUP` entry
    points, each once per process (new entries in the variable are picked up on the next call)."""
    for entry in os.environ.get(ROBOTS_ENV, "").replace(";", ",").split(","):
        entry = entry.strip()
        if not entry or entry in _DISCOVERED:
            continue
        _DISCOVERED.add(entry)
        # "module:function" → the function (called); "module" → the module (its import registers).
        load = (lambda e=entry: resolve_builder(e)) if ":" in entry else (lambda e=entry: importlib.import_module(e))
        _run_entry(f"{ROBOTS_ENV} entry {entry!r}", load)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        key = f"entry_point:{ep.name}={ep.value}"
        if key in _DISCOVERED:
            continue
        _DISCOVERED.add(key)
        _run_entry(f"entry point {ep.name!r} ({ep.value}) in group {ENTRY_POINT_GROUP!r}", ep.load)


def registered_robots() -> tuple[str, ...]:
    """Names of the registered (non-bundled) robots, in registration order, after discovery."""
    discover_robots()
    return tuple(_REGISTERED)


def known_robots() -> tuple[str, ...]:
    """Every robot name: the bundled ones, then the registered ones."""
    return BUNDLED_ROBOTS + registered_robots()


def registration(name: str) -> RobotRegistration:
    """The registration of a user robot; an unknown name lists every known robot."""
    if name not in _REGISTERED:
        discover_robots()
    if name not in _REGISTERED:
        raise KeyError(f"unknown robot {name!r}; known robots: {', '.join(known_robots())}")
    return _REGISTERED[name]


def load_robot_spec(name: str) -> EmbodimentSpec:
    """The spec of any known robot, bundled or registered; an unknown name lists the known ones."""
    if name in BUNDLED_ROBOTS:
        return load_bundled_spec(name)
    return registration(name).spec
