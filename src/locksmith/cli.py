"""The `locksmith` command line: a thin layer that parses arguments and calls the library.

Exit codes: 0 success, 1 a failure while running, 2 bad input (unknown names, invalid files,
an output folder in the way); every bad-input message names the file, field or value.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from locksmith import __version__

EXIT_BAD_INPUT = 2


class BadInput(Exception):
    """Raised by a subcommand for input the user must fix (exit code 2)."""


def _cmd_robots(args: argparse.Namespace) -> int:
    from locksmith.embodiment.registry import BUNDLED_ROBOTS, load_bundled_spec

    rows = []
    for name in BUNDLED_ROBOTS:
        spec = load_bundled_spec(name)
        rows.append({
            "name": name, "dof": spec.dof, "action_kind": spec.action_kind,
            "rate_hz": spec.control_rate_hz, "role": spec.role, "robot_type": spec.robot_type,
        })
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    header = f"{'name':<14}{'dof':>4}  {'action kind':<28}{'rate':>6}  role"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['name']:<14}{r['dof']:>4}  {r['action_kind']:<28}{r['rate_hz']:>5g}  {r['role']}")
    return 0


def _cmd_spec_check(args: argparse.Namespace) -> int:
    from locksmith.embodiment.spec import SpecError, load_spec

    failed = False
    for path in args.files:
        try:
            spec = load_spec(path)
        except SpecError as err:
            print(str(err), file=sys.stderr)
            failed = True
            continue
        print(f"{path}: ok ({spec.name}: {spec.dof} DoF, {spec.action_kind}, "
              f"{spec.control_rate_hz:g} Hz, state {spec.state_dim}, action {spec.action_dim})")
    return EXIT_BAD_INPUT if failed else 0


def _cmd_demos(args: argparse.Namespace) -> int:
    from locksmith.data.record import RecordError, record_demos
    from locksmith.embodiment.registry import BUNDLED_ROBOTS
    from locksmith.sim.tasks import TASKS

    if args.robot not in BUNDLED_ROBOTS:
        raise BadInput(f"unknown robot {args.robot!r}; known robots: {', '.join(BUNDLED_ROBOTS)}")
    if args.task not in TASKS:
        raise BadInput(f"unknown task {args.task!r}; known tasks: {', '.join(TASKS)}")
    try:
        out = record_demos(
            args.robot, args.task, args.episodes, args.out, seed=args.seed, camera=args.camera,
            image_size=args.image_size, overwrite=args.overwrite, append=args.append,
            workers=args.workers,
        )
    except RecordError as err:
        raise BadInput(str(err)) from None
    print(f"wrote {args.episodes} {args.robot}/{args.task} demonstrations to {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="locksmith",
        description="Pretrain a robot prior once, cut a small local key for every new robot, "
                    "and measure how many demonstrations the prior saves.",
    )
    parser.add_argument("--version", action="version", version=f"locksmith {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("robots", help="list the bundled robots (name, DoF, action kind, rate, role)",
                       description="List the bundled robots.")
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    p.set_defaults(func=_cmd_robots)

    p = sub.add_parser("spec", help="embodiment spec files", description="Work with embodiment spec files.")
    spec_sub = p.add_subparsers(dest="spec_command", required=True, metavar="ACTION")
    c = spec_sub.add_parser("check", help="validate spec files; errors name file, field and value",
                            description="Validate embodiment spec files (YAML). Exit 2 if any is invalid.")
    c.add_argument("files", nargs="+", metavar="FILE", help="spec file(s) to validate")
    c.set_defaults(func=_cmd_spec_check)

    p = sub.add_parser("demos", help="record scripted-expert demonstrations as a LeRobot dataset",
                       description="Record successful scripted-expert demonstrations of one robot and "
                                   "task into a LeRobot v3 dataset, with the robot's spec beside it.")
    p.add_argument("--robot", required=True, help="bundled robot name (see `locksmith robots`)")
    p.add_argument("--task", required=True, help="task: reach, lift, push or pick_place")
    p.add_argument("--episodes", type=int, required=True, help="number of successful episodes to record")
    p.add_argument("--out", required=True, type=Path, help="dataset folder to create")
    p.add_argument("--seed", type=int, default=0, help="seed of the episode seeds (default 0)")
    p.add_argument("--camera", action="store_true", help="also record RGB images from the spec's cameras")
    p.add_argument("--image-size", type=int, default=None, help="square image size in pixels (default: the spec's)")
    p.add_argument("--workers", type=int, default=None, help="simulation processes (default: up to 2 cores)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing dataset at --out")
    p.add_argument("--append", action="store_true", help="add episodes to an existing dataset at --out")
    p.set_defaults(func=_cmd_demos)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except BadInput as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
