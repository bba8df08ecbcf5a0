"""The subcommands: each checks its arguments (raising `BadInput`) and calls the library."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from locksmith.cli.args import (
    EXIT_BAD_INPUT,
    BadInput,
    _check_names,
    _check_out_file,
    _check_out_folder,
    _check_robots_and_tasks,
)
from locksmith.train import defaults


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
            workers=args.workers, noise=args.noise, start_jitter=args.start_jitter,
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
    from locksmith.train.prior import PriorRecipe, build_prior, recipe_trunk, tuning_task

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
        given = {k: v for k, v in (("demo_noise", args.demo_noise), ("demo_start_jitter", args.demo_start_jitter),
                                   ("demos_per_robot", args.demos_per_robot))
                 if v is not None}  # the rest: PriorRecipe's defaults
        if args.intent_features != "absolute" and args.action_space != "intent":
            raise BadInput(f"--intent-features {args.intent_features} needs --action-space intent")
        trunk = recipe_trunk({"action_space": args.action_space, "intent_features": args.intent_features,
                              "observation": args.observation, "image_size": args.image_size,
                              "image_shift": args.image_shift, "keypoints": args.keypoints,
                              "scene_weight": args.scene_weight, "colour_film": args.colour_film})
        if args.scene_frames:
            given["scene_frames"] = args.scene_frames
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
    from locksmith.audit.priors import AuditError
    from locksmith.audit.run import run_audit
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


