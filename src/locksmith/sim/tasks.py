"""The manipulation tasks: an instruction that names coloured objects, a horizon, a success test.

Every task exists on every embodiment. The instruction names the target object by colour (two
distractors of other colours share the table), and, where a destination matters, a pad by
colour, so the policy must ground the words in the scene.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from locksmith.sim.scene import PAD_HALF


@dataclass(frozen=True)
class TaskDef:
    name: str
    template: str
    horizon_s: float
    uses_pad: bool
    description: str


TASKS: dict[str, TaskDef] = {
    "reach": TaskDef("reach", "reach the {obj} cube", 4.0, False,
                     "bring the gripper just above the named cube"),
    "lift": TaskDef("lift", "lift the {obj} cube", 6.0, False,
                    "grasp the named cube and raise it off the table"),
    "push": TaskDef("push", "push the {obj} cube onto the {pad} pad", 12.0, True,
                    "push the named cube, without grasping, onto the named pad"),
    "pick_place": TaskDef("pick_place", "put the {obj} cube on the {pad} pad", 10.0, True,
                          "grasp the named cube, carry it and release it on the named pad"),
}

REACH_TOLERANCE = 0.03  # m, TCP to the point just above the cube


def get_task(name: str) -> TaskDef:
    if name not in TASKS:
        raise KeyError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}")
    return TASKS[name]


@dataclass
class TaskState:
    """What the success test looks at, in the robot's base frame."""

    object_pos: np.ndarray  # (3,) target object centre
    object_half: float
    pad_pos: np.ndarray  # (3,) target pad centre
    tcp_pos: np.ndarray  # (n_arms, 3)
    closure: np.ndarray  # (n_arms,) 0 open .. 1 closed
    lift_height: float
    gripper_threshold: np.ndarray  # (n_arms,) closure above which the gripper counts as closed


def is_success(task: str, state: TaskState) -> bool:
    """Whether the task is achieved in this state."""
    obj, half = state.object_pos, state.object_half
    if task == "reach":
        above = obj + np.array([0.0, 0.0, half + 0.02])
        return bool(np.min(np.linalg.norm(state.tcp_pos - above, axis=1)) < REACH_TOLERANCE)
    if task == "lift":
        return bool(obj[2] > half + state.lift_height)
    on_pad = bool(np.all(np.abs(obj[:2] - state.pad_pos[:2]) < PAD_HALF) and obj[2] < half + 0.01)
    if task == "push":
        return on_pad
    if task == "pick_place":
        released = bool(np.all(state.closure < state.gripper_threshold))
        return on_pad and released
    raise KeyError(f"unknown task {task!r}; known tasks: {', '.join(TASKS)}")
