"""The scripted expert succeeds on every (robot, task); the full 100-episode table is a
benchmark (benchmarks/expert_table.py), this checks a few seeded episodes of each."""

import pytest

from locksmith.embodiment.registry import BUNDLED_ROBOTS
from locksmith.sim.env import TabletopEnv
from locksmith.sim.expert import ScriptedExpert, run_expert_episode
from locksmith.sim.tasks import TASKS


def _run(env, expert, seed):
    gen = run_expert_episode(env, seed, expert)
    try:
        while True:
            next(gen)
    except StopIteration as stop:
        return stop.value


@pytest.mark.parametrize("task", list(TASKS))
@pytest.mark.parametrize("robot", BUNDLED_ROBOTS)
def test_expert_succeeds(robot, task):
    env = TabletopEnv(robot, task)
    expert = ScriptedExpert(env)
    successes = sum(_run(env, expert, seed) for seed in (101, 202, 303))
    assert successes >= 2, f"{robot}/{task}: expert succeeded {successes}/3"


def test_expert_recovers_from_a_push():
    env = TabletopEnv("panda", "lift", slice_name="push")
    expert = ScriptedExpert(env)
    assert sum(_run(env, expert, seed) for seed in (1, 2, 3)) >= 2
    assert env.pushed
