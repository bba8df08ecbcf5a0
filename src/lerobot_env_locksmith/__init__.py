"""locksmith's tasks inside LeRobot's tools: a ``lerobot_env_*`` plugin.

Importing this package registers the ``locksmith`` env type with LeRobot's env config system
(`LocksmithEnvConfig`) and every bundled robot × task × slice with gymnasium
(``locksmith/<robot>-<task>-<slice>-v0``, `LocksmithEnv`), so that LeRobot's own evaluation
runs any LeRobot policy on them, every action through the robot's safety shield:

    lerobot-eval --env.discover_packages_path=lerobot_env_locksmith --env.type=locksmith \
        --env.robot=panda --env.task=lift --policy.path=OUT/checkpoints/last/pretrained_model

It ships with locksmith (``pip install locksmith``); see ``docs/lerobot.md``.
"""

import locksmith  # noqa: F401  (first: offscreen rendering and offline hub settings before mujoco and lerobot)
from lerobot_env_locksmith.config import LocksmithEnvConfig
from lerobot_env_locksmith.env import LocksmithEnv, gym_id, make_env, register, register_bundled

ENV_IDS = register_bundled()

__all__ = ["ENV_IDS", "LocksmithEnv", "LocksmithEnvConfig", "gym_id", "make_env", "register", "register_bundled"]
