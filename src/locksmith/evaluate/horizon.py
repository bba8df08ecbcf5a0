"""Choose each robot's re-planning horizon (``n_action_steps``) on validation episodes.

A policy predicts a chunk of about one second and executes its first ``n_action_steps`` open
loop before predicting again. The best horizon depends on the robot and its data: on the
bundled pool the ViperX fails when it re-plans every step and the Panda does best with half a
chunk, while the Z1 needed fresh predictions until its demonstrations had the settled grasp
(docs/benchmarks.md). Training
never reads the horizon, so it can be chosen after training, closed loop, and written into the
checkpoint's config.

The choice is made on validation seeds (from `VALIDATION_SEED_BASE`), disjoint from every
demonstration seed and from the evaluation seeds that `locksmith eval` reports on, so that the
reported success is not tuned on its own episodes. The highest validation success wins; ties go
to the longer horizon (fewer predictions per second). The results are kept beside the
checkpoint in ``horizon.json``.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from locksmith.atomic import write_file_atomic, write_json_atomic
from locksmith.train.defaults import TUNE_EPISODES

log = logging.getLogger(__name__)

VALIDATION_SEED_BASE = 1_500_000_000  # demo seeds lie below 1e9; evaluation seeds from 2e9
HORIZON_FILE = "horizon.json"


def horizon_candidates(chunk_size: int, current: int) -> list[int]:
    """Every step, every other step, a quarter chunk, and the configured horizon."""
    return sorted({1, min(2, chunk_size), max(1, chunk_size // 4), current})


def tune_horizons(checkpoint: str | Path, task: str = "pick_place", episodes: int = TUNE_EPISODES,
                  robots: list[str] | None = None, workers: int | None = None) -> dict:
    """Pick ``n_action_steps`` per robot on validation episodes and write it into the checkpoint.

    Returns ``{robot: {"chosen": n, "before": n0, "success": {n: rate}}}`` (also in ``horizon.json``).
    """
    from locksmith.evaluate.evaluator import evaluate
    from locksmith.policy.config import PolicyConfig
    from locksmith.policy.policy import CONFIG_FILE

    checkpoint = Path(checkpoint)
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    config_path = checkpoint / CONFIG_FILE
    config = PolicyConfig.from_json(config_path.read_text())
    names = robots or [e.name for e in config.embodiments]
    chosen: dict[str, dict] = {}
    for name in names:
        emb = config.embodiment(name)
        rates: dict[int, float] = {}
        for n in horizon_candidates(emb.chunk_size, emb.n_action_steps):
            result = evaluate(name, task, episodes, checkpoint=checkpoint, workers=workers,
                              n_action_steps=n, seed_base=VALIDATION_SEED_BASE)
            rates[n] = result["success_rate"]
            log.info("%s: re-planning every %d steps: %.0f %% on %d validation episodes",
                     name, n, 100 * rates[n], episodes)
        best = max(rates, key=lambda n: (rates[n], n))
        chosen[name] = {"chosen": best, "before": emb.n_action_steps, "success": {str(n): r for n, r in rates.items()}}
    embodiments = tuple(replace(e, n_action_steps=chosen[e.name]["chosen"]) if e.name in chosen else e
                        for e in config.embodiments)
    write_file_atomic(config_path, replace(config, embodiments=embodiments).to_json())
    write_json_atomic(checkpoint / HORIZON_FILE, {"task": task, "episodes": episodes,
                                                  "seed_base": VALIDATION_SEED_BASE, "robots": chosen})
    return chosen
