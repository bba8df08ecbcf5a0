"""locksmith: pretrain a robot prior once, cut a small local key for every new robot, and
measure with numbers how many demonstrations the prior saves."""

__version__ = "0.1.0"

import os as _os

# Offscreen rendering without a display: OSMesa (Debian's libosmesa6) works on any CPU machine.
if not _os.environ.get("DISPLAY"):
    _os.environ.setdefault("MUJOCO_GL", "osmesa")
    _os.environ.setdefault("PYOPENGL_PLATFORM", _os.environ["MUJOCO_GL"])
# Datasets and models are local files: never reach for a hub.
_os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Camera streams are encoded by LeRobot through SVT-AV1, which prints ~15 lines of its settings
# to stderr for every episode at its default level; errors only.
_os.environ.setdefault("SVT_LOG", "1")

import logging as _logging


class _TorchcodecFallbackFilter(_logging.Filter):
    """Drops lerobot's one warning that torchcodec cannot load (FFmpeg's shared libraries are
    absent), a ~100-line traceback logged before it falls back to pyav for a dataset opened
    without a video backend. locksmith names its backend (`locksmith.data.record.VIDEO_BACKEND`),
    so this only quiets lerobot calls made beside it; the module's other warnings still show."""

    def filter(self, record: _logging.LogRecord) -> bool:
        return "'torchcodec' is installed but cannot be loaded" not in record.getMessage()


_logging.getLogger("lerobot.utils.import_utils").addFilter(_TorchcodecFallbackFilter())

# The "bring your own robot" API, loaded on first use so that `import locksmith` stays light.
_REGISTRY_API = ("register_robot", "unregister_robot", "known_robots", "load_robot_spec")
_LAZY_API = {
    **{name: "locksmith.embodiment.registry" for name in _REGISTRY_API},
    "check_robot": "locksmith.sim.check",  # the robot check (`locksmith robot check NAME`)
    "solve_home_pose": "locksmith.sim.builder_helpers",  # builder helpers
    "add_servo_arm": "locksmith.sim.builder_helpers",
    "load_model": "locksmith.sim.builder_helpers",
}


def __getattr__(name: str):
    if name in _LAZY_API:
        import importlib

        return getattr(importlib.import_module(_LAZY_API[name]), name)
    raise AttributeError(f"module 'locksmith' has no attribute {name!r}")
