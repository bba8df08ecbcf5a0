"""Does motion learned in shared intent carry to a robot it has never seen? A small probe.

    .venv/bin/python benchmarks/intent_zero_shot.py [--pool runs/prior/data] [--target so101]
        [--target-data runs/audit/default/data/so101_pick_place] [--demos 10] [--episodes 30]

Not the policy: a deliberately small stand-in that isolates one question of the shared-intent
design. Every frame is described in the robot's base frame only (the scene's camera-frame
positions moved to the base frame with the spec's own camera extrinsics): the named cube and pad
relative to the TCP, the TCP's height, the cube's size, the gripper's closure. An MLP maps that to
a chunk of intent (TCP velocity and closure, `sim.intent`), normalized once for the whole pool,
and the robot's `IntentDecoder` (its IK and spec) turns each intent into its own command. The
instruction's cube and pad are given (read from the instruction's colours,
`data.targets.named_entities`), so grounding is not part of the question.

Arms, each evaluated closed loop on the target for ``--episodes`` validation seeds (never the
evaluation seeds an audit reports), with the target's safety envelope left to the decoder's limits:

    zero-shot   trained on the pool robots' recordings only, run on the target as is
    adapted     the same, fine-tuned on ``--demos`` of the target's demonstrations
    scratch     the same MLP trained on those demos alone, the same steps
    pool check  the pool-trained MLP on the first pool robot (its own data: the probe's ceiling)
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

CHUNK = 10  # intents predicted per step
EXECUTE = 5  # of which executed before predicting again
FEATURES = 11
SCALE = {"on": False}  # --reach-scale: lengths in units of the robot's forward reach (spec safety box)


def _reach(spec) -> float:
    """The robot's length scale, from its spec alone: the safety box's forward extent (m)."""
    return float(spec.safety.workspace_max[0]) if SCALE["on"] else 1.0


def _camera(spec):
    """(R, c): base-frame rotation (columns right, up, backward) and position of the first camera."""
    import mujoco
    import numpy as np

    from locksmith.sim.scene import look_at_quat

    cam = spec.cameras[0]
    pos = np.asarray(cam.position, dtype=float)
    rot = np.zeros(9)
    mujoco.mju_quat2Mat(rot, look_at_quat(pos, np.asarray(cam.look_at, dtype=float)))
    return rot.reshape(3, 3), pos


def _features(env_state, objects, pads, camera, reach: float = 1.0):
    """(N, FEATURES) base-frame description of (N, env_dim) camera-frame scene states."""
    import numpy as np

    from locksmith.sim.scene import N_OBJECTS, N_PADS

    rot, pos = camera
    n = len(env_state)
    obj = env_state[:, :N_OBJECTS * 7].reshape(n, N_OBJECTS, 7)
    pad = env_state[:, N_OBJECTS * 7:N_OBJECTS * 7 + N_PADS * 6].reshape(n, N_PADS, 6)
    rest = env_state[:, N_OBJECTS * 7 + N_PADS * 6:]
    base = lambda p: p @ rot.T + pos  # noqa: E731
    rows = np.arange(n)
    cube = base(obj[rows, objects, :3])
    goal = base(pad[rows, np.maximum(pads, 0), :3])
    tcp = base(rest[:, :3])
    lengths = np.concatenate([cube - tcp, goal - tcp, tcp[:, 2:3], cube[:, 2:3], obj[rows, objects, 3:4]], axis=1)
    return np.concatenate([lengths / reach, rest[:, 3:4], (pads >= 0)[:, None]], axis=1).astype(np.float32)


def _dataset(root: Path):
    """(features (N, F), intent chunks (N, CHUNK, 4)) of a one-arm robot's recording."""
    import numpy as np

    from locksmith.data.loading import load_demonstrations
    from locksmith.data.targets import episode_targets

    demos = load_demonstrations(root)
    env = demos.arrays["observation.environment_state"]
    objects, pads = episode_targets(env, demos.episode_starts, demos.episode_ends)
    reach = _reach(demos.spec)
    x = _features(env, objects, pads, _camera(demos.spec), reach)
    intent = demos.arrays["intent"][:, :4] / np.array([reach, reach, reach, 1.0], dtype=np.float32)
    ends = demos.episode_ends[demos.episode_index]
    idx = np.minimum(np.arange(len(x))[:, None] + np.arange(CHUNK)[None, :], ends[:, None] - 1)
    return demos, x, intent[idx]


def _subset(demos, x, y, episodes):
    import numpy as np

    keep = np.isin(demos.episode_index, episodes)
    return x[keep], y[keep]


def _train(model, x, y, norm, steps: int, seed: int, lr: float = 1e-3):
    import numpy as np
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    xs = torch.as_tensor((x - norm[0]) / norm[1])
    ys = torch.as_tensor((y - norm[2]) / norm[3])
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    model.train()
    for _ in range(steps):
        i = torch.as_tensor(rng.integers(len(xs), size=256))
        loss = (model(xs[i]).view(-1, CHUNK, 4) - ys[i]).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    model.eval()
    return float(loss)


def _mlp(seed: int):
    """The probe's MLP, its initial weights drawn from ``seed``."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(FEATURES, 256), nn.GELU(), nn.Linear(256, 256), nn.GELU(),
                         nn.Linear(256, 256), nn.GELU(), nn.Linear(256, CHUNK * 4))


def _evaluate(model, norm, robot: str, episodes: int) -> int:
    import numpy as np
    import torch

    from locksmith.data.targets import named_entities
    from locksmith.evaluate.horizon import VALIDATION_SEED_BASE
    from locksmith.sim.env import TabletopEnv
    from locksmith.sim.intent import decoder_for

    env = TabletopEnv(robot, "pick_place")
    camera, reach = _camera(env.spec_), _reach(env.spec_)
    unit = np.array([reach, reach, reach, 1.0])
    wins = 0
    for i in range(episodes):
        env.reset(seed=VALIDATION_SEED_BASE + i)
        decoder = decoder_for(env)
        queue = []
        for _ in range(env.horizon):
            if not queue:
                state = env.environment_state()[None]
                obj, pad = named_entities(env.instruction, state[0])
                x = _features(state, np.array([obj]), np.array([pad]), camera, reach)
                with torch.no_grad():
                    y = model(torch.as_tensor((x - norm[0]) / norm[1])).view(CHUNK, 4).numpy() * norm[3] + norm[2]
                queue = list(y[:EXECUTE] * unit)
            _, _, done, truncated, _ = env.step(decoder.decode(queue.pop(0)))
            if done:
                wins += 1
                break
            if truncated:
                break
    env.close()
    return wins


def main() -> None:
    import copy

    import numpy as np
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=Path, default=Path("runs/prior/data"))
    parser.add_argument("--target", default="so101")
    parser.add_argument("--target-data", type=Path, default=Path("runs/audit/default/data/so101_pick_place"))
    parser.add_argument("--demos", type=int, default=10)
    parser.add_argument("--episodes", type=int, default=30)
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--adapt-steps", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reach-scale", action="store_true",
                        help="lengths and velocities in units of each robot's forward reach (its spec's safety box)")
    parser.add_argument("--skip-adapt", action="store_true", help="zero-shot and the pool check only")
    args = parser.parse_args()
    SCALE["on"] = args.reach_scale
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    pool_x, pool_y, first = [], [], None
    for root in sorted(p for p in args.pool.iterdir() if (p / "meta" / "info.json").is_file()):
        demos, x, y = _dataset(root)
        if len(demos.spec.arms) != 1 or demos.spec.base is not None:
            continue
        first = first or demos.spec.name
        pool_x.append(x)
        pool_y.append(y)
        print(f"pool {demos.spec.name}: {demos.num_episodes} demos, {len(x)} frames", flush=True)
    x, y = np.concatenate(pool_x), np.concatenate(pool_y)
    flat = y.reshape(-1, 4)
    norm = (x.mean(0), x.std(0) + 1e-6, flat.mean(0), flat.std(0) + 1e-6)  # once, for the whole pool
    prior = _mlp(args.seed)
    loss = _train(prior, x, y, norm, args.steps, args.seed)
    print(f"pool MLP: {args.steps} steps, final L1 {loss:.3f}, {time.perf_counter() - t0:.0f} s", flush=True)
    arms = [("pool check", prior, first), ("zero-shot", prior, args.target)]
    if not args.skip_adapt:
        demos, tx, ty = _dataset(args.target_data)
        chosen = np.random.default_rng(args.seed).choice(demos.num_episodes, args.demos, replace=False)
        dx, dy = _subset(demos, tx, ty, chosen)
        adapted = copy.deepcopy(prior)
        _train(adapted, dx, dy, norm, args.adapt_steps, args.seed, lr=3e-4)
        scratch = _mlp(args.seed)
        _train(scratch, dx, dy, norm, args.adapt_steps, args.seed)
        arms += [(f"adapted ({args.demos} demos)", adapted, args.target),
                 (f"scratch ({args.demos} demos)", scratch, args.target)]
    n = args.episodes
    for name, model, robot in arms:
        wins = _evaluate(model, norm, robot, n)
        print(f"| {name} | {robot} | {wins}/{n} |", flush=True)
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
