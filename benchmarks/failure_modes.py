"""Why closed-loop pick_place episodes fail: counts of lifted, placed-but-not-released, success.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/failure_modes.py --checkpoint runs/prior/policy --robot z1 --episodes 40

Rolls the policy out on the evaluation seeds (the first N of `locksmith eval`'s) exactly as
`locksmith eval` does (its rollout, 8 environments batched, every action through its shield),
and per episode records whether the named cube was lifted 3 cm and whether it came to rest on
the named pad while the task was not yet done (placed, gripper still closed). Failures that
never lift (``episodes - lifted``) are failed grasps. For every episode it also keeps the TCP's
offset from the named cube (base frame, metres) at the first step the gripper counts as closed,
how many times the gripper closed, and whether it held the cube (gripper closed, jaws stopped
short of shut, TCP within 2 cm of the cube's centre) yet never lifted it: a stall after the
grasp. `--validation` uses the validation seeds that horizon tuning uses instead of the
evaluation seeds, so a diagnosis need not look at reported episodes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

HELD_CLOSURE = 0.95  # closure below this with the gripper closed: the jaws stopped on something


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--robot", required=True)
    parser.add_argument("--episodes", type=int, default=40)
    parser.add_argument("--envs", type=int, default=8)
    parser.add_argument("--validation", action="store_true", help="validation seeds (from 1.5e9)")
    parser.add_argument("--json", type=Path, help="write the per-episode records here")
    args = parser.parse_args()
    torch.set_num_threads(1)

    from locksmith.evaluate.evaluator import make_shield, shield_filter
    from locksmith.evaluate.horizon import VALIDATION_SEED_BASE
    from locksmith.evaluate.rollout import EVAL_SEED_BASE, PolicyAgent, rollout
    from locksmith.policy.policy import CrossEmbodimentPolicy
    from locksmith.sim.env import TabletopEnv
    from locksmith.sim.tasks import PAD_HALF

    policy = CrossEmbodimentPolicy.from_pretrained(args.checkpoint)
    envs = [TabletopEnv(args.robot, "pick_place") for _ in range(args.envs)]
    shields = [make_shield(env, policy) for env in envs]
    lifted: dict[int, bool] = {}
    placed: dict[int, bool] = {}
    closed: dict[int, bool] = {}
    closes: dict[int, int] = {}
    offset_at_close: dict[int, list[float]] = {}
    held: dict[int, bool] = {}  # closed on the named cube: jaws stopped short of shut, TCP at the cube

    def watch(seed: int, env: TabletopEnv) -> None:
        state = env.task_state()
        cube = state.object_pos
        lifted[seed] = lifted.get(seed, False) or bool(cube[2] > state.object_half + 0.03)
        on_pad = bool(np.all(np.abs(cube[:2] - state.pad_pos[:2]) < PAD_HALF))
        placed[seed] = placed.get(seed, False) or (lifted[seed] and on_pad and bool(cube[2] < state.object_half + 0.01))
        now = bool(state.closure[0] > state.gripper_threshold[0])
        if now and not closed.get(seed, False):
            closes[seed] = closes.get(seed, 0) + 1
            offset_at_close.setdefault(seed, [round(float(v), 4) for v in state.tcp_pos[0] - cube])
        closed[seed] = now
        at_cube = bool(np.linalg.norm(state.tcp_pos[0] - cube) < 0.02)
        held[seed] = held.get(seed, False) or bool(now and state.closure[0] < HELD_CLOSURE and at_cube)

    base = VALIDATION_SEED_BASE if args.validation else EVAL_SEED_BASE
    seeds = [base + k for k in range(args.episodes)]
    results = rollout(envs, PolicyAgent(policy, args.robot), seeds, action_filter=shield_filter(envs, shields),
                      after_step=watch)
    counts = {
        "episodes": len(results),
        "success": sum(r.success for r in results),
        "lifted": sum(lifted[r.seed] for r in results),
        "placed_not_released": sum(placed[r.seed] and not r.success for r in results),
        "held_not_lifted": sum(held.get(r.seed, False) and not lifted[r.seed] for r in results),
    }
    print(json.dumps({"checkpoint": str(args.checkpoint), "robot": args.robot, **counts}))
    if args.json:
        records = [{"seed": r.seed, "success": bool(r.success), "lifted": lifted[r.seed], "closes": closes.get(r.seed, 0),
                    "held": held.get(r.seed, False),
                    "tcp_minus_cube_at_first_close": offset_at_close.get(r.seed)} for r in results]
        args.json.write_text(json.dumps({"seed_base": base, **counts, "episodes_detail": records}, indent=1))


if __name__ == "__main__":
    main()
