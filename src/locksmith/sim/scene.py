"""The tabletop scene: a robot, three coloured graspable objects, two coloured target pads.

The table top is z = 0 of the robot's base frame. Objects are free bodies whose size, shape and
colour are set per scene build; pads are mocap bodies (visual only) moved at every reset. The
spec's cameras are added with their extrinsics (position and look-at point in the base frame).
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from locksmith.embodiment.spec import CameraSpec, EmbodimentSpec
from locksmith.sim.rig import SIM_TIMESTEP, RobotRig
from locksmith.sim.robots import get_builder

N_OBJECTS = 3
N_PADS = 2
PAD_HALF = 0.05

COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (0.85, 0.1, 0.1),
    "green": (0.1, 0.7, 0.2),
    "blue": (0.15, 0.3, 0.9),
    "yellow": (0.95, 0.85, 0.1),
    "purple": (0.6, 0.2, 0.75),
    "orange": (1.0, 0.5, 0.05),
}


@dataclass(frozen=True)
class ObjectGeometry:
    """Shape and size of the graspable objects; ``size_scale`` multiplies the robot's cube size."""

    shape: str = "box"  # box | cylinder
    size_scale: float = 1.0


@dataclass
class Scene:
    model: mujoco.MjModel
    rig: RobotRig
    object_half: float
    object_shape: str
    cameras: tuple[str, ...]
    spec: mujoco.MjSpec | None = None  # what ``model`` was compiled from (`cameras.compile_render_copy`)


def look_at_quat(position: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Camera quaternion (w, x, y, z) looking from ``position`` at ``target`` (z up in the world).

    MuJoCo cameras look along their -z axis with +y up in the image.
    """
    forward = target - position
    forward = forward / np.linalg.norm(forward)
    up = np.array([0.0, 0.0, 1.0])
    if abs(forward @ up) > 0.999:
        up = np.array([0.0, 1.0, 0.0])
    right = np.cross(forward, up)
    right /= np.linalg.norm(right)
    true_up = np.cross(right, forward)
    mat = np.stack([right, true_up, -forward], axis=1)
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, mat.flatten())
    return quat


def add_camera(spec: mujoco.MjSpec, camera: CameraSpec, offset: np.ndarray | None = None) -> None:
    position = np.asarray(camera.position, dtype=float)
    if offset is not None:
        position = position + offset
    spec.worldbody.add_camera(
        name=f"cam_{camera.name}",
        pos=position.tolist(),
        quat=look_at_quat(position, np.asarray(camera.look_at, dtype=float)).tolist(),
        fovy=camera.fovy_deg,
    )


RENDER_GROUPS = (1, 1, 1, 1, 1, 0)
"""Geom groups the cameras draw: group 5 holds the robots' visual-only meshes (hidden)."""


def _hide_visual_meshes(model: mujoco.MjModel) -> None:
    """Draw robots by their collision geometry: high-resolution visual meshes cost ~20x on CPU.

    Visual-only robot meshes (no contacts) go to the hidden group 5; collision geoms, often
    drawn translucent or hidden by the models, are made visible and opaque.
    """
    for geom in range(model.ngeom):
        body = model.geom_bodyid[geom]
        name = model.body(body).name
        if body == 0 or name.startswith(("object", "pad")):
            continue
        visual_only = model.geom_contype[geom] == 0 and model.geom_conaffinity[geom] == 0
        if visual_only and model.geom_type[geom] == mujoco.mjtGeom.mjGEOM_MESH:
            model.geom_group[geom] = 5
        elif not visual_only:
            model.geom_group[geom] = 0
            model.geom_rgba[geom, 3] = 1.0


def build_scene(
    embodiment: EmbodimentSpec,
    gripper_variant: str = "default",
    geometry: ObjectGeometry = ObjectGeometry(),
    camera_offset: np.ndarray | None = None,
    timestep: float = SIM_TIMESTEP,
) -> Scene:
    """Compile the scene for one robot (see the module docstring)."""
    spec = mujoco.MjSpec()
    spec.option.timestep = timestep
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    spec.option.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
    spec.option.impratio = 10.0
    spec.visual.quality.shadowsize = 0
    spec.visual.quality.offsamples = 0
    spec.visual.global_.offwidth = 256
    spec.visual.global_.offheight = 256
    spec.worldbody.add_light(pos=[0, 0, 3], dir=[0, 0, -1], castshadow=False, type=mujoco.mjtLightType.mjLIGHT_DIRECTIONAL)
    spec.worldbody.add_geom(
        name="table", type=mujoco.mjtGeom.mjGEOM_PLANE, size=[3, 3, 0.05],
        rgba=[0.55, 0.5, 0.45, 1], friction=[0.7, 0.005, 0.0001], group=0,
    )
    rig = get_builder(embodiment.name)(spec, spec.worldbody, gripper_variant)
    half = rig.workspace.cube_half * geometry.size_scale
    for i in range(N_OBJECTS):
        body = spec.worldbody.add_body(name=f"object{i}", pos=[0.3, 0.3 * i, half])
        body.add_freejoint(name=f"object{i}_joint")
        if geometry.shape == "cylinder":
            gtype, size = mujoco.mjtGeom.mjGEOM_CYLINDER, [half, half, 0]
        else:
            gtype, size = mujoco.mjtGeom.mjGEOM_BOX, [half, half, half]
        body.add_geom(
            name=f"object{i}_geom", type=gtype, size=size, mass=0.05, rgba=[1, 0, 0, 1],
            friction=[0.7, 0.01, 0.0002], condim=4, solref=[0.01, 1], group=0,
        )
    for i in range(N_PADS):
        pad = spec.worldbody.add_body(name=f"pad{i}", mocap=True, pos=[0.3, -0.3 - 0.2 * i, 0])
        pad.add_geom(
            name=f"pad{i}_geom", type=mujoco.mjtGeom.mjGEOM_BOX, size=[PAD_HALF, PAD_HALF, 0.001],
            rgba=[0, 0, 1, 1], contype=0, conaffinity=0, group=0,
        )
    for camera in embodiment.cameras:
        add_camera(spec, camera, camera_offset)
    model = spec.compile()
    _hide_visual_meshes(model)
    return Scene(
        model=model,
        rig=rig,
        object_half=half,
        object_shape=geometry.shape,
        cameras=tuple(f"cam_{c.name}" for c in embodiment.cameras),
        spec=spec,
    )
