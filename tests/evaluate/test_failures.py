"""Outcome labels of closed-loop episodes, on real scripted episodes (the expert, and the expert
with its gripper or its target cube changed) rolled out through the shield as the evaluation does."""

from __future__ import annotations

import numpy as np
import pytest

from locksmith.evaluate.evaluator import make_shield, shield_filter
from locksmith.evaluate.failures import OUTCOMES, EpisodeWatcher, StepFacts, classify
from locksmith.evaluate.rollout import EVAL_SEED_BASE, ExpertAgent, rollout
from locksmith.sim.env import TabletopEnv
from locksmith.sim.scene import N_OBJECTS


class GripperOverride(ExpertAgent):
    """The scripted expert, but its gripper command is ``closure(phase)`` where that is not None."""

    def __init__(self, closure):
        self.closure = closure

    def act(self, envs, active, obs):
        actions = super().act(envs, active, obs).copy()
        for row, i in enumerate(active):
            env, closure = envs[i], self.closure(self.experts[i].phase_name)
            if closure is None:
                continue
            for comp, part in zip(env.spec_.action, env.spec_.slices("action").values(), strict=True):
                if comp.kind == "gripper":
                    actions[row, part] = env.spec_.arm(comp.arm).gripper.to_native(closure)
        return actions


class WrongCube(ExpertAgent):
    """The scripted expert doing the task with the next cube instead of the named one."""

    def act(self, envs, active, obs):
        named = {i: envs[i].target_object for i in active}
        for i in active:
            envs[i].target_object = (named[i] + 1) % N_OBJECTS
        try:
            return super().act(envs, active, obs)
        finally:
            for i in active:
                envs[i].target_object = named[i]


def _labels(robot: str, task: str, agent, n: int = 1) -> list[str]:
    env = TabletopEnv(robot, task)
    watcher = EpisodeWatcher()
    seeds = [EVAL_SEED_BASE + k for k in range(n)]
    results = rollout([env], agent, seeds, action_filter=shield_filter([env], [make_shield(env, None)]),
                      after_step=watcher)
    return [watcher.outcome(r) for r in results]


@pytest.mark.parametrize("agent, label", [
    (ExpertAgent(), "success"),
    (GripperOverride(lambda phase: 0.0), "never_grasped"),  # never closes
    (GripperOverride(lambda phase: 0.0 if phase == "carry" else None), "dropped"),  # opens mid-carry
    (GripperOverride(lambda phase: 1.0 if phase in ("open", "retreat") else None), "not_released"),
    (WrongCube(), "wrong_cube"),  # picks and places a distractor
], ids=["expert", "never_closes", "opens_mid_carry", "never_opens", "distractor"])
def test_pick_place_episodes_are_labelled_by_what_went_wrong(agent, label):
    assert _labels("panda", "pick_place", agent) == [label]


def test_the_labels_hold_on_a_small_arm_with_a_smaller_cube():
    assert _labels("so101", "pick_place", GripperOverride(lambda p: 0.0 if p == "carry" else None)) == ["dropped"]


@pytest.mark.parametrize("task, agent, label", [
    ("lift", ExpertAgent(), "success"),
    ("lift", GripperOverride(lambda phase: 0.0), "never_grasped"),
    ("push", ExpertAgent(), "success"),
    ("push", WrongCube(), "wrong_cube"),  # pushes another cube onto the pad
    ("reach", WrongCube(), "wrong_cube"),
])
def test_the_other_tasks_have_their_analogues(task, agent, label):
    assert _labels("panda", task, agent) == [label]


def _facts(named=0, lift=(0.0, 0.0, 0.0), held=None, over_pad=False, touching=(False, False, False)) -> StepFacts:
    zeros = np.zeros(3)
    return StepFacts(named=named, lift=np.asarray(lift), tcp_distance=zeros + 0.1, touching=np.asarray(touching),
                     above_distance=zeros + 0.1, held=held, closed=held is not None, over_pad=over_pad,
                     tcp_offset=zeros)


def test_a_pick_place_failure_is_labelled_by_the_furthest_stage_it_reached():
    lifted, carried = _facts(lift=(0.05, 0, 0), held=0), _facts(lift=(0.08, 0, 0), held=0)
    at_pad = _facts(lift=(0.015, 0, 0), held=0, over_pad=True)
    fell = _facts(lift=(0.06, 0, 0), held=None)
    assert classify("pick_place", [lifted, carried, fell], False) == "dropped"
    assert classify("pick_place", [lifted, carried, fell, lifted, at_pad], False) == "not_released"
    assert classify("pick_place", [lifted, carried], False) == "not_placed"
    assert classify("pick_place", [lifted, carried, at_pad], True) == "success"
    # Released over the pad from too high, and the cube bounced off: not a drop away from the pad.
    over = _facts(lift=(0.06, 0, 0), held=None, over_pad=True)
    assert classify("pick_place", [lifted, carried, over], False) == "not_placed"
    # The lift task has no pad: letting go in the air over it is still a drop.
    assert classify("lift", [lifted, carried, over], False) == "dropped"
    assert classify("lift", [lifted, carried], False) == "timed_out"


def test_holding_a_distractor_is_the_wrong_cube_until_the_named_one_is_lifted():
    other = _facts(held=1, lift=(0, 0.05, 0))
    assert classify("pick_place", [_facts(), other], False) == "wrong_cube"
    assert classify("pick_place", [_facts(), _facts(held=0)], False) == "never_grasped"  # held, never lifted
    assert classify("pick_place", [other, _facts(lift=(0.05, 0, 0), held=0)], False) == "not_placed"
    assert classify("push", [_facts(touching=(False, False, True))], False) == "wrong_cube"
    assert classify("push", [_facts(touching=(True, False, False))], False) == "not_placed"
    assert classify("push", [_facts()], False) == "not_reached"
    assert classify("reach", [], False) == "timed_out"
    assert set(OUTCOMES) >= {"success", "never_grasped", "wrong_cube", "dropped", "not_released", "not_placed"}
    with pytest.raises(KeyError, match="unknown task"):
        classify("juggle", [_facts()], False)


def test_a_replayed_seed_starts_a_new_trace():
    env = TabletopEnv("panda", "reach")
    watcher = EpisodeWatcher()
    for _ in range(2):
        (result,) = rollout([env], ExpertAgent(), [EVAL_SEED_BASE], after_step=watcher)
    assert len(watcher.traces[EVAL_SEED_BASE]) == result.steps
    assert watcher.outcome(result) == "success"
