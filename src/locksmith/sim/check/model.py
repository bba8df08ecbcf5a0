"""Static checks: the spec against the compiled model and the builder's rig, no simulation.

Spec joints and model joints are matched by position (the spec's ``arms[i].joints[k]`` is the
rig's ``ArmRig.joints[k]``); names may differ (the builder prefixes them), but a spec name that
is another position's model name means the order differs. MuJoCo stores every angle in radians
after compiling, whatever the file declared, so ranges compare in SI units.
"""

from __future__ import annotations

import difflib
import math

import mujoco
import numpy as np

from locksmith.embodiment.spec import EmbodimentSpec
from locksmith.sim.check.report import Finding
from locksmith.sim.rig import SIM_TIMESTEP, ArmRig, RobotRig

DEG = 180.0 / math.pi
RANGE_TOL = 0.02  # of a joint's span, and at least 0.005 (rad or m): spec and model "agree"
TINY_HINGE_SPAN = math.radians(3.0)  # a hinge range narrower than this was probably read in degrees
HINGE, SLIDE = int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE)
# A range written in radians but read as degrees shrinks 57.3 times: no real joint (up to two
# turns) then spans more than this.
DEGREE_READ_SPAN = 4 * math.pi / DEG
RATE_TOL = 0.1  # relative difference between the control period and the whole physics steps it runs
COMPILER_FIX = ("add <compiler angle=\"radian\"/> to the model file whose numbers are radians, or load it with "
                "locksmith.load_model(path, scene, angle=\"radian\") (which sets MjSpec.compiler.degree = False) "
                "before attaching it")


def _finding(check: str, code: str, severity: str, where: str, message: str, fix: str) -> Finding:
    return Finding(check, code, severity, where, message, fix)  # type: ignore[arg-type]


def _suggest(name: str, names: list[str]) -> str:
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    return f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""


def _names(model: mujoco.MjModel, objtype: mujoco.mjtObj, count: int) -> list[str]:
    return [mujoco.mj_id2name(model, objtype, i) or "" for i in range(count)]


def base_name(name: str) -> str:
    """A model name without the prefixes attaching gave it (``"ur5e/gripper/tcp"`` → ``"tcp"``)."""
    return name.rsplit("/", 1)[-1]


# ---------------------------------------------------------------------------- structure
def check_structure(spec: EmbodimentSpec, rig: object, model: mujoco.MjModel) -> list[Finding]:
    """Arms, joint counts and every rig name against the compiled model. Any finding here means
    the environment would crash (it looks these names up), so the checks that build it wait.

    Findings of check ``builder`` (the rig names what the model lacks) also stop the model-only
    checks; those of check ``spec`` (arms or joint counts differ) do not."""
    if not isinstance(rig, RobotRig):
        return [_finding("builder", "builder_return", "error", "builder return value",
                         f"the builder returned {type(rig).__name__}, not a RobotRig",
                         "return locksmith.sim.rig.RobotRig(arms=(...), workspace=Workspace(...))")]
    out: list[Finding] = []
    spec_arms = [a.name for a in spec.arms]
    rig_arms = [a.name for a in rig.arms]
    if sorted(spec_arms) != sorted(rig_arms):
        out.append(_finding(
            "spec", "arm_names", "error", "spec arms[*].name",
            f"the spec names its arms {spec_arms} but the builder's rig names them {rig_arms}",
            f"use the rig's names {rig_arms} in the spec's arms and in every state/action `arm:` field "
            f"(or rename the ArmRig(name=...) in the builder); a bimanual robot's names are free, "
            f"e.g. left/right, as long as both sides agree"))
    joints = _names(model, mujoco.mjtObj.mjOBJ_JOINT, model.njnt)
    actuators = _names(model, mujoco.mjtObj.mjOBJ_ACTUATOR, model.nu)
    sites = _names(model, mujoco.mjtObj.mjOBJ_SITE, model.nsite)
    seen: dict[str, str] = {}
    for arm in rig.arms:
        if arm.name in spec_arms:
            k = spec_arms.index(arm.name)
            n_spec, n_rig = len(spec.arms[k].joints), len(arm.joints)
            if n_spec != n_rig:
                listed = [base_name(j) for j in arm.joints]
                out.append(_finding(
                    "spec", "joint_count", "error", f"spec arms[{k}].joints",
                    f"arm {arm.name!r} has {n_spec} joints in the spec but {n_rig} in the builder's rig "
                    f"({listed}); actions and states would have the wrong size",
                    f"list the arm's {n_rig} joints in the spec (joints and arms[{k}].joints, and the sizes of its "
                    f"joint_position/joint_velocity components), or give ArmRig.joints the spec's {n_spec}"))
        if len(arm.actuators) != len(arm.joints):
            out.append(_finding("builder", "actuator_count", "error", f"builder ArmRig({arm.name!r}).actuators",
                                f"{len(arm.actuators)} actuators for {len(arm.joints)} joints",
                                "one position actuator per arm joint, in the joints' order"))
        if len(arm.home_qpos) != len(arm.joints):
            out.append(_finding("builder", "home_length", "error", f"builder ArmRig({arm.name!r}).home_qpos",
                                f"{len(arm.home_qpos)} values for {len(arm.joints)} joints",
                                "one home value per arm joint (locksmith.solve_home_pose solves them)"))
        named = [("joint", j, joints) for j in (*arm.joints, arm.gripper_joint)]
        named += [("actuator", a, actuators) for a in (*arm.actuators, arm.gripper_actuator)]
        named.append(("site", arm.tcp_site, sites))
        for kind, name, known in named:
            if name not in known:
                out.append(_finding("builder", f"missing_{kind}", "error", f"builder ArmRig({arm.name!r})",
                                    f"names the {kind} {name!r}, which the compiled model does not have"
                                    f"{_suggest(name, known)}",
                                    f"use the {kind}'s name in the model, with the prefix that attaching gave it"))
            elif kind != "site":
                owner = seen.setdefault(f"{kind}:{name}", arm.name)
                if owner != arm.name:
                    out.append(_finding(
                        "builder", "shared_name", "error", f"builder ArmRig({arm.name!r})",
                        f"arms {owner!r} and {arm.name!r} both use the {kind} {name!r}",
                        "give each arm its own names: attach each arm with its own prefix, or build the rigs "
                        "with locksmith.add_servo_arm, which names the servos after the joints"))
    if spec.base is not None and len(rig.base_joints) != 3:
        out.append(_finding("builder", "base_joints", "error", "builder RobotRig.base_joints",
                            f"the spec has a mobile `base` but the rig has {len(rig.base_joints)} base joints",
                            "give the rig the base's (x, y, yaw) joints and actuators, or drop the spec's `base`"))
    if spec.base is None and rig.base_joints:
        out.append(_finding("spec", "base_missing", "error", "spec base",
                            "the rig has base joints but the spec has no `base` section (nor a base_velocity action)",
                            "add `base:` and a base_velocity action component to the spec"))
    for name in (*rig.base_joints, *rig.base_actuators):
        known = joints if name in rig.base_joints else actuators
        if name not in known:
            out.append(_finding("builder", "missing_base", "error", "builder RobotRig",
                                f"names {name!r}, which the compiled model does not have{_suggest(name, known)}",
                                "use the names in the model"))
    if any(f.check == "builder" for f in out):
        return out
    for arm in rig.arms:
        out += _check_servos(model, arm)
    return out


def _is_position_servo(model: mujoco.MjModel, act: int) -> bool:
    gain, bias = model.actuator_gainprm[act], model.actuator_biasprm[act]
    return (model.actuator_gaintype[act] == mujoco.mjtGain.mjGAIN_FIXED
            and model.actuator_biastype[act] == mujoco.mjtBias.mjBIAS_AFFINE
            and gain[0] > 0 and math.isclose(bias[1], -gain[0], rel_tol=1e-6))


def _check_servos(model: mujoco.MjModel, arm: ArmRig) -> list[Finding]:
    """Each arm actuator is a position servo on its own joint (the env writes joint targets)."""
    out: list[Finding] = []
    for joint, name in zip(arm.joints, arm.actuators, strict=True):
        act = model.actuator(name).id
        if model.actuator_trntype[act] == mujoco.mjtTrn.mjTRN_JOINT and model.actuator_trnid[act, 0] != model.joint(joint).id:
            driven = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_JOINT, model.actuator_trnid[act, 0])
            out.append(_finding("builder", "actuator_joint", "error", f"model actuator {name!r}",
                                f"drives joint {driven!r}, but the rig pairs it with {joint!r}",
                                "list ArmRig.actuators in the order of ArmRig.joints"))
    for name in (*arm.actuators, arm.gripper_actuator):
        if not _is_position_servo(model, model.actuator(name).id):
            out.append(_finding(
                "builder", "not_a_servo", "error", f"model actuator {name!r}",
                "is not a position servo (the environment writes joint targets into the controls; the model's "
                "own motors take torques)",
                "delete the model's actuators and add position servos (locksmith.add_servo_arm, or "
                "add_joint_actuators / add_position_actuator from locksmith.sim.robots.common)"))
    return out


# ---------------------------------------------------------------------------- joints
def _outside(value: float, lo: float, hi: float, tol: float) -> bool:
    return value < lo - tol or value > hi + tol


def _tol(lo: float, hi: float) -> float:
    return max(0.005, RANGE_TOL * (hi - lo))


def check_joints(spec: EmbodimentSpec, rig: RobotRig, model: mujoco.MjModel) -> list[Finding]:
    """Joint order, types, ranges and units, spec against model; home inside both ranges."""
    out: list[Finding] = []
    spec_index = {j.name: i for i, j in enumerate(spec.joints)}
    for arm_spec in spec.arms:
        arm = rig.arm(arm_spec.name)
        bases = [base_name(j) for j in arm.joints]
        for k, (spec_name, joint) in enumerate(zip(arm_spec.joints, arm.joints, strict=True)):
            field = f"spec joints[{spec_index[spec_name]}] ({spec_name!r})"
            if spec_name != bases[k] and spec_name in bases:
                out.append(_finding(
                    "spec", "joint_order", "error", f"spec arms[{spec.arms.index(arm_spec)}].joints",
                    f"position {k} is {spec_name!r}, but the model's joint {k} of arm {arm.name!r} is {bases[k]!r} "
                    f"({spec_name!r} is its joint {bases.index(spec_name)})",
                    f"list the joints in the rig's order: {bases}"))
            jid = model.joint(joint).id
            jtype = int(model.jnt_type[jid])
            if jtype not in (HINGE, SLIDE):
                out.append(_finding("spec", "joint_type", "error", f"model joint {joint!r}",
                                    "is a ball or free joint; an arm joint must be a hinge or a slide",
                                    "list only hinge or slide joints in ArmRig.joints"))
                continue
            js = spec.joint(spec_name)
            home = arm.home_qpos[k]
            if _outside(home, js.lower, js.upper, 1e-6):
                out.append(_finding("home", "home_outside_spec", "error", f"builder ArmRig({arm.name!r}).home_qpos[{k}]",
                                    f"home {home:.4g} of joint {joint!r} is outside the spec's range "
                                    f"[{js.lower:.4g}, {js.upper:.4g}]: the env clips the first command",
                                    f"choose a home inside the range, or widen {field}"))
            if not model.jnt_limited[jid]:
                continue
            lo, hi = (float(v) for v in model.jnt_range[jid])
            if _outside(home, lo, hi, 1e-6):
                out.append(_finding("home", "home_outside_model", "error", f"builder ArmRig({arm.name!r}).home_qpos[{k}]",
                                    f"home {home:.4g} of joint {joint!r} is outside the model's range [{lo:.4g}, {hi:.4g}]",
                                    "choose a home inside the range (locksmith.solve_home_pose)"))
            out += _compare_range(field, joint, jtype, (js.lower, js.upper), (lo, hi))
    return out


def _compare_range(field: str, joint: str, jtype: int, spec_range: tuple[float, float],
                   model_range: tuple[float, float]) -> list[Finding]:
    (slo, shi), (lo, hi) = spec_range, model_range
    tol = _tol(lo, hi)
    if not (_outside(slo, lo, hi, tol) or _outside(shi, lo, hi, tol)):
        return []  # inside the model's range (a spec may narrow it)
    unit = "rad" if jtype == HINGE else "m"
    hinge = jtype == HINGE
    shown = f"spec [{slo:.4g}, {shi:.4g}] {unit}, model [{lo:.4g}, {hi:.4g}] {unit}"
    # Degrees for radians scale a range 57.3 times: one range is then ten times (or more) wider
    # than the other, and lies inside it once converted.
    spec_wide = (shi - slo) > 10 * (hi - lo)
    model_wide = (hi - lo) > 10 * (shi - slo)
    if hinge and spec_wide and not (_outside(slo / DEG, lo, hi, tol) or _outside(shi / DEG, lo, hi, tol)):
        return [_finding("spec", "spec_range_degrees", "error", f"{field}.lower/upper",
                         f"{shown}: the spec's limits are the model's in degrees; spec limits are SI (rad)",
                         f"write the limits in radians: lower: {slo / DEG:.5g}, upper: {shi / DEG:.5g} (native "
                         f"units such as degrees belong in the state/action components' `units`)")]
    if (hinge and not model_wide and hi - lo < DEGREE_READ_SPAN
            and not (_outside(slo, lo * DEG, hi * DEG, tol * DEG) or _outside(shi, lo * DEG, hi * DEG, tol * DEG))):
        return [_finding("spec", "model_range_degrees", "error", f"model joint {joint!r}",
                         f"{shown}: the model's range is the spec's divided by 57.3: the model file gives no "
                         f"angle unit, so MuJoCo read its radians as degrees", COMPILER_FIX)]
    return [_finding("spec", "joint_range", "warning", f"{field}.lower/upper",
                     f"{shown}: the spec allows positions the model's joint cannot reach",
                     f"narrow the spec to the model's range (lower: {lo:.5g}, upper: {hi:.5g}), or widen the "
                     f"joint's range in the builder")]


def check_degree_ranges(rig: RobotRig, model: mujoco.MjModel, reported: set[str]) -> list[Finding]:
    """Hinges of the robot whose range spans only a few degrees: a file read in degrees (e.g. a
    gripper's linkage joints, which no spec field lists). One finding for all of them."""
    rig_joints = {j for a in rig.arms for j in a.joints} | set(rig.base_joints)
    tiny: list[str] = []
    for jid in range(model.njnt):
        name = model.joint(jid).name
        if (name in reported or name in rig_joints or int(model.jnt_type[jid]) != HINGE
                or not model.jnt_limited[jid]):
            continue
        lo, hi = model.jnt_range[jid]
        if 0 < hi - lo < TINY_HINGE_SPAN:
            tiny.append(f"{name} [{lo:.3g}, {hi:.3g}]")
    if not tiny:
        return []
    shown = ", ".join(tiny[:4]) + (f" and {len(tiny) - 4} more" if len(tiny) > 4 else "")
    return [_finding(
        "gripper", "tiny_hinge_range", "warning", f"model joints {shown}",
        f"{len(tiny)} hinge(s) whose range (rad) spans less than {math.degrees(TINY_HINGE_SPAN):g} degrees: if "
        f"their file meant these numbers as radians, MuJoCo read them as degrees and the joints barely move",
        COMPILER_FIX)]


# ---------------------------------------------------------------------------- gripper values
def check_gripper_values(rig: RobotRig, model: mujoco.MjModel) -> tuple[list[Finding], set[str]]:
    """The rig's open/closed joint values inside the gripper joint's range, its control values
    inside the servo's control range. Returns the findings and the joints they name."""
    out: list[Finding] = []
    named: set[str] = set()
    for arm in rig.arms:
        where = f"builder ArmRig({arm.name!r})"
        jid = model.joint(arm.gripper_joint).id
        if model.jnt_limited[jid]:
            lo, hi = (float(v) for v in model.jnt_range[jid])
            tol = _tol(lo, hi)
            hinge = int(model.jnt_type[jid]) == HINGE
            for label, value in (("gripper_q_open", arm.gripper_q_open), ("gripper_q_closed", arm.gripper_q_closed)):
                if not _outside(value, lo, hi, tol):
                    continue
                named.add(arm.gripper_joint)
                if hinge and hi - lo < DEGREE_READ_SPAN and not _outside(value, lo * DEG, hi * DEG, tol * DEG):
                    out.append(_finding(
                        "gripper", "gripper_range_degrees", "error", f"model joint {arm.gripper_joint!r}",
                        f"its range is [{lo:.4g}, {hi:.4g}] rad, i.e. [{lo * DEG:.3g}, {hi * DEG:.3g}] degrees: the "
                        f"gripper's file gives no angle unit, so MuJoCo read its radians as degrees, and the "
                        f"gripper cannot reach {label}={value:.4g}: it cannot close", COMPILER_FIX))
                else:
                    out.append(_finding(
                        "gripper", "gripper_outside_range", "error", f"{where}.{label}",
                        f"{label}={value:.4g} is outside the range [{lo:.4g}, {hi:.4g}] of the gripper joint "
                        f"{arm.gripper_joint!r}", f"set {label} inside the joint's range (the value the joint "
                        f"measures when the gripper is fully open / closed)"))
        act = model.actuator(arm.gripper_actuator).id
        if arm.gripper_ctrl_open == arm.gripper_ctrl_closed:
            out.append(_finding("gripper", "gripper_ctrl_equal", "error", f"{where}.gripper_ctrl_open",
                                f"gripper_ctrl_open equals gripper_ctrl_closed ({arm.gripper_ctrl_open})",
                                "give the servo's open and closed targets"))
        if model.actuator_ctrllimited[act]:
            clo, chi = (float(v) for v in model.actuator_ctrlrange[act])
            for label, value in (("gripper_ctrl_open", arm.gripper_ctrl_open), ("gripper_ctrl_closed", arm.gripper_ctrl_closed)):
                if _outside(value, clo, chi, _tol(clo, chi)):
                    out.append(_finding(
                        "gripper", "gripper_ctrl_outside", "error", f"{where}.{label}",
                        f"{label}={value:.4g} is outside the control range [{clo:.4g}, {chi:.4g}] of the servo "
                        f"{arm.gripper_actuator!r}: MuJoCo clips it", f"set {label} inside the servo's ctrlrange, or "
                        f"widen the ctrlrange"))
    return out, named


# ---------------------------------------------------------------------------- rate, gravity, safety
def check_control_rate(spec: EmbodimentSpec, timestep: float) -> list[Finding]:
    """The env runs ``round(period / timestep)`` physics steps per control step."""
    period = spec.control_period_s
    out: list[Finding] = []
    if not math.isclose(timestep, SIM_TIMESTEP):
        out.append(_finding("control_rate", "timestep", "warning", "builder (spec.option.timestep)",
                            f"the scene's physics step is {timestep * 1000:g} ms, not locksmith's {SIM_TIMESTEP * 1000:g} ms",
                            "do not set the scene's option.timestep in the builder"))
    steps = max(1, round(period / timestep))
    actual = steps * timestep
    error = abs(actual - period) / period
    if period < timestep * 0.999 or error > RATE_TOL:
        rates = sorted({round(1.0 / (n * timestep), 2) for n in range(1, 200)}, key=lambda r: abs(r - spec.control_rate_hz))[:3]
        severity = "error" if period < timestep * 0.999 else "warning"
        out.append(_finding(
            "control_rate", "control_period", severity, "spec control_rate_hz",
            f"{spec.control_rate_hz:g} Hz is a {period * 1000:.4g} ms period, but the simulator steps {steps} x "
            f"{timestep * 1000:g} ms = {actual * 1000:.4g} ms per command ({100 * error:.0f} % off): recorded "
            f"timestamps and integrated velocities are off by as much",
            f"use a rate whose period is a whole number of {timestep * 1000:g} ms steps, e.g. "
            f"{', '.join(f'{r:g}' for r in rates)} Hz (the real robot's rate only matters for the data; "
            f"the simulator needs the multiple)"))
    return out


def check_gravity_compensation(rig: RobotRig, model: mujoco.MjModel) -> list[Finding]:
    """Every massive body from the base to each TCP gravity-compensated (the servos assume it)."""
    bodies: set[int] = set()
    for arm in rig.arms:
        body = model.site_bodyid[model.site(arm.tcp_site).id]
        while body != 0:
            bodies.add(int(body))
            body = model.body_parentid[body]
    missing = sorted(b for b in bodies if model.body_mass[b] > 1e-3 and model.body_gravcomp[b] == 0)
    if not missing:
        return []
    names = [model.body(b).name for b in missing]
    root = model.body(min(missing)).name
    return [_finding("home", "no_gravcomp", "warning", f"model bodies {names[:4]}{' ...' if len(names) > 4 else ''}",
                     "are not gravity-compensated: the position servos sag under gravity and the expert's IK "
                     "targets are missed", f"call enable_gravcomp(spec, {root!r}) (locksmith.sim.robots.common) "
                     "on the robot's root body in the builder")]


def expert_heights(rig: RobotRig) -> dict[str, float]:
    """The TCP heights (m, base frame) the scripted expert commands, by what it does there."""
    ws = rig.workspace
    h = ws.cube_half
    return {
        "push": h * float(rig.extra.get("push_height", 1.0)),
        "grasp": h,
        "hover": h + ws.hover_height,
        "lift": h + ws.lift_height + 0.04,
    }


def check_safety(spec: EmbodimentSpec, rig: RobotRig) -> list[Finding]:
    """The spawn box at the expert's heights inside the safety workspace (the shield stops a TCP
    outside it, so every evaluation would stop there)."""
    box_lo, box_hi = np.array(spec.safety.workspace_min), np.array(spec.safety.workspace_max)
    heights = expert_heights(rig)
    out: list[Finding] = []
    z_lo, z_hi = min(heights.values()), max(heights.values())
    if z_hi > box_hi[2]:
        top = max(heights, key=heights.get)
        out.append(_finding("safety", "safety_top", "error", "spec safety.workspace_max[2]",
                            f"the expert's {top} height puts the TCP at z = {z_hi:.3f} m, above the safety "
                            f"workspace's top {box_hi[2]:.3f} m: the shield stops every episode there",
                            f"raise safety.workspace_max[2] above {z_hi + 0.05:.2f}, or lower the Workspace heights"))
    if z_lo < box_lo[2]:
        out.append(_finding("safety", "safety_floor", "error", "spec safety.workspace_min[2]",
                            f"the expert pushes with the TCP at z = {z_lo:.3f} m, below the safety floor {box_lo[2]:.3f} m",
                            "lower safety.workspace_min[2] to just below the table (e.g. -0.005)"))
    if rig.base_joints:
        return out  # a mobile base drives to the work: the spawn box is not in the arm's base frame
    ws = rig.workspace
    for axis, (lo, hi), k in (("x", ws.spawn_x, 0), ("y", ws.spawn_y, 1)):
        if lo < box_lo[k] or hi > box_hi[k]:
            out.append(_finding("safety", "safety_spawn", "error", f"spec safety.workspace_min/max ({axis})",
                                f"the spawn box spans {axis} [{lo:.3f}, {hi:.3f}] m, outside the safety workspace's "
                                f"[{box_lo[k]:.3f}, {box_hi[k]:.3f}] m: the shield stops the TCP short of some cubes",
                                f"widen the safety workspace in {axis} (with a few cm to spare), or shrink "
                                f"Workspace.spawn_{axis}"))
    return out
