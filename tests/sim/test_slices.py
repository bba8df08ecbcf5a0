import numpy as np
import pytest

from locksmith.sim.env import TabletopEnv
from locksmith.sim.slices import SLICES, draw_slice


def _fields(draw):
    return [np.asarray(v).tolist() if isinstance(v, np.ndarray) else v for v in vars(draw).values()]


def test_draws_are_seeded():
    for name in SLICES:
        assert _fields(draw_slice(name, 4)) == _fields(draw_slice(name, 4))
    for name in SLICES[1:]:
        assert _fields(draw_slice(name, 4)) != _fields(draw_slice(name, 5)), name


def test_nominal_changes_nothing():
    d = draw_slice("nominal", 9)
    assert d.gripper_variant == "default" and d.object_scale == 1.0 and d.push_time_fraction is None
    assert not d.camera_offset.any()


def test_camera_moved_changes_the_view_not_the_world():
    nominal = TabletopEnv("panda", "lift")
    moved = TabletopEnv("panda", "lift", slice_name="camera_moved")
    a, _ = nominal.reset(seed=1)
    b, _ = moved.reset(seed=1)
    np.testing.assert_allclose(nominal.object_pos(0), moved.object_pos(0))
    cam = nominal.model.camera(nominal.scene.cameras[0]).id
    shift = np.linalg.norm(moved.model.cam_pos[cam] - nominal.model.cam_pos[cam])
    assert 0.05 <= shift <= 0.1 + 1e-9
    assert not np.allclose(a["observation.environment_state"][:3], b["observation.environment_state"][:3])


@pytest.mark.parametrize("robot", ["panda", "mobile_panda"])
def test_gripper_changed_changes_finger_geometry(robot):
    nominal = TabletopEnv(robot, "lift")
    changed = TabletopEnv(robot, "lift", slice_name="gripper_changed")
    nominal.reset(seed=0)
    changed.reset(seed=0)
    assert nominal.model.ngeom == changed.model.ngeom
    assert not np.allclose(nominal.model.geom_size, changed.model.geom_size)
    assert changed._draw.closure_offset != 0.0


def test_object_geometry_changes_size_or_shape():
    env = TabletopEnv("panda", "lift", slice_name="object_geometry")
    seen = set()
    for seed in range(6):
        env.reset(seed=seed)
        geom = env.model.geom("object0_geom")
        seen.add((int(geom.type[0]), round(float(geom.size[0]), 4)))
    assert len(seen) >= 4  # sizes vary, and boxes and cylinders both appear
    assert len({t for t, _ in seen}) == 2


def test_push_moves_the_target_object_mid_episode():
    env = TabletopEnv("panda", "reach", slice_name="push")
    env.reset(seed=3)
    start = env.object_pos(env.target_object)
    hold = np.r_[env.q_cmd["arm"], 0.08]
    for _ in range(env.horizon // 2):
        env.step(hold)
    assert env.pushed
    assert np.linalg.norm(env.object_pos(env.target_object)[:2] - start[:2]) > 0.01
