"""Closed-loop rollouts of a policy (or the scripted expert) in the simulator.

Several environments step in lock-step and the policy's inference is batched across them; an
environment that finished its episode waits (its row is dropped from the batch).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from locksmith.sim.env import TabletopEnv

EVAL_SEED_BASE = 2_000_000_000  # disjoint from demonstration seeds (see data.record)
SEED_BLOCK = 100_000  # seeds per block: block b of a base holds base + SEED_BLOCK * b + i


def evaluation_seeds(episodes: int, block: int = 0, base: int = EVAL_SEED_BASE) -> list[int]:
    """The seeds of ``episodes`` evaluation (or, from another base, validation) episodes of a block."""
    first = base + SEED_BLOCK * block
    return list(range(first, first + episodes))


@dataclass
class EpisodeResult:
    seed: int
    success: bool
    steps: int
    seconds: float
    interventions: dict[str, int] = field(default_factory=dict)


class Agent:
    """What a rollout needs from a controller: reset per episode, act for a batch of envs."""

    def reset(self, envs: Sequence[TabletopEnv]) -> None:  # noqa: D401
        raise NotImplementedError

    def act(self, envs: Sequence[TabletopEnv], active: Sequence[int], obs: Sequence[dict]) -> np.ndarray:
        raise NotImplementedError


class ExpertAgent(Agent):
    def reset(self, envs):
        from locksmith.sim.expert import ScriptedExpert

        self.experts = [ScriptedExpert(env) for env in envs]

    def act(self, envs, active, obs):
        return np.stack([self.experts[i].act() for i in active])


class PolicyAgent(Agent):
    """A `CrossEmbodimentPolicy` acting for one robot, batched over environments. An intent
    policy's chunks are intent: each environment's `IntentDecoder` (built from the robot's model
    and spec at the episode's start) turns the next one into the robot's command at every step.
    A pixel policy reads the robot's first camera, which its environments render
    (`evaluator.env_options`)."""

    def __init__(self, policy, robot: str, n_steps: int | None = None):
        self.policy = policy
        self.robot = robot
        self.n_steps = n_steps or policy.config.embodiment(robot).n_action_steps
        self.intent = policy.config.intent
        self.camera = policy.camera_feature(robot) if policy.config.pixels else None  # what a pixel policy reads

    def reset(self, envs):
        from locksmith.sim.intent import decoder_for

        self.queues: list[list[np.ndarray]] = [[] for _ in envs]
        self.decoders = [decoder_for(env) for env in envs] if self.intent else None

    def act(self, envs, active, obs):
        need = [k for k, i in enumerate(active) if not self.queues[i]]
        if need:
            state = np.stack([obs[k]["observation.state"] for k in need])
            env_state = np.stack([obs[k]["observation.environment_state"] for k in need])
            texts = [envs[active[k]].instruction for k in need]
            image = None if self.camera is None else np.stack([obs[k][self.camera] for k in need])
            chunk = self.policy.predict_action_chunk(self.robot, state, env_state, texts, image).cpu().numpy()
            for row, k in enumerate(need):
                self.queues[active[k]] = list(chunk[row, : self.n_steps])
        if self.intent:
            return np.stack([self.decoders[i].decode(self.queues[i].pop(0)) for i in active])
        return np.stack([self.queues[i].pop(0) for i in active])


def rollout(envs: Sequence[TabletopEnv], agent: Agent, seeds: Sequence[int],
            action_filter: Callable[[int, np.ndarray, dict], np.ndarray] | None = None,
            on_episode: Callable[[EpisodeResult], None] | None = None,
            after_step: Callable[[int, TabletopEnv], None] | None = None) -> list[EpisodeResult]:
    """Run one episode per seed, ``len(envs)`` at a time, batching the agent across them.

    ``after_step(seed, env)`` (optional) is called after every control step of an episode, so
    a caller can watch the scene (e.g. `benchmarks/failure_modes.py`) without its own loop."""
    results: list[EpisodeResult] = []
    seeds = list(seeds)
    for start in range(0, len(seeds), len(envs)):
        group = seeds[start:start + len(envs)]
        batch_envs = list(envs[: len(group)])
        obs = [env.reset(seed=s)[0] for env, s in zip(batch_envs, group, strict=True)]
        agent.reset(batch_envs)
        active = list(range(len(group)))
        t0 = time.perf_counter()
        steps = [0] * len(group)
        done_at: dict[int, EpisodeResult] = {}
        while active:
            actions = agent.act(batch_envs, active, [obs[i] for i in active])
            still = []
            for row, i in enumerate(active):
                action = actions[row]
                if action_filter is not None:
                    action = action_filter(i, action, obs[i])
                obs[i], _, terminated, truncated, _ = batch_envs[i].step(action)
                steps[i] += 1
                if after_step is not None:
                    after_step(group[i], batch_envs[i])
                if terminated or truncated:
                    done_at[i] = EpisodeResult(group[i], bool(terminated), steps[i], time.perf_counter() - t0)
                else:
                    still.append(i)
            active = still
        for i in range(len(group)):
            results.append(done_at[i])
            if on_episode is not None:
                on_episode(done_at[i])
    return results
