"""`LocksmithEnvConfig`: the ``locksmith`` env type of LeRobot's env config system.

    lerobot-eval --env.discover_packages_path=lerobot_env_locksmith --env.type=locksmith \
        --env.robot=panda --env.task=lift --env.slice=nominal --policy.path=CHECKPOINT

``fps``, ``features`` and ``features_map`` follow from the robot's spec (its control rate, state,
environment-state and action sizes, its cameras with ``camera=true``); the names are those of a
dataset recorded by `locksmith demos`, so a policy trained on one reads the same keys here.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import gymnasium as gym
from lerobot.configs import FeatureType, PolicyFeature
from lerobot.envs.configs import EnvConfig
from lerobot.utils.constants import ACTION, OBS_ENV_STATE, OBS_IMAGES, OBS_STATE

from lerobot_env_locksmith.env import gym_id, make_env


@EnvConfig.register_subclass("locksmith")
@dataclass
class LocksmithEnvConfig(EnvConfig):
    """One robot × task × slice of locksmith's simulator, every action through the robot's shield.

    Attributes:
        robot: a bundled or registered robot (``locksmith robots``).
        task: reach, lift, push or pick_place.
        slice: nominal, camera_moved, gripper_changed, object_geometry or push.
        camera: observe the spec's cameras as ``observation.images.<camera>``.
        image_size: square size of those images (and of the rendered videos); None: the spec's.
        shield: send every action through the safety shield (false only to measure what it changes).
        shield_stats: a LeRobot checkpoint folder whose action stats also bound the commands to
            their q01..q99 data range (what ``locksmith eval`` does with the policy it evaluates).
    """

    task: str | None = "pick_place"
    robot: str = "panda"
    slice: str = "nominal"
    camera: bool = False
    image_size: int | None = None
    shield: bool = True
    shield_stats: str | None = None

    def __post_init__(self) -> None:
        from locksmith.embodiment.registry import known_robots, load_robot_spec, unknown_robot_message
        from locksmith.sim.env import env_state_dim
        from locksmith.sim.slices import SLICES
        from locksmith.sim.tasks import TASKS

        if self.robot not in known_robots():
            raise ValueError(f"env.robot: {unknown_robot_message(self.robot)}")
        if self.task not in TASKS:
            raise ValueError(f"env.task: unknown task {self.task!r}; known tasks: {', '.join(TASKS)}")
        if self.slice not in SLICES:
            raise ValueError(f"env.slice: unknown slice {self.slice!r}; known slices: {', '.join(SLICES)}")
        if self.image_size is not None and not 8 <= self.image_size <= 2048:
            raise ValueError(f"env.image_size: expected 8 to 2048 pixels, got {self.image_size}")
        spec = load_robot_spec(self.robot)
        self.fps = int(round(spec.control_rate_hz))
        self.features = {
            ACTION: PolicyFeature(type=FeatureType.ACTION, shape=(spec.action_dim,)),
            "agent_pos": PolicyFeature(type=FeatureType.STATE, shape=(spec.state_dim,)),
            "environment_state": PolicyFeature(type=FeatureType.ENV, shape=(env_state_dim(len(spec.arms)),)),
        }
        self.features_map = {ACTION: ACTION, "agent_pos": OBS_STATE, "environment_state": OBS_ENV_STATE}
        if self.camera:
            for cam in spec.cameras:
                shape = (self.image_size or cam.height, self.image_size or cam.width, 3)
                self.features[f"pixels/{cam.name}"] = PolicyFeature(type=FeatureType.VISUAL, shape=shape)
                self.features_map[f"pixels/{cam.name}"] = f"{OBS_IMAGES}.{cam.name}"
        self._action_stats = None
        if self.shield_stats is not None:
            from locksmith.evaluate.lerobot_policy import checkpoint_action_stats

            if not Path(self.shield_stats).is_dir():
                raise ValueError(f"env.shield_stats: {self.shield_stats}: checkpoint folder not found")
            self._action_stats = checkpoint_action_stats(self.shield_stats)

    @property
    def package_name(self) -> str:
        return "lerobot_env_locksmith"

    @property
    def gym_id(self) -> str:
        return gym_id(self.robot, self.task, self.slice)

    @property
    def gym_kwargs(self) -> dict:
        return {"camera": self.camera, "image_size": self.image_size, "shield": self.shield,
                "action_stats": self._action_stats}

    def create_envs(self, n_envs: int, use_async_envs: bool = False) -> dict[str, dict[int, gym.vector.VectorEnv]]:
        """``{"locksmith": {0: VectorEnv}}``, as `EnvConfig.create_envs` makes it, from `make_env`
        (it registers the id first, in whichever process builds the environment)."""
        from gymnasium.vector import AutoresetMode

        factory = partial(make_env, self.robot, self.task, self.slice, **self.gym_kwargs)
        if use_async_envs and n_envs > 1:
            vec = gym.vector.AsyncVectorEnv([factory] * n_envs, autoreset_mode=AutoresetMode.SAME_STEP,
                                            context="forkserver")
        else:
            vec = gym.vector.SyncVectorEnv([factory] * n_envs, autoreset_mode=AutoresetMode.SAME_STEP)
        return {self.type: {0: vec}}


__all__ = ["LocksmithEnvConfig"]
