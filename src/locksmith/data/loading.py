"""Read a local LeRobot v3 dataset (ours or one recorded with `lerobot-record`) into memory.

State-only demonstrations are small (tens of thousands of frames), so training samples action
chunks from in-memory tensors rather than through a DataLoader: ~100x faster on 2 cores. The
dataset is opened through `lerobot`'s `LeRobotDataset` (offline), its stats are lerobot's own
`meta/stats.json`, and the embodiment spec comes from `meta/locksmith_spec.yaml` (written by
`locksmith demos`) or from a spec file the caller names.

With ``images=True`` each camera (`IMAGE_PREFIX` features, LeRobot ``video`` or ``image``) is
decoded into memory too, uint8 (N, H, W, 3): videos through LeRobot's episode metadata and its
pyav decoder (`lerobot.datasets.video_utils.decode_video_frames`), a whole episode per call.
At 64 px that is 12 KB a frame, ~0.8 GB for 400 SO-101 demonstrations. With ``image_size`` each
picture is fitted to that square as it is decoded (`fit_square`: the centred square, resized), so
a real robot's 480 x 640 camera is held at the size a pixel policy reads.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from locksmith.data.record import META_FILE, SPEC_FILE, VIDEO_BACKEND
from locksmith.embodiment.spec import EmbodimentSpec, SpecError, load_spec
from locksmith.sim.cameras import IMAGE_PREFIX

FEATURES = ("observation.state", "observation.environment_state", "action", "intent")


class DatasetError(ValueError):
    """A dataset cannot be used; the message names the folder and what is wrong."""


@dataclass
class Demonstrations:
    """All frames of one robot's dataset, as arrays, with episode boundaries.

    Attributes:
        spec: the robot's embodiment spec.
        arrays: feature name → (N, D) float32 array (features the dataset lacks are absent).
        episode_index: (N,) episode of each frame; frames of an episode are contiguous.
        episode_starts / episode_ends: (E,) first frame and one-past-last frame of each episode.
        tasks: (N,) instruction of each frame.
        stats: lerobot's stats per feature (mean, std, min, max, q01, q99, ...), as arrays.
        fps: frames per second.
        root: the dataset folder.
        fingerprint: a hash of the data files (for the reproducibility record).
        images: camera feature (``observation.images.<camera>``) → (N, H, W, 3) uint8, when
            loaded with ``images=True``; empty otherwise.
    """

    spec: EmbodimentSpec
    arrays: dict[str, np.ndarray]
    episode_index: np.ndarray
    episode_starts: np.ndarray
    episode_ends: np.ndarray
    tasks: list[str]
    stats: dict[str, dict[str, np.ndarray]]
    fps: float
    root: Path
    fingerprint: str
    meta: dict = field(default_factory=dict)
    images: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def num_episodes(self) -> int:
        return len(self.episode_starts)

    @property
    def num_frames(self) -> int:
        return len(self.episode_index)

    def subset(self, episodes: list[int] | np.ndarray) -> Demonstrations:
        """The same data restricted to the given episode positions (0-based, in order)."""
        episodes = np.asarray(episodes, dtype=int)
        if len(episodes) == 0:
            raise DatasetError(f"{self.root}: asked for an empty subset of episodes")
        if episodes.min() < 0 or episodes.max() >= self.num_episodes:
            raise DatasetError(f"{self.root}: episode positions {episodes.tolist()} outside 0..{self.num_episodes - 1}")
        frames = np.concatenate([np.arange(self.episode_starts[e], self.episode_ends[e]) for e in episodes])
        lengths = self.episode_ends[episodes] - self.episode_starts[episodes]
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        return Demonstrations(
            spec=self.spec,
            arrays={k: v[frames] for k, v in self.arrays.items()},
            episode_index=np.repeat(np.arange(len(episodes)), lengths),
            episode_starts=starts,
            episode_ends=starts + lengths,
            tasks=[self.tasks[i] for i in frames],
            stats=compute_stats({k: v[frames] for k, v in self.arrays.items()}),
            fps=self.fps,
            root=self.root,
            fingerprint=self.fingerprint,
            meta=self.meta,
            images={k: v[frames] for k, v in self.images.items()},
        )


def compute_stats(arrays: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """Exact mean/std/min/max/q01/q99 per feature over the given frames."""
    out = {}
    for key in ("observation.state", "observation.environment_state", "action"):
        if key in arrays:
            x = arrays[key].astype(np.float64)
            out[key] = {"mean": x.mean(0), "std": x.std(0), "min": x.min(0), "max": x.max(0),
                        "q01": np.quantile(x, 0.01, axis=0), "q99": np.quantile(x, 0.99, axis=0)}
    return out


def concat_demonstrations(parts: list[Demonstrations]) -> Demonstrations:
    """One robot's datasets (e.g. one per task) as one; stats over these frames of the same
    robot only (never across robots)."""
    if not parts:
        raise DatasetError("no datasets to concatenate")
    spec = parts[0].spec
    for part in parts[1:]:
        if part.spec.name != spec.name or part.spec.state_dim != spec.state_dim or part.spec.action_dim != spec.action_dim:
            raise DatasetError(f"{part.root}: robot {part.spec.name!r} differs from {spec.name!r} ({parts[0].root})")
    if len(parts) == 1:
        return parts[0]
    keys = set.intersection(*(set(p.arrays) for p in parts))
    arrays = {k: np.concatenate([p.arrays[k] for p in parts]) for k in keys}
    offsets = np.cumsum([0] + [p.num_frames for p in parts])[:-1]
    ep_offsets = np.cumsum([0] + [p.num_episodes for p in parts])[:-1]
    stats = compute_stats(arrays)
    cameras = set.intersection(*(set(p.images) for p in parts))
    return Demonstrations(
        spec=spec, arrays=arrays, images={k: np.concatenate([p.images[k] for p in parts]) for k in cameras},
        episode_index=np.concatenate([p.episode_index + o for p, o in zip(parts, ep_offsets, strict=True)]),
        episode_starts=np.concatenate([p.episode_starts + o for p, o in zip(parts, offsets, strict=True)]),
        episode_ends=np.concatenate([p.episode_ends + o for p, o in zip(parts, offsets, strict=True)]),
        tasks=[t for p in parts for t in p.tasks], stats=stats, fps=parts[0].fps, root=parts[0].root,
        fingerprint="+".join(p.fingerprint for p in parts), meta={"parts": [str(p.root) for p in parts]},
    )


def _fingerprint(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted((root / "data").rglob("*.parquet")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


FLOAT_DTYPES = ("float32", "float64")  # states and actions: an integer dtype would round them


def read_info(info_path: Path) -> dict:
    """``meta/info.json``, checked for the fields and types locksmith reads; errors name the file
    and field (a truncated file, a shape that is not a list of sizes, a dtype that is not numeric)."""
    try:
        text = info_path.read_bytes()[:16 << 20].decode("utf-8")
        info = json.loads(text)
    except (UnicodeDecodeError, ValueError) as err:
        raise DatasetError(f"{info_path}: not valid JSON (truncated or damaged?): {err}") from None
    if not isinstance(info, dict):
        raise DatasetError(f"{info_path}: expected a JSON object, got {type(info).__name__}")
    total = info.get("total_episodes", 0)
    if isinstance(total, bool) or not isinstance(total, int) or total < 0:
        raise DatasetError(f"{info_path}: field 'total_episodes' must be a count, got {total!r}")
    fps = info.get("fps", 0)
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not np.isfinite(fps) or fps <= 0:
        raise DatasetError(f"{info_path}: field 'fps' must be a positive number, got {fps!r}")
    features = info.get("features", {})
    if not isinstance(features, dict):
        raise DatasetError(f"{info_path}: field 'features' must be an object, got {type(features).__name__}")
    for key in FEATURES:
        if key not in features:
            continue
        feature = features[key]
        shape = feature.get("shape") if isinstance(feature, dict) else None
        if not (isinstance(shape, list) and shape and all(isinstance(d, int) and not isinstance(d, bool)
                                                          and 0 < d <= 4096 for d in shape)):
            raise DatasetError(f"{info_path}: field 'features.{key}.shape' must be a list of sizes, got {shape!r}")
        dtype = feature.get("dtype")
        if dtype not in FLOAT_DTYPES:
            raise DatasetError(f"{info_path}: field 'features.{key}.dtype' is {dtype!r}; states and actions must be "
                               f"{' or '.join(FLOAT_DTYPES)}")
    return info


def _check_data_files(root: Path, info: dict) -> None:
    """Every data file the episode index names is on disk (a deleted parquet file is named)."""
    from lerobot.datasets.lerobot_dataset import LeRobotDatasetMetadata

    try:
        meta = LeRobotDatasetMetadata(info.get("repo_id", f"local/{root.name}"), root=root)
        paths = sorted({str(meta.get_data_file_path(e)) for e in range(meta.total_episodes)})
    except Exception:  # noqa: BLE001 - damaged metadata: lerobot's own error follows, with its file
        return
    missing = [p for p in paths if not (root / p).is_file()]
    if missing:
        raise DatasetError(f"{root / missing[0]}: data file missing ({len(missing)} of {len(paths)} missing; "
                           "meta/episodes lists it): copy the dataset again")


def _column(column) -> np.ndarray:
    """One Arrow column as a writable numpy array (Arrow's own buffers are read-only, which torch
    warns about); (nested) fixed-size lists are flattened row-major."""
    import pyarrow as pa

    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    while pa.types.is_fixed_size_list(array.type) or pa.types.is_list(array.type):
        array = array.flatten()
    return np.array(array.to_numpy(zero_copy_only=False), copy=True)


def fit_square(frames: np.ndarray, size: int) -> np.ndarray:
    """(N, H, W, 3) uint8 pictures → (N, size, size, 3) uint8: the centred square of each, resized
    (area-averaged when it shrinks); pictures already at that size come back as they are. A pixel
    policy reads square pictures; a robot's camera that is not square is cropped, not squashed."""
    import torch

    _, h, w, _ = frames.shape
    if (h, w) == (size, size):
        return frames
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    x = torch.as_tensor(np.ascontiguousarray(frames[:, top:top + side, left:left + side])).permute(0, 3, 1, 2)
    x = torch.nn.functional.interpolate(x.float(), size=(size, size), mode="bilinear", antialias=True,
                                        align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def load_demonstrations(root: str | Path, spec: EmbodimentSpec | str | Path | None = None,
                        images: bool = False, image_size: int | None = None) -> Demonstrations:
    """Load a local LeRobot v3 dataset into memory (see the module docstring).

    Args:
        root: dataset folder (holding ``meta/info.json``).
        spec: the robot's spec, or a path to its file; by default the one beside the dataset.
        images: also decode every camera into ``Demonstrations.images``.
        image_size: fit each decoded picture to this square (`fit_square`); None: as recorded.

    Raises:
        DatasetError: missing folder or metadata, no episodes, features that contradict the
            spec, an unreadable parquet file, non-finite values, missing stats; the message
            names the file at fault.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    root = Path(root)
    info_path = root / "meta" / "info.json"
    if not info_path.is_file():
        raise DatasetError(f"{root}: not a LeRobot dataset (no meta/info.json)")
    if spec is None:
        if not (root / SPEC_FILE).is_file():
            raise DatasetError(f"{root}: no embodiment spec beside the dataset ({SPEC_FILE}); pass one with --spec")
        spec = load_spec(root / SPEC_FILE)
    elif not isinstance(spec, EmbodimentSpec):
        spec = load_spec(spec)
    info = read_info(info_path)
    if info["total_episodes"] == 0:
        raise DatasetError(f"{info_path}: total_episodes={info['total_episodes']}: the dataset has no episodes")
    features = info["features"]
    for key, expected in (("observation.state", spec.state_dim), ("action", spec.action_dim)):
        if key not in features:
            raise DatasetError(f"{info_path}: feature {key!r} is missing")
        shape = tuple(features[key]["shape"])
        if shape != (expected,):
            raise DatasetError(
                f"{info_path}: feature {key!r} has shape {shape} but spec {spec.name!r} says ({expected},)"
            )
    fps = float(info.get("fps", 0))
    if abs(fps - spec.control_rate_hz) > 1e-6:
        raise DatasetError(f"{info_path}: fps={fps:g} but spec {spec.name!r} says "
                           f"control_rate_hz={spec.control_rate_hz:g}")
    # A damaged parquet file (a copy cut short) otherwise surfaces from lerobot as a generic
    # DatasetGenerationError that does not say which file; the footer check is cheap.
    for path in sorted(root.rglob("*.parquet")):
        try:
            pq.read_metadata(path)
        except (OSError, pa.ArrowException) as err:
            raise DatasetError(f"{path}: not a readable parquet file ({err})") from None
    _check_data_files(root, info)  # else lerobot goes to the hub for a missing file, even offline
    try:
        dataset = LeRobotDataset(info.get("repo_id", f"local/{root.name}"), root=root, video_backend=VIDEO_BACKEND)
    except Exception as err:  # lerobot raises many kinds for a damaged dataset
        raise DatasetError(f"{root}: cannot be read by lerobot: {type(err).__name__}: {err}") from err
    # Whole columns through Arrow: the numpy format converts row by row (9 s for 60 demos, 3 ms here).
    table = dataset.hf_dataset.with_format("arrow")
    arrays = {}
    for key in FEATURES:
        if key in features:
            arrays[key] = _column(table[key]).astype(np.float32, copy=False).reshape(len(table), -1)
    episode_index = _column(table["episode_index"]).astype(int)
    for key, values in arrays.items():
        bad = ~np.isfinite(values)
        if bad.any():
            row, col = np.argwhere(bad)[0]
            episode = int(episode_index[row])
            raise DatasetError(f"{root / dataset.meta.get_data_file_path(episode)}: feature {key!r} has NaN/Inf: "
                               f"{values[row, col]} at frame {row} (episode {episode}), dimension {col}")
    if len(episode_index) and np.any(np.diff(episode_index) < 0):
        raise DatasetError(f"{root}: frames are not grouped by episode")
    change = np.flatnonzero(np.diff(episode_index)) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [len(episode_index)]])
    task_names = dataset.meta.tasks
    task_index = _column(table["task_index"]).astype(int)
    index_to_task = {int(i): str(t) for t, i in zip(task_names.index, task_names["task_index"], strict=True)}
    tasks = [index_to_task[i] for i in task_index]
    raw_stats = dataset.meta.stats or {}
    stats_path = root / "meta" / "stats.json"
    for key in ("observation.state", "observation.environment_state", "action"):
        if key in arrays and (key not in raw_stats or "mean" not in raw_stats[key]):
            missing = "" if stats_path.is_file() else " (the file is missing)"
            raise DatasetError(f"{stats_path}: no stats for {key!r}{missing}")
    # lerobot's quantiles are per-episode quantiles averaged over episodes: for a value that is
    # constant within each episode (an object's colour) q01 == q99. Exact ones from the frames.
    stats = compute_stats(arrays)
    meta_path = root / META_FILE
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    pictures = _decode_images(dataset, root, features, table, episode_index, starts, ends, image_size) \
        if images else {}
    return Demonstrations(
        spec=spec, arrays=arrays, episode_index=episode_index, episode_starts=starts, episode_ends=ends,
        tasks=tasks, stats=stats, fps=fps, root=root, fingerprint=_fingerprint(root), meta=meta, images=pictures,
    )


def _decode_images(dataset, root: Path, features: dict, table, episode_index: np.ndarray, starts: np.ndarray,
                   ends: np.ndarray, image_size: int | None = None) -> dict[str, np.ndarray]:
    """Every camera of the dataset as (N, H, W, 3) uint8, frame for frame with the other features
    (each episode's pictures fitted to ``image_size`` as they are decoded, `fit_square`)."""
    import io

    from lerobot.datasets.video_utils import decode_video_frames
    from PIL import Image

    cameras = sorted(k for k, f in features.items()
                     if k.startswith(IMAGE_PREFIX) and f.get("dtype") in ("video", "image"))
    if not cameras:
        raise DatasetError(f"{root / 'meta' / 'info.json'}: no camera features ({IMAGE_PREFIX}<camera>) to "
                           "decode; record the dataset with --camera")
    timestamps = _column(table["timestamp"]).astype(np.float64)
    out = {}
    for key in cameras:
        frames = []
        if features[key]["dtype"] == "video":
            for start, end in zip(starts, ends, strict=True):
                episode = int(episode_index[start])
                record = dataset.meta.episodes[episode]
                path = root / dataset.meta.get_video_file_path(episode, key)
                offset = float(record[f"videos/{key}/from_timestamp"])
                shifted = [offset + float(t) for t in timestamps[start:end]]  # Python floats, as LeRobot passes
                try:
                    decoded = decode_video_frames(path, shifted, dataset.tolerance_s, VIDEO_BACKEND, return_uint8=True)
                except Exception as err:  # pyav and lerobot raise several kinds for a damaged file
                    raise DatasetError(f"{path}: cannot decode episode {episode} of {key!r}: {err}") from err
                episode_frames = decoded.permute(0, 2, 3, 1).numpy()
                frames.append(episode_frames if image_size is None else fit_square(episode_frames, image_size))
        else:  # an image feature: one encoded picture per row
            for cell in table[key].to_pylist():
                picture = np.asarray(Image.open(io.BytesIO(cell["bytes"])).convert("RGB"))[None]
                frames.append(picture if image_size is None else fit_square(picture, image_size))
        out[key] = np.ascontiguousarray(np.concatenate(frames).astype(np.uint8, copy=False))
        if len(out[key]) != len(episode_index):
            raise DatasetError(f"{root}: {key!r} decoded to {len(out[key])} frames, the data has {len(episode_index)}")
    return out


__all__ = ["Demonstrations", "DatasetError", "SpecError", "concat_demonstrations", "fit_square", "load_demonstrations"]
