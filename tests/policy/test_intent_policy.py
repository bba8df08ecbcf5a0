"""The intent action space: one frame and one set of units for every robot, a shared stem and head,
a residual per robot, zero-shot keys, and rollouts through each robot's intent decoder."""

import json

import numpy as np
import pytest
import torch

from locksmith.cli import main
from locksmith.embodiment.registry import BUNDLED_ROBOTS, load_bundled_spec
from locksmith.evaluate.rollout import PolicyAgent, rollout
from locksmith.policy.adapters import RECIPES, build_adapted, zero_shot_key
from locksmith.policy.config import EmbodimentConfig, PolicyConfig
from locksmith.policy.intent import INTENT_KNOTS, IntentFrame, knot_of_step
from locksmith.policy.language import EMBEDDING_DIM, MAX_TOKENS
from locksmith.policy.policy import CrossEmbodimentPolicy
from locksmith.sim.env import TabletopEnv
from locksmith.sim.intent import intent_size

SMALL = dict(d_model=32, n_layers=2, n_heads=2, d_feedforward=64, n_readouts=2)


def _intent_policy(robots, seed=0) -> CrossEmbodimentPolicy:
    torch.manual_seed(seed)
    specs = {r: load_bundled_spec(r) for r in robots}
    config = PolicyConfig(embodiments=tuple(EmbodimentConfig.from_spec(s) for s in specs.values()),
                          action_space="intent", **SMALL)
    return CrossEmbodimentPolicy(config, specs=specs)


def _batch(policy, b=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    batch = {}
    for emb in policy.config.embodiments:
        batch[emb.name] = {
            "observation.state": torch.randn(b, emb.state_dim, generator=g),
            "observation.environment_state": torch.randn(b, emb.env_dim, generator=g) * 0.3,
            "language": torch.randn(b, MAX_TOKENS, EMBEDDING_DIM, generator=g),
            "language_mask": torch.arange(MAX_TOKENS).expand(b, -1) >= 9,
            "action": torch.randn(b, emb.chunk_size, emb.action_dim, generator=g),
            "intent": torch.randn(b, emb.chunk_size, intent_size(policy.specs[emb.name]), generator=g) * 0.1,
            "action_is_pad": torch.zeros(b, emb.chunk_size, dtype=torch.bool),
            "weight": float(b),
        }
    return batch


@pytest.mark.parametrize("robot", BUNDLED_ROBOTS)
def test_the_frame_puts_the_scene_in_the_robots_base_frame_in_reaches(robot):
    """From the recorded camera-frame state and the spec's extrinsics alone, the stem sees every
    cube, pad and TCP where the simulator has them in the robot's base frame, in its reaches."""
    spec = load_bundled_spec(robot)
    env = TabletopEnv(robot, "pick_place")
    env.reset(seed=3)
    frame = IntentFrame(spec, EmbodimentConfig.from_spec(spec).chunk_size)
    objects, pads, arms = frame.features(torch.as_tensor(env.environment_state(), dtype=torch.float32)[None])
    for i in range(objects.shape[1]):
        np.testing.assert_allclose(objects[0, i, :3].numpy() * frame.reach, env.to_base_frame(env.object_pos(i)),
                                   atol=2e-4)
    for i in range(pads.shape[1]):
        np.testing.assert_allclose(pads[0, i, :3].numpy() * frame.reach, env.to_base_frame(env.pad_pos(i)), atol=2e-4)
    for k, arm in enumerate(a.name for a in env.rig.arms):
        np.testing.assert_allclose(arms[0, k, :3].numpy() * frame.reach, env.tcp_base_frame(arm), atol=2e-4)
        assert arms[0, k, 4 + k] == 1.0  # which arm
    env.close()


@pytest.mark.parametrize("robot", BUNDLED_ROBOTS)
def test_knot_targets_and_per_step_intent_invert_each_other(robot):
    """A chunk whose intent is constant over each knot's control steps comes back exactly; the
    knots of padded steps do not count."""
    spec = load_bundled_spec(robot)
    chunk = EmbodimentConfig.from_spec(spec).chunk_size
    frame = IntentFrame(spec, chunk)
    knots = torch.as_tensor(knot_of_step(chunk))
    assert knots[0] == 0 and knots[-1] == INTENT_KNOTS - 1 and bool((knots.diff() >= 0).all())
    per_knot = torch.randn(2, INTENT_KNOTS, intent_size(spec)) * 0.2
    per_knot[..., 3::4] = per_knot[..., 3::4].abs().clamp(max=1.0)  # closures (arm slots: x y z c)
    intent = per_knot[:, knots]  # (2, H, I)
    pad = torch.zeros(2, chunk, dtype=torch.bool)
    target, mask = frame.targets(intent, pad)
    torch.testing.assert_close(frame.to_intent(target), intent, atol=1e-5, rtol=1e-5)
    assert int(mask[0, 0].sum()) == intent_size(spec)  # the robot's own slots only
    pad[:, knots == INTENT_KNOTS - 1] = True
    _, mask = frame.targets(intent, pad)
    assert not mask[:, -1].any() and mask[:, 0].any()


def test_intent_forward_for_every_robot_and_padded_steps_do_not_count():
    policy = _intent_policy(BUNDLED_ROBOTS)
    batch = _batch(policy)
    loss, metrics = policy(batch)
    assert torch.isfinite(loss) and set(metrics) == {"loss"} | {f"loss/{r}" for r in BUNDLED_ROBOTS}
    loss.backward()
    assert policy.trunk.intent_head.net[0].weight.grad.abs().sum() > 0
    assert policy.heads["aloha"].net.weight.grad.abs().sum() > 0  # the residual learns
    one = {"panda": batch["panda"]}
    one["panda"]["action_is_pad"][:, -3:] = True
    before = float(policy(one)[0].detach())
    one["panda"]["intent"][:, -3:] += 100.0
    assert float(policy(one)[0].detach()) == pytest.approx(before, abs=1e-6)
    one["panda"]["action"] += 100.0  # an intent policy does not learn the native command
    assert float(policy(one)[0].detach()) == pytest.approx(before, abs=1e-6)


def test_a_native_config_is_written_as_before_and_an_intent_policy_round_trips(tmp_path):
    native = PolicyConfig(embodiments=(EmbodimentConfig.from_spec(load_bundled_spec("panda")),), **SMALL)
    assert "action_space" not in json.loads(native.to_json())  # unchanged files, unchanged digests
    policy = _intent_policy(("panda", "aloha")).eval()
    policy.save_pretrained(tmp_path / "p")
    loaded = CrossEmbodimentPolicy.from_pretrained(tmp_path / "p")
    assert loaded.config.action_space == "intent"
    batch = _batch(policy, b=2)["aloha"]
    texts = ["put the red cube on the green pad"] * 2
    policy.language.cache[texts[0]] = loaded.language.cache[texts[0]] = np.ones((6, EMBEDDING_DIM), np.float32)
    out = policy.predict_action_chunk("aloha", batch["observation.state"], batch["observation.environment_state"], texts)
    again = loaded.predict_action_chunk("aloha", batch["observation.state"], batch["observation.environment_state"],
                                        texts)
    assert out.shape == (2, EmbodimentConfig.from_spec(load_bundled_spec("aloha")).chunk_size, 8)
    torch.testing.assert_close(out, again)
    with pytest.raises(ValueError, match="spec"):
        CrossEmbodimentPolicy(policy.config)


def test_zero_shot_key_is_the_shared_prediction_and_acts_through_the_decoder():
    prior = _intent_policy(("panda", "ur5e"))
    target = load_bundled_spec("so101")
    key, info = zero_shot_key(prior, target)
    assert info["recipe"] == "zero_shot" and key.num_parameters(trainable_only=True) == 0
    assert not key.heads["so101"].net.weight.any()  # the residual starts at zero
    for name, p in prior.trunk.state_dict().items():
        torch.testing.assert_close(key.trunk.state_dict()[name], p)
    env = TabletopEnv("so101", "pick_place")
    env.reset(seed=11)
    key.language.cache[env.instruction] = np.ones((6, EMBEDDING_DIM), np.float32)
    env.horizon = 20  # a few steps: the decoder runs inside the loop and emits the robot's own command
    result = rollout([env], PolicyAgent(key.eval(), "so101"), [11])[0]
    assert result.steps == 20 and np.isfinite(env.data.ctrl).all()
    env.close()
    native = CrossEmbodimentPolicy(PolicyConfig(embodiments=(EmbodimentConfig.from_spec(load_bundled_spec("panda")),),
                                                **SMALL))
    with pytest.raises(ValueError, match="intent prior"):
        zero_shot_key(native, target)


def test_a_key_for_a_new_robot_trains_its_residual_and_not_a_donors_head():
    prior = _intent_policy(("panda",))
    with torch.no_grad():
        prior.heads["panda"].net.weight.fill_(0.5)
    key, info = build_adapted(prior, load_bundled_spec("so101"), None, RECIPES["head"])
    assert "copied_head" not in info and not key.heads["so101"].net.weight.any()
    trainable = {n for n, p in key.named_parameters() if p.requires_grad}
    assert trainable == {"heads.so101.net.weight", "heads.so101.net.bias"}


def test_adapt_cli_builds_a_zero_shot_key_from_a_spec(tmp_path, capsys):
    prior = _intent_policy(("panda",))
    prior.save_pretrained(tmp_path / "prior")
    spec = tmp_path / "so101.yaml"
    spec.write_text(load_bundled_spec("so101").to_yaml())
    assert main(["adapt", "--prior", str(tmp_path / "prior"), "--spec", str(spec), "--demos", "0",
                 "--recipe", "head", "--out", str(tmp_path / "key")]) == 0
    record = json.loads((tmp_path / "key" / "adapt.json").read_text())
    assert record["demos"] == 0 and record["recipe"] == "zero_shot"
    key = CrossEmbodimentPolicy.from_pretrained(tmp_path / "key" / "policy")
    assert key.config.action_space == "intent" and "so101" in key.stems
    assert main(["adapt", "--spec", str(spec), "--demos", "0", "--recipe", "head",
                 "--out", str(tmp_path / "native")]) == 2  # the published prior is not an intent prior
    assert "intent prior" in capsys.readouterr().err


@pytest.mark.parametrize("robot", ["so101", "aloha"])
def test_relative_features_do_not_see_where_the_robot_stands(robot):
    """With ``intent_features="relative"`` moving the whole scene (cubes, pads, TCPs) by any offset
    changes nothing the stem reads, while the absolute stem sees it; heights are above the pads'
    plane and offsets are the absolute stem's."""
    from locksmith.policy.config import ARM_FIELDS, OBJECT_FIELDS, PAD_FIELDS
    from locksmith.sim.scene import N_OBJECTS, N_PADS

    spec = load_bundled_spec(robot)
    env = TabletopEnv(robot, "pick_place")
    env.reset(seed=5)
    state = torch.as_tensor(env.environment_state(), dtype=torch.float32)[None]
    env.close()
    chunk = EmbodimentConfig.from_spec(spec).chunk_size
    relative, absolute = IntentFrame(spec, chunk, relative=True), IntentFrame(spec, chunk)
    moved = state.clone()  # every position (the first 3 fields of each entity) shifted in the camera frame
    starts = ([i * OBJECT_FIELDS for i in range(N_OBJECTS)] + [N_OBJECTS * OBJECT_FIELDS + i * PAD_FIELDS
                                                               for i in range(N_PADS)]
              + [N_OBJECTS * OBJECT_FIELDS + N_PADS * PAD_FIELDS + i * ARM_FIELDS for i in range(len(spec.arms))])
    for s in starts:
        moved[0, s: s + 3] += torch.tensor([0.13, -0.07, 0.05])
    for a, b in zip(relative.features(state), relative.features(moved), strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    assert not torch.allclose(absolute.features(state)[0], absolute.features(moved)[0], atol=1e-3)
    rel, ab = relative.features(state), absolute.features(state)
    table = ab[1][0, :, 2].mean()
    for r, a in zip(rel, ab, strict=True):
        assert (r[0, :, :2] == 0).all()  # no horizontal position
        torch.testing.assert_close(r[0, :, 2], a[0, :, 2] - table)  # heights above the table
        torch.testing.assert_close(r[0, :, 3:], a[0, :, 3:])  # everything else as the absolute stem
    assert float(rel[0][0, :, 2].min()) > 0  # cubes rest on the table


def test_relative_features_are_an_intent_option_written_only_when_chosen(tmp_path):
    emb = (EmbodimentConfig.from_spec(load_bundled_spec("panda")),)
    with pytest.raises(ValueError, match="needs action_space 'intent'"):
        PolicyConfig(embodiments=emb, intent_features="relative", **SMALL)
    with pytest.raises(ValueError, match="known: absolute, relative"):
        PolicyConfig(embodiments=emb, action_space="intent", intent_features="sideways", **SMALL)
    assert "intent_features" not in json.loads(PolicyConfig(embodiments=emb, action_space="intent", **SMALL).to_json())
    specs = {"panda": load_bundled_spec("panda")}
    config = PolicyConfig(embodiments=emb, action_space="intent", intent_features="relative", **SMALL)
    CrossEmbodimentPolicy(config, specs=specs).save_pretrained(tmp_path / "p")
    loaded = CrossEmbodimentPolicy.from_pretrained(tmp_path / "p")
    assert loaded.config.intent_features == "relative" and loaded.stems["panda"].relative


def test_pretrain_refuses_relative_features_without_intent(tmp_path, capsys):
    assert main(["pretrain", "--intent-features", "relative", "--out", str(tmp_path / "p")]) == 2
    assert "--intent-features relative needs --action-space intent" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()
