"""Closed-loop evaluation over slices, every action through the robot's safety shield.

Episodes are split across worker processes (both cores); inside each, several environments
step in lock-step and the policy's inference is batched across them. Evaluation seeds start at
`EVAL_SEED_BASE`, disjoint from every demonstration seed. A checkpoint is one of ours, an ACT
peer folder (`locksmith.train.act_peer`) or a plain LeRobot checkpoint (`lerobot-train`'s
``pretrained_model``, `locksmith.evaluate.lerobot_policy`); `ACTAgent` acts for the last two.
Results:

    {"robot", "task", "agent", "success_rate", "episodes", "ci95": [lo, hi] (Wilson),
     "per_slice": {slice: {"success_rate", "episodes", "ci95", "shield_interventions", "failed_seeds",
                           "seeds": [evaluation seed, ascending], "outcomes": [0/1 per seed]}},
     "shield_interventions": {kind: count}, "mean_episode_seconds", "seeds": [first, last]}
"""

from __future__ import annotations

import logging
import math
import multiprocessing as mp
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from locksmith.embodiment.registry import install_registrations, registrations
from locksmith.evaluate.rollout import EVAL_SEED_BASE, ExpertAgent, PolicyAgent, evaluation_seeds, rollout
from locksmith.sim.slices import SLICES, check_slice

log = logging.getLogger(__name__)


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95 % Wilson score interval of a binomial proportion."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True)
class EvalJob:
    robot: str
    task: str
    slice_name: str
    seeds: tuple[int, ...]
    checkpoint: str | None  # None: the scripted expert
    n_envs: int
    shield: bool
    n_action_steps: int | None = None  # re-planning horizon; None: the checkpoint's own


def make_shield(env, policy, action_stats=None):
    """The shield `locksmith eval` puts between a policy and ``env``: the spec's limits, the
    policy's action stats for this robot (none for the expert; ``action_stats`` where no policy
    object is at hand, as in the LeRobot env plugin) and an FK of its own."""
    from locksmith.embodiment.safety import SafetyShield
    from locksmith.sim.ik import RobotIK

    stats = policy.stats.get(env.spec_.name) if policy is not None else action_stats
    ik = RobotIK(env.spec_.name, env.ik_variant)  # its own model: FK must not disturb the env's IK

    return SafetyShield(env.spec_, action_stats=stats, fk=ik.tcp_positions)


def shield_filter(envs, shields, before_step=None):
    """An action filter for `rollout`: every action through its environment's shield.

    The shield is reset at each episode's first step; ``before_step(i, env)`` runs first (a
    recorder, say). Simulated time stands for both clocks: in simulation the observation is
    never stale, so the watchdog stays quiet here and guards real deployments.
    """
    def apply(i, action, obs):
        env = envs[i]
        if env.t == 0:
            shields[i].reset()
        if before_step is not None:
            before_step(i, env)
        now = env.t * env.dt
        return shields[i].filter(action, obs["observation.state"], now, now)

    return apply


def load_policy(checkpoint: str | Path, robot: str):
    """A checkpoint's policy: a `CrossEmbodimentPolicy`, an `ActPeer` for an ACT peer folder, or a
    `LeRobotPolicy` for a plain LeRobot checkpoint (checked against ``robot``).

    Each carries ``stats[robot]`` (the shield's action stats come from the stats saved with it).

    Raises:
        CheckpointError: a missing or damaged checkpoint, or one that does not fit ``robot``.
    """
    from locksmith.evaluate.act_agent import is_act_checkpoint, load_act_peer
    from locksmith.evaluate.lerobot_policy import is_lerobot_checkpoint, load_lerobot_policy

    if is_act_checkpoint(checkpoint):
        return load_act_peer(checkpoint, robot)
    if is_lerobot_checkpoint(checkpoint):
        return load_lerobot_policy(checkpoint, robot)
    from locksmith.policy.policy import CheckpointError, CrossEmbodimentPolicy

    policy = CrossEmbodimentPolicy.from_pretrained(checkpoint)
    if robot not in policy.stems:
        raise CheckpointError(f"{checkpoint}: checkpoint is for robots {sorted(policy.stems)}, not {robot!r}")
    return policy


def env_options(policy) -> dict:
    """`TabletopEnv` keyword arguments a policy needs: rendered images at its size for a LeRobot
    checkpoint that reads cameras, a pixel ACT peer and a pixel policy of ours, none otherwise."""
    from locksmith.evaluate.lerobot_policy import LeRobotPolicy
    from locksmith.train.act_peer import ActPeer

    if isinstance(policy, LeRobotPolicy) and policy.needs_images:
        return {"render": True, "image_size": policy.image_size}
    if isinstance(policy, ActPeer) and policy.image_size is not None:
        return {"render": True, "image_size": policy.image_size}
    config = getattr(policy, "config", None)
    if getattr(config, "pixels", False):
        return {"render": True, "image_size": config.image_size}
    return {}


def make_agent(policy, robot: str, n_action_steps: int | None = None):
    """The agent for a policy from `load_policy` (the scripted expert for ``None``), re-planning
    every ``n_action_steps`` (default: the checkpoint's own)."""
    from locksmith.evaluate.act_agent import ACTAgent
    from locksmith.evaluate.lerobot_policy import LeRobotPolicy
    from locksmith.train.act_peer import ActPeer

    if policy is None:
        return ExpertAgent()
    if isinstance(policy, ActPeer | LeRobotPolicy):
        return ACTAgent(policy, robot, n_action_steps)
    return PolicyAgent(policy, robot, n_action_steps)


def run_job(job: EvalJob) -> dict:
    """Evaluate one slice's seeds in this process; returns raw per-episode results."""
    import torch

    from locksmith.sim.env import TabletopEnv

    torch.set_num_threads(1)
    policy = None if job.checkpoint is None else load_policy(job.checkpoint, job.robot)
    envs = [TabletopEnv(job.robot, job.task, slice_name=job.slice_name, **env_options(policy))
            for _ in range(max(1, job.n_envs))]
    agent = make_agent(policy, job.robot, job.n_action_steps)
    counts: Counter = Counter()
    shields = [make_shield(env, policy) for env in envs] if job.shield else None
    results = rollout(envs, agent, job.seeds,
                      action_filter=shield_filter(envs, shields) if shields is not None else None)
    if shields is not None:
        for shield in shields:
            counts.update({k: v for k, v in shield.interventions.items() if v})
    return {
        "slice": job.slice_name,
        "successes": [r.success for r in results],
        "seconds": [r.seconds for r in results],
        "seeds": [r.seed for r in results],
        "interventions": dict(counts),
    }


def evaluate(robot: str, task: str, episodes: int, slices: list[str] | None = None,
             checkpoint: str | Path | None = None, seed: int = 0, workers: int | None = None,
             n_envs: int = 8, shield: bool = True, n_action_steps: int | None = None,
             seed_base: int = EVAL_SEED_BASE) -> dict:
    """Closed-loop success of a checkpoint (ours or an ACT peer folder; the expert with ``checkpoint=None``).

    ``n_action_steps`` overrides the checkpoint's re-planning horizon; ``seed_base`` moves the
    seed range (`locksmith.evaluate.horizon` chooses horizons on its own validation range)."""
    slices = slices or ["nominal"]
    for name in slices:
        check_slice(name)
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    workers = workers if workers is not None else min(2, os.cpu_count() or 1)
    if n_action_steps is not None and n_action_steps < 1:
        raise ValueError(f"n_action_steps must be >= 1, got {n_action_steps}")
    seeds = evaluation_seeds(episodes, seed, seed_base)
    jobs = []
    for name in slices:
        chunks = [tuple(c) for c in np.array_split(seeds, workers) if len(c)]
        jobs += [EvalJob(robot, task, name, tuple(int(s) for s in c), None if checkpoint is None else str(checkpoint),
                         n_envs, shield, n_action_steps) for c in chunks]
    if workers <= 1 or len(jobs) == 1:
        raw = [run_job(j) for j in jobs]
    else:
        # Spawned workers start empty: hand them this process's registered robots.
        with mp.get_context("spawn").Pool(workers, initializer=install_registrations,
                                          initargs=(registrations(),)) as pool:
            raw = pool.map(run_job, jobs, chunksize=1)
    per_slice: dict[str, dict] = {}
    total = Counter()
    all_success, all_seconds = [], []
    for name in slices:
        parts = [r for r in raw if r["slice"] == name]
        succ = [s for r in parts for s in r["successes"]]
        inter = Counter()
        for r in parts:
            inter.update(r["interventions"])
        total.update(inter)
        all_success += succ
        all_seconds += [s for r in parts for s in r["seconds"]]
        k = int(sum(succ))
        seeds_here = [s for r in parts for s in r["seeds"]]
        order = np.argsort(seeds_here, kind="stable")  # workers return their chunks in any order
        per_slice[name] = {"success_rate": k / len(succ), "episodes": len(succ),
                           "ci95": list(wilson_interval(k, len(succ))), "shield_interventions": dict(inter),
                           "failed_seeds": [sd for sd, ok in zip(seeds_here, succ, strict=True) if not ok],
                           "seeds": [int(seeds_here[i]) for i in order],
                           "outcomes": [int(bool(succ[i])) for i in order]}
    k = int(sum(all_success))
    return {
        "robot": robot, "task": task, "agent": "expert" if checkpoint is None else str(checkpoint),
        "success_rate": k / len(all_success), "episodes": len(all_success),
        "ci95": list(wilson_interval(k, len(all_success))), "per_slice": per_slice,
        "shield_interventions": dict(total), "mean_episode_seconds": float(np.mean(all_seconds)),
        "seeds": [seeds[0], seeds[-1]],
    }


ALL_SLICES = list(SLICES)


def save_failure_videos(result: dict, robot: str, task: str, checkpoint: str | Path | None, out_dir: str | Path,
                        per_slice: int = 3, fps: int = 10, size: int = 96) -> list[str]:
    """Replay up to ``per_slice`` failed episodes of each slice with rendering and write GIFs.

    Rollouts are deterministic given the seed (the policy is deterministic, the simulator too),
    so replaying a failed seed reproduces the failure; only those episodes pay for rendering.
    """
    import imageio.v2 as imageio

    from locksmith.sim.env import TabletopEnv

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    policy = None if checkpoint is None else load_policy(checkpoint, robot)
    for name, info in result["per_slice"].items():
        for seed in info.get("failed_seeds", [])[:per_slice]:
            options = {"render": True, "image_size": size, **env_options(policy)}  # a policy's image size wins
            env = TabletopEnv(robot, task, slice_name=name, **options)
            agent = make_agent(policy, robot)
            frames = []

            def record(i, env, frames=frames):
                frames.append(next(iter(env.render_cameras().values())))

            rollout([env], agent, [seed], action_filter=shield_filter([env], [make_shield(env, policy)], record))
            path = out_dir / f"{robot}_{task}_{name}_seed{seed}.gif"
            tmp = path.with_name(f".{path.name}.tmp.gif")
            imageio.mimsave(tmp, frames[::max(1, int(env.spec_.control_rate_hz) // fps)], duration=1 / fps, loop=0)
            tmp.replace(path)
            written.append(str(path))
            env.close()
    return written
