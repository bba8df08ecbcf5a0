"""Why closed-loop episodes fail: counts of each outcome label (`locksmith.evaluate.failures`).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/failure_modes.py --checkpoint runs/prior/policy --robot z1 --episodes 40

Rolls the policy out on the evaluation seeds (the first N of `locksmith eval`'s) exactly as
`locksmith eval` does (its rollout, 8 environments batched, every action through its shield)
and labels every episode with `EpisodeWatcher` (the same labels the audit report's rollout clips
carry): success, never_grasped, wrong_cube, dropped, not_released, not_placed, ... It also
derives from each episode's trace the TCP's offset from the named cube (base frame, metres) at
the first step the gripper counts as closed, how many times the gripper closed, and whether it
held the named cube yet never lifted it (a stall after the grasp; labelled never_grasped).
`--validation` uses the validation seeds that horizon tuning uses instead of the evaluation
seeds, so a diagnosis need not look at reported episodes.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--robot", required=True)
    parser.add_argument("--task", default="pick_place")
    parser.add_argument("--episodes", type=int, default=40)
    parser.add_argument("--envs", type=int, default=8)
    parser.add_argument("--validation", action="store_true", help="validation seeds (from 1.5e9)")
    parser.add_argument("--json", type=Path, help="write the per-episode records here")
    args = parser.parse_args()
    torch.set_num_threads(1)

    from locksmith.evaluate.evaluator import env_options, make_shield, shield_filter
    from locksmith.evaluate.failures import LIFTED, OUTCOMES, EpisodeWatcher
    from locksmith.evaluate.horizon import VALIDATION_SEED_BASE
    from locksmith.evaluate.rollout import EVAL_SEED_BASE, PolicyAgent, rollout
    from locksmith.policy.policy import CrossEmbodimentPolicy
    from locksmith.sim.env import TabletopEnv

    policy = CrossEmbodimentPolicy.from_pretrained(args.checkpoint)
    envs = [TabletopEnv(args.robot, args.task, **env_options(policy)) for _ in range(args.envs)]  # a pixel policy: its camera
    shields = [make_shield(env, policy) for env in envs]
    watcher = EpisodeWatcher()
    base = VALIDATION_SEED_BASE if args.validation else EVAL_SEED_BASE
    seeds = [base + k for k in range(args.episodes)]
    results = rollout(envs, PolicyAgent(policy, args.robot), seeds, action_filter=shield_filter(envs, shields),
                      after_step=watcher)
    records = []
    for r in results:
        trace = watcher.traces[r.seed]
        named = trace[0].named
        closing = [k for k, f in enumerate(trace) if f.closed and (k == 0 or not trace[k - 1].closed)]
        records.append({
            "seed": r.seed, "success": bool(r.success), "outcome": watcher.outcome(r), "closes": len(closing),
            "held": any(f.held == named for f in trace),
            "lifted": any(f.lift[named] > LIFTED for f in trace),
            "tcp_minus_cube_at_first_close": ([round(float(v), 4) for v in trace[closing[0]].tcp_offset]
                                              if closing else None)})
    labels = Counter(rec["outcome"] for rec in records)
    counts = {"episodes": len(results), **{label: labels.get(label, 0) for label in OUTCOMES},
              "held_not_lifted": sum(rec["held"] and not rec["lifted"] for rec in records)}
    print(json.dumps({"checkpoint": str(args.checkpoint), "robot": args.robot, "task": args.task, **counts}))
    if args.json:
        args.json.write_text(json.dumps({"seed_base": base, **counts, "episodes_detail": records}, indent=1))


if __name__ == "__main__":
    main()
