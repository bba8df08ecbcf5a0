"""The pretraining stage as a recipe: which robots, tasks and data, then `pretrain`.

Demonstrations the recipe needs are recorded once into ``out/data/<robot>_<task>`` and reused
on a rerun (a dataset with at least as many episodes is cut down to the first N).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from locksmith.data.loading import Demonstrations, concat_demonstrations, load_demonstrations
from locksmith.data.record import DEFAULT_DEMO_NOISE, execution_noise, read_locksmith_meta, record_demos
from locksmith.train.loop import TrainConfig
from locksmith.train.pretrain import pretrain

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PriorRecipe:
    robots: tuple[str, ...] = ("panda", "ur5e", "vx300s", "z1")
    tasks: tuple[str, ...] = ("pick_place",)
    # 200: with the settled grasp and 5,000 steps, every pool robot is at 99-100 % closed loop and
    # the Z1 at 91 % (docs/benchmarks.md, prior J; 400 demos and 15,000 steps gave it 84 %).
    demos_per_robot: int = 200
    weights: dict[str, float] | None = None
    temperature: float = 1.0
    # DART-style execution noise (m) for the demonstrations the recipe records
    # (`sim.expert.ExecutionNoise`); 0: the expert's own commands.
    demo_noise: float = DEFAULT_DEMO_NOISE
    # Trunk sizes (d_model, n_layers, n_heads, d_feedforward, n_readouts) that differ from
    # PolicyConfig's defaults; empty: the defaults.
    trunk: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.demos_per_robot < 1:
            raise ValueError(f"demos_per_robot={self.demos_per_robot} must be >= 1")
        if not self.robots:
            raise ValueError("no robots in the pool")
        if not (np.isfinite(self.demo_noise) and self.demo_noise >= 0):
            raise ValueError(f"demo_noise={self.demo_noise} must be a distance >= 0 in metres")


def ensure_demos(robot: str, task: str, episodes: int, root: Path, seed: int = 0,
                 noise: float = 0.0) -> Demonstrations:
    """The first ``episodes`` demos of (robot, task) at ``root``, recording what is missing.

    ``root`` is the caller's own folder: demos there recorded with another execution noise are
    recorded anew.
    """
    recorded = (root / "meta" / "info.json").is_file()
    if recorded and execution_noise(read_locksmith_meta(root)) == noise:
        demos = load_demonstrations(root)
        if demos.num_episodes >= episodes:
            return demos.subset(range(episodes)) if demos.num_episodes > episodes else demos
        record_demos(robot, task, episodes - demos.num_episodes, root, seed=seed, append=True, noise=noise)
    else:
        if recorded:
            log.info("%s was recorded with another execution noise than %g m: recording it anew", root, noise)
        record_demos(robot, task, episodes, root, seed=seed, overwrite=root.exists(), noise=noise)
    return load_demonstrations(root)


def run_pretrain(recipe: PriorRecipe, train_config: TrainConfig, out: str | Path,
                 datasets: list[str] | None = None, resume: bool = False, progress: bool = True) -> dict:
    out = Path(out)
    by_robot: dict[str, list[Demonstrations]] = {}
    if datasets:
        for root in datasets:
            demos = load_demonstrations(root)
            by_robot.setdefault(demos.spec.name, []).append(demos)
    else:
        for robot in recipe.robots:
            for task in recipe.tasks:
                demos = ensure_demos(robot, task, recipe.demos_per_robot, out / "data" / f"{robot}_{task}",
                                     noise=recipe.demo_noise)
                by_robot.setdefault(robot, []).append(demos)
    demos = {robot: concat_demonstrations(parts) for robot, parts in by_robot.items()}
    weights = recipe.weights if recipe.weights and set(recipe.weights) == set(demos) else None
    policy, summary = pretrain(demos, out, train_config, weights=weights, temperature=recipe.temperature,
                               resume=resume, progress=progress, **recipe.trunk)
    return {**summary, "policy": str(out / "policy"), "parameters": policy.num_parameters()}
