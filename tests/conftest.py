"""Shared test settings: offline, offscreen, few threads (CI machines have 2 cores)."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MUJOCO_GL", "osmesa")
os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")
os.environ.setdefault("OMP_NUM_THREADS", "1")


# ---------------------------------------------------------------- LeRobot checkpoints
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture
def out(tmp_path) -> Path:
    """An output folder that already holds a previous run's files (the bad-input tests check that
    a refused command leaves them untouched)."""
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "keep.txt").write_text("a previous run")
    (folder / "eval.json").write_text('{"previous": true}\n')
    return folder


TINY_ACT = ["--policy.type=act", "--policy.device=cpu", "--policy.push_to_hub=false",
            "--policy.pretrained_backbone_weights=null", "--policy.dim_model=32", "--policy.dim_feedforward=64",
            "--policy.n_heads=2", "--policy.n_encoder_layers=1", "--policy.n_decoder_layers=1",
            "--policy.n_vae_encoder_layers=1", "--policy.chunk_size=10", "--policy.n_action_steps=5"]


def run_lerobot_command(name: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    """Run a LeRobot console script (lerobot-train, lerobot-eval) of this interpreter's
    environment, offline, with the tested sources first on its path and ``env`` set."""
    import locksmith

    src = str(Path(locksmith.__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)
    exe = shutil.which(name) or str(Path(sys.executable).parent / name)
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": path, **env})


@pytest.fixture(scope="session")
def run_lerobot():
    """`run_lerobot_command`, for tests."""
    return run_lerobot_command


def train_tiny_act(data: Path, out: Path, steps: int = 4) -> Path:
    """`lerobot-train` a tiny ACT on ``data`` (batch 2, CPU, offline); its pretrained_model folder."""
    result = run_lerobot_command(
        "lerobot-train", f"--dataset.repo_id=local/{data.name}", f"--dataset.root={data}",
        "--dataset.video_backend=pyav", *TINY_ACT, f"--steps={steps}", "--batch_size=2", "--num_workers=0",
        f"--save_freq={steps}", f"--output_dir={out}", "--wandb.enable=false")
    assert result.returncode == 0, result.stderr[-3000:]
    return out / "checkpoints" / "last" / "pretrained_model"


@pytest.fixture(scope="session")
def lerobot_act_checkpoint(tmp_path_factory) -> Path:
    """A plain lerobot-train ACT checkpoint on 2 panda lift demos recorded by `locksmith demos`."""
    from locksmith.data.record import record_demos

    root = tmp_path_factory.mktemp("lerobot_act")
    record_demos("panda", "lift", 2, root / "panda_lift", workers=1, progress=False)
    return train_tiny_act(root / "panda_lift", root / "act")


@pytest.fixture(scope="session")
def lerobot_act_camera_checkpoint(tmp_path_factory) -> Path:
    """The same with the front camera recorded at 32 px: ACT reads state, scene and image."""
    from locksmith.data.record import record_demos

    root = tmp_path_factory.mktemp("lerobot_act_camera")
    record_demos("panda", "lift", 1, root / "panda_lift_camera", camera=True, image_size=32, workers=1,
                 progress=False)
    return train_tiny_act(root / "panda_lift_camera", root / "act", steps=2)
