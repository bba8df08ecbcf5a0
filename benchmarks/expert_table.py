"""Expert success table: every (robot, task), N seeded episodes each, on both cores.

    .venv/bin/python benchmarks/expert_table.py --episodes 100 [--robots panda,ur5e] [--tasks lift]

Prints a Markdown table (success count, rate, seconds per episode) for docs/benchmarks.md.
Seeds start at 1,000,000,000: disjoint from the demonstration seeds of `locksmith demos`.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time

from locksmith.embodiment.registry import BUNDLED_ROBOTS
from locksmith.sim.tasks import TASKS

SEED_BASE = 1_000_000_000


def run_pair(args: tuple[str, str, int, str]) -> tuple[str, str, int, int, float]:
    from locksmith.sim.env import TabletopEnv
    from locksmith.sim.expert import ScriptedExpert, run_expert_episode

    robot, task, episodes, slice_name = args
    env = TabletopEnv(robot, task, slice_name=slice_name)
    expert = ScriptedExpert(env)
    ok = 0
    start = time.perf_counter()
    for k in range(episodes):
        gen = run_expert_episode(env, SEED_BASE + k, expert)
        try:
            while True:
                next(gen)
        except StopIteration as stop:
            ok += bool(stop.value)
    return robot, task, ok, episodes, (time.perf_counter() - start) / episodes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--robots", default=",".join(BUNDLED_ROBOTS))
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--slice", default="nominal")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    pairs = [(r, t, args.episodes, args.slice) for r in args.robots.split(",") for t in args.tasks.split(",")]
    with mp.get_context("spawn").Pool(args.workers) as pool:
        results = pool.map(run_pair, pairs, chunksize=1)
    tasks = args.tasks.split(",")
    table = {(r, t): (ok, n, sec) for r, t, ok, n, sec in results}
    print(f"slice: {args.slice}, {args.episodes} episodes per cell (success, seconds per episode)\n")
    print("| robot | " + " | ".join(tasks) + " |")
    print("|---|" + "---|" * len(tasks))
    for robot in args.robots.split(","):
        cells = []
        for task in tasks:
            ok, n, sec = table[(robot, task)]
            cells.append(f"{ok}/{n} ({100 * ok / n:.0f}%, {sec:.2f} s)")
        print(f"| {robot} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
