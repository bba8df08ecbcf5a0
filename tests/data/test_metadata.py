"""A recorded dataset agrees with its own LeRobot metadata; a damaged copy is described, file and field."""

import json
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from locksmith.cli import main
from locksmith.data.loading import load_demonstrations
from locksmith.data.metadata import check_dataset_metadata
from locksmith.data.record import record_demos


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """Three panda pick_place demos, as `locksmith demos` records them."""
    root = tmp_path_factory.mktemp("metadata") / "panda_pick_place"
    record_demos("panda", "pick_place", 3, root, workers=1, progress=False)
    return root


def test_a_recorded_dataset_agrees_with_its_metadata(recorded):
    report = check_dataset_metadata(recorded)
    demos = load_demonstrations(recorded)
    assert report.ok, report.lines()
    assert (report.episodes, report.frames) == (3, demos.num_frames)


def _json(path, change):
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _parquet(path, change):
    table = pq.read_table(path)
    pq.write_table(change(table), path)


def _set(table: pa.Table, column: str, values) -> pa.Table:
    i = table.column_names.index(column)
    return table.set_column(i, table.field(i), pa.array(values, type=table.field(i).type))


def _data(root):
    return next((root / "data").rglob("*.parquet"))


def _episodes(root):
    return next((root / "meta" / "episodes").rglob("*.parquet"))


def _renumber(table):
    episodes = table.column("episode_index").to_numpy().copy()
    episodes[episodes == 2] = 5
    return _set(table, "episode_index", episodes)


def _split_episode(table):
    """Move episode 0's last frame to the end of the data: its frames are no longer contiguous."""
    first = int(np.flatnonzero(table.column("episode_index").to_numpy() == 1)[0])
    order = list(range(first - 1)) + list(range(first, table.num_rows)) + [first - 1]
    return table.take(order)


DAMAGES = {
    "total_frames": (lambda r: _json(r / "meta/info.json", lambda i: i.update(total_frames=i["total_frames"] + 1)),
                     "meta/info.json: total_frames"),
    "total_episodes": (lambda r: _json(r / "meta/info.json", lambda i: i.update(total_episodes=7)),
                       "meta/info.json: total_episodes: 7, the data has 3 episodes"),
    "fps": (lambda r: _json(r / "meta/info.json", lambda i: i.update(fps=i["fps"] + 5)),
            "meta/info.json: fps: 25, but the timestamps are not frame_index / fps"),
    "shape": (lambda r: _json(r / "meta/info.json", lambda i: i["features"]["action"].update(shape=[7])),
              "meta/info.json: features.action.shape: [7], the data's column has [8]"),
    "undeclared": (lambda r: _json(r / "meta/info.json", lambda i: i["features"].pop("intent")),
                   "meta/info.json: features: the data has columns no feature declares: intent"),
    "stats entry": (lambda r: _json(r / "meta/stats.json", lambda s: s.pop("action")),
                    "meta/stats.json: action: no statistics for the numeric feature 'action'"),
    "stats shape": (lambda r: _json(r / "meta/stats.json", lambda s: s["observation.state"].update(mean=[0.0])),
                    "meta/stats.json: observation.state.mean: shape [1], the feature has [8]"),
    "stats file": (lambda r: (r / "meta/stats.json").unlink(), "meta/stats.json: file: missing"),
    "episode length": (lambda r: _parquet(_episodes(r), lambda t: _set(
        t, "length", [n + (i == 1) for i, n in enumerate(t.column("length").to_pylist())])),
        "meta/episodes: length (episode 1)"),
    "episode numbers": (lambda r: _parquet(_data(r), _renumber), "data: episode_index: episodes are 0, 1, 5"),
    "not contiguous": (lambda r: _parquet(_data(r), _split_episode),
                       "data: episode_index: the frames of episode(s) 0 are not contiguous"),
    "truncated": (lambda r: _data(r).write_bytes(_data(r).read_bytes()[:300]),
                  "file-000.parquet: data: cannot be read"),
    "tasks": (lambda r: _parquet(r / "meta/tasks.parquet", lambda t: t.slice(0, 1)),
              "meta/tasks.parquet: task_index: the data uses task(s)"),
}


@pytest.mark.parametrize("name", list(DAMAGES))
def test_a_damaged_copy_is_described_naming_file_and_field(recorded, tmp_path, name):
    damage, words = DAMAGES[name]
    copy = shutil.copytree(recorded, tmp_path / "damaged")
    damage(copy)
    report = check_dataset_metadata(copy)
    assert not report.ok
    lines = report.lines()
    assert any(words in line for line in lines), lines
    assert all(line.startswith(str(copy)) and "\n" not in line for line in lines), lines


def test_locksmith_check_runs_it_and_exits_2_on_a_damaged_copy(recorded, tmp_path, capsys):
    capsys.readouterr()
    assert main(["check", "--dataset", str(recorded)]) == 0
    out = capsys.readouterr().out
    assert "lerobot_metadata" in out and "agree with the data (3 episodes" in out
    copy = shutil.copytree(recorded, tmp_path / "damaged")
    _json(copy / "meta/info.json", lambda i: i.update(total_frames=1))
    assert main(["check", "--dataset", str(copy)]) == 2
    err = capsys.readouterr().err
    assert f"error: lerobot_metadata: {copy}/meta/info.json: total_frames: 1, the data has" in err, err


def test_a_video_dataset_checks_its_video_files(tmp_path):
    """A dataset shaped like lerobot-record's (a camera as AV1 video): its video files are named by meta/episodes."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    features = {"observation.state": {"dtype": "float32", "shape": (2,), "names": ["a", "b"]},
                "action": {"dtype": "float32", "shape": (2,), "names": ["a", "b"]},
                "observation.images.front": {"dtype": "video", "shape": (32, 32, 3),
                                             "names": ["height", "width", "channels"]}}
    root = tmp_path / "video"
    dataset = LeRobotDataset.create("local/video", fps=10, features=features, root=root, robot_type="test",
                                    use_videos=True)
    for _ in range(2):
        for i in range(4):
            dataset.add_frame({"observation.state": np.full(2, i, np.float32), "action": np.zeros(2, np.float32),
                               "observation.images.front": np.full((32, 32, 3), 20 * i, np.uint8), "task": "t"})
        dataset.save_episode()
    dataset.finalize()
    assert check_dataset_metadata(root).ok, check_dataset_metadata(root).lines()
    video = next((root / "videos").rglob("*.mp4"))
    video.unlink()
    lines = check_dataset_metadata(root).lines()
    assert lines == [f"{video}: features.observation.images.front: the video file meta/episodes names is missing"]
