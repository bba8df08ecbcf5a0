import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from locksmith.data.record import META_FILE, SPEC_FILE, RecordError, record_demos
from locksmith.embodiment.registry import load_bundled_spec
from locksmith.embodiment.spec import load_spec


def _load(root: Path, repo_id: str = "locksmith/panda_reach"):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    return LeRobotDataset(repo_id, root=root, video_backend="pyav")


@pytest.fixture(scope="module")
def reach_demos(tmp_path_factory):
    out = tmp_path_factory.mktemp("demos") / "panda_reach"
    record_demos("panda", "reach", 3, out, seed=0, workers=2, progress=False)
    return out


def test_dataset_loads_offline_with_spec_and_stats(reach_demos):
    ds = _load(reach_demos)
    spec = load_bundled_spec("panda")
    assert ds.num_episodes == 3
    assert ds.fps == spec.control_rate_hz
    assert ds.meta.robot_type == spec.robot_type
    assert ds.features["observation.state"]["shape"] == (spec.state_dim,)
    assert ds.features["action"]["names"] == spec.names("action")
    for key in ("observation.state", "observation.environment_state", "action"):
        assert {"mean", "std", "q01", "q99"} <= set(ds.meta.stats[key])
    item = ds[0]
    assert item["task"].startswith("reach the ")
    assert load_spec(reach_demos / SPEC_FILE) == spec
    meta = json.loads((reach_demos / META_FILE).read_text())
    assert meta["robot"] == "panda" and len(meta["episode_seeds"]) == 3


def test_existing_folder_is_refused_and_untouched(reach_demos):
    before = sorted(p.name for p in reach_demos.rglob("*"))
    with pytest.raises(RecordError, match="not empty"):
        record_demos("panda", "reach", 1, reach_demos, progress=False)
    assert sorted(p.name for p in reach_demos.rglob("*")) == before


def test_append_adds_episodes_with_fresh_seeds(tmp_path):
    out = tmp_path / "ds"
    record_demos("panda", "reach", 1, out, workers=1, progress=False)
    first = json.loads((out / META_FILE).read_text())["recording_seconds"]
    record_demos("panda", "reach", 2, out, append=True, workers=1, progress=False)
    meta = json.loads((out / META_FILE).read_text())
    assert len(meta["episode_seeds"]) == len(set(meta["episode_seeds"])) == 3
    assert _load(out).num_episodes == 3
    assert 0 < first < meta["recording_seconds"]  # the append's own recording time is added


def test_an_append_to_a_pool_of_unknown_recording_time_keeps_it_unknown(tmp_path):
    out = tmp_path / "ds"
    record_demos("panda", "reach", 1, out, workers=1, progress=False)
    meta = json.loads((out / META_FILE).read_text())
    del meta["recording_seconds"]  # as recorded before the field was kept
    (out / META_FILE).write_text(json.dumps(meta))
    record_demos("panda", "reach", 1, out, append=True, workers=1, progress=False)
    assert json.loads((out / META_FILE).read_text())["recording_seconds"] is None


def test_overwrite_replaces(tmp_path):
    out = tmp_path / "ds"
    record_demos("panda", "reach", 2, out, workers=1, progress=False)
    record_demos("panda", "reach", 1, out, overwrite=True, workers=1, progress=False)
    assert _load(out).num_episodes == 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_camera_images_are_recorded_as_video_and_decode_to_what_was_rendered(tmp_path):
    """Each camera is a LeRobot video feature (encoded by LeRobot, decoded by its pyav backend);
    a decoded frame is the picture the simulator rendered for that seed, up to the codec's loss."""
    from locksmith.sim.env import TabletopEnv

    out = tmp_path / "cam"
    record_demos("panda", "reach", 1, out, camera=True, image_size=32, workers=1, progress=False)
    info = json.loads((out / "meta" / "info.json").read_text())
    assert info["features"]["observation.images.front"]["dtype"] == "video"
    assert list((out / "videos" / "observation.images.front").rglob("*.mp4"))
    ds = _load(out)
    image = ds[0]["observation.images.front"]
    assert tuple(image.shape) == (3, 32, 32)
    seed = json.loads((out / "meta" / "locksmith.json").read_text())["episode_seeds"][0]
    env = TabletopEnv("panda", "reach", render=True, image_size=32)
    try:
        rendered, _ = env.reset(seed=seed)
    finally:
        env.close()
    picture = rendered["observation.images.front"].astype(np.float32) / 255
    decoded = image.permute(1, 2, 0).numpy()
    assert float(picture.std()) > 0.05  # a real picture, not a blank frame
    assert float(np.abs(decoded - picture).mean()) < 0.03  # AV1 at LeRobot's defaults: ~0.01


def test_killed_recording_leaves_no_dataset(tmp_path):
    out = tmp_path / "killed"
    code = (
        "from locksmith.data.record import record_demos;"
        f"record_demos('panda', 'pick_place', 200, {str(out)!r}, workers=1, progress=False)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.time() + 120
    # Wait until episodes are being written into the temporary folder, then kill.
    while time.time() < deadline:
        tmps = [p for p in tmp_path.iterdir() if p.name.startswith(".killed.tmp")]
        if tmps and list(tmps[0].rglob("*.parquet")):
            break
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not out.exists()
    # A rerun completes and leaves a whole dataset.
    record_demos("panda", "reach", 1, out, workers=1, progress=False)
    assert _load(out).num_episodes == 1


def test_bad_requests():
    with pytest.raises(KeyError, match="known robots"):
        record_demos("optimus", "reach", 1, "/tmp/never", progress=False)
    with pytest.raises(KeyError, match="known tasks"):
        record_demos("panda", "dance", 1, "/tmp/never", progress=False)
    with pytest.raises(RecordError, match="at least 1"):
        record_demos("panda", "reach", 0, "/tmp/never", progress=False)


def test_demonstrations_go_on_after_success_with_the_gripper_open(tmp_path):
    """The release is in the data: frames after success keep commanding open (Z1: a fast jaw)."""
    import numpy as np

    from locksmith.data.loading import load_demonstrations
    from locksmith.data.record import frames_after_success, run_expert, EpisodeRequest
    from locksmith.sim.env import TabletopEnv
    from locksmith.sim.tasks import is_success

    out = tmp_path / "z1"
    record_demos("z1", "pick_place", 2, out, workers=1, progress=False)
    demos = load_demonstrations(out)
    grip = demos.spec.arms[0].gripper
    extra = frames_after_success(demos.spec.control_rate_hz)
    assert extra == 5  # 0.3 s at 15 Hz
    for start, end in zip(demos.episode_starts, demos.episode_ends, strict=True):
        closure = (demos.arrays["action"][start:end, -1] - grip.open_value) / (grip.closed_value - grip.open_value)
        assert np.all(closure[-(extra + 1):] < grip.closure_threshold)  # release + the frames after it
        assert closure.max() > 0.5  # it did grasp
    # and the episode did succeed before those frames: replay the recorded seed
    request = EpisodeRequest("z1", "pick_place", 0, False, None)
    result = run_expert(request)
    env = TabletopEnv("z1", "pick_place")
    env.reset(seed=0)
    successes = []
    for frame in result["frames"]:
        env.step(frame["action"])
        successes.append(is_success("pick_place", env.task_state()))
    first = successes.index(True)
    assert len(result["frames"]) == first + 1 + extra


def test_execution_noise_runs_perturbed_commands_and_records_the_clean_ones():
    """DART: the robot executes the expert's command with a shifted TCP goal; the frames hold
    the expert's own command, computed from the perturbed state it finds itself in."""
    import numpy as np

    from locksmith.data import record
    from locksmith.sim.env import TabletopEnv
    from locksmith.sim.expert import NOISE_FREE_PHASES, ScriptedExpert

    def spied(noise: float):
        env = TabletopEnv("z1", "pick_place")
        expert = ScriptedExpert(env)
        executed, clean, phases = [], [], []
        step, act = env.step, expert.act

        def spy_step(action):
            executed.append(np.array(action))
            return step(action)

        def spy_act():
            a = act()
            clean.append(a.copy())
            phases.append(expert.phase_name)
            return a

        env.step, expert.act = spy_step, spy_act
        record._ENV_CACHE.clear()
        record._ENV_CACHE[("z1", "pick_place", False, None, 0.0)] = (env, expert)
        try:
            result = record.run_expert(record.EpisodeRequest("z1", "pick_place", 5, False, None, noise))
        finally:
            record._ENV_CACHE.clear()
        assert result is not None
        recorded = np.stack([f["action"] for f in result["frames"]])
        states = np.stack([f["observation.state"] for f in result["frames"]])
        return recorded, np.stack(executed), np.stack(clean), phases, states

    recorded, executed, clean, phases, states = spied(0.008)
    np.testing.assert_allclose(recorded, clean.astype(np.float32))  # the clean command is the label
    moving = np.array([p not in NOISE_FREE_PHASES for p in phases])
    gap = np.abs(executed - clean).max(axis=1)
    assert gap[moving].mean() > 0.1  # degrees: the arm ran other commands while moving
    assert np.all(gap[~moving] == 0)  # and none while the gripper closes or opens
    np.testing.assert_array_equal(executed[:, -1], clean[:, -1])  # the gripper is never perturbed

    recorded0, executed0, clean0, _, states0 = spied(0.0)
    np.testing.assert_array_equal(executed0, clean0)
    assert np.abs(states[:20] - states0[:20]).max() > 0.05  # the noisy robot went elsewhere


def test_execution_noise_is_stationary_with_the_given_sigma():
    import numpy as np

    from locksmith.sim.expert import ExecutionNoise

    noise = ExecutionNoise(0.01, dt=0.1, seed=3)
    offsets = np.stack([noise.step() for _ in range(20000)])
    assert offsets.std(axis=0) == pytest.approx([0.01] * 3, rel=0.1)
    lag1 = np.corrcoef(offsets[:-1, 0], offsets[1:, 0])[0, 1]
    assert lag1 == pytest.approx(np.exp(-0.1 / 0.3), abs=0.03)  # slowly varying, not white
    again = ExecutionNoise(0.01, dt=0.1, seed=3)
    np.testing.assert_array_equal(np.stack([again.step() for _ in range(5)]), offsets[:5])  # seeded
    for bad in (-0.001, float("nan")):
        with pytest.raises(ValueError, match="sigma"):
            ExecutionNoise(bad, dt=0.1, seed=0)


def test_execution_noise_is_written_down_and_kept_apart(tmp_path):
    out = tmp_path / "ds"
    record_demos("panda", "reach", 1, out, workers=1, progress=False, noise=0.004)
    assert json.loads((out / META_FILE).read_text())["execution_noise_m"] == 0.004
    before = sorted(p.name for p in out.rglob("*"))
    with pytest.raises(RecordError, match="execution noise 0.004 m, not 0.0 m"):
        record_demos("panda", "reach", 1, out, append=True, workers=1, progress=False)
    assert sorted(p.name for p in out.rglob("*")) == before
    with pytest.raises(RecordError, match="--noise"):
        record_demos("panda", "reach", 1, tmp_path / "other", progress=False, noise=-1.0)
    assert not (tmp_path / "other").exists()


def test_start_jitter_is_written_down_kept_apart_and_leaves_the_layout(tmp_path):
    """Episodes that start away from home: the same seeds give the same scene (objects, pads,
    instruction), the first state differs, and a dataset holds one start jitter only."""
    home, moved = tmp_path / "home", tmp_path / "moved"
    record_demos("so101", "pick_place", 2, home, workers=1, progress=False)
    record_demos("so101", "pick_place", 2, moved, workers=1, progress=False, start_jitter=0.05)
    assert json.loads((moved / META_FILE).read_text())["start_jitter_m"] == 0.05
    a, b = _load(home), _load(moved)
    first = [int(i) for i in np.flatnonzero(np.r_[True, np.diff(a.hf_dataset["episode_index"]) != 0])]
    first_b = [int(i) for i in np.flatnonzero(np.r_[True, np.diff(b.hf_dataset["episode_index"]) != 0])]
    for i, j in zip(first, first_b, strict=True):
        objects = slice(0, 21)  # three objects: position, half size, colour (camera frame)
        assert np.allclose(a[i]["observation.environment_state"][objects], b[j]["observation.environment_state"][objects],
                           atol=1e-4)
        assert a[i]["task"] == b[j]["task"]
        assert not np.allclose(a[i]["observation.state"], b[j]["observation.state"], atol=0.5)  # degrees
    with pytest.raises(RecordError, match="start jitter 0.05 m, not 0.0 m"):
        record_demos("so101", "pick_place", 1, moved, append=True, workers=1, progress=False)
    with pytest.raises(RecordError, match="--start-jitter"):
        record_demos("so101", "pick_place", 1, tmp_path / "far", progress=False, start_jitter=1.0)


def test_camera_frames_load_into_memory_frame_for_frame_and_follow_subsets(tmp_path):
    """`load_demonstrations(images=True)` decodes each episode's video through LeRobot: one picture
    per frame, the first of each episode the simulator's picture for its seed, kept by `subset`."""
    from locksmith.data.loading import DatasetError, load_demonstrations
    from locksmith.sim.env import TabletopEnv

    out = tmp_path / "cam"
    record_demos("so101", "pick_place", 2, out, camera=True, image_size=32, workers=1, progress=False)
    demos = load_demonstrations(out, images=True)
    key = "observation.images.overhead"
    assert set(demos.images) == {key}
    frames = demos.images[key]
    assert frames.shape == (demos.num_frames, 32, 32, 3) and frames.dtype == np.uint8
    seeds = json.loads((out / META_FILE).read_text())["episode_seeds"]
    env = TabletopEnv("so101", "pick_place", render=True, image_size=32)
    try:
        for episode, seed in enumerate(seeds):
            rendered = env.reset(seed=seed)[0][key].astype(float)
            first = frames[demos.episode_starts[episode]].astype(float)
            assert np.abs(first - rendered).mean() < 8  # of 255: the codec's loss only
            assert np.abs(frames[demos.episode_ends[episode] - 1].astype(float) - rendered).mean() > 1  # it moved
    finally:
        env.close()
    second = demos.subset([1])
    np.testing.assert_array_equal(second.images[key], frames[demos.episode_starts[1]:demos.episode_ends[1]])
    assert load_demonstrations(out).images == {}  # decoded only when asked
    plain = tmp_path / "plain"
    record_demos("so101", "pick_place", 1, plain, workers=1, progress=False)
    with pytest.raises(DatasetError, match="no camera features"):
        load_demonstrations(plain, images=True)
    with pytest.raises(RecordError, match="--image-size: camera 'overhead' would be recorded below 32 px"):
        record_demos("so101", "pick_place", 1, tmp_path / "tiny", camera=True, image_size=16, progress=False)
    assert not (tmp_path / "tiny").exists()
