"""Scene frames (`train.scene_frames`): rendered first frames of random layouts that train a pixel
prior's scene loss beside its demonstrations."""

import json

import numpy as np
import pytest
import torch

from locksmith.data.loading import load_demonstrations
from locksmith.data.record import record_demos
from locksmith.train.pretrain import build_policy
from locksmith.train.scene_frames import SCENE_FRAME_SEED, render_scene_frames, scene_frames_loss


@pytest.fixture(scope="module")
def camera_demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("frames") / "so101"
    record_demos("so101", "pick_place", 1, root, camera=True, image_size=32, workers=1, progress=False)
    return root


def test_scene_frames_are_new_layouts_whose_scene_loss_trains_the_encoder(camera_demo):
    from locksmith.sim.env import TabletopEnv

    frames = render_scene_frames("so101", "pick_place", 3, 32, progress=False)
    assert frames.image.shape == (3, 32, 32, 3) and frames.image.dtype == np.uint8 and len(frames) == 3
    env = TabletopEnv("so101", "pick_place")
    env.reset(seed=SCENE_FRAME_SEED + 2)
    assert frames.instructions[2] == env.instruction and frames.target_object[2] == env.target_object
    assert len({tuple(s[:3]) for s in frames.scene}) == 3  # three different layouts
    demos = {"so101": load_demonstrations(camera_demo, images=True)}
    torch.manual_seed(0)
    policy = build_policy(demos, observation="pixels", image_size=32, grounding_weight=0.0, d_model=32, n_heads=2,
                          n_layers=1, d_feedforward=64, scene_weight=0.5, colour_film=True)
    loss = scene_frames_loss(policy, {"so101": frames}, batch_size=4)(policy)
    assert loss.ndim == 0 and float(loss.detach()) > 0
    loss.backward()
    assert policy.trunk.vision.convs[0].weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="scene_weight > 0"):
        scene_frames_loss(build_policy(demos, observation="pixels", image_size=32, grounding_weight=0.0),
                          {"so101": frames}, batch_size=4)


def test_pretrain_takes_scene_frames_and_refuses_them_without_the_scene_loss(camera_demo, tmp_path, capsys):
    from locksmith.cli import main

    common = ["pretrain", "--datasets", str(camera_demo), "--steps", "2", "--batch-size", "4", "--observation",
              "pixels", "--image-size", "32", "--tune-episodes", "0", "--scene-frames", "3"]
    assert main([*common, "--scene-weight", "0.5", "--out", str(tmp_path / "p")]) == 0
    assert json.loads((tmp_path / "p" / "train_config.json").read_text())["scene_frames"] == {"so101": 3}
    assert json.loads((tmp_path / "p" / "pretrain.json").read_text())["recipe"]["scene_frames"] == 3
    capsys.readouterr()
    assert main([*common, "--out", str(tmp_path / "q")]) == 2
    err = capsys.readouterr().err
    assert "scene_frames=3" in err and "--scene-weight" in err, err
    assert not (tmp_path / "q").exists()
