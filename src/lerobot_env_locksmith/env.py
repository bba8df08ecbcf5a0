"""`LocksmithEnv`: one robot × task × slice of locksmith's simulator as LeRobot's tools expect it.

A thin gymnasium wrapper around `locksmith.sim.env.TabletopEnv`. Every action goes through the
robot's safety shield exactly as in `locksmith eval` (`locksmith.evaluate.evaluator.make_shield`
and `shield_filter`: the spec's limits, an FK of its own, and, with ``shield_stats``, the data
range of a LeRobot checkpoint's action stats). Observations carry the keys
`lerobot.envs.utils.preprocess_observation` maps onto the recorded dataset's features:

    agent_pos           (S,)        float32  → observation.state
    environment_state   (E,)        float32  → observation.environment_state
    pixels/<camera>     (H, W, 3)   uint8    → observation.images.<camera>   (with ``camera=True``)

``info["is_success"]`` is the task's success test, ``info["shield_interventions"]`` the shield's
interventions so far in the episode (each kind counted once per step it changed the command),
``task_description`` the episode's instruction, ``task`` the task name; ``render()`` returns the
first camera's image.
Every bundled robot × task × slice is registered as ``locksmith/<robot>-<task>-<slice>-v0``.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from locksmith.evaluate.evaluator import make_shield, shield_filter
from locksmith.sim.cameras import IMAGE_PREFIX
from locksmith.sim.env import TabletopEnv

NAMESPACE = "locksmith"
ENTRY_POINT = "lerobot_env_locksmith.env:LocksmithEnv"


def gym_id(robot: str, task: str, slice_name: str) -> str:
    """The gymnasium id of one robot × task × slice."""
    return f"{NAMESPACE}/{robot}-{task}-{slice_name}-v0"


def register(robot: str, task: str, slice_name: str) -> str:
    """Register one robot × task × slice with gymnasium (once); its id back."""
    env_id = gym_id(robot, task, slice_name)
    if env_id not in gym.registry:
        gym.register(env_id, entry_point=ENTRY_POINT, disable_env_checker=True,
                     kwargs={"robot": robot, "task": task, "slice_name": slice_name})
    return env_id


def register_bundled() -> list[str]:
    """Register every bundled robot × task × slice; their ids back."""
    from locksmith.embodiment.registry import BUNDLED_ROBOTS
    from locksmith.sim.slices import SLICES
    from locksmith.sim.tasks import TASKS

    return [register(robot, task, name) for robot in BUNDLED_ROBOTS for task in TASKS for name in SLICES]


def make_env(robot: str, task: str, slice_name: str, **kwargs) -> gym.Env:
    """`gym.make` of one robot × task × slice, registering it first (a robot registered with
    locksmith in this process has no id until then). A module-level function, so that the
    worker processes of an `AsyncVectorEnv` can unpickle it."""
    return gym.make(register(robot, task, slice_name), disable_env_checker=True, **kwargs)


class LocksmithEnv(gym.Env):
    """One robot doing one task on one slice, every action through the robot's safety shield.

    Args:
        robot / task / slice_name: as `TabletopEnv` takes them.
        camera: also observe the spec's cameras (``pixels``).
        image_size: square image size of the observed cameras and of ``render()``; None: the spec's.
        shield: send every action through the shield (``False`` only to measure what it changes).
        action_stats: the policy's action stats (``{"q01", "q99", ...}``): the shield also bounds
            commands to their data range, as `locksmith eval` does with the policy's own.
    """

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self, robot: str, task: str, slice_name: str = "nominal", camera: bool = False,
                 image_size: int | None = None, shield: bool = True, action_stats: dict | None = None,
                 render_mode: str | None = "rgb_array"):
        self.sim = TabletopEnv(robot, task, slice_name=slice_name, render=camera, image_size=image_size)
        self.task = task
        self.render_mode = render_mode
        # Whole frames per second, as the dataset's fps (`locksmith.data.record`); video writers need an integer.
        self.metadata = {**self.metadata, "render_fps": int(round(self.sim.spec_.control_rate_hz))}
        self._max_episode_steps = self.sim.horizon  # lerobot-eval's rollout length
        self.shield = make_shield(self.sim, None, action_stats) if shield else None
        self._filter = shield_filter([self.sim], [self.shield]) if shield else None
        self._obs: dict[str, np.ndarray] = {}
        inner = self.sim.observation_space.spaces
        spaces = {"agent_pos": inner["observation.state"], "environment_state": inner["observation.environment_state"]}
        if camera:
            size = {c.name: (image_size or c.height, image_size or c.width) for c in self.sim.spec_.cameras}
            spaces["pixels"] = gym.spaces.Dict({name: gym.spaces.Box(0, 255, (h, w, 3), np.uint8)
                                                for name, (h, w) in size.items()})
        self.observation_space = gym.spaces.Dict(spaces)
        self.action_space = self.sim.action_space

    @property
    def task_description(self) -> str:
        """The current episode's instruction ("lift the red cube")."""
        return getattr(self.sim, "instruction", self.sim.task.template)

    def _convert(self, obs: dict[str, np.ndarray]) -> dict:
        self._obs = obs
        out = {"agent_pos": obs["observation.state"], "environment_state": obs["observation.environment_state"]}
        if "pixels" in self.observation_space.spaces:
            out["pixels"] = {k.removeprefix(IMAGE_PREFIX): v for k, v in obs.items() if k.startswith(IMAGE_PREFIX)}
        return out

    def _interventions(self) -> int:
        """Shield interventions so far (the shield's counts add up over episodes)."""
        return int(sum(self.shield.interventions.values())) if self.shield is not None else 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        obs, info = self.sim.reset(seed=seed)  # no seed (an autoreset): the simulator draws the next
        self._interventions_at_reset = self._interventions()
        return self._convert(obs), {"is_success": False, "task": info["task"], "shield_interventions": 0}

    def step(self, action: np.ndarray):
        action = np.asarray(action, dtype=float).reshape(-1)
        if self._filter is not None:
            action = self._filter(0, action, self._obs)  # resets the shield at the episode's first step
        obs, reward, terminated, truncated, info = self.sim.step(action)
        return self._convert(obs), reward, terminated, truncated, {
            "is_success": bool(info["success"]), "task": info["task"],
            "shield_interventions": self._interventions() - self._interventions_at_reset}  # this episode's

    def render(self) -> np.ndarray:
        """The first camera's image (H, W, 3) uint8."""
        return next(iter(self.sim.render_cameras().values()))

    def close(self) -> None:
        self.sim.close()


__all__ = ["ENTRY_POINT", "NAMESPACE", "LocksmithEnv", "gym_id", "make_env", "register", "register_bundled"]
