"""Why a closed-loop episode failed: one outcome label per episode, from its per-step trace.

`EpisodeWatcher` is an ``after_step`` hook for `rollout`: after every control step it reads the
scene (`observe`) into a `StepFacts` (which cube the closed gripper holds, how high each cube is,
where the named cube is against the named pad), keyed by the episode's seed. `classify` turns
one episode's facts into a label; `EpisodeWatcher.outcome` does both for an `EpisodeResult`.

The labels (a failed episode always ran to its time limit: success ends an episode early):

    success        the task's own success test passed
    never_grasped  lift, pick_place: the named cube never rose `LIFTED` off the table (the gripper
                   closed on nothing, or on the named cube without lifting it)
    wrong_cube     the gripper held (lift, pick_place), touched (push) or reached (reach) another
                   cube, and the named one never got that far
    dropped        lift, pick_place: the lifted named cube left the gripper in the air (for
                   pick_place: away from the named pad)
    not_released   pick_place: the named cube, held, came down to the named pad, and the jaw
                   never let it go there
    not_placed     pick_place: lifted but never brought down to the named pad (still in hand at
                   the end, or put down elsewhere); push: touched but not pushed onto the pad
    not_reached    push, reach: the gripper never touched (push) or reached (reach) the named cube
    timed_out      lift: held and lifted, but not high enough in time

A failed pick_place episode is labelled by the furthest stage it reached: at the pad with the
cube (`not_released`), else lost it in the air (`dropped`), else carried it (`not_placed`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

# The simulator (MuJoCo) is imported where a scene is read, not here: the audit's schema imports
# `Outcome`, and a report is rebuilt from audit.json without loading the simulator.

Outcome = Literal["success", "never_grasped", "wrong_cube", "dropped", "not_released", "not_placed",
                  "not_reached", "timed_out"]
OUTCOMES: tuple[str, ...] = get_args(Outcome)

OUTCOME_WORDS: dict[str, str] = {
    "success": "success",
    "never_grasped": "never grasped the named cube",
    "wrong_cube": "went for the wrong cube",
    "dropped": "dropped the cube",
    "not_released": "reached the pad but never released",
    "not_placed": "never put the cube on the pad",
    "not_reached": "never reached the named cube",
    "timed_out": "timed out",
}

LIFTED = 0.02  # m above its resting height: the cube is off the table (below every robot's lift height)
IN_AIR = 0.01  # m: a cube leaving the gripper this high falls
AT_PAD_HEIGHT = 0.03  # m: a held cube over the pad and lower than this has been brought down to it
GRASP_REACH = 0.025  # m from a TCP to a cube's centre: the closed gripper is on that cube
HELD_CLOSURE = 0.95  # closure below this with the gripper closed: the jaws stopped on something


@dataclass(frozen=True)
class StepFacts:
    """What one control step shows, in the robot's base frame; per-cube arrays are (N_OBJECTS,).

    Attributes:
        named: the instruction's cube.
        lift: each cube's height above its resting height (m).
        tcp_distance: from the nearest TCP to each cube's centre (m).
        touching: (N_OBJECTS,) bool, whether the robot is in contact with each cube.
        above_distance: from the nearest TCP to the point just above each cube (the reach goal, m).
        held: the cube a closed gripper holds (jaws stopped short of shut, TCP at the cube), or None.
        closed: whether any gripper counts as closed.
        over_pad: whether the named cube's centre is over the named pad.
        tcp_offset: (3,) the nearest TCP minus the named cube's centre (m).
    """

    named: int
    lift: np.ndarray
    tcp_distance: np.ndarray
    touching: np.ndarray
    above_distance: np.ndarray
    held: int | None
    closed: bool
    over_pad: bool
    tcp_offset: np.ndarray

    @property
    def at_pad(self) -> bool:
        """The named cube is over the named pad and down at it (held just above, or resting)."""
        return self.over_pad and bool(self.lift[self.named] < AT_PAD_HEIGHT)


def observe(env) -> StepFacts:
    """The facts of ``env``'s current step (a `TabletopEnv`)."""
    from locksmith.sim.scene import N_OBJECTS, PAD_HALF

    state = env.task_state()
    half = state.object_half
    cubes = np.stack([env.to_base_frame(env.object_pos(i)) for i in range(N_OBJECTS)])  # (N, 3)
    tcp = state.tcp_pos  # (n_arms, 3)
    offsets = tcp[:, None, :] - cubes[None, :, :]  # (n_arms, N, 3)
    distance = np.linalg.norm(offsets, axis=2)  # (n_arms, N)
    above = np.linalg.norm(offsets - np.array([0.0, 0.0, half + 0.02]), axis=2)
    closed = state.closure > state.gripper_threshold  # (n_arms,)
    held = None
    for arm in np.argsort(distance[:, env.target_object]):  # the arm nearest the named cube first
        nearest = int(np.argmin(distance[arm]))
        if closed[arm] and state.closure[arm] < HELD_CLOSURE and distance[arm, nearest] < GRASP_REACH:
            held = nearest
            break
    named = env.target_object
    arm = int(np.argmin(distance[:, named]))
    return StepFacts(
        named=named, lift=cubes[:, 2] - half, tcp_distance=distance.min(axis=0), touching=_touching(env),
        above_distance=above.min(axis=0),
        held=held, closed=bool(closed.any()),
        over_pad=bool(np.all(np.abs(cubes[named, :2] - state.pad_pos[:2]) < PAD_HALF)),
        tcp_offset=offsets[arm, named].copy())


def _touching(env) -> np.ndarray:
    """(N_OBJECTS,) bool: whether a geom of the robot touches each cube in this step's contacts."""
    model, data = env.model, env.data
    n_objects = len(env._obj_geom)
    cube_of = {int(g): i for i, g in enumerate(env._obj_geom)}  # geom id → cube
    robot = model.geom_bodyid != 0  # the table belongs to the world body; cubes and pads do not count
    robot[list(cube_of)] = False
    robot[list(env._pad_geom)] = False
    out = np.zeros(n_objects, dtype=bool)
    for a, b in data.contact.geom[: data.ncon]:  # (ncon, 2) geom ids
        if int(a) in cube_of and robot[b]:
            out[cube_of[int(a)]] = True
        if int(b) in cube_of and robot[a]:
            out[cube_of[int(b)]] = True
    return out


def _dropped(trace: Sequence[StepFacts], named: int, uses_pad: bool) -> bool:
    """The named cube left the gripper in the air (away from the named pad, when the task has one)."""
    return any(before.held == named and now.held != named and now.lift[named] > IN_AIR
               and not (uses_pad and now.over_pad) for before, now in zip(trace, trace[1:], strict=False))


def classify(task: str, trace: Sequence[StepFacts], success: bool) -> Outcome:
    """The outcome label of one episode (see the module docstring for the labels).

    Args:
        task: the task's name (`locksmith.sim.tasks.TASKS`).
        trace: the episode's facts, one per control step, in order.
        success: whether the episode succeeded (`EpisodeResult.success`).
    """
    if success:
        return "success"
    if not trace:
        return "timed_out"
    named = trace[0].named
    others = [i for i in range(len(trace[0].lift)) if i != named]
    if task in ("lift", "pick_place"):
        if not any(f.lift[named] > LIFTED for f in trace):
            wrong = any(f.held is not None and f.held != named for f in trace)
            return "wrong_cube" if wrong else "never_grasped"
        if task == "pick_place" and any(f.held == named and f.at_pad for f in trace):
            return "not_released"
        if _dropped(trace, named, uses_pad=task == "pick_place"):
            return "dropped"
        return "not_placed" if task == "pick_place" else "timed_out"
    if task == "push":
        if any(f.touching[named] for f in trace):
            return "not_placed"
        return "wrong_cube" if any(f.touching[i] for f in trace for i in others) else "not_reached"
    if task == "reach":
        from locksmith.sim.tasks import REACH_TOLERANCE

        if any(f.above_distance[i] < REACH_TOLERANCE for f in trace for i in others):
            return "wrong_cube"
        return "not_reached"
    raise KeyError(f"unknown task {task!r}")


class EpisodeWatcher:
    """An ``after_step`` hook for `rollout` that keeps every episode's per-step facts by seed.

        watcher = EpisodeWatcher()
        results = rollout(envs, agent, seeds, after_step=watcher)
        labels = [watcher.outcome(r) for r in results]
    """

    def __init__(self) -> None:
        self.traces: dict[int, list[StepFacts]] = {}
        self._task: dict[int, str] = {}

    def __call__(self, seed: int, env) -> None:
        if env.t == 1:  # the episode's first step: a seed replayed starts a new trace
            self.traces[seed] = []
            self._task[seed] = env.task.name
        self.traces.setdefault(seed, []).append(observe(env))

    def outcome(self, result) -> Outcome:
        """The label of a finished episode (an `EpisodeResult` of the watched rollout)."""
        return classify(self._task[result.seed], self.traces.get(result.seed, []), result.success)
