"""The argument parser of every subcommand (`build_parser`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from locksmith import __version__
from locksmith.cli.args import _count, _number
from locksmith.cli.commands import (
    _cmd_adapt,
    _cmd_audit,
    _cmd_check,
    _cmd_demos,
    _cmd_eval,
    _cmd_pretrain,
    _cmd_robot_check,
    _cmd_robots,
    _cmd_spec_check,
)
from locksmith.policy import ACTION_SPACES, DEFAULT_IMAGE_SHIFT, DEFAULT_IMAGE_SIZE, INTENT_FEATURES, OBSERVATIONS
from locksmith.train import defaults


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
    p.add_argument("--start-jitter", type=_number(0.0, defaults.MAX_START_JITTER), default=0.0,
                   help="start each episode with the TCP moved from home by up to this many metres per axis "
                        "(default 0: every episode from home)")
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
    p.add_argument("--demo-start-jitter", type=float, default=None,  # checked by PriorRecipe
                   help="how far (m, per axis) each recorded demonstration's TCP starts from home (default: "
                        "PriorRecipe.demo_start_jitter, 0: every one from home)")
    p.add_argument("--action-space", choices=ACTION_SPACES, default="native",
                   help="what the trunk predicts: each robot's own command (native), or shared intent that "
                        "each robot's decoder turns into its command (intent; docs/intent.md)")
    p.add_argument("--observation", choices=OBSERVATIONS, default="state",
                   help="what the policy sees of the scene: the privileged scene state (state), or the robot's "
                        "first camera (pixels: demos recorded with the camera; policy.vision)")
    p.add_argument("--image-size", type=_count(16, 512), default=DEFAULT_IMAGE_SIZE,
                   help=f"square camera size in pixels for --observation pixels, a multiple of 16 "
                        f"(default {DEFAULT_IMAGE_SIZE})")
    p.add_argument("--image-shift", type=_count(0, 128), default=DEFAULT_IMAGE_SHIFT,
                   help=f"pixels by which each training picture is shifted at random, for --observation pixels "
                        f"(default {DEFAULT_IMAGE_SHIFT}; 0: none)")
    p.add_argument("--keypoints", type=_count(0, 256), default=0,
                   help="spatial-softmax keypoints the vision encoder adds as one image token, for --observation "
                        "pixels (default 0: none)")
    p.add_argument("--colour-film", action="store_true",
                   help="for --observation pixels: condition the vision encoder (FiLM) on the colours the "
                        "instruction names, read from its text (data.targets.named_colours)")
    p.add_argument("--scene-frames", type=_count(0, 100_000), default=0,
                   help="for --observation pixels with --scene-weight: render the first frame of this many random "
                        "layouts per robot and train the scene loss on them too (train.scene_frames; default 0)")
    p.add_argument("--scene-weight", type=_number(0.0, 100.0), default=0.0,
                   help="weight of an auxiliary training loss for --observation pixels: where the instruction's "
                        "cube and pad are, from the readouts (the recorded scene state is its target and is never "
                        "read when acting; default 0: none)")
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


