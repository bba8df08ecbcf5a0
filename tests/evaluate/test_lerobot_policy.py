"""`locksmith eval` on a plain lerobot-train checkpoint: loaded through lerobot, acted by
`ACTAgent`, shielded with the checkpoint's own action stats; a damaged folder is one line, exit 2."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from locksmith.cli import main
from locksmith.evaluate.act_agent import ACTAgent
from locksmith.evaluate.lerobot_policy import is_lerobot_checkpoint, load_lerobot_policy
from locksmith.evaluate.rollout import EVAL_SEED_BASE
from locksmith.sim.env import TabletopEnv


def _eval(checkpoint, *extra: str) -> list[str]:
    return ["eval", "--checkpoint", str(checkpoint), "--task", "lift", "--episodes", "2", "--workers", "1",
            "--envs", "2", *extra]


def test_locksmith_eval_runs_a_lerobot_checkpoint(lerobot_act_checkpoint, tmp_path):
    out = tmp_path / "result.json"
    assert main(_eval(lerobot_act_checkpoint, "--robot", "panda", "--json", str(out))) == 0
    result = json.loads(out.read_text())
    assert result["episodes"] == 2 and result["agent"] == str(lerobot_act_checkpoint)
    assert result["per_slice"]["nominal"]["seeds"] == [EVAL_SEED_BASE, EVAL_SEED_BASE + 1]


def test_the_shield_bounds_commands_by_the_training_data(lerobot_act_checkpoint):
    policy = load_lerobot_policy(lerobot_act_checkpoint, "panda")
    root = Path(json.loads((lerobot_act_checkpoint / "train_config.json").read_text())["dataset"]["root"])
    recorded = json.loads((root / "meta" / "stats.json").read_text())["action"]
    for stat in ("q01", "q99", "mean", "std"):  # the data range the shield clamps to is the dataset's
        np.testing.assert_allclose(policy.stats["panda"]["action"][stat], recorded[stat], rtol=1e-5, atol=1e-6)


def test_an_agent_chunk_is_lerobots_own_inference(lerobot_act_camera_checkpoint):
    """The first action `ACTAgent` takes equals lerobot-eval's path on the same observation:
    `preprocess_observation` (state, scene, camera image) → processors → `select_action`."""
    from lerobot.envs.utils import preprocess_observation
    from lerobot.policies.act.modeling_act import ACTPolicy
    from lerobot.policies.factory import make_pre_post_processors

    ckpt = lerobot_act_camera_checkpoint
    policy = load_lerobot_policy(ckpt, "panda")
    assert policy.needs_images and policy.image_size == 32
    env = TabletopEnv("panda", "lift", render=True, image_size=policy.image_size)
    obs, _ = env.reset(seed=EVAL_SEED_BASE)
    agent = ACTAgent(policy, "panda")
    agent.reset([env])
    ours = agent.act([env], [0], [obs])  # (1, A)
    assert len(agent.queues[0]) == policy.n_action_steps - 1

    reference = ACTPolicy.from_pretrained(ckpt).eval()
    pre, post = make_pre_post_processors(reference.config, pretrained_path=str(ckpt))
    batch = preprocess_observation({
        "agent_pos": obs["observation.state"][None], "environment_state": obs["observation.environment_state"][None],
        "pixels": {"front": obs["observation.images.front"][None]}})
    batch["task"] = [env.instruction]
    with torch.no_grad():
        theirs = post(reference.select_action(pre(batch))).numpy()  # (1, A)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)
    env.close()


def test_a_lerobot_checkpoint_is_told_apart(lerobot_act_checkpoint):
    import locksmith

    published = Path(locksmith.__file__).parent / "priors" / "default"
    assert is_lerobot_checkpoint(lerobot_act_checkpoint)
    assert not is_lerobot_checkpoint(published) and not is_lerobot_checkpoint(None)
    assert not is_lerobot_checkpoint(lerobot_act_checkpoint.parent)


def _edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _dataset_copy(ckpt: Path, tmp: Path, change) -> None:
    """Point train_config.json at a copy of its dataset, changed by ``change(root)``."""
    root = Path(json.loads((ckpt / "train_config.json").read_text())["dataset"]["root"])
    copy = tmp / "dataset"
    shutil.copytree(root, copy)
    change(copy)
    _edit_json(ckpt / "train_config.json", lambda c: c["dataset"].update(root=str(copy)))


DAMAGE = {
    # Unreadable, it cannot say which kind it is: the locksmith loader names the file and the syntax error.
    "config unreadable": (lambda d, t: (d / "config.json").write_text("{not json"),
                          "pretrained_model/config.json: Expecting property name"),
    "unknown type": (lambda d, t: _edit_json(d / "config.json", lambda c: c.update(type="nonsense")),
                     "config.json: type: 'nonsense' is not a LeRobot policy type"),
    "type not run here": (lambda d, t: _edit_json(d / "config.json", lambda c: c.update(type="tdmpc")),
                          "config.json: type: 'tdmpc'; `locksmith eval` runs act"),
    "state shape": (lambda d, t: _edit_json(d / "config.json", lambda c: c["input_features"]["observation.state"]
                                            .update(shape=[6])),
                    "config.json: input_features.observation.state: shape (6,), robot 'panda' has (8,)"),
    "unknown camera": (lambda d, t: _edit_json(d / "config.json", lambda c: c["input_features"].update(
        {"observation.images.wrist": {"type": "VISUAL", "shape": [3, 32, 32]}})),
        "config.json: input_features.observation.images.wrist: 'panda' has no camera 'wrist'"),
    "unknown input": (lambda d, t: _edit_json(d / "config.json", lambda c: c["input_features"].update(
        {"observation.velocity": {"type": "STATE", "shape": [3]}})),
        "config.json: input_features.observation.velocity: the simulator gives 'panda' no such observation"),
    "action shape": (lambda d, t: _edit_json(d / "config.json", lambda c: c["output_features"]["action"]
                                             .update(shape=[7])),
                     "config.json: output_features.action: shape (7,), robot 'panda' has (8,)"),
    "temporal ensembling": (lambda d, t: _edit_json(d / "config.json", lambda c: c.update(
        temporal_ensemble_coeff=0.01, n_action_steps=1)), "config.json: temporal_ensemble_coeff: 0.01"),
    "no weights": (lambda d, t: (d / "model.safetensors").unlink(), "no model.safetensors"),
    "truncated weights": (lambda d, t: (d / "model.safetensors").write_bytes(
        (d / "model.safetensors").read_bytes()[:999]), "model.safetensors: cannot be loaded"),
    "no postprocessor": (lambda d, t: (d / "policy_postprocessor.json").unlink(), "no policy_postprocessor.json"),
    "dataset of another robot": (
        lambda d, t: _dataset_copy(d, t, lambda r: _edit_json(r / "meta" / "locksmith.json",
                                                              lambda m: m.update(robot="so101"))),
        "train_config.json: dataset.root"),
    "dataset feature names": (
        lambda d, t: _dataset_copy(d, t, lambda r: _edit_json(r / "meta" / "info.json", lambda i: i["features"][
            "observation.state"].update(names=[f"j{k}" for k in range(8)]))),
        "info.json: features.observation.state.names"),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_a_bad_lerobot_checkpoint_is_one_line_exit_2(lerobot_act_checkpoint, tmp_path, capsys, case):
    damage, expected = DAMAGE[case]
    ckpt = tmp_path / "pretrained_model"
    shutil.copytree(lerobot_act_checkpoint, ckpt)
    damage(ckpt, tmp_path)
    assert main(_eval(ckpt, "--robot", "panda")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and expected in err, err


def test_a_lerobot_checkpoint_for_another_robot_is_refused(lerobot_act_checkpoint, capsys):
    assert main(_eval(lerobot_act_checkpoint, "--robot", "so101")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "input_features.observation.state: shape (8,), robot 'so101' has (6,)" in err


def test_offline_scoring_of_a_lerobot_checkpoint_says_how_to_evaluate_it(lerobot_act_checkpoint, capsys):
    root = json.loads((lerobot_act_checkpoint / "train_config.json").read_text())["dataset"]["root"]
    assert main(["eval", "--checkpoint", str(lerobot_act_checkpoint), "--dataset", root]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "config.json: a LeRobot 'act' policy, not a locksmith policy" in err
    assert "runs it closed loop (--robot ROBOT, without --dataset)" in err


def test_a_lerobot_train_output_folder_names_its_checkpoint(lerobot_act_checkpoint, capsys):
    output = lerobot_act_checkpoint.parents[2]  # OUT of OUT/checkpoints/last/pretrained_model
    assert main(_eval(output, "--robot", "panda")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"give {output / 'checkpoints' / 'last' / 'pretrained_model'}" in err
