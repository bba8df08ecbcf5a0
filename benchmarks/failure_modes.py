"""Why closed-loop pick_place episodes fail: counts of lifted, placed-but-not-released, success.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/failure_modes.py --checkpoint runs/prior/policy --robot z1 --episodes 40

Rolls the policy out on the evaluation seeds (the first N of `locksmith eval`'s) exactly as
`locksmith eval` does (its rollout, 8 environments batched, every action through its shield),
and per episode records whether the named cube was lifted 3 cm and whether it came to rest on
the named pad while the task was not yet done (placed, gripper still closed). Failures that
never lift (``episodes - lifted``) are failed grasps.
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
    parser.add_argument("--envs", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(1)

    from locksmith.evaluate.evaluator import make_shield, shield_filter
    from locksmith.evaluate.rollout import EVAL_SEED_BASE, PolicyAgent, rollout
    from locksmith.policy.policy import CrossEmbodimentPolicy
    from locksmith.sim.env import TabletopEnv
    from locksmith.sim.tasks import PAD_HALF

    policy = CrossEmbodimentPolicy.from_pretrained(args.checkpoint).eval()
    envs = [TabletopEnv(args.robot, "pick_place") for _ in range(args.envs)]
    shields = [make_shield(env, policy) for env in envs]
    lifted: dict[int, bool] = {}
    placed: dict[int, bool] = {}

    def watch(seed: int, env: TabletopEnv) -> None:
        state = env.task_state()
        cube = state.object_pos
        lifted[seed] = lifted.get(seed, False) or bool(cube[2] > state.object_half + 0.03)
        on_pad = bool(np.all(np.abs(cube[:2] - state.pad_pos[:2]) < PAD_HALF))
        placed[seed] = placed.get(seed, False) or (lifted[seed] and on_pad and bool(cube[2] < state.object_half + 0.01))

    seeds = [EVAL_SEED_BASE + k for k in range(args.episodes)]
    results = rollout(envs, PolicyAgent(policy, args.robot), seeds, action_filter=shield_filter(envs, shields),
                      after_step=watch)
    counts = {
        "episodes": len(results),
        "success": sum(r.success for r in results),
        "lifted": sum(lifted[r.seed] for r in results),
        "placed_not_released": sum(placed[r.seed] and not r.success for r in results),
    }
    print(json.dumps({"checkpoint": str(args.checkpoint), "robot": args.robot, **counts}))


if __name__ == "__main__":
    main()
