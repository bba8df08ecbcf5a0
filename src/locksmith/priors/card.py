"""Publish a pretrained prior as locksmith's shipped prior, with a model card.

`publish` takes a `build_prior` output folder (``policy/``, ``pretrain.json``, ``data/``),
evaluates the prior closed loop on each pool robot on evaluation seeds (disjoint from the
demonstrations and from the validation seeds its horizons were chosen on), and writes into
``locksmith/priors/default/`` (a temporary folder, then a rename): the checkpoint files,
``pretrain.json`` (the build record plus the evaluation) and ``README.md``, a model card in the
style of a Hugging Face model card.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
from pathlib import Path

from locksmith.atomic import swap_into_place, write_json_atomic
from locksmith.priors import MODEL_CARD, REBUILD_COMMAND, SHIPPED_DIR

log = logging.getLogger(__name__)

CHECKPOINT_FILES = ("config.json", "model.safetensors", "normalizer_stats.json", "instructions.safetensors",
                    "horizon.json")


def evaluate_pool(policy_dir: Path, robots: list[str], task: str, episodes: int, workers: int | None = None) -> dict:
    """``{robot: {"success_rate", "successes", "episodes", "ci95", "seeds"}}`` on evaluation seeds."""
    from locksmith.evaluate.evaluator import evaluate

    out = {}
    for robot in robots:
        r = evaluate(robot, task, episodes, checkpoint=policy_dir, workers=workers)
        out[robot] = {"success_rate": r["success_rate"], "successes": int(round(r["success_rate"] * r["episodes"])),
                      "episodes": r["episodes"], "ci95": r["ci95"], "seeds": r["seeds"]}
        log.info("%s: %.0f %% on %d evaluation episodes", robot, 100 * r["success_rate"], episodes)
    return out


def _demo_summary(pretrain_dir: Path, robots: list[str], tasks: list[str]) -> dict:
    from locksmith.data.record import read_locksmith_meta

    out = {}
    for robot in robots:
        for task in tasks:
            root = pretrain_dir / "data" / f"{robot}_{task}"
            meta = read_locksmith_meta(root) if root.is_dir() else {}
            seeds = meta.get("episode_seeds", [])
            out[f"{robot}/{task}"] = {"episodes": len(seeds), "recorder_seed": meta.get("seed"),
                                      "episode_seeds": [min(seeds), max(seeds)] if seeds else None,
                                      "expert_failures": meta.get("expert_failures"),
                                      "execution_noise_m": meta.get("execution_noise_m", 0.0),
                                      "start_jitter_m": meta.get("start_jitter_m", 0.0)}
    return out


def _start_jitter(recipe: dict) -> str:
    """The start jitter of the pool's demos, for a recipe that had one (recipes before the field did not)."""
    jitter = float(recipe.get("demo_start_jitter", 0.0))
    return f", each episode's TCP starting up to {jitter:g} m per axis from home" if jitter else ""


def publish(pretrain_dir: str | Path, episodes: int = 100, target: Path = SHIPPED_DIR,
            workers: int | None = None) -> dict:
    """Evaluate the prior in ``pretrain_dir`` and install it, with its card, at ``target``."""
    pretrain_dir = Path(pretrain_dir)
    record = json.loads((pretrain_dir / "pretrain.json").read_text())
    policy_dir = pretrain_dir / "policy"
    robots, tasks = list(record["recipe"]["robots"]), list(record["recipe"]["tasks"])
    evaluation = evaluate_pool(policy_dir, robots, tasks[0], episodes, workers)
    files = [n for n in CHECKPOINT_FILES if (policy_dir / n).is_file()]
    sha = {n: hashlib.sha256((policy_dir / n).read_bytes()).hexdigest() for n in files}
    full = {**record, "evaluation": {"task": tasks[0], "slice": "nominal", "episodes": episodes,
                                     "robots": evaluation},
            "demonstrations": _demo_summary(pretrain_dir, robots, tasks), "sha256": sha,
            "rebuild": REBUILD_COMMAND}
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        for name in files:
            shutil.copy2(policy_dir / name, tmp / name)
        shutil.copytree(policy_dir / "specs", tmp / "specs")
        write_json_atomic(tmp / "pretrain.json", full)
        (tmp / MODEL_CARD).write_text(model_card(full))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    swap_into_place(tmp, target)
    return full


def model_card(record: dict) -> str:
    """The card: what the prior is, what it was trained on, how well it does, how to rebuild it."""
    recipe, train = record["recipe"], record["train"]
    ev = record["evaluation"]
    machine = record.get("machine", {})
    rows = "\n".join(f"| {robot} | {100 * r['success_rate']:.0f} % | [{100 * r['ci95'][0]:.0f}, {100 * r['ci95'][1]:.0f}] "
                     f"| {r['successes']} / {r['episodes']} | {r['seeds'][0]}-{r['seeds'][1]} |"
                     for robot, r in ev["robots"].items())
    demos = "\n".join(f"| {k} | {v['episodes']} | {v['recorder_seed']} | "
                      f"{v['episode_seeds'][0] if v['episode_seeds'] else 'n/a'}-"
                      f"{v['episode_seeds'][1] if v['episode_seeds'] else ''} | {v['expert_failures']} |"
                      for k, v in record["demonstrations"].items())
    horizons = ", ".join(f"{robot}: every {h['chosen']} steps" for robot, h in (record.get("horizons") or {}).items())
    sha = "\n".join(f"| `{name}` | `{digest}` |" for name, digest in record["sha256"].items())
    return f"""---
library_name: locksmith
license: apache-2.0
tags: [robotics, cross-embodiment, imitation-learning, mujoco, lerobot]
pipeline_tag: robotics
---

# locksmith default prior

The shared robot prior that ships with locksmith: per-robot stems and heads around one transformer
trunk, embodiment tokens, word-level instruction tokens from the frozen all-MiniLM-L6-v2 sentence
encoder, action chunks. It is what `locksmith audit` and `locksmith adapt` start from when no prior
is named; a new robot's key (head, token, LoRA or full fine-tuning with L2-SP) is cut from it.

- **Parameters:** {record['parameters']:,}
- **Pool:** {', '.join(recipe['robots'])}; tasks: {', '.join(recipe['tasks'])}
- **Built by:** locksmith {record.get('locksmith_version', '?')}, scripted expert version {record.get('expert_version', '?')}
- **Finished:** {record.get('finished', '?')}

## Training data

Scripted-expert demonstrations (differential IK with mink, MuJoCo), {recipe['demos_per_robot']} per robot and
task, recorded as LeRobot v3 datasets; mixture weights by size (temperature {recipe['temperature']:g}), execution
noise {recipe['demo_noise']:g} m{_start_jitter(recipe)}.

| robot/task | episodes | recorder seed | episode seeds | expert failures skipped |
|---|---|---|---|---|
{demos}

## Training

{train['steps']:,} steps at batch {train['batch_size']}, AdamW lr {train['lr']:g} (weight decay {train['weight_decay']:g}),
{train['warmup_steps']} warm-up steps then {train.get('schedule', 'cosine')} decay, gradient clipping {train['grad_clip']:g},
seed {train['seed']}. Final training loss {record['final_loss']:.4f}, {record['samples_per_s']:.0f} samples/s.
Wall-clock: {record['pretrain_seconds'] / 60:.1f} min for recording and training, {record['horizon_seconds'] / 60:.1f} min choosing
the re-planning horizons ({horizons or 'not chosen'}) on {record.get('horizon_episodes')} validation episodes per
candidate (validation seeds, disjoint from the evaluation seeds below), on {machine.get('cpus', '?')} CPU cores
({machine.get('platform', '?')}, Python {machine.get('python', '?')}, {record.get('torch_threads', '?')} torch thread(s)).

## Evaluation

Closed-loop `{ev['task']}` success in MuJoCo, slice `{ev['slice']}`, {ev['episodes']} evaluation episodes per robot
(seeds disjoint from every demonstration and validation seed), every action through the robot's safety shield;
Wilson 95 % intervals.

| robot | success | 95 % interval | episodes | evaluation seeds |
|---|---|---|---|---|
{rows}

## Files

| file | sha256 |
|---|---|
{sha}

## Rebuild

```bash
{record['rebuild']}
```

This records the pool's demonstrations, pretrains with `locksmith pretrain`'s defaults, chooses the horizons,
evaluates every pool robot and rewrites this folder and card. Whenever the policy code changes, rebuild it:
locksmith refuses a shipped prior whose config does not match the code.

## Limitations

Trained in simulation on privileged object state (positions, sizes and colours of the cubes and pads), not
on pixels; one task family. Its value for a new robot is what `locksmith audit` measures, not a claim of
this card.
"""
