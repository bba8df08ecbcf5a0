"""A short scripted-expert run per task, with the first failure diagnosed by phase.

The expert (`locksmith.sim.expert.ScriptedExpert`) moves through named phases (approach,
descend, close, lift, ...). A motion phase that does not reach its goal gives up after 3 s and
the next phase starts anyway, so a failure usually shows later than its cause; the diagnosis
therefore walks the episode from its start and names the first phase that went wrong:

    did not reach      a motion phase ended by its 3 s timeout, the TCP still off its goal
    did not close      the close phase ended with the jaw (nearly) open
    closed on nothing  the close phase ended fully closed: the cube was not between the fingers
    slipped            the cube left the closed gripper while lifting or carrying
    dragged            the hand touched the table while pushing
    lost the cube      the push restarted because the cube slid off the fingers
    did not release    the open phase ended with the gripper above the spec's closure threshold
    ran out of time    none of the above: the horizon ended in the named phase
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from locksmith.sim.check.physics import hand_bodies
from locksmith.sim.check.report import Finding
from locksmith.sim.env import TabletopEnv
from locksmith.sim.expert import ScriptedExpert

PHASE_TIMEOUT_S = 3.0  # the expert's own: a motion phase moves on after this long
DRAG_S = 0.3  # s of hand-table contact while pushing that count as dragging (a brush does not)
MIN_SUCCESS = 0.75  # of a task's smoke episodes: below it, a finding (the bundled experts reach 95-100 %)
MOTION_PHASES = ("approach", "approach_close", "descend", "lift", "carry", "lower", "retreat", "pre_push",
                 "descend_push")
FIXES = {
    "did not reach": "check the workspace finding (IK reach), the joint servos' strength, and contacts that block the arm",
    "did not close": "see the gripper findings: the joint's range and units, the servo's strength and speed",
    "closed on nothing": "move the TCP site to the point between the fingertips where a grasped cube's centre sits",
    "slipped": "raise the gripper's force limit or the pads' friction (see the gripper findings)",
    "dragged": "raise RobotRig.extra['push_height'] (see the fingertips finding) or move the TCP towards the fingertips",
    "lost the cube": "push with the closed fingers' centre: set RobotRig.extra['closed_jaws_tcp_x'] for a single "
                     "moving jaw, or lower push_height so the fingers meet the cube below its top",
    "did not release": "make the gripper open faster, or raise the spec's gripper closure_threshold",
    "ran out of time": "the episode was too short for the expert: check the arm's speed (servo gains) and reach",
}


@dataclass
class EpisodeTrace:
    """What the diagnosis needs from one expert episode."""

    seed: int
    success: bool = False
    steps: int = 0
    phases: list[tuple[str, int]] = field(default_factory=list)  # (phase, steps spent), in order
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (cause, phase, detail), in order


def run_traced_episode(env: TabletopEnv, expert: ScriptedExpert, seed: int) -> EpisodeTrace:
    """One expert episode, recording phases and the events the diagnosis looks for."""
    trace = EpisodeTrace(seed)
    env.reset(seed=seed)
    expert.reset()
    m, d = env.model, env.data
    table = m.geom("table").id
    h = env.scene.object_half
    arm = expert.arm
    threshold = env.spec_.arm(arm).gripper.closure_threshold
    hand = hand_bodies(env, arm)
    phase, count, dragging = expert.phase_name, 0, 0
    for _ in range(env.horizon):
        action = expert.act()
        if expert.phase_name != phase:
            _phase_ended(env, expert, trace, phase, count, threshold)
            phase, count = expert.phase_name, 0
        count += 1
        _, _, terminated, truncated, _ = env.step(action)
        trace.steps += 1
        if phase in ("descend_push", "push") and _touches(m, d, table, hand):
            dragging += 1
            if dragging * env.dt >= DRAG_S:
                _event(trace, "dragged", phase, f"the hand touched the table for {dragging * env.dt:.1f} s while pushing")
        if phase in ("lift", "carry", "hold") and env.task.name != "push" and expert.closure > 0.5:
            gap = np.linalg.norm(env.to_base_frame(env.object_pos(env.target_object)) - env.tcp_base_frame(arm))
            if gap > 3 * h:
                _event(trace, "slipped", phase, f"the cube is {gap * 1000:.0f} mm from the TCP with the gripper closed")
        if terminated:
            trace.success = True
            break
        if truncated:
            break
    trace.phases.append((phase, count))
    return trace


def _touches(m, d, geom: int, bodies: set[int]) -> bool:
    """Whether ``geom`` touches any geom of ``bodies``."""
    for c in d.contact[:d.ncon]:
        if geom in (c.geom1, c.geom2):
            other = c.geom2 if c.geom1 == geom else c.geom1
            if int(m.geom_bodyid[other]) in bodies:
                return True
    return False


def _event(trace: EpisodeTrace, cause: str, phase: str, detail: str) -> None:
    if not any(e[0] == cause for e in trace.events):
        trace.events.append((cause, phase, detail))


def _phase_ended(env: TabletopEnv, expert: ScriptedExpert, trace: EpisodeTrace, phase: str, count: int,
                 threshold: float) -> None:
    trace.phases.append((phase, count))
    arm = expert.arm
    if phase in MOTION_PHASES and count * env.dt >= PHASE_TIMEOUT_S - env.dt:
        err = np.linalg.norm(env.tcp_base_frame(arm) - expert.goal_tcp)
        _event(trace, "did not reach", phase, f"the TCP stayed {err * 1000:.0f} mm from its goal for "
                                              f"{PHASE_TIMEOUT_S:g} s")
    if phase == "close":
        closure = env.closure(arm)
        m = env.model
        cube = m.geom(f"object{env.target_object}_geom").id
        if closure > 0.97:
            _event(trace, "closed on nothing", phase, f"the jaw closed fully ({closure:.2f}): no cube between the fingers")
        elif closure < 0.05 or not _touches(m, env.data, cube, hand_bodies(env, arm)):
            _event(trace, "did not close", phase, f"the jaw stopped at closure {closure:.2f} without holding the cube")
    if phase == "pre_push" and env.closure(arm) < 0.05:
        _event(trace, "did not close", phase, f"the jaw closed only to {env.closure(arm):.2f} before the push")
    if phase == "open" and env.closure(arm) >= threshold:
        _event(trace, "did not release", phase, f"the closure stayed at {env.closure(arm):.2f} (threshold {threshold})")
    if phase == "push" and expert.phase_name == "pre_push":
        _event(trace, "lost the cube", phase, "the cube slid off the fingers and the push started over")


def diagnose(trace: EpisodeTrace, env: TabletopEnv) -> dict:
    """The first cause of a failed episode: (cause, phase, detail)."""
    if trace.events:
        cause, phase, detail = trace.events[0]
    else:
        phase = trace.phases[-1][0] if trace.phases else "?"
        cause, detail = "ran out of time", f"the {env.task.horizon_s:g} s horizon ended in phase {phase!r}"
    return {"seed": trace.seed, "cause": cause, "phase": phase, "detail": detail}


def smoke_run(env_for_task, tasks: tuple[str, ...], episodes: int, seed: int) -> tuple[list[Finding], dict[str, dict]]:
    """``episodes`` expert episodes of every task (seeds ``seed``, ``seed + 1``, ...); a finding
    for a task whose success falls below `MIN_SUCCESS` (an error if no episode succeeded).

    Args:
        env_for_task: task name → a `TabletopEnv` of the robot for that task.

    Returns:
        The findings, and per task ``{episodes, successes, failure}``, ``failure`` being the
        diagnosis of the first failed episode (also where the task passes).
    """
    findings: list[Finding] = []
    results: dict[str, dict] = {}
    for task in tasks:
        env = env_for_task(task)
        expert = ScriptedExpert(env)
        traces = [run_traced_episode(env, expert, seed + i) for i in range(episodes)]
        successes = sum(t.success for t in traces)
        failed = [t for t in traces if not t.success]
        result: dict = {"episodes": episodes, "successes": successes}
        if failed:
            first = diagnose(failed[0], env)
            result["failure"] = first
            if successes < MIN_SUCCESS * episodes:
                findings.append(Finding(
                    "expert", f"expert_{task}", "error" if successes == 0 else "warning", f"task {task}",
                    f"the scripted expert succeeded in {successes}/{episodes} episodes; seed {first['seed']}: "
                    f"{first['cause']} in phase {first['phase']!r} ({first['detail']})",
                    FIXES[first["cause"]]))
        results[task] = result
    return findings, results
