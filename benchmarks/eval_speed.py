"""Closed-loop evaluation speed on one core: control steps/s with batched policy inference.

    .venv/bin/python benchmarks/eval_speed.py [--robots panda,so101] [--episodes 16] [--envs 8]

The default-size policy (random weights: speed does not depend on them) acts for `--envs`
environments at once, re-planning every half chunk, every action through the safety shield,
exactly as `locksmith eval` runs in each of its worker processes. One torch thread.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")


def main() -> None:
    import torch

    from locksmith.embodiment.registry import BUNDLED_ROBOTS, load_bundled_spec
    from locksmith.evaluate.evaluator import _make_shield, shield_filter
    from locksmith.evaluate.rollout import EVAL_SEED_BASE, PolicyAgent, rollout
    from locksmith.policy.config import EmbodimentConfig, PolicyConfig
    from locksmith.policy.policy import CrossEmbodimentPolicy
    from locksmith.sim.env import TabletopEnv

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--robots", default=",".join(BUNDLED_ROBOTS))
    parser.add_argument("--task", default="pick_place")
    parser.add_argument("--episodes", type=int, default=16)
    parser.add_argument("--envs", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"| robot | control steps/s (1 core, {args.envs} envs, shield on) | of which policy inference |")
    print("|---|---|---|")
    for robot in args.robots.split(","):
        spec = load_bundled_spec(robot)
        policy = CrossEmbodimentPolicy(PolicyConfig(embodiments=(EmbodimentConfig.from_spec(spec),))).eval()
        envs = [TabletopEnv(robot, args.task) for _ in range(args.envs)]
        shielded = shield_filter(envs, [_make_shield(env, None) for env in envs])

        agent = PolicyAgent(policy, robot)
        inference = [0.0]
        predict = policy.predict_action_chunk

        def timed(*a, **k):
            t0 = time.perf_counter()
            out = predict(*a, **k)
            inference[0] += time.perf_counter() - t0
            return out

        policy.predict_action_chunk = timed
        rollout(envs, agent, [EVAL_SEED_BASE])  # warm-up (encoder load, first compile of paths)
        inference[0] = 0.0
        start = time.perf_counter()
        results = rollout(envs, agent, [EVAL_SEED_BASE + k for k in range(args.episodes)], action_filter=shielded)
        seconds = time.perf_counter() - start
        steps = sum(r.steps for r in results)
        print(f"| {robot} | {steps / seconds:.0f} | {100 * inference[0] / seconds:.0f} % |")


if __name__ == "__main__":
    main()
