"""The pretraining stage as a recipe: which robots, tasks and data, then `pretrain`, then the
re-planning horizons chosen on validation episodes: `build_prior`, the one path that
`locksmith pretrain`, the audit's pretraining stage and the published prior all take.

Demonstrations the recipe needs are recorded once into ``out/data/<robot>_<task>`` and reused
on a rerun (a dataset with at least as many episodes is cut down to the first N). Layout of
``out``: ``data/``, ``policy/`` (the prior), ``checkpoints/``, ``metrics.jsonl``,
``train_config.json`` and ``pretrain.json`` (what was built, how long each stage took, where).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from locksmith.atomic import write_json_atomic
from locksmith.data.loading import (
    DatasetError,
    Demonstrations,
    concat_demonstrations,
    load_demonstrations,
)
from locksmith.data.record import (
    DEFAULT_DEMO_NOISE,
    SPEC_FILE,
    execution_noise,
    expert_version,
    read_locksmith_meta,
    record_demos,
    recorded_start_jitter,
)
from locksmith.policy import DEFAULT_IMAGE_SIZE, omit_defaults
from locksmith.sim.cameras import IMAGE_PREFIX
from locksmith.train.defaults import (
    DEMO_START_JITTER,
    DEMOS_PER_ROBOT,
    MAX_START_JITTER,
    POOL_ROBOTS,
    POOL_TASKS,
    PRETRAIN_BATCH_SIZE,
    PRETRAIN_CHECKPOINT_EVERY,
    PRETRAIN_LR,
    PRETRAIN_STEPS,
    TUNE_EPISODES,
)
from locksmith.train.loop import TrainConfig
from locksmith.train.pretrain import pretrain
from locksmith.train.scene_frames import MAX_SCENE_FRAMES, render_scene_frames

log = logging.getLogger(__name__)


def recipe_trunk(fields: dict) -> dict:
    """A pretraining recipe's ``trunk`` from PolicyConfig fields: those at their default left out
    (`omit_defaults`), a pixel policy's ``grounding_weight`` 0 unless given (it has no object and
    pad tokens for the grounding head to read), a state policy's picture settings dropped."""
    trunk = omit_defaults(dict(fields))
    if trunk.get("observation") == "pixels":
        trunk.setdefault("grounding_weight", 0.0)
    else:  # a state policy reads no pictures: their settings are not its
        trunk = {k: v for k, v in trunk.items() if k not in ("image_size", "image_shift", "keypoints", "scene_weight",
                                                         "colour_film")}
    return trunk


@dataclass(frozen=True)
class PriorRecipe:
    robots: tuple[str, ...] = POOL_ROBOTS
    tasks: tuple[str, ...] = POOL_TASKS
    demos_per_robot: int = DEMOS_PER_ROBOT  # see `locksmith.train.defaults`
    weights: dict[str, float] | None = None
    temperature: float = 1.0
    # DART-style execution noise (m) for the demonstrations the recipe records
    # (`sim.expert.ExecutionNoise`); 0: the expert's own commands.
    demo_noise: float = DEFAULT_DEMO_NOISE
    # How far (m, per axis) each recorded demonstration's TCP starts from home; 0: from home.
    demo_start_jitter: float = DEMO_START_JITTER
    # PolicyConfig fields that differ from its defaults: trunk sizes (d_model, n_layers, n_heads,
    # d_feedforward, n_readouts) and the action space; empty: the defaults.
    trunk: dict = field(default_factory=dict)
    # A pixel prior's rendered first frames of random layouts per robot, for its scene loss
    # (`train.scene_frames`); 0: none.
    scene_frames: int = 0

    def image_size(self) -> int | None:
        """The camera size a pixel policy reads (its demos are recorded with it); None: state."""
        if self.trunk.get("observation", "state") != "pixels":
            return None
        return int(self.trunk.get("image_size", DEFAULT_IMAGE_SIZE))

    def __post_init__(self) -> None:
        if self.demos_per_robot < 1:
            raise ValueError(f"demos_per_robot={self.demos_per_robot} must be >= 1")
        if not self.robots:
            raise ValueError("no robots in the pool")
        if len(set(self.robots)) != len(self.robots):
            raise ValueError(f"--robots: a robot is named twice in the pool {list(self.robots)}")
        if len(set(self.tasks)) != len(self.tasks):
            raise ValueError(f"--tasks: a task is named twice in {list(self.tasks)}")
        if not (np.isfinite(self.temperature) and 1e-3 <= self.temperature <= 1e3):
            raise ValueError(f"--temperature: {self.temperature} must be between 0.001 and 1000")
        if self.weights is not None:
            for robot, w in self.weights.items():
                if not (np.isfinite(w) and 0 <= w <= 1e6):
                    raise ValueError(f"--weights: the weight of {robot!r} is {w}; weights must be between 0 and 1e6")
            if not sum(self.weights.values()) > 0:
                raise ValueError("--weights: the mixture weights are all zero")
        if not (np.isfinite(self.demo_noise) and 0 <= self.demo_noise <= 0.1):
            raise ValueError(f"demo_noise={self.demo_noise} must be a distance in [0, 0.1] metres")
        if self.scene_frames and (self.image_size() is None or not self.trunk.get("scene_weight", 0) > 0):
            raise ValueError(f"scene_frames={self.scene_frames}: scene frames train a pixel policy's scene loss; "
                             "give --observation pixels and --scene-weight above 0")
        if not 0 <= self.scene_frames <= MAX_SCENE_FRAMES:
            raise ValueError(f"scene_frames={self.scene_frames} must be between 0 and {MAX_SCENE_FRAMES}")
        if not (np.isfinite(self.demo_start_jitter) and 0 <= self.demo_start_jitter <= MAX_START_JITTER):
            raise ValueError(f"demo_start_jitter={self.demo_start_jitter} must be a distance in "
                             f"[0, {MAX_START_JITTER:g}] metres")


def ensure_demos(robot: str, task: str, episodes: int, root: Path, seed: int = 0,
                 noise: float = 0.0, start_jitter: float = 0.0, image_size: int | None = None) -> Demonstrations:
    """The first ``episodes`` demos of (robot, task) at ``root``, recording what is missing.

    With ``image_size`` the robot's cameras are recorded at that size and loaded with the rest
    (`load_demonstrations(images=True)`), for a pixel policy; demos there without them, or at
    another size, are recorded anew.

    ``root`` is the caller's own folder: demos there recorded with another execution noise or
    start jitter, by
    another version of the scripted expert (`EXPERT_VERSION`), or under another version of the
    robot's spec (its units, gripper convention or feature names changed since) are recorded anew.
    """
    from locksmith.embodiment.registry import load_robot_spec
    from locksmith.sim.expert import EXPERT_VERSION

    recorded = (root / "meta" / "info.json").is_file()
    meta = read_locksmith_meta(root) if recorded else {}
    beside = root / SPEC_FILE
    same_spec = beside.is_file() and beside.read_text() == load_robot_spec(robot).to_yaml()
    same_recording = (execution_noise(meta) == noise and recorded_start_jitter(meta) == start_jitter
                      and _camera_size(root, meta) == image_size)
    camera = {"camera": image_size is not None, "image_size": image_size}
    if recorded and same_spec and same_recording and expert_version(meta) == EXPERT_VERSION:
        demos = load_demonstrations(root, images=image_size is not None)
        if demos.num_episodes >= episodes:
            return demos.subset(range(episodes)) if demos.num_episodes > episodes else demos
        record_demos(robot, task, episodes - demos.num_episodes, root, seed=seed, append=True, noise=noise,
                     start_jitter=start_jitter, **camera)
    else:
        if recorded:
            log.info("%s was recorded with another execution noise than %g m, start jitter than %g m or camera "
                     "size than %s, an older expert or another version of %s's spec: recording it anew", root, noise,
                     start_jitter, image_size, robot)
        record_demos(robot, task, episodes, root, seed=seed, overwrite=root.exists(), noise=noise,
                     start_jitter=start_jitter, **camera)
    return load_demonstrations(root, images=image_size is not None)


def _camera_size(root: Path, meta: dict) -> int | None:
    """The square size a dataset's cameras were recorded at (None: no camera, or not square)."""
    if not meta.get("camera"):
        return None
    try:
        features = json.loads((root / "meta" / "info.json").read_text())["features"]
        shapes = {tuple(f["shape"]) for k, f in features.items() if k.startswith(IMAGE_PREFIX)}
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if len(shapes) != 1:
        return None
    shape = shapes.pop()
    return shape[0] if len(shape) == 3 and shape[0] == shape[1] else None


def run_pretrain(recipe: PriorRecipe, train_config: TrainConfig, out: str | Path,
                 datasets: list[str] | None = None, resume: bool = False, progress: bool = True) -> dict:
    out = Path(out)
    by_robot: dict[str, list[Demonstrations]] = {}
    if datasets:
        size = recipe.image_size()  # a pixel recipe reads each dataset's first camera, fitted to its square
        for root in datasets:
            demos = load_demonstrations(root, images=size is not None, image_size=size)
            if size is not None:
                _require_camera(demos)
            by_robot.setdefault(demos.spec.name, []).append(demos)
    else:
        for robot in recipe.robots:
            for task in recipe.tasks:
                demos = ensure_demos(robot, task, recipe.demos_per_robot, out / "data" / f"{robot}_{task}",
                                     noise=recipe.demo_noise, start_jitter=recipe.demo_start_jitter,
                                     image_size=recipe.image_size())
                by_robot.setdefault(robot, []).append(demos)
    demos = {robot: concat_demonstrations(parts) for robot, parts in by_robot.items()}
    weights = recipe.weights if recipe.weights and set(recipe.weights) == set(demos) else None
    frames = None
    if recipe.scene_frames:
        task = tuning_task(recipe.tasks, datasets)
        if task is None:
            raise DatasetError("scene frames are rendered in a simulated task, and the datasets name none")
        frames = {robot: render_scene_frames(robot, task, recipe.scene_frames, recipe.image_size(), progress)
                  for robot in demos}
    policy, summary = pretrain(demos, out, train_config, weights=weights, temperature=recipe.temperature,
                               resume=resume, progress=progress, scene_frames=frames, **recipe.trunk)
    return {**summary, "policy": str(out / "policy"), "parameters": policy.num_parameters()}


def _require_camera(demos: Demonstrations) -> None:
    """A pixel policy reads the spec's first camera: DatasetError naming the dataset when it has none."""
    from locksmith.policy.vision import camera_feature

    try:
        camera = camera_feature(demos.spec)
    except ValueError as err:
        raise DatasetError(f"{demos.root}: {err}") from None
    if camera not in demos.images:
        raise DatasetError(f"{demos.root}: no {camera!r} pictures for a pixel policy (the dataset has "
                           f"{sorted(demos.images) or 'no cameras'}); record it with `locksmith demos --camera`")


DEFAULT_PRETRAIN = TrainConfig(steps=PRETRAIN_STEPS, batch_size=PRETRAIN_BATCH_SIZE, lr=PRETRAIN_LR,
                               checkpoint_every=PRETRAIN_CHECKPOINT_EVERY)
PRETRAIN_RECORD = "pretrain.json"


def tuning_task(tasks: Sequence[str], datasets: Sequence[str | Path] | None = None) -> str | None:
    """The simulated task to choose horizons on: the first recorded one, or the datasets' own
    (their ``meta/locksmith.json``); None when a dataset has no bundled task (a real robot's)."""
    if not datasets:
        return tasks[0] if tasks else None
    from locksmith.sim.tasks import TASKS

    named = [read_locksmith_meta(Path(root)).get("task") for root in datasets]
    return named[0] if all(t in TASKS for t in named) else None


def build_prior(recipe: PriorRecipe, train_config: TrainConfig, out: str | Path,
                datasets: list[str] | None = None, resume: bool = False, progress: bool = True,
                tune_episodes: int = TUNE_EPISODES, tune_workers: int | None = None) -> dict:
    """Pretrain (`run_pretrain`), then choose each robot's re-planning horizon on validation
    episodes (`tune_horizons`; ``tune_episodes=0`` keeps half a chunk); writes ``out/pretrain.json``.

    Returns:
        The record written: recipe, training config, seconds per stage, samples/s, final loss,
        parameters, the horizons chosen, versions and machine.
    """
    from locksmith import __version__
    from locksmith.sim.expert import EXPERT_VERSION

    if tune_episodes < 0:
        raise ValueError(f"tune_episodes must be >= 0, got {tune_episodes}")
    out = Path(out)
    t0 = time.perf_counter()
    summary = run_pretrain(recipe, train_config, out, datasets=datasets, resume=resume, progress=progress)
    t1 = time.perf_counter()
    task = tuning_task(recipe.tasks, datasets)
    horizons = None
    if tune_episodes > 0 and task is not None:
        from locksmith.evaluate.horizon import tune_horizons

        log.info("choosing each robot's re-planning horizon on %d validation episodes of %s", tune_episodes, task)
        horizons = tune_horizons(summary["policy"], task=task, episodes=tune_episodes, workers=tune_workers)
    record = {
        "recipe": {**asdict(recipe), "datasets": list(datasets or [])}, "train": asdict(train_config),
        "pretrain_seconds": t1 - t0, "horizon_seconds": time.perf_counter() - t1,
        "training_seconds": summary["seconds"], "samples_per_s": summary["samples_per_s"],
        "final_loss": summary["final_loss"], "parameters": summary["parameters"],
        "resumed_from": summary["resumed_from"], "horizon_task": task, "horizon_episodes": tune_episodes,
        "horizons": horizons, "policy": summary["policy"], "locksmith_version": __version__,
        "expert_version": EXPERT_VERSION, "torch_threads": _torch_threads(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    write_json_atomic(out / PRETRAIN_RECORD, record)
    return record


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()
