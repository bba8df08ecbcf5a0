"""A LeRobot v3 dataset checked against its own metadata (in the manner of a "doctor" command).

`check_dataset_metadata` reads the files themselves (JSON and Parquet through pyarrow, no
loader in between, so that a damaged dataset is described rather than crashed on) and reports
every disagreement as a `MetadataProblem` naming the file and the field:

| check         | what must agree                                                                     |
|---------------|-------------------------------------------------------------------------------------|
| info.json     | readable; ``fps`` > 0; ``features`` each with a ``dtype`` and a ``shape``; integer   |
|               | ``total_episodes`` and ``total_frames``                                              |
| columns       | every feature but videos is a data column of its dtype and shape, every column a feature |
| totals        | ``total_frames`` = the data's rows; ``total_episodes`` = its distinct episodes        |
| episode_index | episodes numbered 0 .. E-1, each one's frames contiguous and in order               |
| frame_index   | 0 .. length-1 within each episode; ``index`` 0 .. N-1 over the dataset               |
| timestamp     | ``frame_index / fps``, within `TOLERANCE_S` (lerobot's own tolerance)                |
| meta/episodes | one row per episode, its ``length`` and ``dataset_from_index`` / ``dataset_to_index`` |
|               | those of the episode's frames                                                        |
| stats.json    | present; every numeric feature with ``mean``, ``std``, ``min``, ``max`` of its shape |
| tasks         | every ``task_index`` of the data is a row of ``meta/tasks.parquet``                  |
| videos        | each video feature's file named by ``meta/episodes`` exists                          |

`locksmith check --dataset` runs it (item ``lerobot_metadata`` of the compatibility check,
`locksmith.train.compat`), and so does every `adapt` and audit that checks its data.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict

INFO_FILE = "meta/info.json"
STATS_FILE = "meta/stats.json"
TASKS_FILE = "meta/tasks.parquet"
EPISODES_DIR = "meta/episodes"
DATA_DIR = "data"
TOLERANCE_S = 1e-4
INDEX_COLUMNS = ("timestamp", "frame_index", "episode_index", "index", "task_index")
NUMERIC_DTYPES = ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16",
                  "uint32", "uint64", "bool")
ARROW_TYPES = {"float16": "halffloat", "float32": "float", "float64": "double", "bool": "bool", "string": "string"}
REQUIRED_STATS = ("mean", "std", "min", "max")
MAX_LISTED = 5  # items named in one problem before "..."


class MetadataProblem(BaseModel):
    """One disagreement between a dataset's metadata and its data."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    file: str  # the file that holds the field, relative to the dataset root
    field: str
    message: str

    def line(self, root: str | Path | None = None) -> str:
        where = self.file if root is None else str(Path(root) / self.file)
        return f"{where}: {self.field}: {self.message}"


class MetadataReport(BaseModel):
    """What `check_dataset_metadata` found: the counts it read and every problem."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    root: str
    episodes: int | None  # distinct episodes in the data (None: the data could not be read)
    frames: int | None
    problems: tuple[MetadataProblem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        return [p.line(self.root) for p in self.problems]


def _listed(values) -> str:
    values = list(values)
    return ", ".join(map(str, values[:MAX_LISTED])) + (" ..." if len(values) > MAX_LISTED else "")


def _arrow_shape(arrow_type) -> tuple[tuple[int, ...] | None, object]:
    """(shape, leaf type) of a column type: fixed-size lists nest; a variable list has no shape."""
    import pyarrow as pa

    shape: list[int] = []
    while pa.types.is_fixed_size_list(arrow_type) or pa.types.is_list(arrow_type) \
            or pa.types.is_large_list(arrow_type):
        if not pa.types.is_fixed_size_list(arrow_type):
            return None, arrow_type.value_type
        shape.append(arrow_type.list_size)
        arrow_type = arrow_type.value_type
    return (tuple(shape) or (1,)), arrow_type


def _read_parquet(files: list[Path], columns: list[str] | None, root: Path, problems: list, what: str):
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = []
    for path in files:
        try:
            tables.append(pq.read_table(path, columns=columns))
        except Exception as err:  # pyarrow raises its own kinds for a damaged or truncated file
            problems.append(MetadataProblem(file=str(path.relative_to(root)), field=what,
                                            message=f"cannot be read ({type(err).__name__}: "
                                                    f"{' '.join(str(err).split())[:200]})"))
            return None
    try:
        return pa.concat_tables(tables) if tables else None
    except pa.ArrowInvalid as err:
        problems.append(MetadataProblem(file=f"{what}/", field="schema", message=f"files disagree ({err})"))
        return None


def _check_info(info: dict, add) -> tuple[float | None, dict]:
    fps = info.get("fps")
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not fps > 0:
        add(INFO_FILE, "fps", f"{fps!r}; expected a positive number of frames per second")
        fps = None
    features = info.get("features")
    if not isinstance(features, dict) or not features:
        add(INFO_FILE, "features", f"expected a mapping of feature names, got {type(features).__name__}")
        features = {}
    good = {}
    for name, feature in features.items():
        if not isinstance(feature, dict) or not isinstance(feature.get("dtype"), str) \
                or not isinstance(feature.get("shape"), (list, tuple)):
            add(INFO_FILE, f"features.{name}", "expected a mapping with 'dtype' and 'shape'")
            continue
        good[name] = feature
    for key in ("total_episodes", "total_frames"):
        if isinstance(info.get(key), bool) or not isinstance(info.get(key), int) or info[key] < 0:
            add(INFO_FILE, key, f"{info.get(key)!r}; expected a count")
    return fps, good


def _check_columns(schema, features: dict, add) -> None:
    columns = set(schema.names)
    for name, feature in features.items():
        dtype = feature["dtype"]
        if dtype == "video":
            continue
        if name not in columns:
            add(INFO_FILE, f"features.{name}", "declared, but the data has no such column")
            continue
        if dtype in ("image", "string"):
            continue
        shape, leaf = _arrow_shape(schema.field(name).type)
        expected = tuple(int(d) for d in feature["shape"])
        if shape is not None and shape != expected:
            add(INFO_FILE, f"features.{name}.shape", f"{list(expected)}, the data's column has {list(shape)}")
        arrow = ARROW_TYPES.get(dtype, dtype)
        if str(leaf) != arrow:
            add(INFO_FILE, f"features.{name}.dtype", f"{dtype!r}, the data's column holds {leaf}")
    extra = sorted(columns - set(features))
    if extra:
        add(INFO_FILE, "features", f"the data has columns no feature declares: {_listed(extra)}")


def _check_frames(table, info: dict, fps: float | None, add) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The per-frame index columns; returns (episode ids in order, first frame, one past the last)."""
    n = table.num_rows
    if info.get("total_frames") != n and isinstance(info.get("total_frames"), int):
        add(INFO_FILE, "total_frames", f"{info['total_frames']}, the data has {n} frames")
    missing = [c for c in INDEX_COLUMNS if c not in table.column_names]
    if missing:
        add(DATA_DIR, "columns", f"no {_listed(missing)}")
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    col = {c: table.column(c).to_numpy() for c in INDEX_COLUMNS}
    episodes = col["episode_index"].astype(np.int64)
    changes = np.flatnonzero(np.diff(episodes) != 0) + 1
    starts = np.concatenate([[0], changes]) if n else np.zeros(0, np.int64)
    ends = np.concatenate([changes, [n]]) if n else np.zeros(0, np.int64)
    ids = episodes[starts]
    if len(np.unique(ids)) != len(ids):
        repeated = sorted({int(e) for e in ids if (ids == e).sum() > 1})
        add(DATA_DIR, "episode_index", f"the frames of episode(s) {_listed(repeated)} are not contiguous")
    elif not np.array_equal(ids, np.arange(len(ids))):
        add(DATA_DIR, "episode_index", f"episodes are {_listed(ids.tolist())}; expected 0 .. {len(ids) - 1} in order")
    distinct = len(np.unique(episodes))
    if info.get("total_episodes") != distinct and isinstance(info.get("total_episodes"), int):
        add(INFO_FILE, "total_episodes", f"{info['total_episodes']}, the data has {distinct} episodes")
    expected_frame = np.arange(n) - np.repeat(starts, ends - starts)
    bad = np.flatnonzero(col["frame_index"] != expected_frame)
    if bad.size:
        add(DATA_DIR, "frame_index", f"does not run 0 .. length-1 within episode {int(episodes[bad[0]])} "
                                     f"(row {int(bad[0])}: {int(col['frame_index'][bad[0]])}, expected "
                                     f"{int(expected_frame[bad[0]])})")
    bad = np.flatnonzero(col["index"] != np.arange(n))
    if bad.size:
        add(DATA_DIR, "index", f"does not run 0 .. {n - 1} (row {int(bad[0])}: {int(col['index'][bad[0]])})")
    if fps is not None and n:
        drift = np.abs(col["timestamp"].astype(np.float64) - col["frame_index"] / fps)
        worst = int(np.argmax(drift))
        if drift[worst] > TOLERANCE_S:
            add(INFO_FILE, "fps", f"{fps:g}, but the timestamps are not frame_index / fps (row {worst}: "
                                  f"{float(col['timestamp'][worst]):.6g} s at frame {int(col['frame_index'][worst])})")
    return ids, starts, ends


def _check_episodes(table, ids, starts, ends, add) -> None:
    if table is None:
        add(EPISODES_DIR, "files", "missing: no parquet file describes the episodes")
        return
    need = ("episode_index", "length", "dataset_from_index", "dataset_to_index")
    missing = [c for c in need if c not in table.column_names]
    if missing:
        add(EPISODES_DIR, "columns", f"no {_listed(missing)}")
        return
    meta = {c: table.column(c).to_numpy().astype(np.int64) for c in need}
    listed = meta["episode_index"]
    if sorted(listed.tolist()) != sorted(ids.tolist()):
        add(EPISODES_DIR, "episode_index", f"lists episodes {_listed(sorted(listed.tolist()))}, the data has "
                                           f"{_listed(sorted(ids.tolist()))}")
    position = {int(e): i for i, e in enumerate(ids)}
    for row, episode in enumerate(listed):
        i = position.get(int(episode))
        if i is None:
            continue
        frames = (int(starts[i]), int(ends[i]))
        if int(meta["length"][row]) != frames[1] - frames[0]:
            add(EPISODES_DIR, f"length (episode {int(episode)})",
                f"{int(meta['length'][row])}, the data has {frames[1] - frames[0]} frames")
        elif (int(meta["dataset_from_index"][row]), int(meta["dataset_to_index"][row])) != frames:
            add(EPISODES_DIR, f"dataset_from_index (episode {int(episode)})",
                f"{int(meta['dataset_from_index'][row])}..{int(meta['dataset_to_index'][row])}, the data has "
                f"rows {frames[0]}..{frames[1]}")


def _check_stats(root: Path, features: dict, add) -> None:
    path = root / STATS_FILE
    if not path.is_file():
        add(STATS_FILE, "file", "missing (lerobot writes it when the dataset is finalized)")
        return
    try:
        stats = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        add(STATS_FILE, "file", f"cannot be read ({' '.join(str(err).split())[:200]})")
        return
    if not isinstance(stats, dict):
        add(STATS_FILE, "file", f"expected a mapping, got {type(stats).__name__}")
        return
    for name, feature in features.items():
        if feature["dtype"] not in NUMERIC_DTYPES:
            continue
        entry = stats.get(name)
        if not isinstance(entry, dict):
            add(STATS_FILE, name, f"no statistics for the numeric feature {name!r}")
            continue
        absent = [k for k in REQUIRED_STATS if k not in entry]
        if absent:
            add(STATS_FILE, name, f"no {_listed(absent)}")
            continue
        expected = tuple(int(d) for d in feature["shape"])
        for key in REQUIRED_STATS:
            try:
                shape = np.asarray(entry[key], dtype=np.float64).shape
            except (TypeError, ValueError):
                add(STATS_FILE, f"{name}.{key}", "not numbers")
                break
            if shape != expected and not (expected == (1,) and shape in ((), (1,))):
                add(STATS_FILE, f"{name}.{key}", f"shape {list(shape)}, the feature has {list(expected)}")
                break


def _check_tasks(root: Path, table, problems: list, add) -> None:
    if table is None or "task_index" not in table.column_names:
        return
    tasks = _read_parquet([root / TASKS_FILE], None, root, problems, "tasks") if (root / TASKS_FILE).is_file() \
        else None
    if tasks is None:
        if not (root / TASKS_FILE).is_file():
            add(TASKS_FILE, "file", "missing")
        return
    if "task_index" not in tasks.column_names:
        add(TASKS_FILE, "task_index", "no such column")
        return
    unknown = sorted(set(np.unique(table.column("task_index").to_numpy()).tolist())
                     - set(tasks.column("task_index").to_numpy().tolist()))
    if unknown:
        add(TASKS_FILE, "task_index", f"the data uses task(s) {_listed(unknown)}, which it does not list")


def _check_videos(root: Path, info: dict, features: dict, episodes_table, add) -> None:
    videos = [name for name, f in features.items() if f["dtype"] == "video"]
    pattern = info.get("video_path")
    if not videos or episodes_table is None:
        return
    if not isinstance(pattern, str):
        add(INFO_FILE, "video_path", f"{pattern!r}, but features {_listed(videos)} are videos")
        return
    for name in videos:
        chunk, file = f"videos/{name}/chunk_index", f"videos/{name}/file_index"
        if chunk not in episodes_table.column_names or file not in episodes_table.column_names:
            add(EPISODES_DIR, f"videos/{name}", "no chunk_index / file_index columns")
            continue
        pairs = set(zip(episodes_table.column(chunk).to_pylist(), episodes_table.column(file).to_pylist(),
                        strict=True))
        for c, f in sorted(pairs):
            relative = pattern.format(video_key=name, chunk_index=c, file_index=f)
            if not (root / relative).is_file():
                add(relative, f"features.{name}", "the video file meta/episodes names is missing")


def check_dataset_metadata(root: str | Path) -> MetadataReport:
    """Every disagreement between a LeRobot v3 dataset's metadata and its data (see the module
    docstring); an empty ``problems`` means they agree."""
    root = Path(root)
    problems: list[MetadataProblem] = []

    def add(file: str, field: str, message: str) -> None:
        problems.append(MetadataProblem(file=file, field=field, message=message))

    if not (root / INFO_FILE).is_file():
        add(INFO_FILE, "file", "missing: not a LeRobot v3 dataset")
        return MetadataReport(root=str(root), episodes=None, frames=None, problems=tuple(problems))
    try:
        info = json.loads((root / INFO_FILE).read_text())
    except (OSError, ValueError) as err:
        info = None
        add(INFO_FILE, "file", f"cannot be read ({' '.join(str(err).split())[:200]})")
    if not isinstance(info, dict):
        if info is not None:
            add(INFO_FILE, "file", f"expected a mapping, got {type(info).__name__}")
        return MetadataReport(root=str(root), episodes=None, frames=None, problems=tuple(problems))
    fps, features = _check_info(info, add)
    data_files = sorted((root / DATA_DIR).rglob("*.parquet"))
    table = _read_parquet(data_files, None, root, problems, DATA_DIR)
    episodes = frames = None
    if table is None:
        if not data_files:
            add(DATA_DIR, "files", "missing: no parquet file holds the frames")
        ids, starts, ends = (np.zeros(0, np.int64),) * 3
    else:
        _check_columns(table.schema, features, add)
        ids, starts, ends = _check_frames(table, info, fps, add)
        episodes, frames = len(ids), table.num_rows
    episodes_table = _read_parquet(sorted((root / EPISODES_DIR).rglob("*.parquet")), None, root, problems,
                                   EPISODES_DIR)
    if table is not None:
        _check_episodes(episodes_table, ids, starts, ends, add)
    _check_stats(root, features, add)
    _check_tasks(root, table, problems, add)
    _check_videos(root, info, features, episodes_table, add)
    return MetadataReport(root=str(root), episodes=episodes, frames=frames, problems=tuple(problems))


__all__ = ["MetadataProblem", "MetadataReport", "check_dataset_metadata"]
