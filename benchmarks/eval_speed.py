"""Closed-loop evaluation speed on one core: control steps/s with batched policy inference.

    .venv/bin/python benchmarks/eval_speed.py [--robots panda,so101] [--episodes 16] [--envs 8] [--checkpoint DIR]

A default-size policy acts for `--envs` environments at once, re-planning every half chunk,
every action through the safety shield, exactly as `locksmith eval` runs in each of its worker
processes. One torch thread. With `--checkpoint` (a trained prior, e.g. `runs/prior/policy`) the
policy is that checkpoint and the shield gets its action stats, as in `locksmith eval`; robots
the checkpoint does not know are skipped. Without it the weights are random: inference costs the
same, but random commands make the shield bisect its workspace check on most steps, which a
trained policy rarely needs.

Besides the rate, each row splits the time into policy inference, MuJoCo physics (`mj_step`)
and the rest (environment, shield, observation), and gives the rate that physics alone would
allow: an upper bound for any speed-up outside the simulator.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")


def main() -> None:
    import mujoco
    import torch

    from locksmith.embodiment.registry import BUNDLED_ROBOTS, load_bundled_spec
    from locksmith.evaluate.evaluator import make_shield, shield_filter
    from locksmith.evaluate.rollout import EVAL_SEED_BASE, PolicyAgent, rollout
    from locksmith.policy.config import EmbodimentConfig, PolicyConfig
    from locksmith.policy.policy import CrossEmbodimentPolicy
    from locksmith.sim.env import TabletopEnv

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--robots", default=",".join(BUNDLED_ROBOTS))
    parser.add_argument("--task", default="pick_place")
    parser.add_argument("--episodes", type=int, default=16)
    parser.add_argument("--envs", type=int, default=8)
    parser.add_argument("--checkpoint", default=None, help="a trained policy folder (default: random weights)")
    args = parser.parse_args()
    torch.set_num_threads(1)

    physics = [0.0]
    mj_step = mujoco.mj_step

    def timed_step(*a, **k):
        t0 = time.perf_counter()
        mj_step(*a, **k)
        physics[0] += time.perf_counter() - t0

    mujoco.mj_step = timed_step  # the environment calls mujoco.mj_step once per control step
    trained = CrossEmbodimentPolicy.from_pretrained(args.checkpoint) if args.checkpoint else None
    print(f"{args.envs} envs on 1 core, shield on, policy: {args.checkpoint or 'random weights'}\n")
    print("| robot | control steps/s | inference | physics | rest | physics-only bound (steps/s) |")
    print("|---|---|---|---|---|---|")
    for robot in args.robots.split(","):
        spec = load_bundled_spec(robot)
        if trained is not None and robot not in trained.stems:
            continue
        policy = trained if trained is not None else CrossEmbodimentPolicy(PolicyConfig(embodiments=(EmbodimentConfig.from_spec(spec),))).eval()
        envs = [TabletopEnv(robot, args.task) for _ in range(args.envs)]
        shielded = shield_filter(envs, [make_shield(env, trained) for env in envs])

        agent = PolicyAgent(policy, robot)
        inference = [0.0]
        predict = type(policy).predict_action_chunk

        def timed(*a, policy=policy, predict=predict, **k):
            t0 = time.perf_counter()
            out = predict(policy, *a, **k)
            inference[0] += time.perf_counter() - t0
            return out

        policy.predict_action_chunk = timed
        rollout(envs, agent, [EVAL_SEED_BASE])  # warm-up (encoder load, first compile of paths)
        inference[0] = physics[0] = 0.0
        start = time.perf_counter()
        results = rollout(envs, agent, [EVAL_SEED_BASE + k for k in range(args.episodes)], action_filter=shielded)
        seconds = time.perf_counter() - start
        steps = sum(r.steps for r in results)
        rest = seconds - inference[0] - physics[0]
        print(f"| {robot} | {steps / seconds:.0f} | {100 * inference[0] / seconds:.0f} % | "
              f"{100 * physics[0] / seconds:.0f} % | {100 * rest / seconds:.0f} % | {steps / physics[0]:.0f} |")
        del policy.predict_action_chunk


if __name__ == "__main__":
    main()
