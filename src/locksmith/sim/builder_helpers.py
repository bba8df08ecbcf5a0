"""What a robot builder needs beyond MuJoCo: a model file loaded without its traps, the standard
servo rig for one arm (called once per arm of a bimanual robot, no name collisions), and a home
pose solved by inverse kinematics.

A builder for an arm whose file ships without a gripper, in about twenty lines (names after
attaching carry the prefix ``"arm/"``)::

    from locksmith import add_servo_arm, load_model
    from locksmith.sim.rig import RobotRig, Workspace
    from locksmith.sim.robots.common import enable_gravcomp

    def build(spec, parent, variant="default"):
        arm = load_model("/models/my_arm/arm.xml", spec, angle="radian")
        grip = load_model("/models/my_arm/gripper.xml", spec, angle="radian")
        grip.body("gripper_base").add_site(name="tcp", pos=[0, 0, 0.12], size=[0.005] * 3)
        arm.body("flange").add_frame().attach_body(grip.body("gripper_base"), "gripper/", "")
        parent.add_frame().attach_body(arm.body("base"), "arm/", "")
        rig = add_servo_arm(spec, "arm", [f"arm/joint{i}" for i in range(1, 7)], "arm/gripper/tcp",
                            "arm/gripper/finger_left", gripper_open=0.04, gripper_closed=0.0, home=HOME,
                            kp=300.0, kv=10.0, gripper_kp=500.0, gripper_force=40.0,
                            gripper_followers=["arm/gripper/finger_right"], root_body="arm/base")
        return RobotRig(arms=(rig,), workspace=Workspace(...))

    HOME = solve_home_pose(build, (0.35, 0.0, 0.2))   # once, then paste the numbers into HOME
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import mink
import mujoco
import numpy as np

from locksmith.embodiment.registry import resolve_builder
from locksmith.sim.ik import top_down_rotation
from locksmith.sim.rig import SIM_TIMESTEP, ArmRig, RobotRig
from locksmith.sim.robots.common import add_position_actuator, enable_gravcomp

log = logging.getLogger(__name__)

REMOVED = ("actuators", "sensors", "keys", "cameras", "lights")
"""What `load_model` deletes by default: the model's own controls and scene dressing."""


def _declared_angle(path: Path) -> str | None:
    """The ``<compiler angle=...>`` of a model file's top level (includes are not followed)."""
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError):
        return None
    for compiler in root.iter("compiler"):
        if "angle" in compiler.attrib:
            return compiler.attrib["angle"]
    return None


def load_model(
    path: str | Path,
    scene: mujoco.MjSpec,
    *,
    angle: Literal["radian", "degree"] | None = None,
    remove: Sequence[str] = REMOVED,
    hide_sites: bool = True,
) -> mujoco.MjSpec:
    """A robot (or gripper) model file as an `MjSpec` ready to attach into ``scene``.

    Args:
        path: the MJCF file (meshes are found relative to it).
        scene: the scene the builder was given: its options (integrator, friction cone,
            impratio, gravity, time step) are copied, so attaching reports no conflict and a
            gripper file that turns gravity off does not turn it off for the robot.
        angle: the unit of the file's angles (joint ranges, Euler angles). MuJoCo's default is
            degrees: a file without ``<compiler angle="radian">`` whose numbers are radians
            (most robot files) needs ``angle="radian"``. Without it, a file that declares no
            unit is read in degrees and a warning is logged.
        remove: element kinds deleted (the model's own actuators, sensors, keyframes, cameras
            and lights by default: the builder adds position servos).
        hide_sites: move the file's marker sites to the hidden group 5 (out of camera images).
    """
    path = Path(path)
    spec = mujoco.MjSpec.from_file(str(path))
    if angle is not None:
        if angle not in ("radian", "degree"):
            raise ValueError(f"angle={angle!r}: expected 'radian' or 'degree'")
        spec.compiler.degree = angle == "degree"
    elif _declared_angle(path) is None:
        log.warning("%s declares no <compiler angle>: MuJoCo reads its joint ranges and Euler angles in "
                    "degrees; pass angle='radian' if its numbers are radians", path)
    for kind in remove:
        for element in list(getattr(spec, kind)):
            spec.delete(element)
    if hide_sites:
        for site in spec.sites:
            site.group = 5
    spec.option.integrator = scene.option.integrator
    spec.option.cone = scene.option.cone
    spec.option.impratio = scene.option.impratio
    spec.option.gravity = scene.option.gravity
    spec.option.timestep = scene.option.timestep
    return spec


def _per_joint(value: float | Sequence[float] | None, n: int, label: str) -> list[float | None]:
    if value is None or isinstance(value, (int, float)):
        return [value] * n
    if len(value) != n:
        raise ValueError(f"{label}: {len(value)} values for {n} joints")
    return list(value)


def add_servo_arm(
    spec: mujoco.MjSpec,
    name: str,
    joints: Sequence[str],
    tcp_site: str,
    gripper_joint: str,
    gripper_open: float,
    gripper_closed: float,
    home: Sequence[float] = (),
    *,
    kp: float | Sequence[float],
    kv: float | Sequence[float] = 0.0,
    torque: float | Sequence[float] | None = None,
    gripper_kp: float,
    gripper_kv: float = 0.0,
    gripper_force: float | None = None,
    gripper_followers: Sequence[str] = (),
    gripper_tendon: str | None = None,
    gripper_ctrl: tuple[float, float] | None = None,
    root_body: str | None = None,
) -> ArmRig:
    """Position servos for one arm already attached to ``spec``, and the arm's `ArmRig`.

    Every servo is named after what it drives (``"<joint>/servo"``, ``"<gripper joint or
    tendon>/servo"``), so two arms (of one file or two) never collide as long as their joints
    have their own names, which attaching each with its own prefix gives.

    Args:
        spec: the scene's `MjSpec`, after the arm was attached (names include their prefix).
        name: the arm's name in the spec file (``arms[*].name``; e.g. ``left``/``right``).
        joints: the arm joints, in the spec's order.
        tcp_site: the site between the fingertips (+z palm → fingertips, +x closing axis).
        gripper_joint: the joint that measures the opening; ``gripper_open`` and
            ``gripper_closed`` are its values fully open and fully closed (closed may squeeze:
            a value past where the fingers touch).
        home: the arm's home joint values (`solve_home_pose` solves them).
        kp, kv, torque: the arm servos' stiffness, damping and force limit (one value or one
            per joint). Their control is not range-limited: the environment clips targets to
            the spec's joint limits.
        gripper_kp, gripper_kv, gripper_force: the gripper servo's; the force limit decides
            whether a grasp holds (too weak: it slips; a linkage driven too hard gives way).
        gripper_followers: finger joints coupled 1:1 to ``gripper_joint`` by an equality.
        gripper_tendon: drive this tendon instead of ``gripper_joint`` (a linkage gripper whose
            model averages its drivers in a tendon, as the Robotiq 2F-85's ``split``).
        gripper_ctrl: the gripper servo's (open, closed) targets when they differ from the
            joint's values (a tendon); default ``(gripper_open, gripper_closed)``.
        root_body: gravity-compensate this body and everything below it (the arm's base).
    """
    home = tuple(float(v) for v in home)
    if home and len(home) != len(joints):
        raise ValueError(f"arm {name!r}: home has {len(home)} values for {len(joints)} joints")
    for joint in (*joints, gripper_joint, *gripper_followers):
        if spec.joint(joint) is None:
            raise ValueError(f"arm {name!r}: the model has no joint {joint!r} (names carry their attach prefix)")
    kps, kvs = _per_joint(kp, len(joints), "kp"), _per_joint(kv, len(joints), "kv")
    torques = _per_joint(torque, len(joints), "torque")
    actuators = []
    for joint, k, v, t in zip(joints, kps, kvs, torques, strict=True):
        act = spec.add_actuator(
            name=f"{joint}/servo", target=joint, trntype=mujoco.mjtTrn.mjTRN_JOINT,
            gaintype=mujoco.mjtGain.mjGAIN_FIXED, biastype=mujoco.mjtBias.mjBIAS_AFFINE,
            gainprm=[k] + [0] * 9, biasprm=[0, -k, -(v or 0.0)] + [0] * 7,
        )
        act.ctrllimited = False
        if t is not None:
            act.forcerange, act.forcelimited = [-t, t], True
        actuators.append(act.name)
    for follower in gripper_followers:
        spec.add_equality(type=mujoco.mjtEq.mjEQ_JOINT, name1=gripper_joint, name2=follower,
                          objtype=mujoco.mjtObj.mjOBJ_JOINT)
    ctrl_open, ctrl_closed = gripper_ctrl if gripper_ctrl is not None else (gripper_open, gripper_closed)
    driven = gripper_tendon or gripper_joint
    gripper_actuator = f"{driven}/servo"
    add_position_actuator(
        spec, gripper_actuator, driven, kp=gripper_kp, kv=gripper_kv, forcerange=gripper_force,
        ctrlrange=(min(ctrl_open, ctrl_closed), max(ctrl_open, ctrl_closed)),
        transmission=mujoco.mjtTrn.mjTRN_TENDON if gripper_tendon else mujoco.mjtTrn.mjTRN_JOINT,
    )
    if root_body is not None:
        enable_gravcomp(spec, root_body)
    return ArmRig(
        name=name, joints=tuple(joints), actuators=tuple(actuators), tcp_site=tcp_site,
        gripper_actuator=gripper_actuator, gripper_ctrl_open=ctrl_open, gripper_ctrl_closed=ctrl_closed,
        gripper_joint=gripper_joint, gripper_q_open=gripper_open, gripper_q_closed=gripper_closed, home_qpos=home,
    )


def solve_home_pose(
    builder: Callable | str,
    tcp_position: Sequence[float],
    *,
    yaw: float = 0.0,
    arm: str | None = None,
    variant: str = "default",
    start: Sequence[float] | None = None,
    tolerance: float = 0.002,
    max_iterations: int = 1000,
) -> tuple[float, ...]:
    """Arm joint values that put the TCP at ``tcp_position`` pointing straight down: a home pose.

    The robot is built alone (as for IK) and solved with `mink` from ``start`` (default: the
    rig's home if it has one, else each joint's mid-range), the other arms and a mobile base
    held still. Solve it once while writing the builder and paste the numbers in (the bundled
    builders' homes were made this way); give the builder any placeholder home meanwhile.

    Args:
        builder: the robot's builder (callable or ``"module:function"``).
        tcp_position: (x, y, z) in the robot's base frame (m); a home hovers over the work,
            clear of the cubes (e.g. 15-25 cm above the table).
        yaw: the closing axis's angle in the table plane (rad, 0 = the base's x axis); the
            expert keeps this yaw, to the nearest quarter turn, for every grasp.
        arm: which arm (default the first), by its rig name.

    Returns:
        The arm's joint values, in the rig's joint order, rounded to 1e-4 rad.

    Raises:
        ValueError: the pose was not reached within ``tolerance`` (m, and 3 degrees).
    """
    build = resolve_builder(builder)
    spec = mujoco.MjSpec()
    spec.option.timestep = SIM_TIMESTEP
    rig: RobotRig = build(spec, spec.worldbody, variant)
    model = spec.compile()
    target_arm = rig.arms[0] if arm is None else rig.arm(arm)
    config = mink.Configuration(model)
    q = config.q.copy()
    for a in rig.arms:
        adr = np.array([model.joint(j).qposadr[0] for j in a.joints])
        ids = [model.joint(j).id for j in a.joints]
        mid = np.where(model.jnt_limited[ids], model.jnt_range[ids].mean(axis=1), 0.0)
        values = np.asarray(a.home_qpos, dtype=float) if len(a.home_qpos) == len(a.joints) else mid
        if a is target_arm and start is not None:
            values = np.asarray(start, dtype=float)
        q[adr] = values
    config.update(q)
    goal = np.asarray(tcp_position, dtype=float)
    task = mink.FrameTask(target_arm.tcp_site, "site", position_cost=1.0, orientation_cost=1.0, lm_damping=1e-3)
    task.set_target(mink.SE3.from_rotation_and_translation(mink.SO3.from_matrix(top_down_rotation(yaw)), goal))
    posture = mink.PostureTask(model, cost=1e-3)
    posture.set_target(q)
    own = {int(model.joint(j).dofadr[0]) for j in target_arm.joints}
    frozen = [d for d in range(model.nv) if d not in own]
    constraints = [mink.DofFreezingTask(model, dof_indices=frozen)] if frozen else None
    limits = [mink.ConfigurationLimit(model)]
    for _ in range(max_iterations):
        vel = mink.solve_ik(config, [task, posture], 0.05, "daqp", damping=1e-3, limits=limits, constraints=constraints)
        config.integrate_inplace(vel, 0.05)
        error = task.compute_error(config)
        if np.linalg.norm(error[:3]) < tolerance * 0.1 and np.linalg.norm(error[3:]) < 1e-3:
            break
    pose = config.get_transform_frame_to_world(target_arm.tcp_site, "site")
    off = float(np.linalg.norm(pose.translation() - goal))
    tilt = float(np.degrees(np.arccos(np.clip(-pose.rotation().as_matrix()[2, 2], -1.0, 1.0))))
    if off > tolerance or tilt > 3.0:
        raise ValueError(
            f"arm {target_arm.name!r}: the TCP cannot point down at {goal.tolist()} (yaw {yaw:g}): it stops "
            f"{off * 1000:.0f} mm / {tilt:.0f} degrees away; try a nearer or higher point, another yaw "
            f"(e.g. {yaw + np.pi / 2:.4g}), or a start pose closer to it")
    adr = np.array([model.joint(j).qposadr[0] for j in target_arm.joints])
    return tuple(round(float(v), 4) for v in config.q[adr])
