"""A pixel ACT peer: LeRobot's ACT reading the robot's camera through its own ResNet-18, never the
scene state; real lerobot, real MuJoCo rendering and video, tiny sizes."""

import json

import numpy as np
import pytest
import torch

from locksmith.data.loading import load_demonstrations
from locksmith.data.record import record_demos
from locksmith.evaluate.act_agent import load_act_peer
from locksmith.evaluate.evaluator import env_options, evaluate
from locksmith.policy.policy import CheckpointError
from locksmith.policy.vision import camera_feature
from locksmith.train.act_inputs import COLOUR_DIM, named_colours
from locksmith.train.act_peer import MARKER_FILE, VISION_BACKBONE, default_architecture_digest
from locksmith.train.act_train import train_act_peer
from locksmith.train.loop import TrainConfig

TINY = dict(dim_model=32, n_heads=2, dim_feedforward=64, n_encoder_layers=1, n_vae_encoder_layers=1, latent_dim=8)
RECIPE = TrainConfig(steps=2, batch_size=4, lr=1e-3, warmup_steps=1, seed=0)
SIZE = 32


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("act_pixels")
    record_demos("panda", "pick_place", 2, root / "data", camera=True, image_size=SIZE, workers=1, progress=False)
    demos = load_demonstrations(root / "data", images=True)
    summary = train_act_peer(demos, root / "act", RECIPE, image_size=SIZE, **TINY)
    return root, demos, summary


def test_the_task_columns_come_from_the_text_alone():
    cols = named_colours(["put the red cube on the blue pad", "lift the green cube", "do something"])
    assert cols.shape == (3, COLOUR_DIM)
    assert cols.sum(1).tolist() == [2.0, 1.0, 0.0]  # cube and pad; cube only; nothing named
    assert (cols[0] != cols[1]).any()


def test_a_pixel_act_reads_the_camera_and_never_the_scene_state(trained):
    root, demos, summary = trained
    peer = load_act_peer(root / "act", "panda")
    camera = camera_feature(demos.spec)
    assert peer.image_size == SIZE and peer.camera == camera and peer.environment_state_dim == 0
    assert peer.observation_keys == ("observation.state", camera)
    features = peer.policy.config.input_features
    assert tuple(features[camera].shape) == (3, SIZE, SIZE)
    assert tuple(features["observation.environment_state"].shape) == (COLOUR_DIM,)
    assert peer.policy.config.vision_backbone == VISION_BACKBONE
    assert summary["parameters"] > 10_000_000  # ACT's own ResNet-18 is there (≈ 11 M)
    marker = json.loads((root / "act" / MARKER_FILE).read_text())
    assert marker["observation"] == "pixels" and marker["image_size"] == SIZE
    # the actions follow the pictures: other images, other actions for the same state and task
    state = demos.arrays["observation.state"][:2]
    images = demos.images[camera][:2]
    texts = [demos.tasks[0]] * 2
    a = peer.predict_action_chunk(state, images, texts)
    b = peer.predict_action_chunk(state, 255 - images, texts)
    assert a.shape[0] == 2 and not torch.allclose(a, b)
    with pytest.raises(ValueError, match="images of shape"):
        peer.predict_action_chunk(state, np.zeros((2, 16, 16, 3), np.uint8), texts)


def test_a_pixel_act_is_keyed_apart_and_refuses_demos_without_its_camera(trained, tmp_path):
    root, demos, _ = trained
    assert default_architecture_digest(SIZE) != default_architecture_digest()
    assert default_architecture_digest(SIZE) != default_architecture_digest(2 * SIZE)
    with pytest.raises(ValueError, match="a pixel ACT reads"):
        train_act_peer(load_demonstrations(root / "data"), tmp_path / "no_images", RECIPE, image_size=SIZE, **TINY)


def test_a_pixel_act_runs_closed_loop_on_rendered_pictures(trained):
    root, _, _ = trained
    peer = load_act_peer(root / "act", "panda")
    assert env_options(peer) == {"render": True, "image_size": SIZE}
    result = evaluate("panda", "pick_place", 1, ["nominal"], checkpoint=root / "act", workers=1)
    assert result["per_slice"]["nominal"]["episodes"] == 1


def test_a_damaged_pixel_marker_is_refused(trained, tmp_path):
    import shutil

    root, _, _ = trained
    copy = tmp_path / "act"
    shutil.copytree(root / "act", copy)
    marker = json.loads((copy / MARKER_FILE).read_text())
    marker["camera"] = "observation.images.elsewhere"
    (copy / MARKER_FILE).write_text(json.dumps(marker))
    with pytest.raises(CheckpointError, match="camera"):
        load_act_peer(copy, "panda")
