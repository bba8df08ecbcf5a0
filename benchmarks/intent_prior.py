"""An intent prior on its own pool and, zero-shot, on the held-out targets.

    .venv/bin/python benchmarks/intent_prior.py PRIOR [--targets so101,mobile_panda,aloha]
        [--pool-episodes 100] [--episodes 30] [--block 1] [--workers 1] [--out FILE.json]

PRIOR is an intent prior's policy folder (`locksmith pretrain --action-space intent`). Each pool
robot runs the prior itself; each target gets the zero-shot key (`locksmith adapt --demos 0`: its
frame and decoder built from its spec, the prior's trunk, nothing trained). Every episode runs
closed loop on `pick_place`, every command through the robot's shield, on the evaluation seeds of
one block (block 1 is the audit's reporting block; the prior's horizons were chosen on the
validation range, disjoint from both). Prints success with 95 % Wilson intervals.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("prior", type=Path)
    parser.add_argument("--targets", default="so101,mobile_panda,aloha")
    parser.add_argument("--pool-episodes", type=int, default=100, help="episodes per pool robot (0: skip the pool)")
    parser.add_argument("--episodes", type=int, default=30, help="episodes per target")
    parser.add_argument("--block", type=int, default=1, help="evaluation seed block")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="also write the figures here (JSON)")
    args = parser.parse_args()

    from locksmith.embodiment.registry import load_robot_spec
    from locksmith.evaluate.evaluator import evaluate
    from locksmith.policy.policy import CrossEmbodimentPolicy
    from locksmith.train.adapt import adapt

    prior = CrossEmbodimentPolicy.from_pretrained(args.prior)
    if not prior.config.intent:
        raise SystemExit(f"{args.prior}: not an intent prior (action_space {prior.config.action_space!r})")
    rows = []

    def run(kind: str, robot: str, checkpoint: Path, episodes: int) -> None:
        start = time.perf_counter()
        result = evaluate(robot, "pick_place", episodes, checkpoint=checkpoint, seed=args.block, workers=args.workers)
        wins = round(result["success_rate"] * result["episodes"])
        rows.append({"kind": kind, "robot": robot, "successes": wins, "episodes": result["episodes"],
                     "success_rate": result["success_rate"], "ci95": result["ci95"],
                     "shield_interventions": result["shield_interventions"],
                     "seconds": time.perf_counter() - start})
        lo, hi = result["ci95"]
        print(f"{kind:9s} {robot:13s} {wins:3d}/{result['episodes']:<3d} {100 * result['success_rate']:5.1f} % "
              f"[{100 * lo:.0f}, {100 * hi:.0f}]  ({time.perf_counter() - start:.0f} s)", flush=True)

    if args.pool_episodes > 0:
        for robot in sorted(prior.stems):
            run("pool", robot, args.prior, args.pool_episodes)
    with tempfile.TemporaryDirectory() as tmp:
        for robot in [t for t in args.targets.split(",") if t]:
            key = Path(tmp) / robot
            adapt(args.prior, None, "head", key, demos=0, prior=prior, spec=load_robot_spec(robot))
            run("zero-shot", robot, key / "policy", args.episodes)
    if args.out is not None:
        args.out.write_text(json.dumps({"prior": str(args.prior), "block": args.block, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
