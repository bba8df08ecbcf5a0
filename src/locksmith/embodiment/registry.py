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

Every registration runs the quick robot check (`locksmith.sim.check`, about a second, no expert
episodes) and refuses a robot whose spec and builder disagree (`RobotCheckError`); warnings are
logged. That check needs the simulator, a higher layer than this one: it is imported lazily,
the one place where the embodiment layer reaches up, because the registry is the one door every
user robot comes in by. A discovery entry that fails (a module that does not import, a register
function that raises) is logged as one line with its fix and remembered: the robot it should
have registered is then unknown, and the unknown-name error says why.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
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


REGISTER_HINT = (
    "a robot of your own must be registered first: locksmith.register_robot(spec, builder) in this process, "
    f"{ROBOTS_ENV}=module:function for the command line and other processes, or an entry point in the group "
    f"{ENTRY_POINT_GROUP!r} (docs/own_robot.md)"
)


class RegistryError(ValueError):
    """A robot registration is invalid (bad builder, name clash, failing discovery entry)."""


class RobotCheckError(RegistryError):
    """The quick robot check found errors: the spec and the builder's model disagree.

    ``report`` is the `locksmith.sim.check.RobotCheckReport`; the message lists its errors.
    """

    def __init__(self, report) -> None:
        self.report = report
        head = (f"robot {report.robot!r} was not registered: the robot check found {len(report.errors)} error(s) "
                f"(`locksmith robot check {report.robot}` runs the full check; docs/own_robot.md explains each)")
        lines = [head]
        lines += [f"  {f.line()}" for f in report.errors]
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class RobotRegistration:
    """One user robot: its spec, its builder (callable or ``"module:function"``), where it came from
    (not part of its identity: the same spec and builder from a file or from memory are equal)."""

    spec: EmbodimentSpec
    builder: Callable | str
    source: str = field(default="<memory>", compare=False)

    @property
    def name(self) -> str:
        return self.spec.name


_REGISTERED: dict[str, RobotRegistration] = {}
_DISCOVERED: set[str] = set()  # env-var entries and entry points already imported in this process
_DISCOVERY_ERRORS: dict[str, str] = {}  # entry → why it registered nothing (one line with the fix)
_CHECKS_DEFERRED = [0]  # > 0: register without the robot check (see `checks_deferred`)


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
def _import_module(module_name: str, label: str):
    """Import a module named by the user; a module that is not found says where to look."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name and (module_name == err.name or module_name.startswith(err.name + ".")):
            raise RegistryError(f"{label}: cannot import module {module_name!r} ({err}); check that the folder "
                                f"holding it is on PYTHONPATH, or install its package") from err
        raise RegistryError(f"{label}: importing module {module_name!r} failed: {err} (a module it imports is "
                            f"missing: install it)") from err
    except Exception as err:  # the user's module raised while importing: name it
        raise RegistryError(f"{label}: importing module {module_name!r} failed: {type(err).__name__}: {err}") from err


def resolve_callable(reference: Callable | str, what: str = "builder") -> Callable:
    """The callable a ``"module:function"`` reference names (dotted attributes allowed); ``what``
    names it in errors (a builder, a register function)."""
    if callable(reference):
        return reference
    label = f"{what} {reference!r}"
    if not isinstance(reference, str) or reference.count(":") != 1:
        raise RegistryError(f"{label}: expected a callable or 'module:function'")
    module_name, attr = reference.split(":")
    target = _import_module(module_name, label)
    for part in attr.split("."):
        if not hasattr(target, part):
            raise RegistryError(f"{label}: module {module_name!r} has no attribute {attr!r}")
        target = getattr(target, part)
    if not callable(target):
        raise RegistryError(f"{label}: {attr!r} is not callable")
    return target


def resolve_builder(builder: Callable | str) -> Callable:
    """The callable a builder reference names (``"module:function"``, dotted attributes allowed)."""
    return resolve_callable(builder, "builder")


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
    check: bool = True,
) -> EmbodimentSpec:
    """Make a user's robot known to the simulator, experts, IK, recorder, evaluator and listing.

    Args:
        spec: the robot's `EmbodimentSpec`, or the path of its YAML file.
        builder: ``build(spec: MjSpec, parent: MjsBody, variant: str) -> RobotRig`` (see
            `locksmith.sim.rig`), as a module-level callable or a ``"module:function"`` string.
        replace: allow replacing an earlier registration of the same name with a different one.
        check: run the quick robot check (`locksmith.sim.check.check_robot` with ``full=False``,
            about a second) and refuse the robot if it finds errors; its warnings are logged.

    Returns:
        The registered spec. Registering the same spec and builder again is a no-op.

    Raises:
        SpecError: the spec file is invalid.
        RobotCheckError: the check found errors (its ``report`` has every finding).
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
    if previous == registration:
        return spec
    if previous is not None and not replace:
        raise RegistryError(
            f"robot {spec.name!r} is already registered (from {previous.source}) with another spec "
            f"or builder; pass replace=True to replace it"
        )
    _REGISTERED[spec.name] = registration
    if check and not _CHECKS_DEFERRED[0]:
        try:
            _quick_check(spec.name)
        except BaseException:
            _restore(spec.name, previous)
            raise
    log.debug("registered robot %s (spec from %s, builder %r)", spec.name, source, builder)
    return spec


def _restore(name: str, previous: RobotRegistration | None) -> None:
    if previous is None:
        _REGISTERED.pop(name, None)
    else:
        _REGISTERED[name] = previous


def _quick_check(name: str) -> None:
    """The quick robot check of a robot just put in the registry: raise on errors, log warnings."""
    from locksmith.sim.check import (
        check_robot,  # the simulator: see the module docstring
    )

    report = check_robot(name, full=False)
    if report.errors:
        raise RobotCheckError(report)
    for finding in report.warnings:
        log.warning("robot %s: %s", name, finding.line())


@contextmanager
def checks_deferred() -> Iterator[None]:
    """Register without the robot check inside this block (`locksmith robot check` registers a
    robot this way to check it in full, findings and all)."""
    _CHECKS_DEFERRED[0] += 1
    try:
        yield
    finally:
        _CHECKS_DEFERRED[0] -= 1


@contextmanager
def temporarily_registered(spec: EmbodimentSpec, builder: Callable | str) -> Iterator[EmbodimentSpec]:
    """Register ``spec`` with ``builder`` (unchecked) for the block, then restore what was there."""
    previous = _REGISTERED.get(spec.name)
    with checks_deferred():
        register_robot(spec, builder, replace=True)
    try:
        yield spec
    finally:
        _restore(spec.name, previous)


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
    for item in items:  # checked where they were registered
        register_robot(item.spec, item.builder, replace=True, check=False)


# ---------------------------------------------------------------------- discovery
def _run_entry(label: str, load: Callable[[], object]) -> None:
    """Run one discovery entry; a failure is logged in one line with its fix and remembered."""
    try:
        target = load()
        if callable(target):
            target()
        return
    except RobotCheckError as err:
        message = f"{label}: {err}"
    except (SpecError, RegistryError) as err:
        message = str(err) if str(err).startswith(label) else f"{label}: {err}"
    except Exception as err:  # a user's register function may fail in any way: name it
        message = f"{label}: the register function raised {type(err).__name__}: {err}"
    _DISCOVERY_ERRORS[label] = message
    log.warning("%s", message)


def discover_robots() -> None:
    """Import the registration modules named in `ROBOTS_ENV` and the `ENTRY_POINT_GROUP` entry
    points, each once per process (new entries in the variable are picked up on the next call).

    An entry that fails registers nothing: the failure is logged (one line, with the fix) and
    named by the error for an unknown robot (`discovery_errors`)."""
    for entry in os.environ.get(ROBOTS_ENV, "").replace(";", ",").split(","):
        entry = entry.strip()
        if not entry or entry in _DISCOVERED:
            continue
        _DISCOVERED.add(entry)
        label = f"{ROBOTS_ENV} entry {entry!r}"
        # "module:function" → the function (called); "module" → the module (its import registers).
        if ":" in entry:
            load = lambda e=entry, lab=label: _resolve_entry(e, lab)
        else:
            load = lambda e=entry, lab=label: _import_module(e, lab)
        _run_entry(label, load)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        key = f"entry_point:{ep.name}={ep.value}"
        if key in _DISCOVERED:
            continue
        _DISCOVERED.add(key)
        _run_entry(f"entry point {ep.name!r} ({ep.value}) in group {ENTRY_POINT_GROUP!r}", ep.load)


def _resolve_entry(entry: str, label: str) -> Callable:
    try:
        return resolve_callable(entry, "register function")
    except RegistryError as err:
        raise RegistryError(str(err).replace(f"register function {entry!r}", label, 1)) from err


def discovery_errors() -> dict[str, str]:
    """Discovery entries that registered nothing in this process → why (one line each)."""
    return dict(_DISCOVERY_ERRORS)


def unknown_robot_message(name: str) -> str:
    """The error for an unknown robot name: the known ones, how to register, failed entries."""
    message = f"unknown robot {name!r}; known robots: {', '.join(known_robots())}; {REGISTER_HINT}"
    if _DISCOVERY_ERRORS:
        message += "; these registrations failed: " + " | ".join(
            m.splitlines()[0] for m in _DISCOVERY_ERRORS.values())
    return message


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
        raise KeyError(unknown_robot_message(name))
    return _REGISTERED[name]


def load_robot_spec(name: str) -> EmbodimentSpec:
    """The spec of any known robot, bundled or registered; an unknown name lists the known ones."""
    if name in BUNDLED_ROBOTS:
        return load_bundled_spec(name)
    return registration(name).spec
