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
    from locksmith.policy.stems import split_scene
    from locksmith.train.pretrain import build_policy
    from locksmith.train.scene_frames import render_scene_frames

    t0 = time.perf_counter()
    train = render_scene_frames(args.robot, "pick_place", args.scenes, args.image_size, False, TRAIN_SEED)
    new = render_scene_frames(args.robot, "pick_place", NEW_SCENES, args.image_size, False, NEW_SEED)
    print(f"rendered {args.scenes + NEW_SCENES} scenes in {time.perf_counter() - t0:.0f} s", flush=True)
    with tempfile.TemporaryDirectory() as tmp:  # two demos to build the policy from
        record_demos(args.robot, "pick_place", 2, Path(tmp) / "d", workers=1, progress=False)
        demos = {args.robot: load_demonstrations(Path(tmp) / "d")}
    torch.manual_seed(args.seed)
    policy = build_policy(demos, observation="pixels", image_size=args.image_size, image_shift=args.image_shift,
                          keypoints=args.keypoints, colour_film=args.colour_film, grounding_weight=0.0,
                          scene_weight=1.0)
    n_arms = policy.config.embodiment(args.robot).n_arms
    scene_norm = policy.normalizers[args.robot].environment_state  # the training layouts' own mean and spread
    scene_norm.shift.copy_(torch.as_tensor(train.scene.mean(0)))
    scene_norm.scale.copy_(torch.as_tensor(np.maximum(train.scene.std(0), 1e-3)))

    def batch(frames, idx: np.ndarray) -> dict[str, torch.Tensor]:
        texts = [frames.instructions[i] for i in idx]
        language, mask = policy.embed_instructions(texts)
        return {"observation.state": torch.as_tensor(frames.state[idx]),
                "observation.environment_state": torch.as_tensor(frames.scene[idx]),
                "language": language, "language_mask": mask,
                policy.camera_feature(args.robot): torch.as_tensor(frames.image[idx]),
                "target_object": torch.as_tensor(frames.target_object[idx]),
                "target_pad": torch.as_tensor(frames.target_pad[idx]),
                "named_colours": torch.as_tensor(named_colours(texts))}

    def readouts(b: dict[str, torch.Tensor]) -> torch.Tensor:
        return policy._readouts({args.robot: policy.batch_group(args.robot, b)})[args.robot]

    def distances(frames, idx: np.ndarray) -> tuple[float, float]:
        """Mean distance (m) of the named cube and of the named pad from where the scene head puts them."""
        policy.eval()
        with torch.no_grad():
            b = batch(frames, idx)
            r = readouts(b)
            pred = policy.trunk.scene(r.reshape(r.shape[0], -1))
        policy.train()
        rows, out = torch.arange(len(idx)), []
        for where, k, which in ((pred[:, :3], 0, b["target_object"]), (pred[:, 3:], 1, b["target_pad"])):
            scale, shift = (split_scene(v[None], n_arms)[k][0, which, :3] for v in (scene_norm.scale, scene_norm.shift))
            truth = split_scene(b["observation.environment_state"], n_arms)[k][rows, which, :3]
            out.append(float(torch.linalg.norm(where * scale + shift - truth, dim=1).mean()))
        return out[0], out[1]

    guess = _mean_guess(new, n_arms)
    print(f"guessing the mean position, new scenes: cube {guess[0]:.3f} m, pad {guess[1]:.3f} m")
    optimizer = torch.optim.AdamW(policy.parameters(), lr=args.lr)
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    for step in range(args.steps + 1):
        if step % 500 == 0 or step == args.steps:
            (tc, tp), (nc, np_) = distances(train, np.arange(NEW_SCENES)), distances(new, np.arange(NEW_SCENES))
            print(f"step {step}: training scenes cube {tc:.3f} m, pad {tp:.3f} m; new scenes cube {nc:.3f} m, "
                  f"pad {np_:.3f} m ({time.perf_counter() - t0:.0f} s)", flush=True)
        if step == args.steps:
            break
        b = batch(train, rng.integers(0, len(train), args.batch_size))
        loss = policy._scene_loss(args.robot, readouts(b), b)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def _mean_guess(frames, n_arms: int) -> tuple[float, float]:
    """Mean distance (m) of the named cube and of the named pad from their mean position."""
    from locksmith.policy.stems import split_scene

    rows = np.arange(len(frames))
    objects, pads, _ = split_scene(frames.scene, n_arms)
    named = (objects[rows, frames.target_object, :3], pads[rows, frames.target_pad, :3])
    return tuple(float(np.linalg.norm(p - p.mean(0), axis=1).mean()) for p in named)


if __name__ == "__main__":
    main()
