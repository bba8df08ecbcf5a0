"""Checks that simulate: the home pose, the gripper on a cube, fingertip depth, reach by IK.

They run on a `TabletopEnv` of the robot (the same scene, servos and IK the expert uses) and
command it only through native actions, as a policy would. Every number they compare with is
one the scripted expert relies on (`locksmith.sim.expert`): the grasp closes for at most
``GRIP_MAX_S``, the push runs with the TCP at ``push_height`` cube half sizes, the descent stops
with the TCP at the cube's centre.
"""

from __future__ import annotations

import math

import mujoco
import numpy as np

from locksmith.sim.check.model import expert_heights
from locksmith.sim.check.report import Finding
from locksmith.sim.env import TabletopEnv
from locksmith.sim.expert import GRIP_MAX_S
from locksmith.sim.ik import top_down_rotation
from locksmith.sim.scene import N_OBJECTS

HOME_TOL = 0.05  # rad (or m/5) a joint may settle away from its home target
TOP_DOWN_TOL = 30.0  # degrees between the TCP's +z at home and straight down
# m the fingertips may reach below the table top in the expert's plan: the servos yield that much
# (the bundled UR5e pushes with its fingertips 0.7 mm "into" the table and succeeds).
DRAG_TOL = 0.002
SLIP_TOL = 0.5  # of the cube's half size: how far a held cube may move in the gripper
HOLD_S = 1.0  # s the cube hangs in the closed gripper under gravity
OPEN_S = 1.5  # s the gripper may take to open below the spec's closure threshold (pick_place's release)
REACH_TOL = {"push": 0.02, "grasp": 0.02, "hover": 0.03, "lift": 0.03}  # m of TCP error per height
REACH_TILT = 20.0  # degrees from straight down


def _finding(check: str, code: str, severity: str, where: str, message: str, fix: str) -> Finding:
    return Finding(check, code, severity, where, message, fix)  # type: ignore[arg-type]


def hold_action(env: TabletopEnv, closures: dict[str, float]) -> np.ndarray:
    """A native action that keeps every arm (and base) where it is commanded and sets each arm's
    gripper to a closure fraction (0 open, 1 closed; arms not named: open)."""
    spec = env.spec_
    parts: list[np.ndarray] = []
    for comp in spec.action:
        if comp.kind == "joint_position":
            parts.append(env.q_cmd[comp.arm] * comp.native_scale)
        elif comp.kind == "gripper":
            parts.append(np.array([spec.arm(comp.arm).gripper.to_native(closures.get(comp.arm, 0.0))]))
        else:  # velocities and deltas: zero holds
            parts.append(np.zeros(comp.size))
    return np.concatenate(parts)


def _step(env: TabletopEnv, closures: dict[str, float], seconds: float) -> None:
    for _ in range(max(1, round(seconds / env.dt))):
        env.step(hold_action(env, closures))


def robot_bodies(env: TabletopEnv) -> set[int]:
    """Bodies of the robot: every body but the world, the objects and the pads."""
    m = env.model
    return {b for b in range(1, m.nbody) if not m.body(b).name.startswith(("object", "pad"))}


def _subtree(model: mujoco.MjModel, root: int) -> set[int]:
    out = {root}
    for b in range(root + 1, model.nbody):
        if model.body_parentid[b] in out:
            out.add(b)
    return out


def hand_bodies(env: TabletopEnv, arm: str) -> set[int]:
    """The body that the arm's last joint moves and every body below it: wrist, gripper, fingers."""
    m = env.model
    return _subtree(m, int(m.jnt_bodyid[m.joint(env.rig.arm(arm).joints[-1]).id]))


def _tcp(env: TabletopEnv, arm: str) -> tuple[np.ndarray, np.ndarray]:
    sid = env.model.site(env.rig.arm(arm).tcp_site).id
    return env.data.site_xpos[sid].copy(), env.data.site_xmat[sid].reshape(3, 3).copy()


# ---------------------------------------------------------------------------- home
def check_home(env: TabletopEnv) -> list[Finding]:
    """The home pose itself free of contact (robot with robot, robot with table); then, after
    `reset` (the robot settles at home for 0.3 s), every joint held there and the TCP down."""
    m, d = env.model, env.data
    env.reset(seed=0)
    out = _home_contacts(env)
    for arm in env.rig.arms:
        where = f"builder ArmRig({arm.name!r}).home_qpos"
        for k, joint in enumerate(arm.joints):
            jid = m.joint(joint).id
            tol = HOME_TOL if int(m.jnt_type[jid]) == int(mujoco.mjtJoint.mjJNT_HINGE) else HOME_TOL / 5
            q = float(d.qpos[m.jnt_qposadr[jid]])
            if abs(q - arm.home_qpos[k]) > tol:
                out.append(_finding(
                    "home", "home_not_held", "error", f"model joint {joint!r}",
                    f"settles at {q:.3f}, {abs(q - arm.home_qpos[k]):.3f} from its home {arm.home_qpos[k]:.3f}: the "
                    f"servo cannot hold it", "gravity-compensate the robot (enable_gravcomp), raise the servo's kp "
                    "or force limit, or free it from a contact (see any home contact finding; a base welded to the "
                    "world touching its first link needs spec.add_exclude)"))
        pos, rot = _tcp(env, arm.name)
        tilt = math.degrees(math.acos(float(np.clip(-rot[2, 2], -1.0, 1.0))))
        if tilt > TOP_DOWN_TOL:
            out.append(_finding(
                "home", "home_not_top_down", "warning", where,
                f"at home the TCP's +z points {tilt:.0f} degrees away from straight down: the expert takes the "
                f"grasp's yaw from the home pose and grasps top-down", "solve a top-down home with "
                "locksmith.solve_home_pose, and check the TCP site's frame (+z from the palm towards the fingertips)"))
        if pos[2] < env.rig.workspace.cube_half * 2 + 0.01:
            out.append(_finding("home", "home_low", "warning", where,
                                f"at home the TCP is {pos[2] * 1000:.0f} mm above the table, among the cubes",
                                "choose a home with the TCP above the hover height"))
    return out


def _home_contacts(env: TabletopEnv) -> list[Finding]:
    """Contacts of the robot with itself or the table with every arm exactly at its home."""
    m, d = env.model, env.data
    saved = d.qpos.copy()
    for arm in env.rig.arms:
        for joint, value in zip(arm.joints, arm.home_qpos, strict=True):
            d.qpos[m.joint(joint).qposadr[0]] = value
    mujoco.mj_forward(m, d)
    robot = robot_bodies(env)
    out: list[Finding] = []
    deepest: dict[tuple[str, str], float] = {}
    for c in d.contact[:d.ncon]:
        b1, b2 = int(m.geom_bodyid[c.geom1]), int(m.geom_bodyid[c.geom2])
        if not (b1 in robot and (b2 in robot or b2 == 0)) and not (b2 in robot and b1 == 0):
            continue
        pair = tuple(sorted((m.body(b1).name or "world", m.body(b2).name or "world")))
        deepest[pair] = max(deepest.get(pair, 0.0), -float(c.dist))
    for pair, depth in deepest.items():
        table = "world" in pair
        out.append(_finding(
            "home", "home_contact", "warning", f"model bodies {pair[0]!r} and {pair[1]!r}",
            f"touch at home ({depth * 1000:.1f} mm deep)" + (": the robot rests on the table" if table else ""),
            "choose a home pose clear of it (locksmith.solve_home_pose), or, for neighbouring links whose "
            "collision hulls overlap by construction, exclude the pair in the builder: "
            "spec.add_exclude(bodyname1=..., bodyname2=...)"))
    d.qpos[:] = saved
    mujoco.mj_forward(m, d)
    return out


# ---------------------------------------------------------------------------- gripper
def _park_objects(env: TabletopEnv) -> None:
    m, d = env.model, env.data
    for i in range(N_OBJECTS):
        adr = m.joint(f"object{i}_joint").qposadr[0]
        d.qpos[adr:adr + 7] = [5.0 + i, 5.0, 0.1, 1, 0, 0, 0]
        d.qvel[m.joint(f"object{i}_joint").dofadr[0]:][:6] = 0
    mujoco.mj_forward(m, d)


def _cube_contacts(env: TabletopEnv, robot: set[int], x_axis: np.ndarray) -> tuple[float, float, float]:
    """(force pushing the cube along +x, along -x, deepest penetration) from robot contacts (N, N, m)."""
    m, d = env.model, env.data
    cube = m.geom("object0_geom").id
    plus = minus = depth = 0.0
    force = np.zeros(6)
    for i, c in enumerate(d.contact[:d.ncon]):
        if cube not in (c.geom1, c.geom2):
            continue
        other = c.geom2 if c.geom1 == cube else c.geom1
        if int(m.geom_bodyid[other]) not in robot:
            continue
        mujoco.mj_contactForce(m, d, i, force)
        normal = np.asarray(c.frame[:3])  # from geom1 to geom2
        on_cube = normal * force[0] * (1.0 if c.geom2 == cube else -1.0)
        along = float(on_cube @ x_axis)
        plus, minus = plus + max(along, 0.0), minus + max(-along, 0.0)
        depth = max(depth, -float(c.dist))
    return plus, minus, depth


def check_gripper(env: TabletopEnv) -> tuple[list[Finding], dict[str, float]]:
    """Per arm: the gripper closes (free), reopens below the spec's threshold, closes on a cube at
    the TCP from both sides, holds it under gravity. Returns findings and each arm's fingertip
    depth below the TCP (m) with the gripper closed and open, for `check_fingertips`."""
    m, d = env.model, env.data
    robot = robot_bodies(env)
    h = env.scene.object_half
    out: list[Finding] = []
    depths: dict[str, float] = {}
    cube_body = m.body("object0").id
    cube_adr = m.joint("object0_joint").qposadr[0]
    cube_dof = m.joint("object0_joint").dofadr[0]
    for arm in env.rig.arms:
        name = arm.name
        where = f"model actuator {arm.gripper_actuator!r}"
        env.reset(seed=0)
        _park_objects(env)
        depths[f"{name}:open"] = fingertip_depth(env, name)
        _step(env, {name: 1.0}, GRIP_MAX_S)
        free_closure = env.closure(name)
        depths[f"{name}:closed"] = fingertip_depth(env, name)
        threshold = env.spec_.arm(name).gripper.closure_threshold
        for _ in range(round(OPEN_S / env.dt)):
            env.step(hold_action(env, {name: 0.0}))
            if env.closure(name) < min(threshold, 0.05):
                break
        if env.closure(name) >= threshold:
            out.append(_finding(
                "gripper", "gripper_no_open", "error", where,
                f"arm {name!r}: {OPEN_S:g} s after the open command the closure is still {env.closure(name):.2f}, not "
                f"below the spec's closure_threshold {threshold}: pick_place never counts as released",
                "make the gripper open faster (a stronger servo, less joint damping or armature), or raise the "
                "spec's arms[*].gripper.closure_threshold"))
            continue
        # A cube at the TCP, faces along the TCP's axes, floating (gravity compensated) while it closes.
        pos, rot = _tcp(env, name)
        quat = np.zeros(4)
        mujoco.mju_mat2Quat(quat, rot.flatten())
        d.qpos[cube_adr:cube_adr + 3], d.qpos[cube_adr + 3:cube_adr + 7] = pos, quat
        d.qvel[cube_dof:cube_dof + 6] = 0
        m.body_gravcomp[cube_body] = 1.0
        try:
            mujoco.mj_forward(m, d)
            _, _, depth_open = _cube_contacts(env, robot, rot[:, 0])
            if depth_open > 0.002:
                out.append(_finding(
                    "gripper", "gripper_too_narrow", "error", f"builder ArmRig({name!r}).gripper_q_open",
                    f"the open gripper cuts {depth_open * 1000:.1f} mm into a {2 * h * 1000:.0f} mm cube centred on the "
                    f"TCP: it cannot descend over a cube", "open the gripper wider (gripper_q_open and "
                    "gripper_ctrl_open), or move the TCP site to the centre between the open fingers"))
            _step(env, {name: 1.0}, GRIP_MAX_S)
            plus, minus, depth = _cube_contacts(env, robot, rot[:, 0])
            grasp_closure = env.closure(name)
            if min(plus, minus) <= 1e-6:
                out.append(_finding(
                    "gripper", "gripper_no_close", "error", where,
                    f"arm {name!r}: the gripper did not close on a {2 * h * 1000:.0f} mm cube at the TCP within "
                    f"{GRIP_MAX_S} s (closure {grasp_closure:.2f} with the cube, {free_closure:.2f} without"
                    + (", pressing on one side only" if max(plus, minus) > 0 else ", no contact") + ")",
                    "check that the gripper joint can travel from open to closed (its range, the units of its "
                    "file), that the servo is strong and fast enough, and that the TCP site sits between the "
                    "fingertips"))
                continue
            if depth > 0.3 * h:
                out.append(_finding(
                    "gripper", "gripper_crush", "warning", where,
                    f"arm {name!r}: the closed gripper sinks {depth * 1000:.1f} mm into the cube: the servo is "
                    f"stronger than the contacts or the linkage hold", "lower the gripper servo's force limit "
                    "(forcerange) or kp; a linkage gripper gives way when it is driven too hard"))
            squeeze = min(plus, minus)
            m.body_gravcomp[cube_body] = 0.0
            held = rot.T @ (d.qpos[cube_adr:cube_adr + 3] - _tcp(env, name)[0])
            _step(env, {name: 1.0}, HOLD_S)
            pos2, rot2 = _tcp(env, name)
            moved = float(np.linalg.norm(rot2.T @ (d.qpos[cube_adr:cube_adr + 3] - pos2) - held))
            if moved > SLIP_TOL * h:
                out.append(_finding(
                    "gripper", "gripper_slip", "error", where,
                    f"arm {name!r}: a {2 * h * 1000:.0f} mm, 50 g cube slipped {moved * 1000:.0f} mm in the closed "
                    f"gripper under gravity alone (squeezed with {squeeze:.1f} N): lift and pick_place drop it",
                    "raise the gripper servo's force limit or kp (for a linkage gripper, within what the linkage "
                    "holds), or give the finger pads friction (friction 1.0, condim 4)"))
        finally:
            m.body_gravcomp[cube_body] = 0.0
    return out, depths


# ---------------------------------------------------------------------------- fingertips
def _support(model: mujoco.MjModel, data: mujoco.MjData, geom: int, u: np.ndarray) -> float:
    """Largest projection onto the unit vector ``u`` of a point of ``geom`` (world frame)."""
    centre, rot, size = data.geom_xpos[geom], data.geom_xmat[geom].reshape(3, 3), model.geom_size[geom]
    local = rot.T @ u  # u in the geom's frame
    gtype = int(model.geom_type[geom])
    if gtype == int(mujoco.mjtGeom.mjGEOM_MESH):
        mesh = model.geom_dataid[geom]
        start, count = model.mesh_vertadr[mesh], model.mesh_vertnum[mesh]
        return float(centre @ u + np.max(model.mesh_vert[start:start + count] @ local))
    if gtype == int(mujoco.mjtGeom.mjGEOM_BOX):
        return float(centre @ u + np.abs(local) @ size)
    if gtype == int(mujoco.mjtGeom.mjGEOM_SPHERE):
        return float(centre @ u + size[0])
    if gtype == int(mujoco.mjtGeom.mjGEOM_CAPSULE):
        return float(centre @ u + abs(local[2]) * size[1] + size[0])
    if gtype == int(mujoco.mjtGeom.mjGEOM_CYLINDER):
        return float(centre @ u + abs(local[2]) * size[1] + size[0] * math.sqrt(max(0.0, 1 - local[2] ** 2)))
    if gtype == int(mujoco.mjtGeom.mjGEOM_ELLIPSOID):
        return float(centre @ u + np.linalg.norm(size * local))
    return float(centre @ u)  # planes, height fields: not on a hand


def fingertip_depth(env: TabletopEnv, arm: str) -> float:
    """How far (m) the hand's colliding geometry reaches beyond the TCP along the TCP's +z (towards
    the fingertips): with the TCP pointing down, the fingertips are this far below it."""
    m, d = env.model, env.data
    hand = hand_bodies(env, arm)
    pos, rot = _tcp(env, arm)
    z = rot[:, 2]
    reach = [_support(m, d, g, z) for g in range(m.ngeom)
             if m.geom_bodyid[g] in hand and (m.geom_contype[g] or m.geom_conaffinity[g])]
    return max(reach, default=pos @ z) - float(pos @ z)


def check_fingertips(env: TabletopEnv, depths: dict[str, float]) -> list[Finding]:
    """The push runs with the TCP at ``push_height × cube_half`` and the gripper closed; the grasp
    descends with the TCP at the cube's centre and the gripper open: fingertips above the table."""
    rig = env.rig
    h = rig.workspace.cube_half
    heights = expert_heights(rig)
    push_height = float(rig.extra.get("push_height", 1.0))
    out: list[Finding] = []
    for arm in rig.arms:
        closed, opened = depths.get(f"{arm.name}:closed"), depths.get(f"{arm.name}:open")
        if closed is not None and heights["push"] - closed < -DRAG_TOL:
            needed = math.ceil((closed + 0.003) / h * 10) / 10
            fix = (f"set RobotRig.extra['push_height'] = {needed:g} (the TCP then pushes {needed * h * 1000:.0f} mm "
                   f"above the table)")
            if needed >= 1.8:
                fix = (f"move the TCP site towards the fingertips (it is {closed * 1000:.0f} mm above them; the "
                       f"push needs the fingertips below the cube's top, {2 * h * 1000:.0f} mm), then set "
                       f"RobotRig.extra['push_height'] so that the fingertips clear the table")
            out.append(_finding(
                "fingertips", "fingertips_drag", "warning", "builder RobotRig.extra['push_height']",
                f"arm {arm.name!r}: the closed fingertips reach {closed * 1000:.1f} mm below the TCP, but the push "
                f"runs with the TCP {heights['push'] * 1000:.1f} mm above the table (push_height {push_height:g} x "
                f"cube_half {h * 1000:g} mm): the fingertips drag on the table", fix))
        if opened is not None and heights["grasp"] - opened < -DRAG_TOL:
            out.append(_finding(
                "fingertips", "fingertips_grasp", "warning", f"builder ArmRig({arm.name!r}).tcp_site",
                f"the open fingertips reach {opened * 1000:.1f} mm below the TCP, but the grasp descends with the "
                f"TCP at the cube's centre, {h * 1000:g} mm above the table: they strike the table",
                f"move the TCP site towards the fingertips, to at most {h * 1000:.0f} mm above them "
                f"(or use bigger cubes: Workspace.cube_half)"))
    return out


# ---------------------------------------------------------------------------- reach
def _grid(lo: float, hi: float, n: int) -> list[float]:
    return [lo, hi] if n == 2 else [lo, (lo + hi) / 2, hi]


def check_reach(env: TabletopEnv, full: bool) -> list[Finding]:
    """Top-down TCP poses over the spawn box at the expert's heights, solved with the expert's IK
    from home (the target slid over the first 40 solver steps, as the expert moves it)."""
    rig, ik = env.rig, env.ik
    if rig.base_joints:
        return []  # a mobile base drives to the work: its arm reaches from where it stands
    env.reset(seed=0)
    ws = rig.workspace
    heights = expert_heights(rig)
    heights = {"push": min(heights["push"], heights["grasp"]), "hover": heights["hover"],
               "lift": ws.cube_half + ws.lift_height + 0.01}  # the cube must rise lift_height
    n = 3 if full else 2
    points = [(x, y) for x in _grid(*ws.spawn_x, n) for y in _grid(*ws.spawn_y, n)]
    if not full:
        points.append((sum(ws.spawn_x) / 2, sum(ws.spawn_y) / 2))
    home = {a.name: np.asarray(a.home_qpos, dtype=float) for a in rig.arms}
    starts = {a.name: env.tcp_base_frame(a.name) for a in rig.arms}
    failed: list[tuple[str, np.ndarray, float, float]] = []
    for x, y in points:
        arm = min(rig.arms, key=lambda a: abs(starts[a.name][1] - y)).name  # the expert's choice
        rot = top_down_rotation(env.grasp_yaw[arm])
        for label, z in heights.items():
            goal = np.array([x, y, z])
            q = dict(home)
            for k in range(120):
                target = starts[arm] + (goal - starts[arm]) * min(1.0, (k + 1) / 40)
                q = ik.solve(q, {arm: (target, rot)}, env.dt)
                if k >= 40 and np.linalg.norm(ik.tcp_positions({arm: q[arm]})[arm] - goal) < 1e-3:
                    break
            pos, got = ik.tcp_pose(q, arm)
            error = float(np.linalg.norm(pos - goal))
            tilt = math.degrees(math.acos(float(np.clip(-got[2, 2], -1.0, 1.0))))
            if error > REACH_TOL[label] or tilt > REACH_TILT:
                failed.append((label, goal, error, tilt))
    if not failed:
        return []
    centre_failed = any(np.allclose(g[:2], [sum(ws.spawn_x) / 2, sum(ws.spawn_y) / 2]) for _, g, _, _ in failed)
    labels = sorted({f[0] for f in failed})
    shown = "; ".join(f"{label} at ({g[0]:.3f}, {g[1]:.3f}, {g[2]:.3f}) off by {e * 1000:.0f} mm / {t:.0f} deg"
                      for label, g, e, t in failed[:4])
    xs = {round(float(g[0]), 4) for _, g, _, _ in failed}
    ys = {round(float(g[1]), 4) for _, g, _, _ in failed}
    hints = []
    if labels == ["hover"] or labels == ["hover", "lift"] or labels == ["lift"]:
        hints.append("lower Workspace.hover_height / lift_height")
    for axis, values, (lo, hi) in (("x", xs, ws.spawn_x), ("y", ys, ws.spawn_y)):
        if values == {round(hi, 4)}:
            hints.append(f"lower Workspace.spawn_{axis}'s upper end ({hi:g})")
        elif values == {round(lo, 4)}:
            hints.append(f"raise Workspace.spawn_{axis}'s lower end ({lo:g})")
    hints.append("or move the home pose (the IK starts from it)")
    return [_finding(
        "workspace", "workspace_unreachable", "error" if centre_failed else "warning", "builder RobotRig.workspace",
        f"{len(failed)} of {len(points) * len(heights)} top-down TCP poses over the spawn box are out of reach: {shown}",
        ", ".join(hints))]
