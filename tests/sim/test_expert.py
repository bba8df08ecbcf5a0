"""The scripted expert succeeds on every (robot, task); the full 100-episode table is a
benchmark (benchmarks/expert_table.py), this checks a few seeded episodes of each."""

import pytest

from locksmith.embodiment.registry import BUNDLED_ROBOTS
from locksmith.sim.env import TabletopEnv
from locksmith.sim.expert import GRIP_MAX_S, GRIP_MIN_STEPS, GRIP_SETTLED, ScriptedExpert, run_expert_episode
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


@pytest.mark.parametrize("robot", ["panda", "z1"])
def test_the_grasp_ends_when_the_jaw_settles_not_on_a_clock(robot):
    # A clock-timed wait after closing left identical states whose next action was sometimes
    # "wait", sometimes "lift"; the close phase now ends once the jaw has stopped moving.
    env = TabletopEnv(robot, "pick_place")
    expert = ScriptedExpert(env)
    gen = run_expert_episode(env, 101, expert)
    closing: list[float] = []
    at_lift = None
    try:
        while True:
            next(gen)
            if expert.phase_name == "close":
                closing.append(env.closure(expert.arm))
            elif closing and at_lift is None:
                at_lift = env.closure(expert.arm)  # the step whose act() ended the close phase
    except StopIteration as stop:
        assert stop.value, f"{robot}: the expert failed"
    clock_steps = round(GRIP_MAX_S / env.dt)
    assert GRIP_MIN_STEPS <= len(closing) < clock_steps, (len(closing), clock_steps)
    assert at_lift > 0.3 and abs(at_lift - closing[-1]) < GRIP_SETTLED, (closing, at_lift)
