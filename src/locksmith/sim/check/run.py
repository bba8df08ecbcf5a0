"""`check_robot`: every check of a robot's spec and builder, in order, into one report.

The quick form (``full=False``) is what `locksmith.register_robot` runs on every registration:
no expert episodes, about a second. The full form adds the scripted-expert smoke run per task
(`locksmith robot check NAME`). A structural error (a name the model lacks, arms or joint
counts that differ) stops the check early: the environment could not even be built.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import mujoco

from locksmith.embodiment import registry
from locksmith.embodiment.spec import EmbodimentSpec
from locksmith.sim.check import model as model_checks
from locksmith.sim.check import physics
from locksmith.sim.check.report import CHECKS, Finding, RobotCheckReport
from locksmith.sim.check.smoke import smoke_run
from locksmith.sim.rig import SIM_TIMESTEP
from locksmith.sim.robots import get_builder
from locksmith.sim.tasks import TASKS

log = logging.getLogger(__name__)

# MuJoCo compile errors a new model often meets, and what to do about them.
COMPILE_HINTS = {
    "repeated name": "two elements share a name: attach each arm (and each gripper) with its own prefix, or name "
                     "servos after their joints (locksmith.add_servo_arm)",
    "mesh volume is too small": "give that mesh inertia=\"shell\" (MjSpec: mesh.inertia = mujoco.mjtMeshInertia.mjMESH_INERTIA_SHELL)",
    "could not open file": "the model's meshdir/file paths are relative to its file: load it with "
                           "mujoco.MjSpec.from_file(path) (or locksmith.load_model), not from a string",
    "unrecognized attribute": "the file carries an attribute this MuJoCo does not know: remove it from the file",
}


def _builder_finding(code: str, stage: str, err: BaseException) -> Finding:
    text = f"{type(err).__name__}: {err}".strip().replace("\n", " ")
    fix = next((hint for key, hint in COMPILE_HINTS.items() if key in text.lower()),
               "fix the builder: it must attach the robot under `parent` and return a RobotRig "
               "(docs/own_robot.md, section 2)")
    return Finding("builder", code, "error", "builder", f"{stage} failed: {text[:400]}", fix)


def _build_alone(builder: Callable) -> tuple[object, mujoco.MjModel | None, Finding | None]:
    """The robot alone in an empty model, as `RobotIK` builds it."""
    spec = mujoco.MjSpec()
    spec.option.timestep = SIM_TIMESTEP
    try:
        rig = builder(spec, spec.worldbody, "default")
    except Exception as err:  # a user's builder may fail in any way: report it
        return None, None, _builder_finding("builder_raised", "building", err)
    try:
        return rig, spec.compile(), None
    except Exception as err:
        return rig, None, _builder_finding("model_compile", "compiling the model", err)


def check_robot(
    robot: str | EmbodimentSpec,
    builder: Callable | str | None = None,
    *,
    full: bool = True,
    tasks: tuple[str, ...] = tuple(TASKS),
    episodes: int = 4,
    seed: int = 0,
) -> RobotCheckReport:
    """Check a robot's spec against its builder's model, and (``full``) the expert on every task.

    Args:
        robot: a known robot's name (bundled or registered), or a spec (then ``builder`` too).
        builder: with a spec: the builder (callable or ``"module:function"``); the robot is
            registered for the duration of the check (without checking it) and forgotten after.
        full: also run ``episodes`` scripted-expert episodes per task in ``tasks``.
        seed: the first episode seed of the expert runs.

    Returns:
        The report: each finding names the spec field or model element to change.
    """
    if isinstance(robot, EmbodimentSpec):
        if builder is None and robot.name not in registry.BUNDLED_ROBOTS:
            raise ValueError("check_robot(spec) needs the builder too")
        if builder is not None:
            with registry.temporarily_registered(robot, builder):
                return _check(robot, full, tasks, episodes, seed)
        return _check(robot, full, tasks, episodes, seed)
    return _check(registry.load_robot_spec(robot), full, tasks, episodes, seed)


def _check(spec: EmbodimentSpec, full: bool, tasks: tuple[str, ...], episodes: int, seed: int) -> RobotCheckReport:
    start = time.perf_counter()
    report = RobotCheckReport(spec.name, full)
    try:
        _run_checks(spec, report, full, tasks, episodes, seed)
    finally:
        report.seconds = time.perf_counter() - start
    log.info("robot check %s: %d error(s), %d warning(s) in %.1f s", spec.name, len(report.errors),
             len(report.warnings), report.seconds)
    return report


def _skip_rest(report: RobotCheckReport, why: str, after: str) -> None:
    """Mark the checks after ``after`` that neither passed nor found anything as skipped."""
    names = list(CHECKS)
    for name in names[names.index(after) + 1:]:
        found = name in report.passed or any(f.check == name for f in report.findings)
        if not found and (name != "expert" or report.full):
            report.skipped[name] = why


def _run_checks(spec: EmbodimentSpec, report: RobotCheckReport, full: bool, tasks: tuple[str, ...],
                episodes: int, seed: int) -> None:
    rig, model, failure = _build_alone(get_builder(spec.name))
    if failure is not None:
        report.add([failure], "builder")
        _skip_rest(report, "the builder failed", "builder")
        return
    structure = model_checks.check_structure(spec, rig, model)
    if any(f.code == "builder_return" for f in structure):
        report.add(structure, "builder")
        _skip_rest(report, "the builder returned no RobotRig", "builder")
        return
    blocked = any(f.check == "builder" for f in structure)  # a rig name the model lacks
    if not blocked:
        report.passed.append("builder")
        grip_findings, named = model_checks.check_gripper_values(rig, model)
        grip_findings += model_checks.check_degree_ranges(rig, model, named)
    report.add(model_checks.check_control_rate(spec, model.opt.timestep), "control_rate")
    report.add(model_checks.check_safety(spec, rig), "safety")
    if structure:
        # Spec and rig disagree on arms or joint counts: the environment cannot be built, but the
        # model-only checks above still say what else is wrong.
        report.findings[:0] = structure
        if not blocked:
            report.findings.extend(grip_findings)
        _skip_rest(report, "fix the names and counts first (the environment looks them up)", "safety")
        return
    spec_findings = model_checks.check_joints(spec, rig, model)
    home_findings = [f for f in spec_findings if f.check == "home"] + model_checks.check_gravity_compensation(rig, model)
    report.add([f for f in spec_findings if f.check == "spec"], "spec")

    from locksmith.sim.env import (
        TabletopEnv,  # the environment needs the robot known by name
    )

    try:
        env = TabletopEnv(spec, "lift")
    except Exception as err:
        report.findings.extend(grip_findings + home_findings + [_builder_finding("scene_build", "building the scene", err)])
        _skip_rest(report, "the environment could not be built", "safety")
        return
    home_findings += physics.check_home(env)
    report.add(home_findings, "home")
    found, depths = physics.check_gripper(env)
    report.add(grip_findings + found, "gripper")
    report.add(physics.check_fingertips(env, depths), "fingertips")
    report.add(physics.check_reach(env, full), "workspace")
    if not full:
        return
    envs = {"lift": env}

    def env_for_task(task: str) -> TabletopEnv:
        if task not in envs:
            envs[task] = TabletopEnv(spec, task)
        return envs[task]

    found, results = smoke_run(env_for_task, tasks, episodes, seed)
    report.expert = results
    report.add(found, "expert")
