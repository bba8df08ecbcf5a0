"""Bad inputs through the CLI: exit code 2, a message on stderr that names the file, the field and
the value, and nothing already on disk changed (inputs and an existing output folder alike).

The fixtures (two tiny datasets, an empty one and a tiny prior) are built once per module; each
case corrupts a copy and runs every command that reads what it corrupted.
"""

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from locksmith.cli import main
from locksmith.data.loading import load_demonstrations
from locksmith.data.record import SPEC_FILE, dataset_features, record_demos
from locksmith.embodiment.registry import bundled_spec_path, load_bundled_spec
from locksmith.train.loop import TrainConfig
from locksmith.train.pretrain import pretrain

TINY = dict(d_model=32, n_layers=1, n_heads=2, d_feedforward=64, n_readouts=2)
INFO = Path("meta/info.json")
STATS = Path("meta/stats.json")
PARQUET = Path("data/chunk-000/file-000.parquet")


def _empty_dataset(root: Path, robot: str) -> None:
    """A LeRobot dataset created and finalized without a single episode, its spec beside it."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    spec = load_bundled_spec(robot)
    LeRobotDataset.create(f"local/{robot}_empty", fps=int(round(spec.control_rate_hz)),
                          features=dataset_features(spec, camera=False), root=root,
                          robot_type=spec.robot_type, use_videos=False).finalize()
    (root / SPEC_FILE).write_text(spec.to_yaml())


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bad_inputs")
    record_demos("panda", "reach", 3, root / "panda", workers=1, progress=False)
    record_demos("so101", "reach", 2, root / "so101", workers=1, progress=False)
    _empty_dataset(root / "empty", "panda")
    pretrain({"panda": load_demonstrations(root / "panda")}, root / "prior", TrainConfig(steps=3, batch_size=8),
             progress=False, **TINY)
    return root


def _copy(src: Path, tmp_path: Path, name: str = "copy") -> Path:
    return Path(shutil.copytree(src, tmp_path / name))


def _snapshot(*paths: Path) -> dict[Path, tuple[bytes | None, int]]:
    """Bytes and mtime of every file, and mtime of every folder, under ``paths``."""
    state = {}
    for top in paths:
        for path in [top, *sorted(top.rglob("*"))] if top.is_dir() else [top]:
            state[path] = (path.read_bytes() if path.is_file() else None, path.stat().st_mtime_ns)
    return state


def _refused(argv: list, capsys, watched: list[Path], words: list) -> str:
    """Run the CLI; assert exit 2, every word on stderr, and ``watched`` untouched. Returns stderr."""
    capsys.readouterr()
    before = _snapshot(*watched)
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 2, f"exit {code}; stderr:\n{err}"
    missing = [str(w) for w in words if str(w) not in err]
    assert not missing, f"{missing} not on stderr:\n{err}"
    after = _snapshot(*watched)
    changed = sorted(str(p) for p in before.keys() | after.keys() if before.get(p) != after.get(p))
    assert not changed, f"changed on disk: {changed}"
    return err


def _edit_json(path: Path, change: Callable[[dict], object]) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=4))


def _edit_yaml(path: Path, change: Callable[[dict], object]) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data))


def _dataset_commands(fx: Path, dataset: Path, out: Path) -> dict[str, list]:
    """The three commands that read a target dataset."""
    prior = fx / "prior" / "policy"
    return {
        "check": ["check", "--prior", prior, "--dataset", dataset],
        "adapt": ["adapt", "--prior", prior, "--dataset", dataset, "--recipe", "head", "--steps", 2,
                  "--batch-size", 8, "--out", out],
        "eval": ["eval", "--checkpoint", prior, "--dataset", dataset, "--json", out / "eval.json"],
    }


# ---------------------------------------------------------------------------- specs
def _missing_field(spec: dict) -> list:
    del spec["control_rate_hz"]
    return ["'control_rate_hz'", "missing"]


def _wrong_type(spec: dict) -> list:
    spec["control_rate_hz"] = "fast"
    return ["'control_rate_hz'", "'fast'"]


def _inverted_limits(spec: dict) -> list:
    spec["joints"][1].update(lower=1.0, upper=-1.0)
    return ["'joints.1'", "lower=1.0", "upper=-1.0"]


def _unknown_action_kind(spec: dict) -> list:
    spec["action"][0]["kind"] = "joint_torque"
    return ["'action.0.kind'", "'joint_torque'"]


SPEC_CASES = [_missing_field, _wrong_type, _inverted_limits, _unknown_action_kind]


@pytest.mark.parametrize("corrupt", SPEC_CASES, ids=lambda f: f.__name__.strip("_"))
@pytest.mark.parametrize("command", ["spec check", "check --spec", "adapt", "eval --dataset"])
def test_bad_spec(fixtures, tmp_path, out, capsys, command, corrupt):
    dataset = _copy(fixtures / "panda", tmp_path)
    if command in ("spec check", "check --spec"):
        spec_file = tmp_path / "robot.yaml"
        shutil.copy(bundled_spec_path("panda"), spec_file)
    else:  # the spec beside the dataset, which adapt and eval read
        spec_file = dataset / SPEC_FILE
    words = []
    _edit_yaml(spec_file, lambda spec: words.extend(corrupt(spec)))
    argv = {
        "spec check": ["spec", "check", spec_file],
        "check --spec": [*_dataset_commands(fixtures, dataset, out)["check"], "--spec", spec_file],
        "adapt": _dataset_commands(fixtures, dataset, out)["adapt"],
        "eval --dataset": _dataset_commands(fixtures, dataset, out)["eval"],
    }[command]
    _refused(argv, capsys, [spec_file, dataset, out], [spec_file, *words])


# ---------------------------------------------------------------------------- datasets
def _set_value(dataset: Path, key: str, frame: int, dim: int, value: float) -> None:
    path = dataset / PARQUET
    table = pq.read_table(path).to_pandas()
    values = np.stack(table[key].to_numpy())
    values[frame, dim] = value
    table[key] = list(values)
    table.to_parquet(path)


def _shape_contradicts_spec(d: Path) -> list:
    _edit_json(d / INFO, lambda info: info["features"]["action"].update(shape=[7]))  # the panda spec says 8
    return [d / INFO, "'action'", "(7,)", "(8,)"]


def _nan_in_actions(d: Path) -> list:
    _set_value(d, "action", 5, 2, np.nan)
    return [d / PARQUET, "'action'", "nan", "frame 5", "dimension 2"]


def _inf_in_states(d: Path) -> list:
    _set_value(d, "observation.state", 7, 1, np.inf)
    return [d / PARQUET, "'observation.state'", "inf", "frame 7", "dimension 1"]


def _missing_stats(d: Path) -> list:
    (d / STATS).unlink()
    return [d / STATS, "'observation.state'", "missing"]


def _zero_episodes(d: Path) -> list:
    return [d / INFO, "total_episodes=0"]


def _truncated_parquet(d: Path) -> list:
    data = (d / PARQUET).read_bytes()
    (d / PARQUET).write_bytes(data[: len(data) // 2])
    return [d / PARQUET, "not a readable parquet file"]


def _fps_contradicts_spec(d: Path) -> list:
    _edit_json(d / INFO, lambda info: info.update(fps=30))
    return [d / INFO, "fps=30", "control_rate_hz=20"]


DATASET_CASES = [_shape_contradicts_spec, _nan_in_actions, _inf_in_states, _missing_stats, _zero_episodes,
                 _truncated_parquet, _fps_contradicts_spec]


@pytest.mark.parametrize("corrupt", DATASET_CASES, ids=lambda f: f.__name__.strip("_"))
@pytest.mark.parametrize("command", ["check", "adapt", "eval"])
def test_bad_dataset(fixtures, tmp_path, out, capsys, command, corrupt):
    dataset = _copy(fixtures / ("empty" if corrupt is _zero_episodes else "panda"), tmp_path)
    words = corrupt(dataset)
    _refused(_dataset_commands(fixtures, dataset, out)[command], capsys, [dataset, fixtures / "prior", out], words)


@pytest.mark.parametrize("command", ["check", "adapt"])
def test_gripper_polarity_contradicting_the_spec(fixtures, tmp_path, out, capsys, command):
    dataset = _copy(fixtures / "panda", tmp_path)

    def swap(spec: dict) -> None:
        grip = spec["arms"][0]["gripper"]
        grip["open_value"], grip["closed_value"] = grip["closed_value"], grip["open_value"]

    _edit_yaml(dataset / SPEC_FILE, swap)
    _refused(_dataset_commands(fixtures, dataset, out)[command], capsys, [dataset, out],
             [dataset, "gripper_polarity", "open_value=0,", "closed_value=0.08", "polarity inverted"])


# ---------------------------------------------------------------------------- checkpoints
def _truncated_weights(c: Path) -> list:
    data = (c / "model.safetensors").read_bytes()
    (c / "model.safetensors").write_bytes(data[: len(data) // 2])
    return [c / "model.safetensors", "cannot be read"]


def _newer_version(c: Path) -> list:
    _edit_json(c / "config.json", lambda config: config.update(version=99))
    return [c / "config.json", "version 99", "newer than this locksmith"]


@pytest.mark.parametrize("corrupt", [_truncated_weights, _newer_version], ids=lambda f: f.__name__.strip("_"))
@pytest.mark.parametrize("command", ["eval", "eval --dataset", "check", "adapt"])
def test_bad_checkpoint(fixtures, tmp_path, out, capsys, command, corrupt):
    checkpoint = _copy(fixtures / "prior" / "policy", tmp_path, "checkpoint")
    words = corrupt(checkpoint)
    dataset = fixtures / "panda"
    argv = {
        "eval": ["eval", "--checkpoint", checkpoint, "--robot", "panda", "--task", "reach", "--episodes", 1,
                 "--workers", 1, "--envs", 1, "--json", out / "eval.json"],
        "eval --dataset": ["eval", "--checkpoint", checkpoint, "--dataset", dataset, "--json", out / "eval.json"],
        "check": ["check", "--prior", checkpoint, "--dataset", dataset],
        "adapt": ["adapt", "--prior", checkpoint, "--dataset", dataset, "--recipe", "head", "--steps", 2,
                  "--out", out],
    }[command]
    _refused(argv, capsys, [checkpoint, dataset, out], words)


@pytest.mark.parametrize("command", ["eval", "eval --dataset"])
def test_checkpoint_from_another_robot(fixtures, out, capsys, command):
    prior = fixtures / "prior" / "policy"
    argv = {
        "eval": ["eval", "--checkpoint", prior, "--robot", "ur5e", "--task", "reach", "--episodes", 1,
                 "--workers", 1, "--envs", 1, "--json", out / "eval.json"],
        "eval --dataset": ["eval", "--checkpoint", prior, "--dataset", fixtures / "so101", "--json", out / "eval.json"],
    }[command]
    robot = "ur5e" if command == "eval" else "so101"
    _refused(argv, capsys, [fixtures / "prior", fixtures / "so101", out], [prior, f"not {robot!r}", "['panda']"])


# ---------------------------------------------------------------------------- plans
PLAN = {"name": "t", "targets": [{"robot": "so101", "task": "reach"}], "recipes": ["lora"], "budgets": [2, 4]}


@pytest.mark.parametrize("change, words", [
    ({"targets": [{"robot": "robby"}]}, ["'targets.0.robot'", "'robby'"]),
    ({"prior": {"robots": ["panda", "robby"]}}, ["'prior.robots'", "'robby'"]),
    ({"recipes": ["lorra"]}, ["'recipes'", "'lorra'"]),
    ({"evaluation": {"slices": ["sideways"]}}, ["'evaluation.slices'", "'sideways'"]),
    ({"budgets": []}, ["'budgets'", "budget list is empty"]),
    ({"threshold": {"absolute": -0.1}}, ["threshold.absolute=-0.1", "[0, 1]"]),
    ({"targets": [{"robot": "so101", "task": "reach", "threshold": {"absolute": 2}}]},
     ["threshold.absolute=2.0", "[0, 1]"]),
    ({"threshold": {"expert_fraction": 1.5}}, ["'threshold'", "expert_fraction=1.5"]),
], ids=["unknown_target_robot", "unknown_prior_robot", "unknown_recipe", "unknown_slice", "empty_budgets",
        "negative_threshold", "target_threshold_above_1", "expert_fraction_above_1"])
def test_bad_plan(tmp_path, out, capsys, change, words):
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({**PLAN, **change}))
    _refused(["audit", plan, "--out", out], capsys, [plan, out], [plan, *words])
