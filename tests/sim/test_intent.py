"""Shared intent: its layout is the recorded one, and a robot's decoder turns a recorded
expert episode's intent back into that robot's own commands that solve the task (real MuJoCo,
real IK), open loop."""

import numpy as np
import pytest

from locksmith.data.record import intent_names
from locksmith.embodiment.registry import BUNDLED_ROBOTS, load_bundled_spec
from locksmith.sim.env import TabletopEnv
from locksmith.sim.expert import ScriptedExpert
from locksmith.sim.intent import ARM_INTENT, IntentDecoder, decoder_for, intent_size, measured_intent


@pytest.mark.parametrize("robot", BUNDLED_ROBOTS)
def test_the_intent_layout_is_the_recorded_one(robot):
    spec = load_bundled_spec(robot)
    assert intent_size(spec) == len(intent_names(spec))


def _expert_intents(env, seed):
    env.reset(seed=seed)
    expert = ScriptedExpert(env)
    arms = [a.name for a in env.rig.arms]
    intents = []
    for _ in range(env.horizon):
        tcp_before = {a: env.tcp_base_frame(a) for a in arms}
        base_before = env.base_pose() if env.rig.base_joints else None
        _, _, terminated, truncated, _ = env.step(expert.act())
        intents.append(measured_intent(env, tcp_before, base_before, env.closure_cmd))
        if terminated or truncated:
            return terminated, intents
    return False, intents


# every command convention: joint positions (IK on the model), joint velocities, end-effector
# steps, an end-effector arm on a mobile base, and two arms each decoded on its own
@pytest.mark.parametrize("robot, seed", [("panda", 0), ("vx300s", 0), ("ur5e", 0), ("mobile_panda", 1), ("aloha", 0)])
def test_a_recorded_episodes_intent_decoded_open_loop_solves_the_task(robot, seed):
    env = TabletopEnv(robot, "pick_place")
    solved, intents = _expert_intents(env, seed)
    assert solved
    env.reset(seed=seed)
    decoder = decoder_for(env)
    success = False
    for intent in intents:
        action = decoder.decode(intent)
        assert action.shape == (env.spec_.action_dim,) and np.all(np.isfinite(action))
        _, _, success, _, _ = env.step(action)
        if success:
            break
    assert success
    # a decoder that ignores the TCP velocity (the gripper alone) does not
    env.reset(seed=seed)
    decoder = decoder_for(env)
    for intent in intents:
        still = np.array(intent)
        for i in range(len(env.rig.arms)):
            still[ARM_INTENT * i: ARM_INTENT * i + 3] = 0.0
        _, _, success, _, _ = env.step(decoder.decode(still))
        if success:
            break
    assert not success


def test_zero_velocity_holds_the_arm_and_the_closure_is_written_in_the_grippers_range():
    env = TabletopEnv("so101", "pick_place")
    env.reset(seed=0)
    spec = env.spec_
    decoder = decoder_for(env)
    q0 = env.q_cmd["arm"].copy()
    grip = spec.arm("arm").gripper
    for closure, native in ((0.0, grip.open_value), (1.0, grip.closed_value), (2.0, grip.closed_value)):
        action = decoder.decode(np.array([0.0, 0.0, 0.0, closure]))
        slices = spec.slices("action")
        assert action[slices["gripper"]][0] == pytest.approx(native)
        joints = action[slices["arm_joints"]] / spec.action[0].native_scale
        assert np.abs(joints - q0).max() < 0.02  # rad: IK holding the TCP where it is


def test_a_wrong_intent_or_a_joint_robot_without_ik_is_refused():
    env = TabletopEnv("so101", "reach")
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"intent has shape \(3,\), expected \(4,\)"):
        decoder_for(env).decode(np.zeros(3))
    with pytest.raises(ValueError, match="need the robot's IK"):
        IntentDecoder(env.spec_, None, env.dt, env.grasp_yaw)
