"""Why closed-loop pick_place episodes fail: counts of lifted, placed-but-not-released, success.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/failure_modes.py --checkpoint runs/prior/policy --robot z1 --episodes 40

Rolls the policy out on the evaluation seeds (the first N of `locksmith eval`'s), every action
through the shield, and per episode records whether the named cube was lifted 3 cm and whether
it came to rest on the named pad while the task was not yet done (placed, gripper still
closed). Failures that never lift are failed grasps.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--robot", required=True)
    parser.add_argument("--episodes", type=int, default=40)
    args = parser.parse_args()
    torch.set_num_threads(1)

    from locksmith.evaluate.evaluator import _make_shield
    from locksmith.evaluate.rollout import EVAL_SEED_BASE, PolicyAgent
    from locksmith.policy.policy import CrossEmbodimentPolicy
    from locksmith.sim.env import TabletopEnv
    from locksmith.sim.tasks import PAD_HALF

    policy = CrossEmbodimentPolicy.from_pretrained(args.checkpoint).eval()
    env = TabletopEnv(args.robot, "pick_place")
    agent, shield = PolicyAgent(policy, args.robot), _make_shield(env, policy)
    counts = {"episodes": args.episodes, "success": 0, "lifted": 0, "placed_not_released": 0, "never_lifted": 0}
    for episode in range(args.episodes):
        obs, _ = env.reset(seed=EVAL_SEED_BASE + episode)
        agent.reset([env])
        shield.reset()
        placed = lifted = success = False
        for _ in range(env.horizon):
            action = agent.act([env], [0], [obs])[0]
            now = env.t * env.dt
            obs, reward, terminated, truncated, _ = env.step(shield.filter(action, obs["observation.state"], now, now))
            state = env.task_state()
            cube = state.object_pos
            lifted |= bool(cube[2] > state.object_half + 0.03)
            on_pad = bool(np.all(np.abs(cube[:2] - state.pad_pos[:2]) < PAD_HALF))
            placed |= lifted and on_pad and bool(cube[2] < state.object_half + 0.01)
            success = bool(reward)
            if terminated or truncated:
                break
        counts["success"] += success
        counts["lifted"] += lifted
        counts["never_lifted"] += not lifted
        counts["placed_not_released"] += placed and not success
    print(json.dumps({"checkpoint": str(args.checkpoint), "robot": args.robot, **counts}))


if __name__ == "__main__":
    main()
