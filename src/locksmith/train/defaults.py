"""The pretraining defaults, in one place: `PriorRecipe`, `locksmith pretrain`, the plan's `prior:`
section and the published prior all read them (a light module: no torch, no simulator).

With these, every pool robot is at 99-100 % closed loop on `pick_place` and the Z1 at 91 %
(docs/benchmarks.md, prior J: the settled grasp, 200 demos, 5,000 steps; 400 demos and 15,000
steps gave the Z1 84 %).
"""

from __future__ import annotations

POOL_ROBOTS: tuple[str, ...] = ("panda", "ur5e", "vx300s", "z1")
POOL_TASKS: tuple[str, ...] = ("pick_place",)
DEMOS_PER_ROBOT = 200  # demonstrations per robot and task
PRETRAIN_STEPS = 5000
PRETRAIN_BATCH_SIZE = 256
PRETRAIN_LR = 1e-3
PRETRAIN_CHECKPOINT_EVERY = 500
# Validation episodes per robot and candidate re-planning horizon chosen after pretraining. With
# 50, the Z1's choice between re-planning every 1, 2 or 3 steps was within noise; 100 halves the
# variance.
TUNE_EPISODES = 100
# How far (m, per axis) each recorded pool demonstration's TCP starts from home
# (`TabletopEnv.start_jitter`, `locksmith demos --start-jitter`); 0: every one from home. At most
# MAX_START_JITTER: beyond it some robots' home poses cannot reach the offset.
DEMO_START_JITTER = 0.0
MAX_START_JITTER = 0.2


def tune_episodes_for(steps: int) -> int:
    """`locksmith pretrain`'s horizon-choice episodes when ``--tune-episodes`` is not given: in
    proportion to the run (`TUNE_EPISODES` at `PRETRAIN_STEPS`), at least 4, so a 40-step smoke
    run does not spend most of its time choosing horizons for a policy that barely trained."""
    return max(4, min(TUNE_EPISODES, round(TUNE_EPISODES * steps / PRETRAIN_STEPS)))
