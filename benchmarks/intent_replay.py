"""How much of a task survives the trip through shared intent: replay each robot's expert
episode as intent through its decoder, open loop, and count successes.

    .venv/bin/python benchmarks/intent_replay.py [--robots panda,so101] [--task pick_place] [--episodes 20]

For each robot and episode seed: the scripted expert runs (no execution noise) and each step's
intent is taken two ways, `measured` (what every recording stores: the TCP's motion over the
step and the commanded closure, `sim.intent.measured_intent`) and `commanded` (the expert's own
TCP goal's motion over the step, and its closure); then the episode is reset to the same seed and
the intents are decoded (`sim.intent.IntentDecoder`: differential IK on the robot's model, its
units and gripper range) and executed in order, with no feedback from the state, holding still
for up to one second after the last one. A success rate near the expert's means a policy that
predicted the expert's intent perfectly would succeed through the decoder on that robot: the
decoder's ceiling, not any policy's. Also the decoder's cost per control step.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")


def _expert_intents(env, expert, seed: int):
    """(success, measured intents, commanded intents) of one noise-free expert episode."""
    import numpy as np

    from locksmith.sim.intent import ARM_INTENT, measured_intent

    env.reset(seed=seed)
    expert.reset()
    arms = [a.name for a in env.rig.arms]
    measured, commanded = [], []
    for _ in range(env.horizon):
        goal_before = expert.goal_tcp.copy()  # set by reset: the TCP at the start
        tcp_before = {a: env.tcp_base_frame(a) for a in arms}
        base_before = env.base_pose() if env.rig.base_joints else None
        action = expert.act()
        _, _, terminated, truncated, _ = env.step(action)
        m = measured_intent(env, tcp_before, base_before, env.closure_cmd)
        c = m.copy()
        # the expert's own TCP goal moved for its active arm; the other arms hold still
        i = arms.index(expert.arm)
        c[ARM_INTENT * i: ARM_INTENT * i + 3] = (expert.goal_tcp - goal_before) / env.dt
        for j, arm in enumerate(arms):
            if arm != expert.arm:
                c[ARM_INTENT * j: ARM_INTENT * j + 3] = 0.0
        measured.append(m)
        commanded.append(c)
        if terminated:
            return True, np.array(measured), np.array(commanded)
        if truncated:
            break
    return False, np.array(measured), np.array(commanded)


def _replay(env, seed: int, intents) -> tuple[bool, float]:
    """Success of decoding ``intents`` open loop from the same start; seconds per decode."""

    from locksmith.sim.intent import ARM_INTENT, decoder_for

    env.reset(seed=seed)
    decoder = decoder_for(env)
    hold = intents[-1].copy()
    moving = [k for k in range(len(hold)) if k % ARM_INTENT != 3 or k >= ARM_INTENT * len(env.rig.arms)]
    hold[moving] = 0.0  # still, the same closure
    extra = int(round(1.0 / env.dt))
    spent, steps = 0.0, 0
    for intent in list(intents) + [hold] * extra:
        t0 = time.perf_counter()
        action = decoder.decode(intent)
        spent += time.perf_counter() - t0
        steps += 1
        _, _, terminated, truncated, _ = env.step(action)
        if terminated:
            return True, spent / steps
        if truncated:
            break
    return False, spent / max(steps, 1)


def main() -> None:
    from locksmith.embodiment.registry import BUNDLED_ROBOTS
    from locksmith.sim.env import TabletopEnv
    from locksmith.sim.expert import ScriptedExpert

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--robots", default=",".join(BUNDLED_ROBOTS))
    parser.add_argument("--task", default="pick_place")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=0)
    args = parser.parse_args()
    print("| robot | action | expert | measured intent, decoded | commanded intent, decoded | decode ms/step |")
    print("|---|---|---|---|---|---|")
    for robot in args.robots.split(","):
        env = TabletopEnv(robot, args.task)
        expert = ScriptedExpert(env)
        ok = {"expert": 0, "measured": 0, "commanded": 0}
        cost = []
        for seed in range(args.first_seed, args.first_seed + args.episodes):
            success, measured, commanded = _expert_intents(env, expert, seed)
            ok["expert"] += success
            if not success:
                continue  # the decoder's ceiling is measured on episodes the expert solves
            for name, intents in (("measured", measured), ("commanded", commanded)):
                replayed, seconds = _replay(env, seed, intents)
                ok[name] += replayed
                cost.append(seconds)
        n = args.episodes
        print(f"| {robot} | {env.spec_.action_kind} | {ok['expert']}/{n} | {ok['measured']}/{ok['expert']} | "
              f"{ok['commanded']}/{ok['expert']} | {1000 * sum(cost) / max(len(cost), 1):.2f} |", flush=True)
        env.close()


if __name__ == "__main__":
    main()
