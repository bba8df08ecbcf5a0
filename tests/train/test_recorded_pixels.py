"""A real robot's data in: a dataset written directly through `LeRobotDataset.create` with the
features `lerobot-record` writes for an SO-101 follower with a camera (joint positions, a
non-square camera video, no scene state), with its spec beside it, adapts a pixel prior and is
audited through the offline metric; real lerobot, real video, real training at tiny sizes."""

import json
import shutil

import numpy as np
import pytest
import torch
import yaml

from locksmith.cli import main
from locksmith.data.loading import fit_square, load_demonstrations
from locksmith.data.record import SPEC_FILE
from locksmith.embodiment.registry import load_robot_spec
from locksmith.evaluate.offline import offline_action_error
from locksmith.policy.policy import CrossEmbodimentPolicy
from locksmith.train.compat import check_compatibility

SIZE = 32
HEIGHT, WIDTH = 48, 64  # a camera that is not square, as a real one is not


def _record_like_lerobot_record(root, episodes: int = 6, frames: int = 20) -> None:
    """What `lerobot-record --robot.type=so101_follower` with one OpenCV camera named as the spec's
    writes: LeRobot's own robot and camera configs give the features."""
    from lerobot.cameras.opencv import OpenCVCameraConfig
    from lerobot.datasets.lerobot_dataset import LeRobotDataset
    from lerobot.robots.so_follower import SO101Follower, SO101FollowerConfig
    from lerobot.utils.feature_utils import hw_to_dataset_features

    spec = load_robot_spec("so101")
    camera = spec.cameras[0].name
    robot = SO101Follower(SO101FollowerConfig(port="/dev/null", cameras={  # never connected: no hardware
        camera: OpenCVCameraConfig(index_or_path=0, width=WIDTH, height=HEIGHT, fps=int(spec.control_rate_hz))}))
    features = {**hw_to_dataset_features(robot.action_features, "action"),
                **hw_to_dataset_features(robot.observation_features, "observation", use_video=True)}
    assert "observation.environment_state" not in features
    dataset = LeRobotDataset.create("local/so101_real", fps=int(spec.control_rate_hz), features=features, root=root,
                                    robot_type="so101_follower", use_videos=True)
    rng = np.random.default_rng(0)
    lower, upper = spec.joint_limits(spec.arms[0].name)
    gripper = spec.arms[0].gripper
    low = np.array([*lower, min(gripper.open_value, gripper.closed_value)], np.float32)  # joints, then the gripper
    high = np.array([*upper, max(gripper.open_value, gripper.closed_value)], np.float32)
    assert len(low) == spec.state_dim == spec.action_dim
    for e in range(episodes):
        start, goal = low + (high - low) * rng.uniform(0.3, 0.7, (2, len(low))).astype(np.float32)
        for t in range(frames):
            state = start + (goal - start) * t / frames
            picture = np.full((HEIGHT, WIDTH, 3), 40 + 30 * e, np.uint8)
            picture[10:20, 5 + 2 * t:15 + 2 * t] = 230  # something that moves
            dataset.add_frame({"observation.state": state, "action": start + (goal - start) * (t + 1) / frames,
                               f"observation.images.{camera}": picture, "task": "put the red cube on the blue pad"})
        dataset.save_episode()
    dataset.finalize()
    (root / SPEC_FILE).write_text(spec.to_yaml())


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("recorded_pixels")
    _record_like_lerobot_record(root / "real")
    assert main(["pretrain", "--robots", "panda", "--tasks", "reach", "--demos-per-robot", "2", "--steps", "2",
                 "--batch-size", "4", "--observation", "pixels", "--image-size", str(SIZE), "--tune-episodes", "0",
                 "--out", str(root / "prior")]) == 0
    return root


def test_pictures_are_fitted_to_the_square_a_pixel_policy_reads(setup):
    demos = load_demonstrations(setup / "real", images=True, image_size=SIZE)
    (camera, pictures), = demos.images.items()
    assert pictures.shape == (demos.num_frames, SIZE, SIZE, 3) and pictures.dtype == np.uint8
    assert "observation.environment_state" not in demos.arrays
    raw = load_demonstrations(setup / "real", images=True).images[camera]
    assert raw.shape[1:] == (HEIGHT, WIDTH, 3)
    assert np.array_equal(fit_square(raw[:3], SIZE), pictures[:3])
    square = fit_square(raw[:1], HEIGHT)  # the centred square alone: the sides are cropped, nothing squashed
    assert np.array_equal(square[0], raw[0, :, (WIDTH - HEIGHT) // 2:(WIDTH + HEIGHT) // 2])


def test_a_pixel_prior_accepts_the_recording_and_a_state_prior_asks_for_the_scene(setup):
    prior = CrossEmbodimentPolicy.from_pretrained(setup / "prior" / "policy")
    report = check_compatibility(prior, setup / "prior" / "policy", setup / "real")
    assert report.ok, report.format()
    assert any(i.item == "camera" and i.verdict == "ok" for i in report.items), report.format()
    from locksmith.priors import shipped_prior

    state = check_compatibility(CrossEmbodimentPolicy.from_pretrained(shipped_prior()), shipped_prior(),
                                setup / "real")
    assert not state.ok and "environment_state" in state.format()


def test_the_recording_adapts_the_pixel_prior_and_is_scored_offline(setup):
    key = setup / "key"
    assert main(["adapt", "--prior", str(setup / "prior" / "policy"), "--dataset", str(setup / "real"),
                 "--recipe", "full", "--demos", "4", "--steps", "3", "--batch-size", "4", "--out", str(key)]) == 0
    adapted = CrossEmbodimentPolicy.from_pretrained(key / "policy")
    assert adapted.config.pixels and "so101" in adapted.stems
    result = offline_action_error(key / "policy", setup / "real")
    assert np.isfinite(result["offline_action_error"]) and result["frames"] > 0


def test_the_recording_is_a_target_of_a_pixel_audit(setup, tmp_path):
    plan = {"name": "real_pixels", "observation": "pixels", "prior": {"checkpoint": str(setup / "prior" / "policy")},
            "targets": [{"name": "real_so101", "dataset": str(setup / "real"), "threshold": {"absolute": 0.5}}],
            "recipes": ["full"], "budgets": [2], "seeds": [0, 1, 2], "evaluation": {"holdout_fraction": 0.34},
            "training": {"steps_per_demo": 1, "min_steps": 2, "max_steps": 2, "batch_size": 4, "lr": 1e-3}}
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(plan))
    assert main(["audit", str(path), "--out", str(tmp_path / "out"), "--workers", "1"]) == 0
    audit = json.loads((tmp_path / "out" / "audit.json").read_text())
    target = audit["targets"]["real_so101"]
    assert set(target["arms"]) == {"scratch", "act", "full"}
    runs = [json.loads(p.read_text()) for p in (tmp_path / "out" / "runs").glob("*/*/*/result.json")]
    assert len(runs) == 9 and all(r["metric"] == "offline_action_error" and np.isfinite(r["value"]) for r in runs)
    assert all(r["settings"]["image_size"] == SIZE for r in runs)
    shutil.rmtree(tmp_path / "out")
