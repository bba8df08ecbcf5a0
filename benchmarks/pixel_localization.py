"""Can the pixel policy learn where the instruction's cube and pad are from its camera? A five-minute
proxy for the encoder, before any closed-loop training.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/pixel_localization.py --scenes 3000 --steps 2000 [--colour-film]

Renders the first frame of random `pick_place` layouts (the arm at home, the robot's first camera
at the policy's size), trains a fresh pixel policy on its scene loss alone (``scene_weight``: the
named cube's and pad's positions in the camera frame, from the readouts; `policy.CrossEmbodimentPolicy`)
on the first ``--scenes`` of them, and every 500 steps prints the mean distance (m) between where it
puts the named cube and pad and where they are: on 200 of its training scenes and on 200 scenes it
never saw, beside the distance of a guess of the mean position. A policy that places them well on
new scenes can find what it must grasp; one that places them well only on its training scenes has
learned those scenes by heart. The scene is normalized by the training layouts' own mean and
spread (two recorded demos only build the policy).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

NEW_SCENES = 200
TRAIN_SEED, NEW_SEED = 10_000, 900_000  # apart from every recording's and evaluation's seeds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--robot", default="panda")
    parser.add_argument("--scenes", type=int, default=3000, help="training scenes (first frames)")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--image-shift", type=int, default=4)
    parser.add_argument("--keypoints", type=int, default=0)
    parser.add_argument("--colour-film", action="store_true", help="condition the encoder on the named colours")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)

    from locksmith.data.loading import load_demonstrations
    from locksmith.data.record import record_demos
    from locksmith.data.targets import named_colours
    from locksmith.policy.config import OBJECT_FIELDS, PAD_FIELDS
    from locksmith.policy.vision import camera_feature
    from locksmith.sim.env import TabletopEnv
    from locksmith.sim.scene import N_OBJECTS
    from locksmith.train.pretrain import build_policy

    env = TabletopEnv(args.robot, "pick_place", render=True, image_size=args.image_size)
    t0 = time.perf_counter()
    train = _scenes(env, range(TRAIN_SEED, TRAIN_SEED + args.scenes))
    new = _scenes(env, range(NEW_SEED, NEW_SEED + NEW_SCENES))
    print(f"rendered {args.scenes + NEW_SCENES} scenes in {time.perf_counter() - t0:.0f} s", flush=True)
    with tempfile.TemporaryDirectory() as tmp:  # two demos to build the policy from
        record_demos(args.robot, "pick_place", 2, Path(tmp) / "d", workers=1, progress=False)
        demos = {args.robot: load_demonstrations(Path(tmp) / "d")}
    torch.manual_seed(args.seed)
    policy = build_policy(demos, observation="pixels", image_size=args.image_size, image_shift=args.image_shift,
                          keypoints=args.keypoints, colour_film=args.colour_film, grounding_weight=0.0,
                          scene_weight=1.0)
    camera = camera_feature(policy.specs[args.robot])
    scene_norm = policy.normalizers[args.robot].environment_state  # the training layouts' own mean and spread
    layouts = np.stack([s["scene"] for s in train])
    scene_norm.shift.copy_(torch.as_tensor(layouts.mean(0)))
    scene_norm.scale.copy_(torch.as_tensor(np.maximum(layouts.std(0), 1e-3)))

    def batch(items: list[dict]) -> dict[str, torch.Tensor]:
        texts = [s["instruction"] for s in items]
        language, mask = policy.embed_instructions(texts)
        return {"observation.state": torch.as_tensor(np.stack([s["state"] for s in items])),
                "observation.environment_state": torch.as_tensor(np.stack([s["scene"] for s in items])),
                "language": language, "language_mask": mask,
                camera: torch.as_tensor(np.stack([s["image"] for s in items])),
                "target_object": torch.as_tensor([s["object"] for s in items]),
                "target_pad": torch.as_tensor([s["pad"] for s in items]),
                "named_colours": torch.as_tensor(named_colours(texts))}

    def readouts(b: dict[str, torch.Tensor]) -> torch.Tensor:
        return policy._readouts({args.robot: (b["observation.state"], b["observation.environment_state"],
                                              b["language"], b["language_mask"], b[camera],
                                              b["named_colours"])})[args.robot]

    def distances(items: list[dict]) -> tuple[float, float]:
        """Mean distance (m) of the named cube and of the named pad from where the scene head puts them."""
        policy.eval()
        with torch.no_grad():
            b = batch(items)
            r = readouts(b)
            pred = policy.trunk.scene(r.reshape(r.shape[0], -1))
        policy.train()
        cube, pad = [], []
        for k, s in enumerate(items):
            for out, start, where in ((cube, s["object"] * OBJECT_FIELDS, pred[k, :3]),
                                      (pad, N_OBJECTS * OBJECT_FIELDS + s["pad"] * PAD_FIELDS, pred[k, 3:])):
                dims = slice(start, start + 3)
                placed = where * scene_norm.scale[dims] + scene_norm.shift[dims]
                out.append(float(torch.linalg.norm(placed - b["observation.environment_state"][k, dims])))
        return float(np.mean(cube)), float(np.mean(pad))

    guess = _mean_guess(new, OBJECT_FIELDS, PAD_FIELDS, N_OBJECTS)
    print(f"guessing the mean position, new scenes: cube {guess[0]:.3f} m, pad {guess[1]:.3f} m")
    optimizer = torch.optim.AdamW(policy.parameters(), lr=args.lr)
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    for step in range(args.steps + 1):
        if step % 500 == 0 or step == args.steps:
            (tc, tp), (nc, np_) = distances(train[:NEW_SCENES]), distances(new)
            print(f"step {step}: training scenes cube {tc:.3f} m, pad {tp:.3f} m; new scenes cube {nc:.3f} m, "
                  f"pad {np_:.3f} m ({time.perf_counter() - t0:.0f} s)", flush=True)
        if step == args.steps:
            break
        b = batch([train[i] for i in rng.integers(0, len(train), args.batch_size)])
        loss = policy._scene_loss(args.robot, readouts(b), b)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def _scenes(env, seeds) -> list[dict]:
    out = []
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        camera = next(k for k in obs if k.startswith("observation.images."))
        out.append({"state": obs["observation.state"], "scene": obs["observation.environment_state"],
                    "image": obs[camera], "instruction": env.instruction, "object": env.target_object,
                    "pad": env.target_pad})
    return out


def _mean_guess(items: list[dict], object_fields: int, pad_fields: int, n_objects: int) -> tuple[float, float]:
    cubes = np.stack([s["scene"][s["object"] * object_fields:][:3] for s in items])
    pads = np.stack([s["scene"][n_objects * object_fields + s["pad"] * pad_fields:][:3] for s in items])
    return (float(np.linalg.norm(cubes - cubes.mean(0), axis=1).mean()),
            float(np.linalg.norm(pads - pads.mean(0), axis=1).mean()))


if __name__ == "__main__":
    main()
