"""Simulator speed on one core: state-only expert episodes per second, and rendered frames/s.

    .venv/bin/python benchmarks/sim_speed.py [--robots panda,so101] [--steps 150] [--episodes 10]

Expert steps include physics, differential IK (mink) and the expert's planning. Episodes are
counted as `--steps` control steps each (the expert's episodes end at success, so the count is
control steps / 150). Rendering: the spec's first camera at 64x64 through OSMesa.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")


def main() -> None:
    from locksmith.embodiment.registry import BUNDLED_ROBOTS
    from locksmith.sim.env import TabletopEnv
    from locksmith.sim.expert import ScriptedExpert

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--robots", default=",".join(BUNDLED_ROBOTS))
    parser.add_argument("--task", default="pick_place")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--frames", type=int, default=300)
    args = parser.parse_args()
    print(f"| robot | control steps/s | {args.steps}-step episodes/s (1 core) | rendered frames/s (64 px) |")
    print("|---|---|---|---|")
    for robot in args.robots.split(","):
        env = TabletopEnv(robot, args.task)
        expert = ScriptedExpert(env)
        steps = 0
        start = time.perf_counter()
        for k in range(args.episodes):
            env.reset(seed=k)
            expert.reset()
            for _ in range(env.horizon):
                _, _, terminated, truncated, _ = env.step(expert.act())
                steps += 1
                if terminated or truncated:
                    break
        rate = steps / (time.perf_counter() - start)
        cam_env = TabletopEnv(robot, args.task, render=True, image_size=64)
        cam_env.reset(seed=0)
        cam_env.render_cameras()
        start = time.perf_counter()
        for _ in range(args.frames):
            cam_env.render_cameras()
        fps = args.frames * max(1, len(cam_env.spec_.cameras)) / (time.perf_counter() - start)
        print(f"| {robot} | {rate:.0f} | {rate / args.steps:.1f} | {fps:.0f} |")
        env.close()
        cam_env.close()


if __name__ == "__main__":
    main()
