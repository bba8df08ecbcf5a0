import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from locksmith.data.record import record_demos

SCRIPT = """
import sys, torch
torch.set_num_threads(1)
from locksmith.data.loading import load_demonstrations
from locksmith.train.loop import TrainConfig
from locksmith.train.pretrain import pretrain
data, out, steps, resume = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
demos = {"panda": load_demonstrations(data)}
cfg = TrainConfig(steps=steps, batch_size=16, lr=3e-3, warmup_steps=2, checkpoint_every=4, log_every=1, seed=7)
pretrain(demos, out, cfg, resume=resume, progress=False, d_model=32, n_layers=1, n_heads=2, d_feedforward=64, n_readouts=2)
"""


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("loop") / "panda_reach"
    record_demos("panda", "reach", 2, root, workers=1, progress=False)
    return root


def _run(data, out, steps, resume=False, **kw):
    return subprocess.Popen([sys.executable, "-c", SCRIPT, str(data), str(out), str(steps), "1" if resume else "0"], **kw)


def _losses(out: Path) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())}


def test_kill_and_resume_reproduces_the_loss_curve(data, tmp_path):
    full = tmp_path / "full"
    assert _run(data, full, 24).wait(timeout=600) == 0
    reference = _losses(full)
    assert len(reference) == 24 and reference[24] < reference[1]

    killed = tmp_path / "killed"
    proc = _run(data, killed, 24)
    state = killed / "checkpoints" / "last" / "training_state.pt"
    deadline = time.time() + 300
    while time.time() < deadline and not state.exists():
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert state.exists(), "no checkpoint was written before the kill"
    assert _run(data, killed, 24, resume=True).wait(timeout=600) == 0
    resumed = _losses(killed)
    assert sorted(resumed) == list(range(1, 25))
    for step in reference:
        assert resumed[step] == pytest.approx(reference[step], rel=1e-5, abs=1e-6), step
    assert (killed / "policy" / "model.safetensors").is_file()


def test_two_process_accelerate_run_trains(data, tmp_path):
    """Two CPU processes (torchrun; accelerate picks them up and uses gloo) train data-parallel."""
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    out = tmp_path / "ddp"
    exe = Path(sys.executable).parent / "torchrun"
    cmd = [str(exe), "--nproc_per_node", "2", "--master_port", "29533", str(script), str(data), str(out), "8", "0"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    config = json.loads((out / "train_config.json").read_text())
    assert config["processes"] == 2
    losses = _losses(out)
    assert sorted(losses) == list(range(1, 9))
    assert (out / "policy" / "model.safetensors").is_file()
