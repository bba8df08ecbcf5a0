"""A pixel policy (``observation="pixels"``): it reads the robot's first camera and never the
privileged scene state; it trains, saves, loads, acts closed loop and adapts to a new robot."""

import json

import numpy as np
import pytest
import torch

from locksmith.data.loading import load_demonstrations
from locksmith.data.record import record_demos
from locksmith.policy.config import PolicyConfig
from locksmith.policy.policy import CrossEmbodimentPolicy
from locksmith.train.pretrain import build_mixture, build_policy

TINY = {"d_model": 32, "n_heads": 2, "n_layers": 1, "d_feedforward": 64, "observation": "pixels",
        "image_size": 32, "grounding_weight": 0.0}


@pytest.fixture(scope="module")
def camera_demos(tmp_path_factory):
    root = tmp_path_factory.mktemp("pixels")
    out = {}
    for robot in ("so101", "panda"):
        record_demos(robot, "pick_place", 2, root / robot, camera=True, image_size=32, workers=1, progress=False)
        out[robot] = load_demonstrations(root / robot, images=True)
    return out


def test_a_pixel_policy_trains_on_the_camera_and_never_reads_the_scene_state(camera_demos):
    demos = {"so101": camera_demos["so101"]}
    torch.manual_seed(0)
    policy = build_policy(demos, **TINY)
    assert policy.trunk.vision is not None and policy.stems["so101"].n_tokens == 1 + 4  # 32 px: 2 x 2 cells
    batch = build_mixture(policy, demos).sample(8, np.random.default_rng(0))
    assert batch["so101"]["observation.images.overhead"].shape == (8, 32, 32, 3)

    def loss_on(b):  # the same random shifts of the pictures for every batch compared
        torch.manual_seed(1)
        return policy(b)[0]

    loss = loss_on(batch)
    blind = {r: {**b, "observation.environment_state": torch.full_like(b["observation.environment_state"], np.nan)}
             for r, b in batch.items()}
    assert torch.equal(loss_on(blind), loss)  # the privileged state changes nothing
    dark = {r: {**b, "observation.images.overhead": torch.zeros_like(b["observation.images.overhead"])}
            for r, b in batch.items()}
    assert not torch.equal(loss_on(dark), loss)  # the pixels do
    loss.backward()
    assert policy.trunk.vision.convs[0].weight.grad.abs().sum() > 0
    optimizer = torch.optim.AdamW(policy.parameters(), lr=1e-3)
    before = policy.trunk.vision.convs[0].weight.detach().clone()
    optimizer.step()
    assert not torch.equal(before, policy.trunk.vision.convs[0].weight)


def test_a_pixel_policy_saves_loads_and_acts_closed_loop_on_rendered_frames(camera_demos, tmp_path):
    from locksmith.evaluate.evaluator import env_options, evaluate

    demos = {"so101": camera_demos["so101"]}
    policy = build_policy(demos, **TINY)
    policy.save_pretrained(tmp_path / "policy")
    config = json.loads((tmp_path / "policy" / "config.json").read_text())
    assert (config["observation"], config["image_size"]) == ("pixels", 32)
    loaded = CrossEmbodimentPolicy.from_pretrained(tmp_path / "policy")
    assert env_options(loaded) == {"render": True, "image_size": 32}
    frames = camera_demos["so101"]
    args = (frames.arrays["observation.state"][:3], frames.arrays["observation.environment_state"][:3], ["x"] * 3)
    image = frames.images["observation.images.overhead"][:3]
    np.testing.assert_allclose(loaded.predict_action_chunk("so101", *args, image),
                               policy.eval().predict_action_chunk("so101", *args, image), atol=1e-6)
    with pytest.raises(ValueError, match="needs the camera image"):
        loaded.predict_action_chunk("so101", *args)
    result = evaluate("so101", "pick_place", 2, checkpoint=tmp_path / "policy", workers=1, n_envs=2)
    assert result["episodes"] == 2 and 0.0 <= result["success_rate"] <= 1.0  # it acted on rendered frames


def test_a_pixel_prior_adapts_to_a_new_robot_with_its_shared_encoder(camera_demos, tmp_path):
    from locksmith.policy.adapters import build_adapted, get_recipe

    prior = build_policy({"so101": camera_demos["so101"]}, **TINY)
    target = camera_demos["panda"]
    key, info = build_adapted(prior, target.spec, target.stats, get_recipe("lora"), demos=target)
    assert key.config.pixels and key.camera_feature("panda") == "observation.images.front"
    for name, p in key.trunk.vision.named_parameters():
        assert torch.equal(p, dict(prior.trunk.vision.named_parameters())[name])  # the prior's encoder
    batch = build_mixture(key, {"panda": target}).sample(4, np.random.default_rng(1))
    loss, _ = key(batch)
    assert torch.isfinite(loss)


def test_pixel_options_are_checked_and_a_state_policy_is_written_as_before():
    from locksmith.embodiment.registry import load_bundled_spec
    from locksmith.policy.config import EmbodimentConfig

    emb = (EmbodimentConfig.from_spec(load_bundled_spec("so101")),)
    assert "observation" not in PolicyConfig(embodiments=emb).to_json()
    with pytest.raises(ValueError, match="not built yet"):
        PolicyConfig(embodiments=emb, observation="pixels", action_space="intent", grounding_weight=0.0)
    with pytest.raises(ValueError, match="grounding_weight 0"):
        PolicyConfig(embodiments=emb, observation="pixels")
    with pytest.raises(ValueError, match="multiple of 16"):
        PolicyConfig(embodiments=emb, observation="pixels", image_size=40, grounding_weight=0.0)
    with pytest.raises(ValueError, match="known: state, pixels"):
        PolicyConfig(embodiments=emb, observation="depth")


def test_pretrain_records_the_pool_with_its_camera_for_a_pixel_prior_and_a_state_plan_refuses_it(tmp_path, capsys):
    """`locksmith pretrain --observation pixels` records the demos with the camera at the policy's
    size and trains on them; a transfer plan naming that prior but not ``observation: pixels`` is
    refused before any work."""
    import yaml

    from locksmith.cli import main

    out = tmp_path / "prior"
    assert main(["pretrain", "--robots", "so101", "--tasks", "pick_place", "--demos-per-robot", "2", "--steps", "2",
                 "--batch-size", "4", "--observation", "pixels", "--image-size", "32", "--tune-episodes", "0",
                 "--out", str(out)]) == 0
    info = json.loads((out / "data" / "so101_pick_place" / "meta" / "info.json").read_text())
    assert info["features"]["observation.images.overhead"]["shape"] == [32, 32, 3]
    assert CrossEmbodimentPolicy.from_pretrained(out / "policy").config.pixels
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({"name": "p", "prior": {"checkpoint": str(out / "policy")},
                                    "targets": [{"name": "t", "robot": "panda", "task": "pick_place"}],
                                    "budgets": [2], "seeds": [0, 1, 2], "threshold": {"absolute": 0.3}}))
    capsys.readouterr()
    assert main(["audit", str(plan), "--out", str(tmp_path / "audit")]) == 2
    err = capsys.readouterr().err
    assert "observation: the plan's arms see 'state'" in err and "reads 'pixels'" in err, err
    assert not (tmp_path / "audit").exists()


def test_the_frozen_vision_key_caches_the_encoders_tokens_and_trains_everything_else(camera_demos, tmp_path):
    """`frozen_vision`: the prior's encoder, untouched; each frame encoded once; the loss on cached
    tokens is the loss on the pictures; every other weight trains."""
    from locksmith.data.mixture import ChunkSampler
    from locksmith.policy.adapters import build_adapted, get_recipe
    from locksmith.train.adapt import adapt
    from locksmith.train.loop import TrainConfig

    prior = build_policy({"so101": camera_demos["so101"]}, **TINY)
    prior.save_pretrained(tmp_path / "prior")
    target = camera_demos["panda"]
    key, _ = build_adapted(prior, target.spec, target.stats, get_recipe("frozen_vision"), demos=target)
    assert not any(p.requires_grad for p in key.trunk.vision.parameters())
    assert all(p.requires_grad for p in key.trunk.blocks.parameters())
    texts = sorted(set(target.tasks))
    tokens, masks = key.language.encode(texts)
    sampler = ChunkSampler(target, key.config.embodiment("panda").chunk_size,
                           {t: (tokens[i], masks[i]) for i, t in enumerate(texts)})
    pictures = sampler.gather(np.arange(6))
    sampler.cache_image_tokens("observation.images.front", key.trunk.vision)
    cached = sampler.gather(np.arange(6))
    assert cached["observation.images.front"].shape == (6, 4, 32)  # tokens, not pictures
    torch.testing.assert_close(key({"panda": cached})[0], key({"panda": pictures})[0])

    record = adapt(tmp_path / "prior", target.root, "frozen_vision", tmp_path / "key", demos=2,
                   train_config=TrainConfig(steps=3, batch_size=4), progress=False)
    trained = CrossEmbodimentPolicy.from_pretrained(tmp_path / "key" / "policy")
    for name, p in trained.trunk.vision.named_parameters():
        assert torch.equal(p, dict(prior.trunk.vision.named_parameters())[name])
    assert not torch.equal(trained.trunk.blocks[0].q.weight, prior.trunk.blocks[0].q.weight)
    assert record["recipe"] == "frozen_vision"
    with pytest.raises(ValueError, match="has none"):
        state_prior = build_policy({"so101": camera_demos["so101"]}, d_model=32, n_heads=2, n_layers=1,
                                   d_feedforward=64)
        build_adapted(state_prior, target.spec, target.stats, get_recipe("frozen_vision"), demos=target)


def test_training_pictures_are_shifted_at_random_and_evaluation_sees_them_as_they_are():
    from locksmith.policy.vision import VisionEncoder, random_shift

    torch.manual_seed(0)
    x = torch.arange(2 * 3 * 16 * 16, dtype=torch.float32).reshape(2, 3, 16, 16)
    shifted = random_shift(x, 2)
    assert shifted.shape == x.shape and not torch.equal(shifted, x)
    # a whole-pixel shift: every picture is a window of its replicate-padded self
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2), mode="replicate")
    for b in range(2):
        assert any(torch.equal(shifted[b], padded[b, :, i:i + 16, j:j + 16]) for i in range(5) for j in range(5))
    assert torch.equal(random_shift(x, 0), x)
    encoder = VisionEncoder(32, 32, image_shift=4)
    images = torch.randint(0, 256, (3, 32, 32, 3), dtype=torch.uint8)
    encoder.eval()
    assert torch.equal(encoder(images), encoder(images))
    encoder.train()
    assert not torch.equal(encoder(images), encoder(images))
    with pytest.raises(ValueError, match="image_shift"):
        PolicyConfig(embodiments=(), observation="pixels", grounding_weight=0.0, image_size=32, image_shift=9)


def test_keypoints_add_one_token_that_follows_where_things_are():
    from locksmith.policy.vision import VisionEncoder, n_image_tokens

    torch.manual_seed(0)
    assert n_image_tokens(32, 8) == n_image_tokens(32) + 1 == 5
    encoder = VisionEncoder(32, 32, keypoints=8).eval()
    left = torch.zeros(1, 32, 32, 3, dtype=torch.uint8)
    left[0, 12:16, 2:6] = 255
    right = torch.zeros_like(left)
    right[0, 12:16, 26:30] = 255
    a, b = encoder(left), encoder(right)
    assert a.shape == (1, 5, 32)
    assert not torch.allclose(a[0, -1], b[0, -1])  # the keypoint token moves with the bright square
    from locksmith.embodiment.registry import load_bundled_spec
    from locksmith.policy.config import EmbodimentConfig

    emb = EmbodimentConfig.from_spec(load_bundled_spec("so101"))
    config = PolicyConfig(embodiments=(emb,), observation="pixels", grounding_weight=0.0, image_size=32, keypoints=8,
                          d_model=32, n_heads=2, n_layers=1, d_feedforward=64)
    policy = CrossEmbodimentPolicy(config)
    assert policy.stems["so101"].n_tokens == 1 + 5 and policy.trunk.slots.shape[0] == 2 + 5
    with pytest.raises(ValueError, match="keypoints"):
        PolicyConfig(embodiments=(), observation="pixels", grounding_weight=0.0, keypoints=-1)


def test_the_scene_loss_trains_the_pictures_on_where_the_named_cube_and_pad_are(camera_demos):
    """``scene_weight``: an auxiliary loss on the named cube's and pad's recorded positions; the
    other cubes do not enter it, acting never reads the scene, and data without one trains on its
    actions alone."""
    from locksmith.policy.config import OBJECT_FIELDS

    demos = {"so101": camera_demos["so101"]}
    torch.manual_seed(0)
    policy = build_policy(demos, **TINY, scene_weight=1.0)
    assert policy.trunk.scene is not None and json.loads(policy.config.to_json())["scene_weight"] == 1.0
    b = build_mixture(policy, demos).sample(8, np.random.default_rng(0))["so101"]

    def run(**changed):  # the same random shifts of the pictures for every batch compared
        torch.manual_seed(1)
        return policy({"so101": {**b, **changed}})

    loss, metrics = run()
    assert metrics["scene/so101"] > 0
    assert float(loss.detach()) == pytest.approx(metrics["loss/so101"] + metrics["scene/so101"])
    rows = torch.arange(8)

    def moved(objects: torch.Tensor) -> torch.Tensor:  # each sample's given cube 0.1 m further along x
        scene = b["observation.environment_state"].clone()
        scene[rows, objects * OBJECT_FIELDS] += 0.1
        return scene

    target = b["target_object"].long()
    other = run(**{"observation.environment_state": moved((target + 1) % 3)})[1]
    named = run(**{"observation.environment_state": moved(target)})[1]
    assert other["scene/so101"] == pytest.approx(metrics["scene/so101"])
    assert named["scene/so101"] != pytest.approx(metrics["scene/so101"])
    policy.zero_grad()
    torch.manual_seed(1)
    policy._scene_loss("so101", policy._readouts({"so101": (
        b["observation.state"], b["observation.environment_state"], b["language"], b["language_mask"],
        b["observation.images.overhead"])})["so101"], b).backward()
    assert policy.trunk.vision.convs[0].weight.grad.abs().sum() > 0  # the pictures learn from it alone
    no_scene = run(**{"observation.environment_state": b["observation.environment_state"][:, :0]})[1]
    assert "scene/so101" not in no_scene and no_scene["loss"] == pytest.approx(metrics["loss/so101"])
    frames = camera_demos["so101"]
    args = (frames.arrays["observation.state"][:3], ["x"] * 3, frames.images["observation.images.overhead"][:3])
    policy.eval()
    scene = frames.arrays["observation.environment_state"][:3]
    np.testing.assert_array_equal(policy.predict_action_chunk("so101", args[0], scene, *args[1:]),
                                  policy.predict_action_chunk("so101", args[0], np.full_like(scene, np.nan), *args[1:]))
    from locksmith.embodiment.registry import load_bundled_spec
    from locksmith.policy.config import EmbodimentConfig

    emb = (EmbodimentConfig.from_spec(load_bundled_spec("so101")),)
    assert "scene_weight" not in PolicyConfig(embodiments=emb, observation="pixels", grounding_weight=0.0).to_json()
    with pytest.raises(ValueError, match="needs observation 'pixels'"):
        PolicyConfig(embodiments=emb, scene_weight=1.0)
    with pytest.raises(ValueError, match="scene_weight=-1"):
        PolicyConfig(embodiments=emb, observation="pixels", grounding_weight=0.0, scene_weight=-1.0)


def test_pretrain_on_given_datasets_reads_their_pictures_and_refuses_one_without_a_camera(camera_demos, tmp_path,
                                                                                         capsys):
    from locksmith.cli import main

    common = ["pretrain", "--steps", "2", "--batch-size", "4", "--observation", "pixels", "--image-size", "32",
              "--tune-episodes", "0", "--scene-weight", "0.5", "--colour-film"]
    assert main([*common, "--datasets", str(camera_demos["so101"].root), "--out", str(tmp_path / "p")]) == 0
    policy = CrossEmbodimentPolicy.from_pretrained(tmp_path / "p" / "policy")
    assert policy.config.pixels and policy.config.scene_weight == 0.5 and policy.config.colour_film
    record_demos("so101", "pick_place", 1, tmp_path / "blind", workers=1, progress=False)
    capsys.readouterr()
    assert main([*common, "--datasets", str(tmp_path / "blind"), "--out", str(tmp_path / "q")]) == 2
    err = capsys.readouterr().err
    assert "blind" in err and "camera" in err and "--camera" in err, err


def test_colour_film_conditions_the_encoder_on_the_colours_the_instruction_names(camera_demos):
    """``colour_film``: each convolution is scaled and shifted by a map of the named colours (zero at
    the start); the samples, the frozen encoder's cache and acting all pass the text's colours."""
    from locksmith.data.targets import COLOUR_DIM, named_colours

    demos = {"so101": camera_demos["so101"]}
    torch.manual_seed(0)
    policy = build_policy(demos, **TINY, colour_film=True)
    encoder = policy.trunk.vision.eval()
    frames = torch.as_tensor(camera_demos["so101"].images["observation.images.overhead"][:2])
    red, green = (torch.as_tensor(named_colours([f"put the {c} cube on the blue pad"] * 2)) for c in ("red", "green"))
    assert red.shape == (2, COLOUR_DIM)
    assert torch.equal(encoder(frames, red), encoder(frames, green))  # zero at the start: the plain encoder
    with pytest.raises(ValueError, match="named colours"):
        encoder(frames)
    for layer in encoder.film:
        torch.nn.init.normal_(layer.weight, std=0.5)
    assert not torch.allclose(encoder(frames, red), encoder(frames, green))  # the words now change what it sees
    sampler = build_mixture(policy, demos).samplers["so101"]
    texts = camera_demos["so101"].tasks
    rows = np.array([0, len(texts) - 1])  # the first and the last episode's first and last frame
    np.testing.assert_array_equal(sampler.gather(rows)["named_colours"].numpy(),
                                  named_colours([texts[i] for i in rows]))
    sampler.cache_image_tokens("observation.images.overhead", encoder)  # a frozen encoder's tokens
    last = torch.as_tensor(camera_demos["so101"].images["observation.images.overhead"][rows])
    torch.testing.assert_close(sampler.image_tokens["observation.images.overhead"][torch.as_tensor(rows)],
                               encoder(last, torch.as_tensor(named_colours([texts[i] for i in rows]))))
    policy.eval()
    frames_np = camera_demos["so101"]
    args = (frames_np.arrays["observation.state"][:1], frames_np.arrays["observation.environment_state"][:1])
    image = frames_np.images["observation.images.overhead"][:1]
    a = policy.predict_action_chunk("so101", *args, ["put the red cube on the blue pad"], image)
    b2 = policy.predict_action_chunk("so101", *args, ["put the green cube on the blue pad"], image)
    assert not torch.allclose(a, b2)
    with pytest.raises(ValueError, match="colour_film needs observation 'pixels'"):
        PolicyConfig(embodiments=policy.config.embodiments, colour_film=True)
