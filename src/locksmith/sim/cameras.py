"""The spec's cameras rendered offscreen on CPU (`TabletopEnv.render_cameras`).

Pictures are drawn from a *render copy* of the scene's model, compiled from the same `MjSpec`
with each mesh's convex hull cut to at most `RENDER_HULL_VERTICES` vertices. Robots are drawn by
the convex hulls of their collision meshes (`scene.RENDER_GROUPS`); the hulls of scanned meshes
keep ~25k vertices (SO-101, Z1), which cost a software rasterizer ~8 ms a frame at 64 px. The
physics keeps its own model, so contacts, recorded states and actions are exactly what they were;
at 64 px the picture differs from the full hull's on about 0.5 % of its pixels.

Before each picture the copy takes the physics' joint positions, mocap poses, geom colours,
camera poses and lights (what `TabletopEnv` changes between episodes), and its kinematics is
recomputed.
"""

from __future__ import annotations

import mujoco
import numpy as np

IMAGE_PREFIX = "observation.images."  # + the spec camera's name: every picture's feature, here and in datasets
RENDER_HULL_VERTICES = 64
SLICES, STACKS = 12, 6  # the sides of drawn spheres, capsules and cylinders (MuJoCo's default: 28, 16)
# Shadows, reflections and the skybox cost most of a CPU frame and add nothing the cameras need.
OFF_FLAGS = (mujoco.mjtRndFlag.mjRND_SHADOW, mujoco.mjtRndFlag.mjRND_REFLECTION, mujoco.mjtRndFlag.mjRND_SKYBOX)


def compile_render_copy(spec: mujoco.MjSpec, physics: mujoco.MjModel) -> mujoco.MjModel:
    """``spec`` compiled again with every mesh's hull cut to `RENDER_HULL_VERTICES` (``spec`` is
    left as it was). The copy has the physics model's bodies, joints, geoms and cameras, in order."""
    kept = [mesh.maxhullvert for mesh in spec.meshes]
    quality = (spec.visual.quality.numslices, spec.visual.quality.numstacks)
    try:
        spec.visual.quality.numslices, spec.visual.quality.numstacks = SLICES, STACKS
        for mesh in spec.meshes:
            mesh.maxhullvert = RENDER_HULL_VERTICES if mesh.maxhullvert < 0 else min(mesh.maxhullvert,
                                                                                      RENDER_HULL_VERTICES)
        copy = spec.compile()
    finally:
        for mesh, value in zip(spec.meshes, kept, strict=True):
            mesh.maxhullvert = value
        spec.visual.quality.numslices, spec.visual.quality.numstacks = quality
    for field in ("nq", "nbody", "ngeom", "ncam", "nmocap"):
        if getattr(copy, field) != getattr(physics, field):
            raise RuntimeError(f"the render copy of the scene has {field}={getattr(copy, field)}, the physics "
                               f"model {getattr(physics, field)}")
    copy.geom_group[:] = physics.geom_group
    return copy


class CameraRenderer:
    """Renders named cameras of a scene from its render copy (see the module docstring).

    Args:
        model: the render copy (`compile_render_copy`).
        option: which geom groups are drawn and how (`mujoco.MjvOption`).
    """

    def __init__(self, model: mujoco.MjModel, option: mujoco.MjvOption):
        self.model = model
        self.data = mujoco.MjData(model)
        self.option = option
        self._renderers: dict[tuple[str, int, int], mujoco.Renderer] = {}

    def _renderer(self, camera: str, height: int, width: int) -> mujoco.Renderer:
        key = (camera, height, width)
        renderer = self._renderers.get(key)
        if renderer is None:
            try:
                renderer = mujoco.Renderer(self.model, height=height, width=width)
            except mujoco.FatalError as err:  # MuJoCo picks its GL backend once, when first imported
                raise RuntimeError(f"MuJoCo cannot render ({err}); its GL backend is "
                                   f"{mujoco.GLContext.__module__}, chosen when mujoco was first imported: "
                                   "start the process with MUJOCO_GL=osmesa (or egl)") from None
            for flag in OFF_FLAGS:
                renderer.scene.flags[flag] = False
            self._renderers[key] = renderer
        return renderer

    def sync(self, model: mujoco.MjModel, data: mujoco.MjData) -> None:
        """Take the physics' state and what the environment changes in its model between episodes."""
        m, d = self.model, self.data
        m.geom_rgba[:] = model.geom_rgba
        m.cam_pos[:] = model.cam_pos
        m.cam_quat[:] = model.cam_quat
        m.light_diffuse[:] = model.light_diffuse
        m.light_dir[:] = model.light_dir
        d.qpos[:] = data.qpos
        d.mocap_pos[:] = data.mocap_pos
        d.mocap_quat[:] = data.mocap_quat
        mujoco.mj_kinematics(m, d)
        mujoco.mj_camlight(m, d)

    def render(self, model: mujoco.MjModel, data: mujoco.MjData,
               cameras: dict[str, tuple[str, int, int]]) -> dict[str, np.ndarray]:
        """``{key: (H, W, 3) uint8}`` for ``cameras = {key: (camera name, height, width)}``."""
        self.sync(model, data)
        out = {}
        for key, (camera, height, width) in cameras.items():
            renderer = self._renderer(camera, height, width)
            renderer.update_scene(self.data, camera=camera, scene_option=self.option)
            out[key] = renderer.render().copy()
        return out

    def close(self) -> None:
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers = {}


__all__ = ["IMAGE_PREFIX", "RENDER_HULL_VERTICES", "CameraRenderer", "compile_render_copy"]
