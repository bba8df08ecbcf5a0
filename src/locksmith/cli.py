"""The `locksmith` command line: a thin layer that parses arguments and calls the library.

Exit codes: 0 success, 1 a failure while running, 2 bad input (unknown names, invalid files,
an output folder in the way); every bad-input message names the file, field or value.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
from pathlib import Path

from locksmith import __version__
from locksmith.policy import ACTION_SPACES, INTENT_FEATURES, OMITTED_WHEN_DEFAULT
from locksmith.train import defaults

EXIT_BAD_INPUT = 2


class BadInput(Exception):
    """Raised by a subcommand for input the user must fix (exit code 2)."""


MAX_COUNT = 10_000_000  # any count on the command line (steps, episodes, demos, ...)


def _count(minimum: int = 1, maximum: int = MAX_COUNT):
    """An argparse type: an integer in [minimum, maximum] (``0`` workers or pixels is refused here)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if not minimum <= value <= maximum:
            raise argparse.ArgumentTypeError(f"expected an integer between {minimum} and {maximum:,}, got {value}")
        return value

    parse.__name__ = "count"
    return parse


def _number(minimum: float = 0.0, maximum: float = 1e6, low_open: bool = False, high_open: bool = False):
    """An argparse type: a finite number in the range (nan and inf are refused here)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        low_ok = value > minimum if low_open else value >= minimum
        high_ok = value < maximum if high_open else value <= maximum
        if not (math.isfinite(value) and low_ok and high_ok):
            lo, hi = "(" if low_open else "[", ")" if high_open else "]"
            raise argparse.ArgumentTypeError(f"expected a number in {lo}{minimum:g}, {maximum:g}{hi}, got {text}")
        return value

    parse.__name__ = "number"
    return parse


def _nearest_existing(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _check_out_folder(flag: str, path: Path | None) -> None:
    """Refuse, before any work, an output folder that is a file or cannot be created or written."""
    if path is None:
        return
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise BadInput(f"{flag}: {path} is an existing file, not a folder")
    _check_writable(flag, path)


def _check_out_file(flag: str, path: Path | None) -> None:
    """Refuse, before any work, an output file that is a folder or cannot be written."""
    if path is None:
        return
    path = Path(path)
    if path.is_dir():
        raise BadInput(f"{flag}: {path} is a folder, not a file")
    _check_writable(flag, path)


def _check_writable(flag: str, path: Path) -> None:
    existing = _nearest_existing(path)
    if existing != Path(os.path.abspath(path)) and not existing.is_dir():
        raise BadInput(f"{flag}: {path}: {existing} is a file, not a folder")
    read_only_mount = bool(os.statvfs(existing).f_flag & os.ST_RDONLY)  # os.access says yes to root
    if read_only_mount or not os.access(existing, os.W_OK | (os.X_OK if existing.is_dir() else 0)):
        raise BadInput(f"{flag}: {path}: {existing} is read-only")


def _check_names(flag: str, names: list[str], kind: str, known) -> None:
    """Raise `BadInput` for a name not in ``known``, listing the known ones."""
    for name in names:
        if name not in known:
            raise BadInput(f"{flag}: unknown {kind} {name!r}; known {kind}s: {', '.join(known)}")


def _check_robots_and_tasks(robots: list[str], tasks: list[str], plural: bool = False) -> None:
    from locksmith.embodiment.registry import known_robots, unknown_robot_message
    from locksmith.sim.tasks import TASKS

    known = known_robots()
    for name in robots:
        if name not in known:  # the message also says how to register one's own robot
            raise BadInput(f"{'--robots' if plural else '--robot'}: {unknown_robot_message(name)}")
    _check_names("--tasks" if plural else "--task", tasks, "task", list(TASKS))


def _cmd_robots(args: argparse.Namespace) -> int:
    from locksmith.embodiment.registry import known_robots, load_robot_spec

    rows = []
    for name in known_robots():
        spec = load_robot_spec(name)
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


def _cmd_robot_check(args: argparse.Namespace) -> int:
    from locksmith.embodiment import registry
    from locksmith.embodiment.spec import SpecError, load_spec
    from locksmith.sim.check import check_robot
    from locksmith.sim.tasks import TASKS

    tasks = _split(args.tasks) or list(TASKS)
    _check_names("--tasks", tasks, "task", list(TASKS))
    if args.episodes < 1:
        raise BadInput(f"--episodes: expected a count >= 1, got {args.episodes}")
    if (args.name is None) == (args.spec is None) or (args.spec is None) != (args.builder is None):
        raise BadInput("give a robot NAME, or --spec FILE with --builder MODULE:FUNCTION")
    try:
        with registry.checks_deferred():  # a robot with errors registers, so that it can be checked
            if args.spec is not None:
                robot, builder = load_spec(args.spec), args.builder
                registry.resolve_builder(builder)
            elif args.name not in registry.known_robots():
                raise BadInput(registry.unknown_robot_message(args.name))
            else:
                robot, builder = args.name, None
        report = check_robot(robot, builder, full=not args.quick, tasks=tuple(tasks), episodes=args.episodes,
                             seed=args.seed)
    except (SpecError, registry.RegistryError) as err:
        raise BadInput(str(err)) from None
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.format())
    return 0 if report.ok else EXIT_BAD_INPUT


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

    _check_robots_and_tasks([args.robot], [args.task])
    _check_out_folder("--out", args.out)
    try:
        out = record_demos(
            args.robot, args.task, args.episodes, args.out, seed=args.seed, camera=args.camera,
            image_size=args.image_size, overwrite=args.overwrite, append=args.append,
            workers=args.workers, noise=args.noise,
        )
    except RecordError as err:
        raise BadInput(str(err)) from None
    print(f"wrote {args.episodes} {args.robot}/{args.task} demonstrations to {out}")
    return 0


def _split(text: str | None) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()] if text else []


def _cmd_pretrain(args: argparse.Namespace) -> int:
    from locksmith.data.loading import DatasetError
    from locksmith.data.record import RecordError
    from locksmith.train.loop import TrainConfig
    from locksmith.train.prior import PriorRecipe, build_prior, tuning_task

    robots, tasks = _split(args.robots), _split(args.tasks)
    _check_robots_and_tasks(robots, tasks, plural=True)
    for flag, names in (("--robots", robots), ("--tasks", tasks)):
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise BadInput(f"{flag}: {', '.join(twice)} named twice in {','.join(names)}")
    _check_out_folder("--out", args.out)
    if args.tune_episodes is None:  # scaled to the run: a smoke run does not spend minutes choosing horizons
        args.tune_episodes = defaults.tune_episodes_for(args.steps)
    if args.threads is not None:
        if args.threads < 1:
            raise BadInput(f"--threads: expected a count >= 1, got {args.threads}")
        import torch

        torch.set_num_threads(args.threads)
    weights = None
    if args.weights:
        try:
            values = [float(w) for w in _split(args.weights)]
        except ValueError:
            raise BadInput(f"--weights: expected comma-separated numbers, got {args.weights!r}") from None
        if len(values) != len(robots):
            raise BadInput(f"--weights: {len(values)} weights for {len(robots)} robots")
        for robot, value in zip(robots, values, strict=True):
            if not (math.isfinite(value) and 0 <= value <= 1e6):
                raise BadInput(f"--weights: the weight of {robot!r} is {value}; weights are numbers in [0, 1e6]")
        if not sum(values) > 0:
            raise BadInput("--weights: the mixture weights are all zero")
        weights = dict(zip(robots, values, strict=True))
    try:
        train_config = TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                                   checkpoint_every=args.checkpoint_every)
        given = {k: v for k, v in (("demo_noise", args.demo_noise), ("demos_per_robot", args.demos_per_robot))
                 if v is not None}  # the rest: PriorRecipe's defaults
        if args.intent_features != "absolute" and args.action_space != "intent":
            raise BadInput(f"--intent-features {args.intent_features} needs --action-space intent")
        trunk = {k: v for k, v in (("action_space", args.action_space), ("intent_features", args.intent_features))
                 if v != OMITTED_WHEN_DEFAULT[k]}
        recipe = PriorRecipe(robots=tuple(robots), tasks=tuple(tasks), weights=weights,
                             temperature=args.temperature, trunk=trunk, **given)
        if args.tune_episodes > 0:
            task = tuning_task(tasks, _split(args.datasets))
            print("re-planning horizons left at half a chunk: the datasets name no simulated task to tune on"
                  if task is None else f"after training, each robot's re-planning horizon is chosen on "
                  f"{args.tune_episodes} validation episodes per candidate of {task} (--tune-episodes 0 skips it)",
                  flush=True)
        record = build_prior(recipe, train_config, args.out, datasets=_split(args.datasets), resume=args.resume,
                             tune_episodes=args.tune_episodes, tune_workers=args.workers)
    except (DatasetError, RecordError, ValueError) as err:
        raise BadInput(str(err)) from None
    print(f"prior written to {record['policy']} ({record['parameters']:,} parameters, "
          f"{record['samples_per_s']:.0f} samples/s, final loss {record['final_loss']:.4f}, "
          f"{record['pretrain_seconds'] / 60:.1f} min)")
    for robot, c in (record["horizons"] or {}).items():
        rates = ", ".join(f"{n}: {100 * r:.0f} %" for n, r in c["success"].items())
        print(f"  {robot}: re-plans every {c['chosen']} steps (validation success by horizon: {rates})")
    return 0


def _write_json(path: Path | None, data: dict) -> None:
    if path is None:
        return
    from locksmith.atomic import write_json_atomic

    write_json_atomic(path, data)


def _cmd_eval(args: argparse.Namespace) -> int:
    from locksmith.evaluate.evaluator import ALL_SLICES, evaluate
    from locksmith.policy.policy import CheckpointError

    _check_out_file("--json", args.json)
    _check_out_folder("--save-failures", args.save_failures)

    if args.dataset is not None:
        from locksmith.data.loading import DatasetError
        from locksmith.embodiment.spec import SpecError
        from locksmith.evaluate.offline import offline_action_error

        if args.checkpoint is None:
            raise BadInput("--dataset needs --checkpoint (the policy to score)")
        try:
            result = offline_action_error(args.checkpoint, args.dataset, holdout_fraction=args.holdout)
        except (CheckpointError, DatasetError, SpecError) as err:  # SpecError: the spec beside the dataset
            raise BadInput(str(err)) from None
        _write_json(args.json, result)
        print(f"{result['robot']}: offline action error {result['offline_action_error']:.4f} "
              f"over {result['episodes']} held-out episodes")
        return 0
    _check_robots_and_tasks([args.robot], [args.task])
    slices = ALL_SLICES if args.slice == "all" else _split(args.slice)
    for name in slices:
        if name not in ALL_SLICES:
            raise BadInput(f"--slice: unknown slice {name!r}; known slices: {', '.join(ALL_SLICES)}, all")
    if args.expert == (args.checkpoint is not None):
        raise BadInput("give exactly one of --checkpoint DIR and --expert")
    if args.checkpoint is not None:  # ours, an ACT peer or a plain LeRobot checkpoint: checked here, once
        from locksmith.evaluate.evaluator import load_policy

        try:
            load_policy(args.checkpoint, args.robot)
        except CheckpointError as err:
            raise BadInput(str(err)) from None
    result = evaluate(args.robot, args.task, args.episodes, slices, checkpoint=args.checkpoint, seed=args.seed,
                      workers=args.workers, n_envs=args.envs, shield=not args.no_shield)
    if args.save_failures is not None:
        from locksmith.evaluate.evaluator import save_failure_videos

        result["failure_videos"] = save_failure_videos(result, args.robot, args.task, args.checkpoint,
                                                       args.save_failures, per_slice=args.max_videos)
    _write_json(args.json, result)
    lo, hi = result["ci95"]
    print(f"{args.robot}/{args.task} [{result['agent']}]: success {result['success_rate']:.1%} "
          f"[{lo:.1%}, {hi:.1%}] over {result['episodes']} episodes")
    for name, r in result["per_slice"].items():
        print(f"  {name:<16} {r['success_rate']:.1%}  ({r['episodes']} episodes)")
    return 0


def _prior_or_published(prior: Path | None) -> Path:
    """The prior named on the command line, else the published one that ships with locksmith."""
    from locksmith.priors import shipped_prior

    return prior if prior is not None else shipped_prior()


def _cmd_check(args: argparse.Namespace) -> int:
    from locksmith.policy.policy import CheckpointError, CrossEmbodimentPolicy
    from locksmith.train.compat import check_compatibility

    _check_out_file("--json", args.json)
    try:
        args.prior = _prior_or_published(args.prior)
        prior = CrossEmbodimentPolicy.from_pretrained(args.prior)
    except CheckpointError as err:
        raise BadInput(str(err)) from None
    report = check_compatibility(prior, args.prior, args.dataset, args.spec)
    print(report.format())
    _write_json(args.json, report.to_dict())
    for item in report.errors:  # the report is the output; what must be fixed also goes to stderr
        where = "" if item.message.startswith(str(args.dataset)) else f"{args.dataset}: "
        print(f"error: {item.item}: {where}{item.message}", file=sys.stderr)
    return 0 if report.ok else EXIT_BAD_INPUT


def _cmd_adapt(args: argparse.Namespace) -> int:
    from locksmith.data.loading import DatasetError
    from locksmith.embodiment.spec import SpecError
    from locksmith.policy.adapters import RECIPES
    from locksmith.policy.policy import CheckpointError
    from locksmith.train.adapt import AdaptRefused, adapt
    from locksmith.train.loop import TrainConfig

    if args.recipe not in RECIPES:
        raise BadInput(f"--recipe: unknown recipe {args.recipe!r}; known recipes: {', '.join(RECIPES)}")
    if args.dataset is None and not (args.demos == 0 and args.spec is not None):
        raise BadInput("--dataset: required (only a zero-shot key, --demos 0, can be built from --spec alone)")
    _check_out_folder("--out", args.out)
    if not args.overwrite and ((args.out / "policy").exists() or (args.out / "adapt.json").exists()):
        raise BadInput(f"--out: {args.out} already holds a key (policy/, adapt.json); pass --overwrite to replace "
                       "it, or choose another folder")
    try:
        args.prior = _prior_or_published(args.prior)
        record = adapt(args.prior, args.dataset, args.recipe, args.out, demos=args.demos,
                       train_config=TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                                                seed=args.seed, checkpoint_every=max(args.steps, 1)),
                       lora_rank=args.lora_rank, lora_alpha=args.lora_alpha, weight=args.weight, force=args.force,
                       spec=args.spec)
    except AdaptRefused as err:
        print(str(err), file=sys.stderr)
        print("error: adapt refuses an incompatible dataset (fix it, or pass --force)", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (CheckpointError, DatasetError, SpecError, ValueError) as err:
        raise BadInput(str(err)) from None
    print(f"{record['robot']}: {args.recipe} key with {record['trainable_parameters']:,} trainable parameters "
          f"on {record['demos']} demos in {record['wallclock_seconds']:.0f} s -> {Path(args.out) / 'policy'}")
    return 0


def _cmd_audit(args: argparse.Namespace) -> int:
    from locksmith.audit.plan import PlanError, bundled_plan, load_plan
    from locksmith.audit.run import AuditError, run_audit
    from locksmith.data.loading import DatasetError
    from locksmith.data.record import RecordError
    from locksmith.policy.policy import CheckpointError

    if args.quick and args.plan is not None:
        raise BadInput("give either a PLAN or --quick (the bundled smoke plan), not both")
    try:
        if args.plan is None:
            plan, plan_file = bundled_plan("quick" if args.quick else "default"), None
        elif Path(args.plan).exists() or Path(args.plan).suffix in (".yaml", ".yml", ".toml"):
            plan, plan_file = load_plan(args.plan), str(args.plan)
        else:
            plan, plan_file = bundled_plan(args.plan), None
    except PlanError as err:
        raise BadInput(str(err)) from None
    if args.workers is not None and args.workers < 1:
        raise BadInput(f"--workers: must be >= 1, got {args.workers}")
    out = args.out or Path("runs") / "audit" / plan.name
    _check_out_folder("--out", out)
    try:
        audit = run_audit(plan, out, plan_file=plan_file, workers=args.workers, ray_address=args.ray_address,
                          quick=args.quick, command=" ".join(["locksmith", *sys.argv[1:]]))
    except (PlanError, AuditError, DatasetError, RecordError, CheckpointError) as err:
        raise BadInput(str(err)) from None
    from locksmith.audit.summary import format_table

    print(format_table(audit))
    print(f"report: {out / 'report.md'}, {out / 'report.html'}, {out / 'audit.json'}")
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

    p = sub.add_parser("robots", help="list the robots, bundled and registered (name, DoF, action kind, rate, role)",
                       description="List the bundled robots and those registered through LOCKSMITH_ROBOTS or an "
                                   "entry point.")
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    p.set_defaults(func=_cmd_robots)

    p = sub.add_parser("robot", help="a robot of your own: check its spec and builder",
                       description="Work with one robot, bundled or registered (LOCKSMITH_ROBOTS or an entry "
                                   "point, see docs/own_robot.md).")
    robot_sub = p.add_subparsers(dest="robot_command", required=True, metavar="ACTION")
    c = robot_sub.add_parser(
        "check", help="check a robot's spec against its model, the gripper, reach and the scripted expert",
        description="Check a robot's spec against its builder's compiled model (joints, ranges and units, arms, "
                    "gripper range), the gripper on a cube, fingertip depth, the control rate, the home pose, "
                    "reach by IK, and run the scripted expert briefly on every task. Each finding names the spec "
                    "field or model element to change. Exit 0 when clean, 2 on any finding.")
    c.add_argument("name", nargs="?", default=None,
                   help="robot name: bundled, or registered through LOCKSMITH_ROBOTS or an entry point")
    c.add_argument("--spec", type=Path, default=None, help="check this spec file instead of a registered robot")
    c.add_argument("--builder", default=None, help="with --spec: the builder as module:function")
    c.add_argument("--quick", action="store_true",
                   help="skip the expert runs (the check that register_robot runs, about a second)")
    c.add_argument("--tasks", default=None, help="comma-separated tasks for the expert runs (default: all)")
    c.add_argument("--episodes", type=_count(), default=4, help="expert episodes per task (default 4)")
    c.add_argument("--seed", type=_count(0, 2**31 - 1), default=0, help="first episode seed of the expert runs (default 0)")
    c.add_argument("--json", action="store_true", help="print the report as JSON (for scripts)")
    c.set_defaults(func=_cmd_robot_check)

    p = sub.add_parser("spec", help="embodiment spec files", description="Work with embodiment spec files.")
    spec_sub = p.add_subparsers(dest="spec_command", required=True, metavar="ACTION")
    c = spec_sub.add_parser("check", help="validate spec files; errors name file, field and value",
                            description="Validate embodiment spec files (YAML). Exit 2 if any is invalid.")
    c.add_argument("files", nargs="+", metavar="FILE", help="spec file(s) to validate")
    c.set_defaults(func=_cmd_spec_check)

    p = sub.add_parser("demos", help="record scripted-expert demonstrations as a LeRobot dataset",
                       description="Record successful scripted-expert demonstrations of one robot and "
                                   "task into a LeRobot v3 dataset, with the robot's spec beside it.")
    p.add_argument("--robot", required=True, help="robot name, bundled or registered (see `locksmith robots`)")
    p.add_argument("--task", required=True, help="task: reach, lift, push or pick_place")
    p.add_argument("--episodes", type=_count(1, 100_000), required=True,
                   help="number of successful episodes to record")
    p.add_argument("--out", required=True, type=Path, help="dataset folder to create")
    p.add_argument("--seed", type=_count(0, 2**31 - 1), default=0, help="seed of the episode seeds (default 0)")
    p.add_argument("--camera", action="store_true", help="also record RGB images from the spec's cameras")
    p.add_argument("--image-size", type=_count(8, 2048), default=None,
                   help="square image size in pixels, 8 to 2048 (default: the spec's)")
    p.add_argument("--workers", type=_count(1, 256), default=None, help="simulation processes (default: up to 2 cores)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing dataset at --out")
    p.add_argument("--append", action="store_true", help="add episodes to an existing dataset at --out")
    p.add_argument("--noise", type=_number(0.0, 0.1), default=0.0,
                   help="DART-style execution noise in metres: the robot runs the expert's command with a "
                        "perturbed TCP goal, the clean command is recorded (default 0: none)")
    p.set_defaults(func=_cmd_demos)

    p = sub.add_parser("pretrain", help="pretrain the shared prior on a weighted mixture of robots",
                       description="Record (or reuse) demonstrations of each robot and pretrain one "
                                   "cross-embodiment policy on their weighted mixture.")
    p.add_argument("--robots", default=",".join(defaults.POOL_ROBOTS), help="comma-separated robots of the pool")
    p.add_argument("--tasks", default=",".join(defaults.POOL_TASKS), help="comma-separated tasks to pretrain on")
    p.add_argument("--weights", default=None, help="mixture weights λ_r, one per robot (default: by size)")
    p.add_argument("--temperature", type=_number(1e-3, 1e3), default=1.0,
                   help="with no --weights, λ_r ∝ frames_r^(1/T) (1: by size, large: uniform)")
    p.add_argument("--demos-per-robot", type=_count(1, 100_000), default=None,
                   help=f"demonstrations per robot and task (default: {defaults.DEMOS_PER_ROBOT})")
    p.add_argument("--datasets", default=None,
                   help="comma-separated existing LeRobot datasets to use instead of recording")
    p.add_argument("--demo-noise", type=float, default=None,  # checked by PriorRecipe (demo_noise=...)
                   help="DART-style execution noise (m) of the demonstrations recorded: the robot runs the "
                        "expert's command with a perturbed TCP goal, the clean one is recorded (default: "
                        "PriorRecipe.demo_noise, 0: none)")
    p.add_argument("--action-space", choices=ACTION_SPACES, default="native",
                   help="what the trunk predicts: each robot's own command (native), or shared intent that "
                        "each robot's decoder turns into its command (intent; docs/intent.md)")
    p.add_argument("--intent-features", choices=INTENT_FEATURES, default="absolute",
                   help="what an intent trunk reads of the scene: base-frame positions and offsets (absolute), "
                        "or offsets from each TCP and heights above the table only (relative)")
    p.add_argument("--steps", type=_count(1, 1_000_000), default=defaults.PRETRAIN_STEPS,
                   help=f"optimizer steps (default {defaults.PRETRAIN_STEPS}: ~22 min on one core)")
    p.add_argument("--batch-size", type=_count(1, 8192), default=defaults.PRETRAIN_BATCH_SIZE,
                   help="samples per step (all processes)")
    p.add_argument("--lr", type=_number(0.0, 1.0, low_open=True), default=defaults.PRETRAIN_LR,
                   help="peak learning rate (AdamW)")
    p.add_argument("--seed", type=_count(0, 2**31 - 1), default=0, help="seed of initialization and sampling")
    p.add_argument("--checkpoint-every", type=_count(1, 1_000_000), default=defaults.PRETRAIN_CHECKPOINT_EVERY,
                   help="steps between checkpoints")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints/last")
    p.add_argument("--threads", type=_count(1, 1024), default=None,
                   help="torch threads for training (default: torch's own, all cores); 1 when the machine "
                        "is shared: two threads beside another busy process run several times slower")
    p.add_argument("--tune-episodes", type=_count(0, 10_000), default=None,
                   help="validation episodes per robot and candidate re-planning horizon, chosen after "
                        f"training on the first task (default: in proportion to --steps, {defaults.TUNE_EPISODES} "
                        f"at {defaults.PRETRAIN_STEPS} steps, at least 4; 0: keep half a chunk)")
    p.add_argument("--workers", type=_count(1, 256), default=None,
                   help="processes for the horizon choice after training (default: up to 2 cores)")
    p.add_argument("--out", required=True, type=Path, help="output folder (data/, policy/, metrics.jsonl)")
    p.set_defaults(func=_cmd_pretrain)

    p = sub.add_parser("eval", help="closed-loop evaluation over slices (or offline action error)",
                       description="Roll a checkpoint (or the scripted expert) out closed-loop in MuJoCo "
                                   "over evaluation slices, every action through the robot's safety "
                                   "shield; or, with --dataset, score it offline on held-out episodes.")
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="policy folder: a prior, an adapted key, or a LeRobot checkpoint (lerobot-train's "
                        "OUT/checkpoints/last/pretrained_model)")
    p.add_argument("--expert", action="store_true", help="evaluate the scripted expert instead of a policy")
    p.add_argument("--robot", default=None, help="robot to evaluate on, bundled or registered")
    p.add_argument("--task", default="pick_place", help="task (default pick_place)")
    p.add_argument("--episodes", type=_count(1, 10_000), default=100, help="episodes per slice")
    p.add_argument("--slice", default="nominal", help="comma-separated slices, or 'all'")
    p.add_argument("--seed", type=_count(0, 2**31 - 1), default=0, help="evaluation seed block (disjoint from demo seeds)")
    p.add_argument("--workers", type=_count(1, 256), default=None, help="processes (default: up to 2 cores)")
    p.add_argument("--envs", type=_count(1, 1024), default=8, help="environments batched per process")
    p.add_argument("--no-shield", action="store_true", help="bypass the safety shield (not for deployment)")
    p.add_argument("--dataset", type=Path, default=None, help="offline: a LeRobot dataset of the robot")
    p.add_argument("--holdout", type=_number(0.0, 1.0, low_open=True, high_open=True), default=0.2,
                   help="offline: fraction of episodes held out")
    p.add_argument("--save-failures", type=Path, default=None, help="write GIFs of failed episodes to this folder")
    p.add_argument("--max-videos", type=_count(0, 1000), default=3, help="failed episodes saved per slice (default 3)")
    p.add_argument("--json", type=Path, default=None, help="write the result as JSON here")
    p.set_defaults(func=_cmd_eval)

    p = sub.add_parser("check", help="compatibility of a new robot's spec and data with a prior",
                       description="Check a target dataset against its own LeRobot metadata (info.json, "
                                   "stats.json, meta/episodes), then compare it (and its spec) with a prior's "
                                   "metadata; report a verdict per item. Exit 2 on any error.")
    p.add_argument("--prior", type=Path, default=None,
                   help="prior checkpoint folder (default: the published prior that ships with locksmith)")
    p.add_argument("--dataset", required=True, type=Path, help="the new robot's LeRobot dataset")
    p.add_argument("--spec", type=Path, default=None, help="spec file (default: the one beside the dataset)")
    p.add_argument("--json", type=Path, default=None, help="write the report as JSON here")
    p.set_defaults(func=_cmd_check)

    p = sub.add_parser("adapt", help="cut a key for a new robot from the prior (or train the scratch baseline)",
                       description="Check compatibility, then train the recipe's parameters on N demos of "
                                   "the new robot with the pretraining loop; writes OUT/policy and OUT/adapt.json.")
    p.add_argument("--prior", type=Path, default=None,
                   help="prior checkpoint folder (default: the published prior that ships with locksmith; "
                        "scratch uses its architecture)")
    p.add_argument("--dataset", type=Path, default=None,
                   help="the new robot's LeRobot dataset (not needed for --demos 0 with --spec)")
    p.add_argument("--recipe", required=True, help="head, token, lora, full or scratch")
    p.add_argument("--demos", type=_count(0, 100_000), default=None,
                   help="use a seeded subset of N episodes (default: all); 0 with an intent prior: the "
                        "zero-shot key, built from the robot's spec and the prior, nothing trained")
    p.add_argument("--steps", type=_count(1, 1_000_000), default=1000, help="optimizer steps")
    p.add_argument("--batch-size", type=_count(1, 8192), default=128, help="samples per step")
    p.add_argument("--lr", type=_number(0.0, 1.0, low_open=True), default=1e-3, help="peak learning rate")
    p.add_argument("--seed", type=_count(0, 2**31 - 1), default=0, help="seed of the demo subset, initialization and sampling")
    p.add_argument("--weight", type=_number(0.0, 1e6), default=0.0, help="λ of λ‖φ‖² (L2-SP toward the prior for full)")
    p.add_argument("--lora-rank", type=_count(1, 256), default=8, help="LoRA rank (recipe lora)")
    p.add_argument("--lora-alpha", type=_number(0.0, 1e4, low_open=True), default=16.0, help="LoRA alpha (recipe lora)")
    p.add_argument("--force", action="store_true", help="adapt even when the compatibility check finds errors")
    p.add_argument("--spec", type=Path, default=None, help="spec file (default: the one beside the dataset)")
    p.add_argument("--overwrite", action="store_true", help="replace a key already at --out")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.set_defaults(func=_cmd_adapt)

    p = sub.add_parser("audit", help="the transfer audit: demos-to-threshold and adaptation gain (the main job)",
                       description="Run a transfer plan: start from the published prior (or the plan's own, "
                                   "pretrained once into the user cache), sweep scratch, LeRobot "
                                   "ACT and the adapted recipes over demo budgets and seeds, and write "
                                   "audit.json, report.md and report.html. With no PLAN, the bundled default. "
                                   "A rerun resumes: finished runs are never redone.")
    p.add_argument("plan", nargs="?", default=None,
                   help="plan file (.yaml/.toml) or a bundled plan name (default, quick); default: default")
    p.add_argument("--quick", action="store_true", help="the bundled smoke plan (minutes; the pipeline, not the claim)")
    p.add_argument("--out", type=Path, default=None, help="audit folder (default runs/audit/<plan name>)")
    p.add_argument("--workers", type=_count(1, 256), default=None, help="local processes, one run each (default: cores)")
    p.add_argument("--ray-address", default=None,
                   help="send runs to this Ray cluster ('local' starts one here) instead of local processes")
    p.set_defaults(func=_cmd_audit)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as err:  # a bad flag value: argparse has printed its one-line message
        if err.code == EXIT_BAD_INPUT:
            return EXIT_BAD_INPUT
        raise  # --help, --version
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except BadInput as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as err:  # a file the user named cannot be read or written: say which, no traceback
        where = err.filename if err.filename is not None else ""
        print(f"error: {where}: cannot be read or written ({err.strerror or err})" if where else f"error: {err}",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"interrupted: {_resume_hint(args)}", file=sys.stderr)
        return 130


def _resume_hint(args: argparse.Namespace) -> str:
    """What an interrupted command kept on disk and how to go on (one line)."""
    out = getattr(args, "out", None)
    if args.command == "demos":
        return (f"nothing was written to {out} (episodes are recorded into a temporary folder and moved there "
                "when complete); run the same command again")
    if args.command == "adapt":
        return (f"no key was written to {out}/policy (it is written when training ends); run the same command "
                "again, with --overwrite if the folder already held a key")
    if args.command == "pretrain":
        return (f"the demos recorded under {out}/data and the checkpoints under {out}/checkpoints are kept; "
                "run the same command with --resume to continue")
    if args.command == "audit":
        return (f"the finished runs under {out or 'the audit folder'}/runs are kept; run the same command again "
                "to resume (finished runs are never redone)")
    return "nothing was kept"


if __name__ == "__main__":
    sys.exit(main())
