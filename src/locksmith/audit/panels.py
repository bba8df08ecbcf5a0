"""Rollout clips for the report: evaluation episodes of the headline and baseline arms, replayed.

Per closed-loop target, the clips show what the numbers count: the headline arm and the baseline
arm, both at **the budget nearest the headline arm's demos to threshold** (nearest in log demos
among the budgets both arms ran; the crossing's bound when it was not reached or was already
passed at the smallest budget; the smaller budget on a tie), each with its run of the first
training seed. From the outcomes that run's evaluation recorded, the first `PER_OUTCOME`
successes and the first `PER_OUTCOME` failures (in evaluation-episode order) are replayed with
the run's final checkpoint, every action through the safety shield as in the evaluation, and
labelled with the replay's outcome (`locksmith.evaluate.failures`) and the shield's
interventions in that episode. Offline (dataset) targets have none.

Rollouts are deterministic given the seed, but a policy's batched inference differs in the last
bits with the batch's size, so an episode is replayed inside the same batch of `EVAL_BATCH`
environments `evaluate` ran it in (only the chosen ones are rendered). A replay that still ends
otherwise than recorded is kept and says so (`PanelRecord.recorded_success`).

    out/panels/<n>-<target>-<arm>-n<budget>-s<seed>-<slice>-<evaluation seed>.webp

Clips are `CLIP_SIZE` px square, one frame every few control steps (at most `MAX_FRAMES`),
played at `CLIP_FPS`: animated WebP (GIF where Pillow lacks WebP), a few tens of kB each, since
the HTML report embeds them. Rendering needs OpenGL (``MUJOCO_GL=osmesa`` works headless); when
it fails, or a checkpoint is gone, the target gets a note instead of clips and the audit goes on.
"""

from __future__ import annotations

import io
import logging
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from locksmith.atomic import write_file_atomic
from locksmith.audit.schema import AuditResult, PanelRecord, TargetResult
from locksmith.evaluate.evaluator import env_options, load_policy, make_agent, make_shield, shield_filter
from locksmith.evaluate.failures import EpisodeWatcher
from locksmith.evaluate.rollout import rollout

log = logging.getLogger(__name__)

PANELS_DIR = "panels"
PER_OUTCOME = 2  # successes and failures per arm
CLIP_SIZE = 128  # px, square
CLIP_FPS = 10
MAX_FRAMES = 80
EVAL_BATCH = 8  # environments `evaluate` steps together (its n_envs, which the sweep leaves at the default)


# --- which runs and episodes ---------------------------------------------------------------------

def _crossing_point(target: TargetResult) -> float:
    """The headline arm's demos to threshold, or the bound it is known by."""
    crossing = target.arms[target.headline_arm].crossing
    if crossing.status == "reached":
        return float(crossing.demos)
    return float(crossing.upper_bound if crossing.status == "at_or_below_min" else crossing.lower_bound)


def panel_budget(target: TargetResult) -> int:
    """The budget both arms' clips come from: nearest (in log demos) the headline arm's crossing
    among the budgets the headline and baseline arms both ran; the smaller one on a tie."""
    headline, baseline = target.arms[target.headline_arm], target.arms[target.baseline.name]
    budgets = sorted(set(headline.curve.budgets) & set(baseline.curve.budgets)) or list(headline.curve.budgets)
    point = math.log(max(_crossing_point(target), 1e-9))
    return min(budgets, key=lambda b: (abs(math.log(b) - point), b))


def pick_episodes(keys: Sequence[str], outcomes: Sequence[int], per_outcome: int = PER_OUTCOME) -> list[str]:
    """The first ``per_outcome`` successes, then the first ``per_outcome`` failures, by episode order."""
    successes = [k for k, o in zip(keys, outcomes, strict=True) if o][:per_outcome]
    failures = [k for k, o in zip(keys, outcomes, strict=True) if not o][:per_outcome]
    return successes + failures


def find_run(results: Sequence[dict], target: str, arm: str, budget: int, seed: int) -> dict | None:
    """The report run (``result.json``) of (target, arm, budget, seed), or None."""
    for r in results:
        if (r["target"], r["arm"], int(r["budget"]), int(r["seed"])) == (target, arm, budget, seed) \
                and r.get("purpose", "report") == "report":
            return r
    return None


# --- replaying and rendering --------------------------------------------------------------------

@dataclass
class Replay:
    """One replayed episode: its frames (T, H, W, 3) uint8, outcome and shield interventions."""

    frames: list[np.ndarray]
    success: bool
    outcome: str
    interventions: dict[str, int]


def replay_episodes(checkpoint: str | Path, robot: str, task: str, episode_keys: Sequence[str],
                    slice_seeds: dict[str, list[int]], size: int = CLIP_SIZE, fps: int = CLIP_FPS,
                    max_frames: int = MAX_FRAMES) -> dict[str, Replay]:
    """Replay and render the episodes ``episode_keys`` (``<slice>/<seed>``) of a checkpoint.

    Each is rolled out inside its evaluation batch (`EVAL_BATCH` consecutive seeds of its slice in
    ``slice_seeds``, as `evaluate` batched them), each environment through its own fresh shield;
    only the chosen episodes are rendered, one frame every ``stride`` control steps and the last.
    """
    import torch

    from locksmith.sim.env import TabletopEnv

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the evaluation ran: the same kernels, the same numbers
    try:
        policy = load_policy(checkpoint, robot)
        wanted: dict[str, set[int]] = {}
        for key in episode_keys:
            name, seed = key.split("/")
            wanted.setdefault(name, set()).add(int(seed))
        out: dict[str, Replay] = {}
        for name, seeds_here in wanted.items():
            order = slice_seeds[name]
            # a policy that reads pixels sees them at its own size, as in its evaluation (the clip too)
            options = {"image_size": size, **env_options(policy)}
            envs = [TabletopEnv(robot, task, slice_name=name, **options) for _ in range(min(EVAL_BATCH, len(order)))]
            stride = max(math.ceil(envs[0].spec_.control_rate_hz / fps), math.ceil(envs[0].horizon / (max_frames - 1)))
            try:
                for first in sorted({order.index(s) // EVAL_BATCH * EVAL_BATCH for s in seeds_here}):
                    group = order[first:first + EVAL_BATCH]
                    out.update(_replay_group(policy, robot, envs, group, seeds_here & set(group), stride, name))
            finally:
                for env in envs:
                    env.close()
        return out
    finally:
        torch.set_num_threads(threads)


def _frame(env) -> np.ndarray:
    return next(iter(env.render_cameras().values()))  # the spec's first camera


def _replay_group(policy, robot: str, envs: list, group: list[int], chosen: set[int], stride: int,
                  slice_name: str) -> dict[str, Replay]:
    """Roll out one evaluation batch ``group``; render and label the ``chosen`` seeds' episodes."""
    shields = [make_shield(env, policy) for env in envs]
    watcher = EpisodeWatcher()
    frames: dict[int, list[np.ndarray]] = {s: [] for s in chosen}

    def after_step(seed: int, env) -> None:
        if seed in frames:
            watcher(seed, env)
            if env.t == 1 or env.t % stride == 0:
                frames[seed].append(_frame(env))

    results = rollout(envs, make_agent(policy, robot), group, action_filter=shield_filter(envs, shields),
                      after_step=after_step)
    out = {}
    for i, result in enumerate(results):
        if result.seed not in chosen:
            continue
        env = envs[i]  # still at the episode's last step
        if env.t % stride != 0:
            frames[result.seed].append(_frame(env))
        out[f"{slice_name}/{result.seed}"] = Replay(
            frames[result.seed], bool(result.success), watcher.outcome(result),
            {k: int(v) for k, v in shields[i].interventions.items() if v})
    return out


def encode_clip(frames: Sequence[np.ndarray], fps: int = CLIP_FPS) -> tuple[bytes, str]:
    """Frames (H, W, 3) uint8 → (animated WebP bytes, ".webp"), or a GIF where WebP is missing."""
    from PIL import Image, features

    images = [Image.fromarray(np.asarray(f, dtype=np.uint8)) for f in frames]
    buffer = io.BytesIO()
    duration = round(1000 / fps)
    if features.check("webp"):
        images[0].save(buffer, format="WEBP", save_all=True, append_images=images[1:], duration=duration, loop=0,
                       quality=50, method=4)
        return buffer.getvalue(), ".webp"
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=duration, loop=0,
                   optimize=True)
    return buffer.getvalue(), ".gif"


# --- the audit ------------------------------------------------------------------------------------

def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "x"


def target_panels(target: TargetResult, results: Sequence[dict], out: Path,
                  index: int) -> tuple[tuple[PanelRecord, ...], str | None]:
    """Render one closed-loop target's clips into ``out/panels/``.

    Returns:
        (the clips, None), or with a note naming each arm whose clips could not be made and why.
    """
    budget, seed = panel_budget(target), target.seeds[0]
    slice_seeds: dict[str, list[int]] = {}
    for key in target.episode_keys:
        name, episode_seed = key.split("/")
        slice_seeds.setdefault(name, []).append(int(episode_seed))
    records, problems = [], []
    for arm in dict.fromkeys((target.headline_arm, target.baseline.name)):
        try:
            records += _arm_panels(target, arm, budget, seed, results, slice_seeds, out, index)
        except Exception as err:  # noqa: BLE001 - a clip illustrates the audit, which must not fail on it
            log.warning("panels: no rollout clips of %s on %s: %s: %s", arm, target.label, type(err).__name__, err)
            problems.append(f"{arm}: {type(err).__name__}: {err}")
    note = f"Rollout clips not rendered for {'; '.join(problems)}" if problems else None
    return tuple(records), note


def _arm_panels(target: TargetResult, arm: str, budget: int, seed: int, results: Sequence[dict],
                slice_seeds: dict[str, list[int]], out: Path, index: int) -> list[PanelRecord]:
    run = find_run(results, target.label, arm, budget, seed)
    if run is None:
        raise FileNotFoundError(f"no finished run at {budget} demos, seed {seed}")
    checkpoint = Path(run["checkpoint"])
    if not checkpoint.exists():
        raise FileNotFoundError(f"the checkpoint of the run at {budget} demos, seed {seed} is gone ({checkpoint})")
    recorded = dict(zip(run["episode_keys"], run["outcomes"], strict=True))
    keys = pick_episodes(run["episode_keys"], run["outcomes"])
    t0 = time.perf_counter()
    replays = replay_episodes(checkpoint, target.robot, target.task, keys, slice_seeds)
    records = []
    for key in keys:
        replay = replays[key]
        data, ext = encode_clip(replay.frames)
        name, episode_seed = key.split("/")
        file = (f"{PANELS_DIR}/{index}-{_safe(target.label)}-{_safe(arm)}-n{budget}-s{seed}-{_safe(name)}-"
                f"{episode_seed}{ext}")
        write_file_atomic(out / file, data)
        records.append(PanelRecord(arm=arm, budget=budget, seed=seed, episode_key=key,
                                   recorded_success=bool(recorded[key]), success=replay.success,
                                   outcome=replay.outcome, interventions=replay.interventions, file=file,
                                   frames=len(replay.frames), fps=float(CLIP_FPS)))
    log.info("panels: %s %s n=%d s=%d: %d clips in %.1f s", target.label, arm, budget, seed, len(keys),
             time.perf_counter() - t0)
    return records


def opengl_problem() -> str | None:
    """Why MuJoCo cannot render offscreen here (None when it can): a 1-pixel probe, made once."""
    import mujoco

    try:
        renderer = mujoco.Renderer(mujoco.MjModel.from_xml_string("<mujoco/>"), 1, 1)
    except Exception as err:  # noqa: BLE001 - whatever the GL backend raises, the answer is "cannot render"
        return f"{type(err).__name__}: {err}"
    renderer.close()
    return None


def add_panels(audit: AuditResult, results: Sequence[dict], out: str | Path) -> AuditResult:
    """The audit with every closed-loop target's clips rendered into ``out/panels/`` and recorded.

    Never raises for a clip: an arm whose clips cannot be made (no OpenGL, a checkpoint gone, ...)
    gets none, and the target a ``panels_note`` saying why, which the report prints.
    """
    out = Path(out)
    data = audit.model_dump()
    sim = [label for label, target in audit.targets.items() if target.source == "sim"]
    problem = opengl_problem() if sim else None
    if problem is not None:
        log.warning("panels: MuJoCo cannot render here (%s): no rollout clips", problem)
    for index, (label, target) in enumerate(audit.targets.items(), start=1):
        if label not in sim:
            continue
        if problem is not None:
            panels, note = (), (f"Rollout clips not rendered: MuJoCo cannot render offscreen here ({problem}); "
                                f"MUJOCO_GL=osmesa (Debian's libosmesa6) or egl renders without a display.")
        else:
            panels, note = target_panels(target, results, out, index)
        data["targets"][label].update(panels=[p.model_dump() for p in panels], panels_note=note)
    return AuditResult.model_validate(data)
