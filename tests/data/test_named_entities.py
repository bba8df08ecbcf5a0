"""`named_entities`: the cube and pad an instruction names, found in the observed scene."""

import numpy as np
import pytest

from locksmith.data.loading import load_demonstrations
from locksmith.data.record import record_demos
from locksmith.data.targets import (
    NAMED_ONE_HOT_DIM, OBJECT_FIELDS, PAD_FIELDS, episode_targets, named_entities, named_entity_indices, named_one_hot,
    parse_named_colours,
)
from locksmith.sim.env import TabletopEnv
from locksmith.sim.scene import COLOURS, N_OBJECTS, N_PADS
from locksmith.sim.slices import SLICES
from locksmith.sim.tasks import TASKS


@pytest.mark.parametrize("task", list(TASKS))
@pytest.mark.parametrize("slice_name", SLICES)
def test_agrees_with_the_env_target_on_every_task_and_slice(task, slice_name):
    """The env draws its target; `named_entities` sees only the instruction and the observation."""
    env = TabletopEnv("panda", task, slice_name=slice_name)
    for seed in range(12):
        obs, _ = env.reset(seed=seed)
        obj, pad = named_entities(env.instruction, obs["observation.environment_state"])
        assert obj == env.target_object, (seed, env.instruction, env.object_colours)
        assert pad == (env.target_pad if TASKS[task].uses_pad else -1), (seed, env.instruction, env.pad_colours)
    env.close()


def test_every_named_cube_of_a_layout_on_another_robot():
    """Each cube and pad of one layout named in turn (the env's own draw names only one)."""
    env = TabletopEnv("mobile_panda", "pick_place", slice_name="object_geometry")
    template = TASKS["pick_place"].template
    for seed in range(4):
        obs, _ = env.reset(seed=seed)
        x = obs["observation.environment_state"]
        for k in range(N_OBJECTS):
            for j in range(N_PADS):
                text = template.format(obj=env.object_colours[k], pad=env.pad_colours[j])
                assert named_entities(text, x) == (k, j), text
    env.close()


def test_agrees_with_the_recorded_demos_frame_by_frame(tmp_path):
    """On the recorder's own episodes: the parsed target is the cube that moved and the pad it ends on."""
    record_demos("panda", "pick_place", 2, tmp_path / "data", workers=1, progress=False)
    demos = load_demonstrations(tmp_path / "data")
    env_state = demos.arrays["observation.environment_state"]
    objects, pads = named_entity_indices(demos.tasks, env_state)
    moved, on_pad = episode_targets(env_state, demos.episode_starts, demos.episode_ends)
    np.testing.assert_array_equal(objects, moved)
    np.testing.assert_array_equal(pads, on_pad)
    assert (objects >= 0).all() and (pads >= 0).all()


def test_free_form_text_and_absent_colours_give_no_information():
    env = TabletopEnv("panda", "pick_place")
    obs, _ = env.reset(seed=3)
    x = obs["observation.environment_state"]
    absent = next(c for c in COLOURS if c not in env.object_colours)
    present = env.object_colours[1]
    assert named_entities("pick it up and put it over there", x) == (-1, -1)
    assert named_entities("", x) == (-1, -1)
    assert named_entities(f"lift the {absent} cube", x) == (-1, -1)  # no such cube in this scene
    assert named_entities(f"LIFT THE {present.upper()} CUBE", x) == (1, -1)
    # two different cubes named: ambiguous, not a guess
    assert named_entities(f"put the {present} cube next to the {env.object_colours[2]} cube", x) == (-1, -1)
    assert parse_named_colours("put the red cube on the blue pad") == ("red", "blue")
    assert parse_named_colours("the reddish cube") == (None, None)
    env.close()


def test_matches_the_nearest_colour_under_noise_and_batches_by_frame():
    env = TabletopEnv("panda", "push")
    obs, _ = env.reset(seed=5)
    x = np.asarray(obs["observation.environment_state"], dtype=np.float64)
    rng = np.random.default_rng(0)
    noisy = x.copy()
    for i in range(N_OBJECTS):  # a camera's colour estimate is never the palette's exact RGB
        noisy[i * OBJECT_FIELDS + 4:i * OBJECT_FIELDS + 7] += rng.uniform(-0.05, 0.05, 3)
    p0 = N_OBJECTS * OBJECT_FIELDS
    for j in range(N_PADS):
        noisy[p0 + j * PAD_FIELDS + 3:p0 + j * PAD_FIELDS + 6] += rng.uniform(-0.05, 0.05, 3)
    assert named_entities(env.instruction, noisy) == (env.target_object, env.target_pad)
    texts = [env.instruction, "do something", TASKS["lift"].template.format(obj=env.object_colours[0], pad="")]
    objects, pads = named_entity_indices(texts, np.stack([x, x, noisy]))
    assert objects.tolist() == [env.target_object, -1, 0] and pads.tolist() == [env.target_pad, -1, -1]
    one_hot = named_one_hot(objects, pads)
    assert one_hot.shape == (3, NAMED_ONE_HOT_DIM) and one_hot.dtype == np.float32
    np.testing.assert_array_equal(one_hot[1], 0)
    assert one_hot[0, env.target_object] == 1 and one_hot[0, N_OBJECTS + env.target_pad] == 1
    assert one_hot[2].tolist() == [1, 0, 0, 0, 0]
    with pytest.raises(ValueError, match="one instruction per frame"):
        named_entity_indices(texts[:2], np.stack([x, x, x]))
    with pytest.raises(TypeError):
        named_entity_indices(env.instruction, x[None])
    env.close()
