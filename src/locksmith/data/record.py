"""Record scripted-expert demonstrations as a LeRobot v3 dataset, with the spec beside it.

Episodes run in worker processes (both cores); the parent writes them in seed order through
`lerobot`'s `LeRobotDataset` (`create` / `add_frame` / `save_episode` / `finalize`). Only
successful expert episodes are kept; a failed seed is skipped and the next one drawn.

Crash safety: the dataset is written into a hidden temporary folder beside ``out`` and renamed
into place after `finalize`, so an interrupted recording never leaves a dataset that loads but
is corrupt. Appending copies the existing dataset into the temporary folder first.

Layout written (besides lerobot's own ``meta/`` and ``data/``):

    meta/locksmith_spec.yaml   the robot's full EmbodimentSpec
    meta/locksmith.json        robot, task, episode seeds, expert success, frames recorded after
                               success (the release and retreat), the execution noise (m, 0:
                               none), the start jitter (m, 0: every episode from home),
                               locksmith version
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import shutil
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from locksmith import __version__
from locksmith.atomic import remove_stale_temporaries, swap_into_place
from locksmith.embodiment.registry import (
    install_registrations,
    load_robot_spec,
    registrations,
)
from locksmith.embodiment.spec import EmbodimentSpec
from locksmith.sim.cameras import IMAGE_PREFIX
from locksmith.sim.tasks import get_task
from locksmith.train.defaults import MAX_START_JITTER

log = logging.getLogger(__name__)

SPEC_FILE = "meta/locksmith_spec.yaml"
META_FILE = "meta/locksmith.json"
# The execution noise (m) of the pool's demonstrations (`PriorRecipe.demo_noise`, the plan's
# `prior.demo_noise`). Off: 4 mm cost the ur5e and the vx300s most of their success (docs/sim.md).
DEFAULT_DEMO_NOISE = 0.0
DEMO_SEED_STRIDE = 1_000_003  # episode seeds: seed * stride + k; evaluation uses another range
# Every dataset locksmith opens names its video decoder: without one, lerobot tries torchcodec
# first, which cannot load where FFmpeg's shared libraries are absent (a ~100-line traceback)
# before it falls back to pyav. pyav decodes every dataset locksmith writes.
VIDEO_BACKEND = "pyav"
# LeRobot's AV1 encoder (SVT-AV1 through pyav) crashes the process on small frames: 8 and 16 px
# raised a floating-point exception and 24 px a segmentation fault; 28-64 px encode (2026-12-07).
MIN_VIDEO_SIZE = 32


class RecordError(ValueError):
    """Bad recording request (unknown robot/task, output folder in the way)."""


def intent_names(spec: EmbodimentSpec) -> list[str]:
    """The robot-agnostic intent recorded beside every action (see `DESIGN.md`)."""
    names = []
    for arm in spec.arms:
        names += [f"{arm.name}.tcp_velocity.{a}" for a in "xyz"] + [f"{arm.name}.closure"]
    if spec.base is not None:
        names += ["base.velocity.x", "base.velocity.y", "base.velocity.yaw"]
    return names


def dataset_features(spec: EmbodimentSpec, camera: bool, image_size: int | None = None) -> dict:
    """LeRobot feature dict for a robot's demonstrations."""
    from locksmith.sim.env import env_state_names

    env_names = env_state_names([a.name for a in spec.arms])
    features = {
        "observation.state": {"dtype": "float32", "shape": (spec.state_dim,), "names": spec.names("state")},
        "observation.environment_state": {"dtype": "float32", "shape": (len(env_names),), "names": env_names},
        "action": {"dtype": "float32", "shape": (spec.action_dim,), "names": spec.names("action")},
        "intent": {"dtype": "float32", "shape": (len(intent_names(spec)),), "names": intent_names(spec)},
    }
    if camera:
        for cam in spec.cameras:
            h = image_size or cam.height
            w = image_size or cam.width
            features[IMAGE_PREFIX + cam.name] = {
                "dtype": "video", "shape": (h, w, 3), "names": ["height", "width", "channel"],
            }
    return features


@dataclass(frozen=True)
class EpisodeRequest:
    robot: str
    task: str
    seed: int
    camera: bool
    image_size: int | None
    noise: float = 0.0  # m, `ExecutionNoise` sigma; 0: the expert's own commands run
    start_jitter: float = 0.0  # m, `TabletopEnv.start_jitter`; 0: the episode starts at home


_ENV_CACHE: dict = {}

# A demonstration goes on for this long after the task succeeds, the expert releasing and
# backing away. Success comes the moment the gripper opens, so without these frames a fast
# gripper leaves one "open" command per episode (the Z1 at 15 Hz): a policy trained on that
# placed the cube on the pad in 16 of 20 episodes and never let go.
AFTER_SUCCESS_SECONDS = 0.3


def frames_after_success(control_rate_hz: float) -> int:
    return int(np.ceil(AFTER_SUCCESS_SECONDS * control_rate_hz))


def run_expert(request: EpisodeRequest) -> dict | None:
    """One expert episode; the frames as arrays, or None if the expert failed."""
    from locksmith.sim.env import TabletopEnv
    from locksmith.sim.expert import ExecutionNoise, ScriptedExpert
    from locksmith.sim.intent import measured_intent

    key = (request.robot, request.task, request.camera, request.image_size, request.start_jitter)
    if key not in _ENV_CACHE:
        _ENV_CACHE.clear()
        env = TabletopEnv(request.robot, request.task, render=request.camera, image_size=request.image_size,
                          start_jitter=request.start_jitter)
        _ENV_CACHE[key] = (env, ScriptedExpert(env))
    env, expert = _ENV_CACHE[key]
    obs, info = env.reset(seed=request.seed)
    expert.reset()
    noise = ExecutionNoise(request.noise, env.dt, seed=request.seed) if request.noise > 0 else None
    frames: list[dict] = []
    arms = [a.name for a in env.rig.arms]
    success = False
    after = frames_after_success(env.spec_.control_rate_hz)
    for _ in range(env.horizon + after):
        if success:
            if after == 0:
                break
            after -= 1
        action = expert.act()  # recorded; with noise, a perturbed command is what runs
        executed = action if noise is None else noise.perturb(expert, action)
        tcp_before = {a: env.tcp_base_frame(a) for a in arms}
        base_before = env.base_pose() if env.rig.base_joints else None
        next_obs, _, terminated, truncated, info = env.step(executed)
        intent = measured_intent(env, tcp_before, base_before, env.closure_cmd)
        frames.append({**obs, "action": action.astype(np.float32), "intent": intent})
        obs = next_obs
        if terminated:
            success = True
        if truncated and not success:
            break
    if not success:
        return None
    return {"seed": request.seed, "instruction": env.instruction, "frames": frames}


def _episodes(robot: str, task: str, seed: int, camera: bool, image_size: int | None,
              workers: int, noise: float = 0.0, start_jitter: float = 0.0) -> Iterator[tuple[int, dict | None]]:
    """(episode seed, result) in seed order, computed by ``workers`` processes."""
    def requests():
        k = 0
        while True:
            yield EpisodeRequest(robot, task, seed * DEMO_SEED_STRIDE + k, camera, image_size, noise, start_jitter)
            k += 1

    if workers <= 1:
        for req in requests():
            yield req.seed, run_expert(req)
        return
    # A bounded window of episodes in flight (the request stream itself is endless).
    # Spawned workers start empty: hand them this process's registered robots.
    ctx = mp.get_context("spawn")
    with ctx.Pool(workers, initializer=install_registrations, initargs=(registrations(),)) as pool:
        pending: deque = deque()
        stream = requests()
        while True:
            while len(pending) < 2 * workers:
                req = next(stream)
                pending.append((req.seed, pool.apply_async(run_expert, (req,))))
            ep_seed, result = pending.popleft()
            yield ep_seed, result.get()


def _prepare_output(out: Path, overwrite: bool, append: bool) -> None:
    if overwrite and append:
        raise RecordError("choose one of --overwrite and --append")
    if out.exists() and not out.is_dir():
        raise RecordError(f"{out}: exists and is not a folder")
    if out.exists() and any(out.iterdir()) and not (overwrite or append):
        raise RecordError(f"{out}: folder exists and is not empty; pass --overwrite to replace it or --append to add episodes")
    if append and out.exists() and any(out.iterdir()) and not (out / "meta" / "info.json").is_file():
        raise RecordError(f"{out}: --append needs an existing LeRobot dataset there (no meta/info.json)")


def read_locksmith_meta(root: Path) -> dict:
    path = Path(root) / META_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def _discard(dataset) -> None:
    """Close a dataset that is being thrown away without finishing it: stop its writers and mark
    them finalized, so that neither finishing its metadata (slow with many episodes: an interrupt
    must exit at once) nor lerobot's ``__del__`` safety net writes into the removed folder."""
    import contextlib

    writer = getattr(dataset, "writer", None)
    if writer is not None:
        with contextlib.suppress(Exception):
            if getattr(writer, "image_writer", None) is not None:
                writer.image_writer.stop()
                writer.image_writer = None
        with contextlib.suppress(Exception):
            writer.cancel_pending_videos()
        with contextlib.suppress(Exception):
            writer.close_writer()
        writer._finalized = True
    meta = getattr(dataset, "meta", None)
    if meta is not None:
        with contextlib.suppress(Exception):
            if getattr(meta, "_pq_writer", None) is not None:
                meta._pq_writer.close()
                meta._pq_writer = None
        meta._finalized = True
    dataset._is_finalized = True


def _expert_version() -> int:
    from locksmith.sim.expert import (
        EXPERT_VERSION,  # lazily: the simulator loads MuJoCo
    )

    return EXPERT_VERSION


def expert_version(meta: dict) -> int:
    """The scripted expert's version a dataset was recorded with; 1 for one recorded before the field."""
    return int(meta.get("expert_version", 1))


def _recording_seconds(previous: dict, appending: bool, seconds: float) -> float | None:
    if not appending:
        return seconds
    before = previous.get("recording_seconds")
    return None if before is None else float(before) + seconds


def execution_noise(meta: dict) -> float:
    """The execution noise (m) a dataset was recorded with; 0 for one recorded before the field."""
    return float(meta.get("execution_noise_m", 0.0))


def recorded_start_jitter(meta: dict) -> float:
    """The start jitter (m) a dataset was recorded with; 0 for one recorded before the field."""
    return float(meta.get("start_jitter_m", 0.0))


def record_demos(
    robot: str,
    task: str,
    episodes: int,
    out: str | Path,
    seed: int = 0,
    camera: bool = False,
    image_size: int | None = None,
    overwrite: bool = False,
    append: bool = False,
    workers: int | None = None,
    max_failures: int | None = None,
    progress: bool = True,
    noise: float = 0.0,
    start_jitter: float = 0.0,
) -> Path:
    """Record ``episodes`` successful expert demonstrations into a LeRobot dataset at ``out``.

    ``noise`` > 0 (m) records DART-style demonstrations (`sim.expert.ExecutionNoise`): the
    robot executes the expert's command with a perturbed TCP goal, the clean one is recorded.
    ``start_jitter`` > 0 (m) starts each episode with the TCP moved from home by up to that much
    per axis (`TabletopEnv.start_jitter`); the scene's layout is the seed's either way.

    Returns the dataset folder. Raises `RecordError` for a bad request; nothing at ``out`` is
    touched until the new dataset is complete.
    """
    from datasets.utils.logging import disable_progress_bar
    from lerobot.datasets.lerobot_dataset import LeRobotDataset
    from tqdm import tqdm

    disable_progress_bar()  # one "Map" bar per saved episode would bury ours

    spec = load_robot_spec(robot)
    get_task(task)
    if episodes < 1:
        raise RecordError(f"--episodes must be at least 1, got {episodes}")
    if not (np.isfinite(noise) and noise >= 0):
        raise RecordError(f"--noise must be a distance >= 0 in metres, got {noise}")
    if camera:
        small = [k.removeprefix(IMAGE_PREFIX) for k, f in dataset_features(spec, True, image_size).items()
                 if k.startswith(IMAGE_PREFIX) and min(f["shape"][:2]) < MIN_VIDEO_SIZE]  # the sizes it records
        if small:
            raise RecordError(f"--image-size: camera {small[0]!r} would be recorded below {MIN_VIDEO_SIZE} px, which "
                              f"LeRobot's video encoder cannot encode; give --image-size {MIN_VIDEO_SIZE} or more")
    if not (np.isfinite(start_jitter) and 0 <= start_jitter <= MAX_START_JITTER):
        raise RecordError(f"--start-jitter must be a distance in [0, {MAX_START_JITTER:g}] metres, got {start_jitter}")
    started = time.perf_counter()
    out = Path(out).resolve()
    _prepare_output(out, overwrite, append)
    workers = workers if workers is not None else min(2, os.cpu_count() or 1)
    repo_id = f"locksmith/{robot}_{task}"
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    remove_stale_temporaries(out)  # left by a recording that was killed
    out.parent.mkdir(parents=True, exist_ok=True)
    appending = append and (out / "meta" / "info.json").is_file()
    previous = read_locksmith_meta(out) if appending else {}
    if appending:
        if previous.get("robot") not in (None, robot):
            raise RecordError(f"{out}: holds demos of robot {previous.get('robot')!r}, not {robot!r}")
        if execution_noise(previous) != noise:
            raise RecordError(f"{out}: holds demos recorded with execution noise "
                              f"{execution_noise(previous)} m, not {noise} m; record into "
                              "another folder or pass --overwrite")
        if recorded_start_jitter(previous) != start_jitter:
            raise RecordError(f"{out}: holds demos recorded with start jitter {recorded_start_jitter(previous)} m, "
                              f"not {start_jitter} m; record into another folder or pass --overwrite")
    try:  # an interrupt (Ctrl-C) while the temporary dataset is made leaves nothing behind
        if appending:
            shutil.copytree(out, tmp)
            dataset = LeRobotDataset.resume(repo_id, root=tmp, video_backend=VIDEO_BACKEND)
        else:
            dataset = LeRobotDataset.create(
                repo_id, fps=int(round(spec.control_rate_hz)), features=dataset_features(spec, camera, image_size),
                root=tmp, robot_type=spec.robot_type, use_videos=camera, image_writer_threads=2 if camera else 0,
                video_backend=VIDEO_BACKEND,
            )
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    seeds: list[int] = list(previous.get("episode_seeds", []))
    used = set(seeds)
    max_failures = max_failures if max_failures is not None else max(10, episodes)
    failures = 0
    # Appending draws from a fresh block of seeds, disjoint from the episodes already there.
    start_seed = max(used) // DEMO_SEED_STRIDE + 1 if appending and used else seed
    try:
        bar = tqdm(total=episodes, desc=f"{robot}/{task} demos", unit="ep", disable=not progress)
        for ep_seed, result in _episodes(robot, task, start_seed, camera, image_size, workers, noise,
                                         start_jitter):
            if result is None:
                failures += 1
                log.warning("expert failed on seed %d (%d failures so far)", ep_seed, failures)
                if failures > max_failures:
                    raise RecordError(f"{robot}/{task}: the expert failed {failures} times; stopping")
                continue
            for frame in result["frames"]:
                dataset.add_frame({**frame, "task": result["instruction"]})
            dataset.save_episode()
            seeds.append(ep_seed)
            bar.update(1)
            if len(seeds) - len(previous.get("episode_seeds", [])) >= episodes:
                break
        bar.close()
        dataset.finalize()
        meta = {
            "locksmith_version": __version__,
            "robot": robot,
            "task": task,
            "camera": camera,
            "episode_seeds": seeds,
            "expert_failures": failures + int(previous.get("expert_failures", 0)),
            "seed": seed,
            "frames_after_success": frames_after_success(spec.control_rate_hz),
            "execution_noise_m": noise,
            "start_jitter_m": start_jitter,
            "expert_version": _expert_version(),
            # Wall-clock seconds of every recording that made the folder (None once one is unknown).
            "recording_seconds": _recording_seconds(previous, appending, time.perf_counter() - started),
        }
        (tmp / SPEC_FILE).write_text(spec.to_yaml())
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2))
    except BaseException:
        _discard(dataset)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    swap_into_place(tmp, out)
    return out
