"""A dataset written by `locksmith demos` trains LeRobot's own ACT policy (offline)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from locksmith.data.record import record_demos


def test_lerobot_train_act_runs_on_our_dataset(tmp_path):
    data = tmp_path / "so"
    record_demos("panda", "lift", 2, data, workers=1, progress=False)
    exe = shutil.which("lerobot-train") or str(Path(sys.executable).parent / "lerobot-train")
    out = tmp_path / "act"
    cmd = [
        exe, "--dataset.repo_id=locksmith/panda_lift", f"--dataset.root={data}",
        "--dataset.video_backend=pyav",
        "--policy.type=act", "--policy.device=cpu", "--policy.push_to_hub=false",
        "--policy.pretrained_backbone_weights=null", "--policy.dim_model=64",
        "--policy.dim_feedforward=128", "--policy.n_heads=2", "--policy.chunk_size=10",
        "--policy.n_action_steps=10", "--steps=3", "--batch_size=4", "--num_workers=0",
        "--save_checkpoint=false", "--log_freq=1",
        f"--output_dir={out}", "--wandb.enable=false",
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "step:3" in (result.stdout + result.stderr).replace(" ", "") or "End of training" in result.stdout + result.stderr
