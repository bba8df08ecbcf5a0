"""LeRobot's ACT peer reads the task: on `lift`, on NEW layouts, it grasps the cube the instruction names.

The training demos are the scripted expert on a few layouts, each recorded three times, once with
each of its three cubes named, so the scene alone cannot tell which cube to take: only the
instruction can. ACT reads the instruction as the cube (and pad) it names in the current scene
(`locksmith.data.targets.named_entities` → `act_peer.named_features`). The trained ACT is then
rolled out closed loop, as `locksmith eval` runs it (`ACTAgent` from the checkpoint folder, every
action through the shield), on layouts it never saw (seeds disjoint from the demos'), each with
each of its cubes named in turn; the cube counted is the one nearest the TCP when the gripper
first closes.

ACT's inference is deterministic, so an ACT that gets no task information acts the same for the
three namings of a layout and takes the named cube in at most one of three episodes: chance is at
most 1/3 by construction. Two such controls run through the same pipeline: the same ACT with an
instruction that names nothing (the task columns are zero), and an ACT trained and evaluated with
the task columns zeroed (the instruction-blind peer). On the instruction-blind code, or with the
sentence-embedding input this replaced, the first test fails (the embedding stayed at chance on
new layouts, see `locksmith.train.act_peer`).
"""

import numpy as np
import pytest
import torch
from scipy.stats import binomtest

from locksmith.data.loading import Demonstrations, compute_stats
from locksmith.evaluate.act_agent import ACTAgent, load_act_peer
from locksmith.evaluate.evaluator import make_shield, shield_filter
from locksmith.evaluate.rollout import rollout
from locksmith.sim.env import TabletopEnv
from locksmith.sim.expert import ScriptedExpert
from locksmith.sim.scene import N_OBJECTS
from locksmith.train import act_peer, act_train
from locksmith.train.loop import TrainConfig

TRAIN_LAYOUTS = range(8)  # layout seeds of the demos; each recorded with each of the 3 cubes named
NEW_LAYOUTS = range(1000, 1016)  # evaluation layouts, never in the demos: 16 × 3 namings = 48 episodes
TINY = dict(dim_model=32, n_heads=2, dim_feedforward=64, n_encoder_layers=1, n_vae_encoder_layers=1, latent_dim=8)
RECIPE = TrainConfig(steps=300, batch_size=32, lr=1e-3, warmup_steps=30, seed=0)


class NamedCubeEnv(TabletopEnv):
    """`lift` on the layout of the reset seed, with the instruction naming cube ``named`` (or,
    with ``text``, that text whatever the cube)."""

    def __init__(self, robot: str, named: int, text: str | None = None):
        super().__init__(robot, "lift")
        self.named = named
        self.text = text

    def reset(self, *, seed=None, options=None):
        obs, _ = super().reset(seed=seed, options=options)
        self.target_object = self.named  # what the expert, the success test and we look at
        self.instruction = self.text or self.task.template.format(obj=self.object_colours[self.named],
                                                                  pad=self.pad_colours[self.target_pad])
        return obs, self._info()


def _expert_demos(robot: str, layouts, root) -> Demonstrations:
    """The scripted expert on every layout with every cube named, as in-memory demos."""
    arrays: dict[str, list] = {"observation.state": [], "observation.environment_state": [], "action": []}
    tasks, lengths = [], []
    for named in range(N_OBJECTS):
        env = NamedCubeEnv(robot, named)
        expert = ScriptedExpert(env)
        for seed in layouts:
            obs, _ = env.reset(seed=seed)
            expert.reset()
            for t in range(env.horizon):
                action = expert.act()
                for key in ("observation.state", "observation.environment_state"):
                    arrays[key].append(obs[key])
                arrays["action"].append(action.astype(np.float32))
                tasks.append(env.instruction)
                obs, _, terminated, truncated, _ = env.step(action)
                if terminated or truncated:
                    break
            assert terminated, f"the expert failed layout {seed} with cube {named} named"
            lengths.append(t + 1)
        env.close()
    a = {k: np.stack(v) for k, v in arrays.items()}
    ends = np.cumsum(lengths)
    return Demonstrations(spec=env.spec_, arrays=a, episode_index=np.repeat(np.arange(len(lengths)), lengths),
                          episode_starts=ends - np.asarray(lengths), episode_ends=ends, tasks=tasks,
                          stats=compute_stats(a), fps=env.spec_.control_rate_hz, root=root, fingerprint="in-memory")


def _cube_at_first_close(peer, robot: str, layouts, text: str | None = None) -> tuple[list[int], list[int]]:
    """Closed-loop episodes (layout × named cube); per episode the named cube and the cube nearest
    the TCP when the gripper first closes (-1: it never closed). ``text``: the instruction for all."""
    envs = [NamedCubeEnv(robot, named, text) for named in range(N_OBJECTS)]
    shields = [make_shield(env, peer) for env in envs]
    closed_on: dict[tuple[int, int], int] = {}
    named_of = {id(env): env.named for env in envs}

    def watch(seed: int, env: TabletopEnv) -> None:
        key = (seed, named_of[id(env)])
        state = env.task_state()
        if key not in closed_on and state.closure[0] > state.gripper_threshold[0]:
            cubes = np.stack([env.to_base_frame(env.object_pos(i)) for i in range(N_OBJECTS)])
            closed_on[key] = int(np.argmin(np.linalg.norm(cubes - state.tcp_pos[0], axis=1)))

    seeds = [s for s in layouts for _ in range(N_OBJECTS)]  # env k takes layout s with cube k named
    rollout(envs, ACTAgent(peer, robot), seeds, action_filter=shield_filter(envs, shields), after_step=watch)
    for env in envs:
        env.close()
    named = [k for _ in layouts for k in range(N_OBJECTS)]
    return named, [closed_on.get((s, k), -1) for s, k in zip(seeds, named, strict=True)]


def _hits(named: list[int], taken: list[int]) -> tuple[int, float]:
    """Episodes where the named cube was taken, and the one-sided binomial p-value against 1/3."""
    hits = sum(t == n for t, n in zip(taken, named, strict=True))
    return hits, binomtest(hits, len(named), 1 / 3, alternative="greater").pvalue


def _same_cube_per_layout(taken: list[int]) -> bool:
    return all(len(set(taken[i:i + N_OBJECTS])) == 1 for i in range(0, len(taken), N_OBJECTS))


def _blind_features(instructions, environment_state):
    return np.zeros((len(instructions), act_peer.NAMED_DIM), dtype=np.float32)


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    assert not set(TRAIN_LAYOUTS) & set(NEW_LAYOUTS)
    return _expert_demos("panda", TRAIN_LAYOUTS, tmp_path_factory.mktemp("act_task") / "demos")


@pytest.fixture(scope="module")
def trained(demos, tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("act_task") / "act"
    act_train.train_act_peer(demos, out, RECIPE, **TINY)
    return load_act_peer(out, "panda")


def test_act_grasps_the_named_cube_on_new_layouts(trained):
    named, taken = _cube_at_first_close(trained, "panda", NEW_LAYOUTS)
    hits, p = _hits(named, taken)
    print(f"new layouts: named cube taken in {hits}/{len(named)} episodes (p = {p:.2g}); cubes {taken}")
    assert p < 0.01, f"ACT took the named cube in {hits}/{len(named)} episodes (p = {p:.3g} against 1/3): {taken}"


def test_an_instruction_naming_nothing_gives_the_same_cube_per_layout(trained):
    """Free-form text: the task columns are zero, ACT has nothing to tell the namings apart."""
    named, taken = _cube_at_first_close(trained, "panda", NEW_LAYOUTS, text="pick something up")
    hits, p = _hits(named, taken)
    print(f"text naming nothing: named cube taken in {hits}/{len(named)} episodes (p = {p:.2g})")
    assert _same_cube_per_layout(taken), taken
    assert hits <= len(NEW_LAYOUTS) and p > 0.01


def test_with_the_task_columns_zeroed_act_stays_at_chance(demos, tmp_path, monkeypatch):
    """The same pipeline, trained and evaluated with `named_features` zeroed (an instruction-blind ACT)."""
    torch.set_num_threads(1)
    monkeypatch.setattr(act_peer, "named_features", _blind_features)  # at inference
    monkeypatch.setattr(act_train, "named_features", _blind_features)  # in training
    act_train.train_act_peer(demos, tmp_path / "blind", RECIPE, **TINY)
    named, taken = _cube_at_first_close(load_act_peer(tmp_path / "blind", "panda"), "panda", NEW_LAYOUTS)
    hits, p = _hits(named, taken)
    print(f"task columns zeroed: named cube taken in {hits}/{len(named)} episodes (p = {p:.2g})")
    assert _same_cube_per_layout(taken), taken
    assert hits <= len(NEW_LAYOUTS) and p > 0.01
