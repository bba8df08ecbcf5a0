"""The spec's cameras: rendered shapes, the render copy's picture, physics untouched, and a moved
camera that moves the picture."""

import mujoco
import numpy as np
import pytest

from locksmith.sim.cameras import OFF_FLAGS
from locksmith.sim.env import TabletopEnv
from locksmith.sim.expert import ScriptedExpert


def _physics_picture(env: TabletopEnv, size: int) -> np.ndarray:
    """The camera drawn from the physics model itself, full convex hulls and MuJoCo's default quality."""
    renderer = mujoco.Renderer(env.model, height=size, width=size)
    try:
        for flag in OFF_FLAGS:
            renderer.scene.flags[flag] = False
        renderer.update_scene(env.data, camera=env.scene.cameras[0], scene_option=env._render_option)
        return renderer.render().copy()
    finally:
        renderer.close()


@pytest.mark.parametrize("robot", ["so101", "aloha"])
def test_each_camera_renders_at_the_requested_size(robot):
    env = TabletopEnv(robot, "pick_place", render=True, image_size=48)
    try:
        obs, _ = env.reset(seed=3)
        names = [f"observation.images.{c.name}" for c in env.spec_.cameras]
        assert names and all(obs[n].shape == (48, 48, 3) and obs[n].dtype == np.uint8 for n in names)
        assert all(float(obs[n].std()) > 5 for n in names)  # a scene, not a blank frame
    finally:
        env.close()


def test_the_render_copy_draws_the_scene_the_physics_holds():
    """The SO-101's scanned meshes have ~25k hull vertices; the copy's cut hulls change the picture
    on a few edge pixels only, after the robot has moved and the episode's colours are set."""
    env = TabletopEnv("so101", "pick_place", render=True, image_size=64)
    try:
        env.reset(seed=5)
        expert = ScriptedExpert(env)
        expert.reset()
        for _ in range(25):
            env.step(expert.act())
        ours = env.render_cameras()[f"observation.images.{env.spec_.cameras[0].name}"].astype(float)
        full = _physics_picture(env, 64).astype(float)
    finally:
        env.close()
    far = np.abs(ours - full).max(axis=-1) > 25
    assert far.mean() < 0.02, far.mean()
    assert np.abs(ours - full).mean() / 255 < 0.01


def test_rendering_leaves_the_physics_as_it_was():
    states = []
    for render in (False, True):
        env = TabletopEnv("so101", "pick_place", render=render, image_size=32)
        try:
            obs, _ = env.reset(seed=7)
            trace = [obs["observation.state"].copy()]
            rng = np.random.default_rng(0)
            for _ in range(15):
                action = obs["observation.state"][: env.spec_.action_dim] + rng.normal(0, 2, env.spec_.action_dim)
                obs, *_ = env.step(action.astype(np.float32))
                trace.append(obs["observation.state"].copy())
            states.append(np.stack(trace))
        finally:
            env.close()
    assert np.array_equal(states[0], states[1])


def test_a_moved_camera_moves_the_picture():
    pictures = {}
    for slice_name in ("nominal", "camera_moved"):
        env = TabletopEnv("panda", "pick_place", slice_name=slice_name, render=True, image_size=32)
        try:
            obs, _ = env.reset(seed=11)
            pictures[slice_name] = obs["observation.images.front"].astype(float)
        finally:
            env.close()
    # the same episode (objects, colours, robot), seen from elsewhere
    assert np.abs(pictures["nominal"] - pictures["camera_moved"]).mean() > 5


def test_the_lighting_slice_changes_the_picture_not_the_world():
    """`lighting` moves and dims the light and re-tints the table: the scene state and the physics
    are nominal's, the camera's picture is not."""
    runs = {}
    for slice_name in ("nominal", "lighting"):
        env = TabletopEnv("so101", "pick_place", slice_name=slice_name, render=True, image_size=32)
        try:
            obs, _ = env.reset(seed=4)
            expert = ScriptedExpert(env)
            expert.reset()
            for _ in range(10):
                obs, *_ = env.step(expert.act())
            runs[slice_name] = obs
        finally:
            env.close()
    nominal, lit = runs["nominal"], runs["lighting"]
    for key in ("observation.state", "observation.environment_state"):
        np.testing.assert_array_equal(nominal[key], lit[key])
    picture = "observation.images.overhead"
    assert np.abs(nominal[picture].astype(float) - lit[picture].astype(float)).mean() > 3
