"""`TabletopEnv`: one robot (bundled or registered), one task, one evaluation slice, in MuJoCo.

Actions and states are in the robot's *native* convention as its spec declares (degrees,
millimetres, joint velocities, end-effector deltas, a 0-100 gripper, ...). Inside, every
command becomes position targets for the robot's servos, the way a real robot's controller
turns its command interface into motor set-points:

    joint_position  target  = native / scale
    joint_velocity  target += native / scale * dt
    ee_delta        TCP goal += native / scale (robot base frame), joints from differential IK
    base_velocity   base pose += R(yaw) (vx, vy) dt, yaw += wz dt
    gripper         closure = (native - open) / (closed - open), servo between open and closed

Observations (LeRobot feature names):
    observation.state              (state_dim,)  the spec's state layout, native units
    observation.environment_state  (env_dim,)    objects, pads and TCPs as seen from the
                                                 spec's first camera (see `ENV_FIELDS`)
    observation.images.<camera>    (H, W, 3)     uint8, only with ``render=True``
"""

from __future__ import annotations

import gymnasium as gym
import mujoco
import numpy as np

from locksmith.embodiment.registry import load_robot_spec
from locksmith.embodiment.spec import EmbodimentSpec
from locksmith.sim.cameras import IMAGE_PREFIX, CameraRenderer, compile_render_copy
from locksmith.sim.ik import RobotIK, top_down_rotation
from locksmith.sim.scene import (
    COLOURS, N_OBJECTS, N_PADS, RENDER_GROUPS, ObjectGeometry, Scene, build_scene, look_at_quat,
)
from locksmith.sim.slices import SliceDraw, check_slice, draw_slice
from locksmith.sim.tasks import TaskState, get_task, is_success

# Per object: position (3, camera frame), half size (1), colour (3); per pad: position (3),
# colour (3); per arm: TCP position (3, camera frame), closure fraction (1).
OBJECT_FIELDS, PAD_FIELDS, ARM_FIELDS = 7, 6, 4
SETTLE_SECONDS = 0.3
# A start away from home (``start_jitter``): its own random stream, the TCP at least this high
# above the table, reached by this many steps of differential IK from home.
START_STREAM, MIN_START_HEIGHT, START_IK_DT, START_IK_ITERATIONS = 15485863, 0.08, 0.05, 60


def env_state_dim(n_arms: int) -> int:
    return N_OBJECTS * OBJECT_FIELDS + N_PADS * PAD_FIELDS + n_arms * ARM_FIELDS


def env_state_names(arm_names: list[str]) -> list[str]:
    names: list[str] = []
    for i in range(N_OBJECTS):
        names += [f"object{i}.{f}" for f in ("x", "y", "z", "half_size", "r", "g", "b")]
    for i in range(N_PADS):
        names += [f"pad{i}.{f}" for f in ("x", "y", "z", "r", "g", "b")]
    for arm in arm_names:
        names += [f"{arm}.tcp.{f}" for f in ("x", "y", "z")] + [f"{arm}.closure"]
    return names


class TabletopEnv(gym.Env):
    """A robot (bundled or registered) doing one task on one slice (see the module docstring)."""

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(
        self,
        robot: str | EmbodimentSpec,
        task: str,
        slice_name: str = "nominal",
        render: bool = False,
        image_size: int | None = None,
        start_jitter: float = 0.0,
    ):
        self.spec_ = robot if isinstance(robot, EmbodimentSpec) else load_robot_spec(robot)
        self.task = get_task(task)
        self.slice_name = check_slice(slice_name)
        self.render_images = render
        self.image_size = image_size
        self.start_jitter = float(start_jitter)  # m, see `_start_joints`
        self.dt = self.spec_.control_period_s
        self._scene_key: tuple | None = None
        self.scene: Scene | None = None
        self._camera_renderer: CameraRenderer | None = None
        self._draw = draw_slice(self.slice_name, 0)
        self._build(self._draw)
        self.horizon = int(round(self.task.horizon_s * self.spec_.control_rate_hz))
        self.rng = np.random.default_rng(0)
        self.action_space = gym.spaces.Box(-np.inf, np.inf, (self.spec_.action_dim,), np.float32)
        self.observation_space = gym.spaces.Dict({
            "observation.state": gym.spaces.Box(-np.inf, np.inf, (self.spec_.state_dim,), np.float32),
            "observation.environment_state": gym.spaces.Box(
                -np.inf, np.inf, (env_state_dim(len(self.spec_.arms)),), np.float32),
        })

    # ------------------------------------------------------------------ building
    def _build(self, draw: SliceDraw) -> None:
        key = (draw.gripper_variant, draw.object_shape, round(draw.object_scale, 6))
        if key == self._scene_key:
            return
        self.scene = build_scene(
            self.spec_, draw.gripper_variant, ObjectGeometry(draw.object_shape, draw.object_scale)
        )
        self._scene_key = key
        self.model = self.scene.model
        self.data = mujoco.MjData(self.model)
        self.rig = self.scene.rig
        self.n_substeps = max(1, int(round(self.dt / self.model.opt.timestep)))
        if not hasattr(self, "ik") or self.ik_variant != draw.gripper_variant:
            self.ik = RobotIK(self.spec_.name, draw.gripper_variant)
            self.ik_variant = draw.gripper_variant
        m = self.model
        self._arm_qadr = {a.name: np.array([m.joint(j).qposadr[0] for j in a.joints]) for a in self.rig.arms}
        self._arm_dadr = {a.name: np.array([m.joint(j).dofadr[0] for j in a.joints]) for a in self.rig.arms}
        self._arm_act = {a.name: np.array([m.actuator(n).id for n in a.actuators]) for a in self.rig.arms}
        self._grip_act = {a.name: m.actuator(a.gripper_actuator).id for a in self.rig.arms}
        self._grip_qadr = {a.name: m.joint(a.gripper_joint).qposadr[0] for a in self.rig.arms}
        self._tcp_site = {a.name: m.site(a.tcp_site).id for a in self.rig.arms}
        self._base_qadr = np.array([m.joint(j).qposadr[0] for j in self.rig.base_joints], dtype=int)
        self._base_act = np.array([m.actuator(n).id for n in self.rig.base_actuators], dtype=int)
        self._obj_qadr = [m.joint(f"object{i}_joint").qposadr[0] for i in range(N_OBJECTS)]
        self._obj_dadr = [m.joint(f"object{i}_joint").dofadr[0] for i in range(N_OBJECTS)]
        self._obj_geom = [m.geom(f"object{i}_geom").id for i in range(N_OBJECTS)]
        self._pad_mocap = [m.body(f"pad{i}").mocapid[0] for i in range(N_PADS)]
        self._pad_geom = [m.geom(f"pad{i}_geom").id for i in range(N_PADS)]
        self._cam_ids = [m.camera(c).id for c in self.scene.cameras]
        self._cam_pos0 = m.cam_pos[self._cam_ids].copy() if self._cam_ids else np.zeros((0, 3))
        self._table_geom = m.geom("table").id
        self._light0 = (m.light_diffuse.copy(), m.light_dir.copy(), m.geom_rgba[self._table_geom, :3].copy())
        self.close()  # a camera renderer of the previous scene
        self._render_option = mujoco.MjvOption()
        self._render_option.geomgroup[:] = RENDER_GROUPS
        # Draw collision meshes as their convex hulls: the same picture at 64 px, 4-5x faster
        # for the robots whose collision meshes have ~100k vertices.
        self._render_option.flags[mujoco.mjtVisFlag.mjVIS_CONVEXHULL] = True

    # ------------------------------------------------------------------ reset
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        seed = int(self.np_random.integers(2**31)) if seed is None else int(seed)
        self.episode_seed = seed
        self._draw = draw_slice(self.slice_name, seed)
        self._build(self._draw)
        self._apply_camera_offset(self._draw.camera_offset)
        self._apply_lighting(self._draw)
        rng = np.random.default_rng([seed, 104729])
        self.rng = rng
        m, d = self.model, self.data
        mujoco.mj_resetData(m, d)
        ws = self.rig.workspace
        half = self.scene.object_half
        # Colours: distinct for the objects, distinct for the pads.
        names = list(COLOURS)
        self.object_colours = list(rng.choice(names, N_OBJECTS, replace=False))
        self.pad_colours = list(rng.choice(names, N_PADS, replace=False))
        self.target_object = int(rng.integers(N_OBJECTS))
        self.target_pad = int(rng.integers(N_PADS))
        positions = self._sample_layout(rng, ws, half)
        for i in range(N_OBJECTS):
            adr = self._obj_qadr[i]
            d.qpos[adr:adr + 3] = [positions[i][0], positions[i][1], half]
            d.qpos[adr + 3:adr + 7] = [1, 0, 0, 0]
            m.geom_rgba[self._obj_geom[i], :3] = COLOURS[self.object_colours[i]]
        for i in range(N_PADS):
            d.mocap_pos[self._pad_mocap[i]] = [positions[N_OBJECTS + i][0], positions[N_OBJECTS + i][1], 0.001]
            m.geom_rgba[self._pad_geom[i], :3] = COLOURS[self.pad_colours[i]]
        # Robot at home, commands equal to the state.
        self.q_cmd: dict[str, np.ndarray] = {}
        self.closure_cmd: dict[str, float] = {}
        start_rng = np.random.default_rng([seed, START_STREAM])  # the layout's draws stay as they were
        for arm in self.rig.arms:
            home = self._start_joints(arm, start_rng) if self.start_jitter > 0 else np.asarray(arm.home_qpos, float)
            d.qpos[self._arm_qadr[arm.name]] = home
            self.q_cmd[arm.name] = home.copy()
            self.closure_cmd[arm.name] = 0.0
            d.qpos[self._grip_qadr[arm.name]] = arm.gripper_q_open
        self.base_cmd = np.asarray(self.rig.base_home, dtype=float) if self.rig.base_joints else np.zeros(0)
        if self.rig.base_joints:
            d.qpos[self._base_qadr] = self.base_cmd
        self._write_ctrl()
        mujoco.mj_forward(m, d)
        # Let the scene settle with the commands held: objects come to rest and coupled finger
        # joints (set here through one joint only) reach the open gripper.
        mujoco.mj_step(m, d, nstep=max(self.n_substeps, int(round(SETTLE_SECONDS / m.opt.timestep))))
        self.tcp_cmd = {a.name: self.tcp_base_frame(a.name) for a in self.rig.arms}
        self.grasp_yaw = {a.name: self._home_yaw(a.name) for a in self.rig.arms}
        self.t = 0
        self.pushed = False
        self.instruction = self.task.template.format(
            obj=self.object_colours[self.target_object], pad=self.pad_colours[self.target_pad]
        )
        return self.observation(), self._info()

    def _start_joints(self, arm, rng: np.random.Generator) -> np.ndarray:
        """Joint values whose TCP is the home TCP moved by an offset drawn uniformly within
        ``start_jitter`` per axis (kept `MIN_START_HEIGHT` above the table), same orientation,
        from differential IK: an episode that starts away from home (`record_demos`'s
        ``start_jitter``), so that a policy sees more of the workspace than one start pose."""
        home = np.asarray(arm.home_qpos, dtype=float)
        position, rotation = self.ik.tcp_pose({arm.name: home}, arm.name)
        target = position + rng.uniform(-self.start_jitter, self.start_jitter, 3)
        target[2] = max(target[2], MIN_START_HEIGHT)
        q = self.ik.solve({arm.name: home}, {arm.name: (target, rotation)}, START_IK_DT, iterations=START_IK_ITERATIONS)
        return q[arm.name]

    def _sample_layout(self, rng: np.random.Generator, ws, half: float) -> list[np.ndarray]:
        """Object and pad positions, with objects apart and pads clear of every object."""
        pts: list[np.ndarray] = []
        min_obj = 3.0 * half + 0.03
        min_pad = 0.05 + 1.5 * half + 0.02
        for attempt in range(5000):
            if attempt % 100 == 99:
                pts = []  # early placements can leave no room: start the layout over
            p = np.array([rng.uniform(*ws.spawn_x), rng.uniform(*ws.spawn_y)])
            gap = min_obj if len(pts) < N_OBJECTS else min_pad
            if all(np.linalg.norm(p - q) > (gap if j < N_OBJECTS else 0.11) for j, q in enumerate(pts)):
                pts.append(p)
                if len(pts) == N_OBJECTS + N_PADS:
                    if self.task.name == "push" and not self._push_start_reachable(pts, ws, half):
                        pts = []
                        continue
                    return pts
        raise RuntimeError(f"{self.spec_.name}: cannot place {N_OBJECTS} objects and {N_PADS} pads in the workspace")

    def _push_start_reachable(self, pts: list[np.ndarray], ws, half: float) -> bool:
        """A push starts behind the object, on the far side from the pad: keep that point inside
        the spawn box, which every robot reaches (a small arm cannot push from beside its base)."""
        obj, pad = pts[self.target_object], pts[N_OBJECTS + self.target_pad]
        direction = (pad - obj) / max(np.linalg.norm(pad - obj), 1e-9)
        start = obj - direction * (half + 0.05)
        return bool(ws.spawn_x[0] <= start[0] <= ws.spawn_x[1] and ws.spawn_y[0] <= start[1] <= ws.spawn_y[1])

    def _apply_camera_offset(self, offset: np.ndarray) -> None:
        for k, cam_id in enumerate(self._cam_ids):
            spec_cam = self.spec_.cameras[k]
            pos = self._cam_pos0[k] + offset
            self.model.cam_pos[cam_id] = pos
            self.model.cam_quat[cam_id] = look_at_quat(pos, np.asarray(spec_cam.look_at, dtype=float))

    def _apply_lighting(self, draw: SliceDraw) -> None:
        """The `lighting` slice's light and table colour (the scene's own for every other slice)."""
        m = self.model
        m.light_diffuse[:] = self._light0[0] * draw.light_scale
        m.light_dir[:] = self._light0[1] + np.array([*draw.light_tilt, 0.0])
        m.light_dir[:] /= np.linalg.norm(m.light_dir, axis=1, keepdims=True)
        m.geom_rgba[self._table_geom, :3] = np.clip(self._light0[2] + np.asarray(draw.table_tint), 0.0, 1.0)

    def _home_yaw(self, arm: str) -> float:
        """Grasp yaw: the multiple of 90 degrees nearest the TCP's closing axis at home."""
        rot = self.data.site_xmat[self._tcp_site[arm]].reshape(3, 3)
        base_yaw = self.base_cmd[2] if self.rig.base_joints else 0.0
        yaw = np.arctan2(rot[1, 0], rot[0, 0]) - base_yaw
        return float(np.round(yaw / (np.pi / 2)) * (np.pi / 2))

    # ------------------------------------------------------------------ frames
    def base_pose(self) -> tuple[np.ndarray, float]:
        """World position (x, y, 0) and yaw of the robot base."""
        if not self.rig.base_joints:
            return np.zeros(3), 0.0
        x, y, yaw = self.data.qpos[self._base_qadr]
        return np.array([x, y, 0.0]), float(yaw)

    def to_base_frame(self, world: np.ndarray) -> np.ndarray:
        origin, yaw = self.base_pose()
        c, s = np.cos(yaw), np.sin(yaw)
        rel = np.asarray(world) - origin
        return np.array([c * rel[0] + s * rel[1], -s * rel[0] + c * rel[1], rel[2]])

    def to_world_frame(self, local: np.ndarray) -> np.ndarray:
        origin, yaw = self.base_pose()
        c, s = np.cos(yaw), np.sin(yaw)
        return origin + np.array([c * local[0] - s * local[1], s * local[0] + c * local[1], local[2]])

    def tcp_base_frame(self, arm: str) -> np.ndarray:
        return self.to_base_frame(self.data.site_xpos[self._tcp_site[arm]])

    def object_pos(self, i: int) -> np.ndarray:
        adr = self._obj_qadr[i]
        return self.data.qpos[adr:adr + 3].copy()

    def pad_pos(self, i: int) -> np.ndarray:
        return self.data.mocap_pos[self._pad_mocap[i]].copy()

    def closure(self, arm: str) -> float:
        rig = self.rig.arm(arm)
        q = self.data.qpos[self._grip_qadr[arm]]
        return float(np.clip((q - rig.gripper_q_open) / (rig.gripper_q_closed - rig.gripper_q_open), 0.0, 1.0))

    def _camera_frame(self) -> tuple[np.ndarray, np.ndarray]:
        """World position and rotation (columns: right, up, backward) of the first camera."""
        if not self._cam_ids:
            return np.zeros(3), np.eye(3)
        cam = self._cam_ids[0]
        return self.data.cam_xpos[cam].copy(), self.data.cam_xmat[cam].reshape(3, 3).copy()

    # ------------------------------------------------------------------ observation
    def observation(self) -> dict[str, np.ndarray]:
        obs = {
            "observation.state": self.state_vector().astype(np.float32),
            "observation.environment_state": self.environment_state().astype(np.float32),
        }
        if self.render_images:
            obs.update(self.render_cameras())
        return obs

    def state_vector(self) -> np.ndarray:
        d = self.data
        parts: list[np.ndarray] = []
        for comp in self.spec_.state:
            scale = comp.native_scale
            if comp.kind == "joint_position":
                parts.append(d.qpos[self._arm_qadr[comp.arm]] * scale)
            elif comp.kind == "joint_velocity":
                parts.append(d.qvel[self._arm_dadr[comp.arm]] * scale)
            elif comp.kind == "gripper":
                grip = self.spec_.arm(comp.arm).gripper
                parts.append(np.array([grip.to_native(self.closure(comp.arm))]))
            elif comp.kind == "base_pose":
                parts.append(d.qpos[self._base_qadr] * np.array([scale, scale, 1.0]))
            elif comp.kind == "ee_position":
                parts.append(self.tcp_base_frame(comp.arm) * scale)
        return np.concatenate(parts)

    def environment_state(self) -> np.ndarray:
        cam_pos, cam_rot = self._camera_frame()

        def in_cam(p: np.ndarray) -> np.ndarray:
            return cam_rot.T @ (np.asarray(p) - cam_pos)

        m = self.model
        parts: list[np.ndarray] = []
        for i in range(N_OBJECTS):
            parts += [in_cam(self.object_pos(i)), [self.scene.object_half], m.geom_rgba[self._obj_geom[i], :3]]
        for i in range(N_PADS):
            parts += [in_cam(self.pad_pos(i)), m.geom_rgba[self._pad_geom[i], :3]]
        for arm in self.rig.arms:
            parts += [in_cam(self.data.site_xpos[self._tcp_site[arm.name]]), [self.closure(arm.name)]]
        return np.concatenate([np.asarray(p, dtype=float).ravel() for p in parts])

    def render_cameras(self) -> dict[str, np.ndarray]:
        """``{"observation.images.<camera>": (H, W, 3) uint8}`` for the spec's cameras, at
        ``image_size`` when given (`locksmith.sim.cameras`: drawn from a render copy of the scene)."""
        if self._camera_renderer is None:
            self._camera_renderer = CameraRenderer(compile_render_copy(self.scene.spec, self.model),
                                                   self._render_option)
        cameras = {}
        for k, cam in enumerate(self.scene.cameras):
            spec_cam = self.spec_.cameras[k]
            size = (self.image_size or spec_cam.height, self.image_size or spec_cam.width)
            cameras[IMAGE_PREFIX + spec_cam.name] = (cam, *size)
        return self._camera_renderer.render(self.model, self.data, cameras)

    # ------------------------------------------------------------------ stepping
    def step(self, action: np.ndarray):
        action = np.asarray(action, dtype=float).reshape(-1)
        if action.shape != (self.spec_.action_dim,):
            raise ValueError(f"{self.spec_.name}: action has shape {action.shape}, expected ({self.spec_.action_dim},)")
        self.apply_action(action)
        self._maybe_push()
        mujoco.mj_step(self.model, self.data, nstep=self.n_substeps)
        self.t += 1
        success = self.success()
        terminated = success
        truncated = self.t >= self.horizon
        return self.observation(), float(success), terminated, truncated, self._info(success)

    def apply_action(self, action: np.ndarray) -> None:
        """Turn a native action into servo targets (see the module docstring)."""
        spec = self.spec_
        ik_targets: dict[str, np.ndarray] = {}
        for comp, sl in zip(spec.action, spec.slices("action").values(), strict=True):
            value = action[sl]
            if not np.all(np.isfinite(value)):
                continue  # a non-finite command holds the previous target
            if comp.kind == "joint_position":
                self.q_cmd[comp.arm] = value / comp.native_scale
            elif comp.kind == "joint_velocity":
                self.q_cmd[comp.arm] = self.q_cmd[comp.arm] + value / comp.native_scale * self.dt
            elif comp.kind == "ee_delta":
                self.tcp_cmd[comp.arm] = self.tcp_cmd[comp.arm] + value / comp.native_scale
                ik_targets[comp.arm] = self.tcp_cmd[comp.arm]
            elif comp.kind == "base_velocity":
                yaw = self.base_cmd[2]
                vx, vy, wz = value / np.array([comp.native_scale, comp.native_scale, 1.0])
                self.base_cmd = self.base_cmd + self.dt * np.array(
                    [np.cos(yaw) * vx - np.sin(yaw) * vy, np.sin(yaw) * vx + np.cos(yaw) * vy, wz])
            elif comp.kind == "gripper":
                grip = spec.arm(comp.arm).gripper
                self.closure_cmd[comp.arm] = float(np.clip(grip.to_closure(float(value[0])), 0.0, 1.0))
        if ik_targets:
            solved = self.ik.solve_fast(
                self.q_cmd, {arm: (pos, top_down_rotation(self.grasp_yaw[arm])) for arm, pos in ik_targets.items()})
            for arm in ik_targets:
                self.q_cmd[arm] = solved[arm]
        for arm in self.rig.arms:
            self.q_cmd[arm.name] = np.clip(self.q_cmd[arm.name], *spec.joint_limits(arm.name))
        self._write_ctrl()

    def _write_ctrl(self) -> None:
        d = self.data
        for arm in self.rig.arms:
            d.ctrl[self._arm_act[arm.name]] = self.q_cmd[arm.name]
            closure = float(np.clip(self.closure_cmd[arm.name] + self._draw.closure_offset, 0.0, 1.0))
            d.ctrl[self._grip_act[arm.name]] = arm.gripper_ctrl_open + closure * (
                arm.gripper_ctrl_closed - arm.gripper_ctrl_open)
        if self.rig.base_joints:
            d.ctrl[self._base_act] = self.base_cmd

    def _maybe_push(self) -> None:
        frac = self._draw.push_time_fraction
        if frac is None or self.pushed or self.t < int(frac * self.horizon):
            return
        dadr = self._obj_dadr[self.target_object]
        self.data.qvel[dadr:dadr + 2] += self._draw.push_velocity
        self.pushed = True

    # ------------------------------------------------------------------ success
    def task_state(self) -> TaskState:
        arms = self.rig.arms
        return TaskState(
            object_pos=self.to_base_frame(self.object_pos(self.target_object)),
            object_half=self.scene.object_half,
            pad_pos=self.to_base_frame(self.pad_pos(self.target_pad)),
            tcp_pos=np.stack([self.tcp_base_frame(a.name) for a in arms]),
            closure=np.array([self.closure(a.name) for a in arms]),
            lift_height=self.rig.workspace.lift_height,
            gripper_threshold=np.array([self.spec_.arm(a.name).gripper.closure_threshold for a in arms]),
        )

    def success(self) -> bool:
        return is_success(self.task.name, self.task_state())

    def _info(self, success: bool = False) -> dict:
        return {"task": self.instruction, "success": success, "seed": self.episode_seed, "t": self.t}

    def close(self) -> None:
        if self._camera_renderer is not None:
            self._camera_renderer.close()
        self._camera_renderer = None

