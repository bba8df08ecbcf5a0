"""Bad inputs through the CLI, second round (issue #21): bounded parsing (alias bombs, nesting,
size), non-finite and absurd values, duplicate keys and names, tracebacks turned into one-line
messages, silent overwrites, plans refused before anything is written, messages that point the
right way. Each case: exit 2, the file and field on stderr, no traceback, nothing on disk changed.
"""

import json
import resource
import shutil
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

from locksmith.cli import main
from locksmith.data.loading import load_demonstrations
from locksmith.data.record import SPEC_FILE, record_demos
from locksmith.embodiment.registry import bundled_spec_path
from locksmith.train.loop import TrainConfig
from locksmith.train.pretrain import pretrain

TINY = dict(d_model=32, n_layers=1, n_heads=2, d_feedforward=64, n_readouts=2)
INFO = Path("meta/info.json")
PLAN = {"name": "t", "targets": [{"robot": "so101", "task": "reach"}], "recipes": ["lora"], "budgets": [2, 4]}


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bad_inputs_2")
    record_demos("panda", "reach", 3, root / "panda", workers=1, progress=False)
    pretrain({"panda": load_demonstrations(root / "panda")}, root / "prior", TrainConfig(steps=2, batch_size=8),
             progress=False, **TINY)
    return root


def _snapshot(*paths: Path) -> dict:
    state = {}
    for top in paths:
        for path in [top, *sorted(top.rglob("*"))] if top.is_dir() else [top] if top.exists() else []:
            state[path] = (path.read_bytes() if path.is_file() else None, path.stat().st_mtime_ns)
    return state


def _run(argv: list) -> int:
    try:
        return main([str(a) for a in argv])
    except SystemExit as err:  # argparse refuses a bad flag value with exit 2
        return int(err.code)


def _refused(argv: list, capsys, watched: list[Path], words: list, absent: list[Path] = ()) -> str:
    """Run the CLI; assert exit 2, every word on stderr, no traceback, ``watched`` untouched and
    ``absent`` still absent. Returns stderr."""
    capsys.readouterr()
    before = _snapshot(*watched)
    code = _run(argv)
    err = capsys.readouterr().err
    assert code == 2, f"exit {code}; stderr:\n{err}"
    assert "Traceback" not in err, err
    missing = [str(w) for w in words if str(w) not in err]
    assert not missing, f"{missing} not on stderr:\n{err}"
    after = _snapshot(*watched)
    changed = sorted(str(p) for p in before.keys() | after.keys() if before.get(p) != after.get(p))
    assert not changed, f"changed on disk: {changed}"
    for path in absent:
        assert not Path(path).exists(), f"{path} was created"
    return err


def _spec_text(change=None) -> str:
    spec = yaml.safe_load(bundled_spec_path("panda").read_text())
    if change is not None:
        change(spec)
    return yaml.safe_dump(spec, sort_keys=False)


# ---------------------------------------------------------------------------- 1. hangs and memory
def _bomb(levels: int = 9, width: int = 9) -> str:
    lines = ["a0: &a0 [" + ", ".join(["lol"] * width) + "]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]" for i in range(1, levels + 1)]
    return "\n".join(lines) + f"\nname: *a{levels}\n"


UNBOUNDED = {
    "alias_bomb": (_bomb(), "aliases are expanded"),
    "deep_nesting": ("x: " + "[" * 3000 + "]" * 3000 + "\n", "nested deeper"),
    "deep_mappings": ("".join("  " * i + f"k{i}:\n" for i in range(200)) + "  " * 200 + "v: 1\n", "nested deeper"),
    "oversize": ("description: '" + "x" * (2 << 20) + "'\n", "at most"),
}


@pytest.mark.parametrize("case", UNBOUNDED, ids=list(UNBOUNDED))
@pytest.mark.parametrize("command", ["spec check", "audit"])
def test_unbounded_file_is_refused_quickly(tmp_path, out, capsys, case, command):
    text, words = UNBOUNDED[case]
    path = tmp_path / "file.yaml"
    path.write_text(text)
    argv = ["spec", "check", path] if command == "spec check" else ["audit", path, "--out", out / "audit"]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    _refused(argv, capsys, [path, out], [path, words], absent=[out / "audit"])
    assert time.perf_counter() - start < 5
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss < 200_000  # KiB: < 200 MB more at peak


def test_error_message_never_expands_a_shared_value(tmp_path, capsys):
    """~66,000 values through aliases (under the bound) in unknown and text fields: a short message, at once."""
    path = tmp_path / "robot.yaml"
    spec = _spec_text(lambda s: s.update(description="BOMB")).replace("description: BOMB", "description: *a3")
    path.write_text(_bomb(levels=4).replace("name: *a4\n", "") + spec)
    start = time.perf_counter()
    err = _refused(["spec", "check", path], capsys, [path], [path, "'description'"])
    assert time.perf_counter() - start < 5 and len(err) < 2000


@pytest.mark.parametrize("change, words", [
    ({"evaluation": {"episodes": 1_000_000_000}}, ["'evaluation.episodes'", "10000"]),
    ({"budgets": [2, 10**9]}, ["'budgets'"]),
    ({"training": {"batch_size": 10**7}}, ["'training.batch_size'"]),
    ({"prior": {"demos_per_robot": 10**9}}, ["'prior.demos_per_robot'"]),
    ({"prior": {"trunk": {"d_model": 10**6}}}, ["'prior.trunk'", "d_model"]),
    ({"seeds": list(range(100))}, ["'seeds'"]),
    ({"prior": {"temperature": 1e-300}}, ["'prior.temperature'"]),
], ids=["episodes", "budget", "batch", "pool_demos", "trunk", "seeds", "temperature"])
def test_plan_counts_have_maxima(tmp_path, out, capsys, change, words):
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({**PLAN, **change}))
    _refused(["audit", plan, "--out", out / "audit"], capsys, [plan, out], [plan, *words], absent=[out / "audit"])


# ---------------------------------------------------------------------------- 2. non-finite and absurd values
SPEC_VALUES = {
    "huge_limit": (lambda s: s["joints"][0].update(upper=1e308), ["'joints.0.upper'"]),
    "inf_limit": (lambda s: s["joints"][0].update(lower=float("-inf")), ["'joints.0.lower'"]),
    "tiny_rate": (lambda s: s.update(control_rate_hz=1e-300), ["'control_rate_hz'"]),
    "bool_rate": (lambda s: s.update(control_rate_hz=True), ["'control_rate_hz'", "yes/no"]),
    "zero_scale": (lambda s: s["action"][0].update(scale=0), ["'action.0.scale'"]),
    "nan_scale": (lambda s: s["action"][0].update(scale=float("nan")), ["'action.0.scale'"]),
    "nan_open_value": (lambda s: s["arms"][0]["gripper"].update(open_value=float("nan")),
                       ["'arms.0.gripper.open_value'"]),
    "inf_joint_step": (lambda s: s["safety"].update(max_joint_step_rad=float("inf")),
                       ["'safety.max_joint_step_rad'"]),
    "duplicate_camera": (lambda s: s["cameras"].append(dict(s["cameras"][0])), ["cameras", "duplicate camera"]),
    "bool_in_list": (lambda s: s["safety"].update(workspace_min=[True, 0, 0]), ["'safety.workspace_min.0'"]),
    "huge_velocity": (lambda s: s["joints"][2].update(velocity_limit=1e300), ["'joints.2.velocity_limit'"]),
    "huge_workspace": (lambda s: s["safety"].update(workspace_max=[1e9, 1, 1]), ["workspace_max"]),
}


@pytest.mark.parametrize("case", SPEC_VALUES, ids=list(SPEC_VALUES))
@pytest.mark.parametrize("command", ["spec check", "check --spec"])
def test_absurd_spec_value(fixtures, tmp_path, capsys, case, command):
    change, words = SPEC_VALUES[case]
    path = tmp_path / "robot.yaml"
    path.write_text(_spec_text(change))
    argv = (["spec", "check", path] if command == "spec check"
            else ["check", "--prior", fixtures / "prior" / "policy", "--dataset", fixtures / "panda", "--spec", path])
    _refused(argv, capsys, [path, fixtures / "panda"], [path, *words])


@pytest.mark.parametrize("command", ["spec check", "audit"])
def test_duplicate_yaml_key(tmp_path, out, capsys, command):
    path = tmp_path / "file.yaml"
    if command == "spec check":
        path.write_text(_spec_text() + "control_rate_hz: 500\n")
        argv, words = ["spec", "check", path], ["'control_rate_hz'", "twice"]
    else:
        path.write_text(yaml.safe_dump(PLAN) + "budgets: [1000]\n")
        argv, words = ["audit", path, "--out", out / "audit"], ["'budgets'", "twice"]
    _refused(argv, capsys, [path, out], [path, *words], absent=[out / "audit"])


@pytest.mark.parametrize("change, words", [
    ({"budgets": [True, 4]}, ["'budgets.0'", "yes/no"]),
    ({"training": {"lr": [float("nan")]}}, ["'training.lr'", "nan"]),
    ({"training": {"steps_per_demo": float("inf")}}, ["'training.steps_per_demo'"]),
    ({"prior": {"robots": ["panda", "so101"], "weights": {"panda": -1.0, "so101": 1.0}}}, ["'prior.weights'"]),
    ({"prior": {"robots": ["panda", "so101"], "weights": {"panda": float("nan"), "so101": 1.0}}},
     ["'prior.weights"]),
    ({"prior": {"robots": ["panda", "panda"]}}, ["'prior.robots'", "twice"]),
    ({"threshold": {"absolute": float("nan")}}, ["'threshold.absolute'"]),
], ids=["bool_budget", "nan_lr", "inf_steps_per_demo", "negative_weight", "nan_weight", "robot_twice",
        "nan_threshold"])
def test_absurd_plan_value(tmp_path, out, capsys, change, words):
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({**PLAN, **change}))
    _refused(["audit", plan, "--out", out / "audit"], capsys, [plan, out], [plan, *words], absent=[out / "audit"])


# ---------------------------------------------------------------------------- 4. one line, not a traceback
def _commands_writing(fx: Path, out: Path) -> dict[str, list]:
    prior, dataset = fx / "prior" / "policy", fx / "panda"
    return {
        "adapt": ["adapt", "--prior", prior, "--dataset", dataset, "--recipe", "head", "--steps", 1,
                  "--batch-size", 4, "--out", out],
        "audit": ["audit", "--quick", "--out", out],
        "demos": ["demos", "--robot", "panda", "--task", "reach", "--episodes", 1, "--workers", 1, "--out", out],
        "check --json": ["check", "--prior", prior, "--dataset", dataset, "--json", out],
        "eval --json": ["eval", "--checkpoint", prior, "--dataset", dataset, "--json", out],
    }


@pytest.mark.parametrize("command", ["adapt", "audit", "demos", "check --json", "eval --json"])
def test_out_is_a_file_or_unwritable(fixtures, tmp_path, capsys, command):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file")
    target = blocker if command in ("adapt", "audit", "demos") else blocker / "report.json"
    _refused(_commands_writing(fixtures, target)[command], capsys, [blocker, fixtures / "panda"], [blocker])
    unwritable = Path("/proc/locksmith_no_such/out")  # /proc: not writable, even by root
    _refused(_commands_writing(fixtures, unwritable)[command], capsys, [fixtures / "panda"], ["/proc"])


@pytest.mark.skipif(__import__("os").geteuid() == 0, reason="root writes into read-only folders")
@pytest.mark.parametrize("command", ["adapt", "audit", "demos", "check --json", "eval --json"])
def test_out_in_a_read_only_folder(fixtures, tmp_path, capsys, command):
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        target = folder / ("out" if command in ("adapt", "audit", "demos") else "report.json")
        _refused(_commands_writing(fixtures, target)[command], capsys, [folder, fixtures / "panda"],
                 [folder, "read-only"], absent=[target])
    finally:
        folder.chmod(0o755)


@pytest.mark.parametrize("content", [b"\x00\x01\x02binary\xff\xfe", "name: panda\n".encode("utf-16"),
                                     b"name: \xff\xfe panda\n"], ids=["binary", "utf16", "latin1"])
@pytest.mark.parametrize("command", ["spec check", "check --spec", "adapt --spec"])
def test_spec_not_text(fixtures, tmp_path, out, capsys, content, command):
    path = tmp_path / "robot.yaml"
    path.write_bytes(content)
    prior, dataset = fixtures / "prior" / "policy", fixtures / "panda"
    argv = {"spec check": ["spec", "check", path],
            "check --spec": ["check", "--prior", prior, "--dataset", dataset, "--spec", path],
            "adapt --spec": ["adapt", "--prior", prior, "--dataset", dataset, "--spec", path, "--recipe", "head",
                             "--steps", 1, "--out", out / "key"]}[command]
    _refused(argv, capsys, [path, dataset, out], [path], absent=[out / "key"])


def _truncated_info(d: Path) -> list:
    text = (d / INFO).read_text()
    (d / INFO).write_text(text[: len(text) // 2])
    return [d / INFO, "not valid JSON"]


def _shape_not_a_list(d: Path) -> list:
    info = json.loads((d / INFO).read_text())
    info["features"]["action"]["shape"] = "eight"
    (d / INFO).write_text(json.dumps(info))
    return [d / INFO, "'features.action.shape'"]


def _integer_actions(d: Path) -> list:  # once blamed on gripper polarity
    info = json.loads((d / INFO).read_text())
    info["features"]["action"]["dtype"] = "int64"
    (d / INFO).write_text(json.dumps(info))
    return [d / INFO, "'features.action.dtype'", "int64"]


def _fps_text(d: Path) -> list:
    info = json.loads((d / INFO).read_text())
    info["fps"] = "twenty"
    (d / INFO).write_text(json.dumps(info))
    return [d / INFO, "'fps'"]


def _deleted_parquet(d: Path) -> list:
    path = next((d / "data").rglob("*.parquet"))
    path.unlink()
    return [path, "missing"]


@pytest.mark.parametrize("corrupt", [_truncated_info, _shape_not_a_list, _integer_actions, _fps_text,
                                     _deleted_parquet], ids=lambda f: f.__name__.strip("_"))
@pytest.mark.parametrize("command", ["check", "adapt", "eval"])
def test_damaged_dataset_metadata(fixtures, tmp_path, out, capsys, corrupt, command):
    dataset = Path(shutil.copytree(fixtures / "panda", tmp_path / "copy"))
    words = corrupt(dataset)
    prior = fixtures / "prior" / "policy"
    argv = {"check": ["check", "--prior", prior, "--dataset", dataset],
            "adapt": ["adapt", "--prior", prior, "--dataset", dataset, "--recipe", "head", "--steps", 1,
                      "--out", out / "key"],
            "eval": ["eval", "--checkpoint", prior, "--dataset", dataset]}[command]
    err = _refused(argv, capsys, [dataset, out], words, absent=[out / "key"])
    assert "hub" not in err.lower() and "polarity" not in err


def _config_wrong_types(c: Path) -> list:
    config = json.loads((c / "config.json").read_text())
    config["embodiments"] = "panda"
    (c / "config.json").write_text(json.dumps(config))
    return [c / "config.json", "'embodiments'"]


def _lerobot_act_config(c: Path) -> list:
    (c / "config.json").write_text(json.dumps({"type": "act", "chunk_size": 100, "n_action_steps": 100}))
    return [c / "config.json", "'act'", "not a locksmith policy"]


def _config_a_list(c: Path) -> list:
    (c / "config.json").write_text("[1, 2]")
    return [c / "config.json", "JSON object"]


def _nan_weights(c: Path) -> list:
    weights = load_file(c / "model.safetensors")
    save_file({k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in weights.items()},
              c / "model.safetensors")
    return [c / "model.safetensors", "NaN"]


@pytest.mark.parametrize("corrupt", [_config_wrong_types, _lerobot_act_config, _config_a_list, _nan_weights],
                         ids=lambda f: f.__name__.strip("_"))
@pytest.mark.parametrize("command", ["eval --dataset", "check", "adapt"])
def test_bad_checkpoint_config(fixtures, tmp_path, out, capsys, corrupt, command):
    checkpoint = Path(shutil.copytree(fixtures / "prior" / "policy", tmp_path / "checkpoint"))
    words = corrupt(checkpoint)
    dataset = fixtures / "panda"
    argv = {"eval --dataset": ["eval", "--checkpoint", checkpoint, "--dataset", dataset],
            "check": ["check", "--prior", checkpoint, "--dataset", dataset],
            "adapt": ["adapt", "--prior", checkpoint, "--dataset", dataset, "--recipe", "head", "--steps", 1,
                      "--out", out / "key"]}[command]
    _refused(argv, capsys, [checkpoint, dataset, out], words, absent=[out / "key"])


def test_pretrain_folder_given_as_checkpoint(fixtures, capsys):
    prior = fixtures / "prior"
    _refused(["eval", "--checkpoint", prior, "--dataset", fixtures / "panda"], capsys, [prior],
             [prior, "no config.json", prior / "policy"])


# ---------------------------------------------------------------------------- 5. silent overwrite and acceptance
def test_adapt_refuses_an_existing_key(fixtures, tmp_path, capsys):
    key = tmp_path / "key"
    (key / "policy").mkdir(parents=True)
    (key / "adapt.json").write_text("{}")
    _refused(["adapt", "--prior", fixtures / "prior" / "policy", "--dataset", fixtures / "panda", "--recipe", "head",
              "--steps", 1, "--out", key], capsys, [key], [key, "--overwrite"])


@pytest.mark.parametrize("argv, words", [
    (["demos", "--robot", "panda", "--task", "reach", "--episodes", 1, "--workers", 0], ["--workers", "0"]),
    (["demos", "--robot", "panda", "--task", "reach", "--episodes", 1, "--image-size", 0], ["--image-size"]),
    (["demos", "--robot", "panda", "--task", "reach", "--episodes", 1, "--noise", "nan"], ["--noise", "nan"]),
    (["pretrain", "--robots", "panda", "--tasks", "reach", "--workers", 0], ["--workers"]),
    (["pretrain", "--robots", "panda,panda", "--tasks", "reach"], ["--robots", "panda", "twice"]),
    (["pretrain", "--robots", "panda,so101", "--tasks", "reach", "--weights=-1,2"], ["--weights", "'panda'"]),
    (["pretrain", "--robots", "panda,so101", "--tasks", "reach", "--weights", "nan,1"], ["--weights", "nan"]),
    (["pretrain", "--robots", "panda", "--tasks", "reach", "--lr", "inf"], ["--lr"]),
    (["audit", "--quick", "--workers", 0], ["--workers"]),
    (["adapt", "--dataset", "x", "--recipe", "head", "--steps", 0], ["--steps"]),
    (["eval", "--expert", "--robot", "panda", "--envs", 0], ["--envs"]),
], ids=["demos_workers", "image_size", "noise_nan", "pretrain_workers", "robot_twice", "negative_weight",
        "nan_weight", "lr_inf", "audit_workers", "adapt_steps", "eval_envs"])
def test_flag_refused_before_any_work(tmp_path, capsys, argv, words):
    target = tmp_path / "out"
    _refused([*argv, "--out", target] if argv[0] not in ("eval",) else argv, capsys, [tmp_path], words,
             absent=[target])


# ---------------------------------------------------------------------------- 3. refused plans leave nothing
def test_dataset_target_too_small_leaves_nothing(fixtures, tmp_path, capsys):
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({**PLAN, "targets": [{"dataset": str(fixtures / "panda"),
                                                         "threshold": {"absolute": 0.5}}],
                                    "prior": {"checkpoint": str(fixtures / "prior" / "policy")}}))
    out = tmp_path / "audit"
    _refused(["audit", plan, "--out", out], capsys, [plan, fixtures / "panda"], ["targets.0", "budget 4"],
             absent=[out])


def test_plan_beyond_the_machines_memory(tmp_path, capsys):
    import os

    from locksmith.audit.targets import _demo_bytes

    if _demo_bytes("aloha", "push", 50_000) < 0.8 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"):
        pytest.skip("this machine holds even the largest plan's demos")
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({**PLAN, "targets": [{"robot": "aloha", "task": "push"}], "budgets": [5000],
                                    "demo_pool_factor": 10}))
    out = tmp_path / "audit"
    _refused(["audit", plan, "--out", out], capsys, [plan], ["targets.0", "GiB", "budgets"], absent=[out])


def test_a_pixel_plan_counts_its_pictures_against_the_machines_memory(tmp_path, capsys):
    import os

    from locksmith.audit.targets import _demo_bytes

    limit = 0.8 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if not _demo_bytes("so101", "pick_place", 10_000) < limit < _demo_bytes("so101", "pick_place", 10_000, 64):
        pytest.skip("on this machine 10,000 SO-101 demos fit with their pictures, or not even without")
    stage = {"robots": ["panda"], "tasks": ["reach"], "demos_per_robot": 2}
    state = {**PLAN, "targets": [{"robot": "so101", "task": "pick_place"}], "budgets": [5000], "prior": stage}
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({**state, "observation": "pixels"}))
    out = tmp_path / "audit"
    _refused(["audit", plan, "--out", out], capsys, [plan], ["targets.0", "GiB"], absent=[out])


def test_missing_prior_checkpoint_leaves_nothing(tmp_path, capsys):
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({**PLAN, "prior": {"checkpoint": str(tmp_path / "nowhere")}}))
    out = tmp_path / "audit"
    _refused(["audit", plan, "--out", out], capsys, [plan], ["prior.checkpoint", "nowhere"], absent=[out])


# ---------------------------------------------------------------------------- 6. messages that point the right way
def test_dataset_without_environment_state(fixtures, tmp_path, out, capsys):
    """A real robot's dataset has no simulator object poses: check says the policy needs them."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    source = load_demonstrations(fixtures / "panda")
    spec = source.spec
    root = tmp_path / "real"
    features = {"observation.state": {"dtype": "float32", "shape": (spec.state_dim,), "names": spec.names("state")},
                "action": {"dtype": "float32", "shape": (spec.action_dim,), "names": spec.names("action")}}
    ds = LeRobotDataset.create("local/real", fps=int(spec.control_rate_hz), features=features, root=root,
                               robot_type=spec.robot_type, use_videos=False)
    for e in range(source.num_episodes):
        for f in range(source.episode_starts[e], source.episode_ends[e]):
            ds.add_frame({"observation.state": source.arrays["observation.state"][f],
                          "action": source.arrays["action"][f], "task": source.tasks[f]})
        ds.save_episode()
    ds.finalize()
    (root / SPEC_FILE).write_text(spec.to_yaml())
    prior = fixtures / "prior" / "policy"
    _refused(["check", "--prior", prior, "--dataset", root], capsys, [root],
             ["environment_state", "'observation.environment_state'", "the policy reads"])
    _refused(["adapt", "--prior", prior, "--dataset", root, "--recipe", "head", "--steps", 1, "--out", out / "key"],
             capsys, [root, out], ["environment_state", "Add it"], absent=[out / "key"])


# ---------------------------------------------------------------------------- 8. a tiny pretrain is tiny
def test_pretrain_scales_the_horizon_choice_to_the_run(tmp_path, capsys, monkeypatch):
    import locksmith.train.prior as prior_module

    seen = {}

    def record_call(recipe, config, out, **kwargs):
        seen.update(kwargs)
        raise KeyboardInterrupt  # stop before any work: only the arguments matter here

    monkeypatch.setattr(prior_module, "build_prior", record_call)
    code = _run(["pretrain", "--robots", "panda", "--tasks", "reach", "--steps", 40, "--workers", 1,
                 "--out", tmp_path / "prior"])
    captured = capsys.readouterr()
    assert code == 130
    assert seen["tune_episodes"] == 4 and seen["tune_workers"] == 1
    assert "4 validation episodes" in captured.out and "--tune-episodes 0" in captured.out


# ---------------------------------------------------------------------------- 7. Ctrl-C
@pytest.mark.parametrize("command, target, words", [
    (["demos", "--robot", "panda", "--task", "reach", "--episodes", 1], "locksmith.data.record.record_demos",
     ["nothing was written", "run the same command again"]),
    (["adapt", "--dataset", "d", "--recipe", "head"], "locksmith.train.adapt.adapt", ["no key was written"]),
    (["pretrain", "--robots", "panda", "--tasks", "reach", "--tune-episodes", 0], "locksmith.train.prior.build_prior",
     ["checkpoints", "--resume"]),
    (["audit", "--quick"], "locksmith.audit.run.run_audit", ["finished runs", "resume"]),
], ids=["demos", "adapt", "pretrain", "audit"])
def test_interrupt_says_what_was_kept(tmp_path, capsys, monkeypatch, command, target, words):
    module, name = target.rsplit(".", 1)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(__import__(module, fromlist=[name]), name, interrupted)
    out = tmp_path / "out"
    code = _run([*command, "--out", out])
    err = capsys.readouterr().err
    assert code == 130 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and str(out) in err
    assert all(w in err for w in words), err


def test_sigint_during_demos_leaves_nothing(tmp_path):
    """A real Ctrl-C in a real recording: exit 130, one line, no dataset and no temporary folder."""
    import os
    import signal
    import subprocess
    import sys

    out = tmp_path / "demos"
    # far more episodes than can finish before the signal: it must land mid-recording
    proc = subprocess.Popen([sys.executable, "-m", "locksmith.cli", "demos", "--robot", "panda", "--task", "reach",
                             "--episodes", "5000", "--workers", "1", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"},
                            # a Ctrl-C as a terminal delivers it: a runner started in the background
                            # (nohup, `&`) passes SIGINT down ignored, and Python would keep ignoring it
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(tmp_path.glob(".demos.tmp-*")):
        time.sleep(0.2)
    time.sleep(1.0)
    assert proc.poll() is None, "the recording ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err, err
    assert not out.exists() and not list(tmp_path.glob(".demos.tmp-*"))
