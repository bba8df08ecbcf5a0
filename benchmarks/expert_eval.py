"""The scripted expert measured through `locksmith eval --expert`, every (robot, task).

    .venv/bin/python benchmarks/expert_eval.py --episodes 100 [--robots panda,ur5e] [--tasks lift]
        [--workers 2] [--out runs/expert_eval]

Each cell is one `locksmith eval --expert ... --json` run: the same evaluator, evaluation seeds
and safety shield as a learned policy gets. The JSON of every cell is kept in --out (a rerun
skips cells already measured with the same episode count) and a Markdown table is printed:
success, Wilson 95 % interval, and the shield's interventions summed over the episodes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from locksmith.atomic import write_json_atomic
from locksmith.embodiment.registry import BUNDLED_ROBOTS
from locksmith.sim.tasks import TASKS

LOCKSMITH = [sys.executable, "-m", "locksmith.cli"]


def measure(robot: str, task: str, episodes: int, workers: int, out: Path) -> dict:
    path = out / f"{robot}-{task}.json"
    if path.exists():
        result = json.loads(path.read_text())
        if result.get("episodes") == episodes:
            return result
    cmd = [*LOCKSMITH, "eval", "--expert", "--robot", robot, "--task", task, "--episodes", str(episodes),
           "--workers", str(workers), "--json", str(path)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    result = json.loads(path.read_text())
    result["command_seconds"] = time.perf_counter() - start
    write_json_atomic(path, result)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--robots", default=",".join(BUNDLED_ROBOTS))
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("runs/expert_eval"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    robots, tasks = args.robots.split(","), args.tasks.split(",")
    rows, worst = [], 1.0
    for robot in robots:
        cells = []
        for task in tasks:
            r = measure(robot, task, args.episodes, args.workers, args.out)
            ok = round(r["success_rate"] * r["episodes"])
            lo, hi = r["ci95"]
            shield = sum(r.get("shield_interventions", {}).values())
            worst = min(worst, r["success_rate"])
            cells.append(f"{ok}/{r['episodes']} [{100 * lo:.0f}, {100 * hi:.0f}] ({shield})")
            print(f"{robot} {task}: {ok}/{r['episodes']}", file=sys.stderr, flush=True)
        rows.append(f"| {robot} | " + " | ".join(cells) + " |")
    print(f"`locksmith eval --expert`, slice nominal, {args.episodes} episodes per cell: "
          "successes [Wilson 95 %] (shield interventions)\n")
    print("| robot | " + " | ".join(tasks) + " |")
    print("|---|" + "---|" * len(tasks))
    print("\n".join(rows))
    print(f"\nlowest cell: {100 * worst:.0f} %")


if __name__ == "__main__":
    main()
