"""LeRobot's names for LeRobot's robots: a simulated dataset and a `lerobot-record` one of the
same arm have the same features (robot type, feature names, shapes)."""

import numpy as np
import pytest

from locksmith.data.record import dataset_features, record_demos
from locksmith.embodiment.registry import load_bundled_spec

# The motor names of LeRobot's ALOHA datasets (aloha_sim_*, from ACT's gym-aloha), radians and the
# gripper normalized 1 = open, 0 = closed; LeRobot 0.6.1 ships no ALOHA robot class to read them from.
ALOHA_MOTORS = [f"{side}_{joint}" for side in ("left", "right") for joint in
                ("waist", "shoulder", "elbow", "forearm_roll", "wrist_angle", "wrist_rotate", "gripper")]


def _so101_follower_features() -> dict:
    """The features `lerobot-record --robot.type=so101_follower` writes (no cameras)."""
    from lerobot.robots.so_follower import SO101Follower, SO101FollowerConfig
    from lerobot.utils.feature_utils import hw_to_dataset_features

    robot = SO101Follower(SO101FollowerConfig(port="/dev/null"))  # never connected: no hardware
    return {**hw_to_dataset_features(robot.action_features, "action"),
            **hw_to_dataset_features(robot.observation_features, "observation")}


@pytest.mark.parametrize("key", ["observation.state", "action"])
def test_our_so101_features_are_the_so101_followers(key):
    ours, theirs = dataset_features(load_bundled_spec("so101"), camera=False), _so101_follower_features()
    assert ours[key]["names"] == theirs[key]["names"]  # shoulder_pan.pos ... gripper.pos
    assert (ours[key]["dtype"], tuple(ours[key]["shape"])) == (theirs[key]["dtype"], tuple(theirs[key]["shape"]))


def test_our_aloha_features_are_lerobots_aloha_datasets():
    spec = load_bundled_spec("aloha")
    assert spec.robot_type == "aloha" and spec.names("state") == spec.names("action") == ALOHA_MOTORS
    for arm in spec.arms:  # normalized gripper: 1 open, 0 closed
        assert (arm.gripper.open_value, arm.gripper.closed_value) == (1.0, 0.0)


def test_a_simulated_so101_dataset_and_a_recorded_one_have_the_same_features(tmp_path):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    spec = load_bundled_spec("so101")
    record_demos("so101", "reach", 1, tmp_path / "sim", seed=0, workers=1, progress=False)
    sim = LeRobotDataset("local/sim", root=tmp_path / "sim", video_backend="pyav")
    # a dataset the way lerobot-record writes one, with LeRobot's own feature helpers
    real = LeRobotDataset.create("local/real", fps=spec.control_rate_hz, root=tmp_path / "real",
                                 robot_type="so101_follower", features=_so101_follower_features(), use_videos=False)
    for _ in range(3):
        real.add_frame({"observation.state": np.zeros(6, np.float32), "action": np.zeros(6, np.float32),
                        "task": "pick up the red cube"})
    real.save_episode()
    real.finalize()
    real = LeRobotDataset("local/real", root=tmp_path / "real", video_backend="pyav")
    assert sim.meta.robot_type == real.meta.robot_type == "so101_follower"
    for key in ("observation.state", "action"):
        assert sim.features[key]["names"] == real.features[key]["names"]
        assert tuple(sim.features[key]["shape"]) == tuple(real.features[key]["shape"])
