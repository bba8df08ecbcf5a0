"""Training throughput: the locksmith policy against LeRobot's ACT at a similar parameter count.

    .venv/bin/python benchmarks/train_throughput.py [--dataset DIR] [--steps 60] [--batch-size 64]

Both train on the same demonstrations (state + environment-state inputs, action chunks of one
second), from the same in-memory batches, with AdamW, on `torch.get_num_threads()` threads.
ACT is LeRobot 0.6.1's own `ACTPolicy` (no vision backbone: no image inputs), sized so its
parameter count is close to ours. Prints one Markdown table row per policy.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch


def _time(step_fn, steps: int, warmup: int = 5) -> float:
    for _ in range(warmup):
        step_fn()
    start = time.perf_counter()
    for _ in range(steps):
        step_fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, default=None, help="a panda dataset (default: record 20 demos)")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot.policies.act.configuration_act import ACTConfig
    from lerobot.policies.act.modeling_act import ACTPolicy

    from locksmith.data.loading import load_demonstrations
    from locksmith.data.record import record_demos
    from locksmith.train.pretrain import build_mixture, build_policy

    root = args.dataset
    if root is None:
        root = Path("runs/bench/panda_pick_place")
        if not (root / "meta" / "info.json").is_file():
            record_demos("panda", "pick_place", 20, root, overwrite=True, progress=False)
    demos = {"panda": load_demonstrations(root)}
    ours = build_policy(demos)
    mixture = build_mixture(ours, demos)
    rng = np.random.default_rng(0)
    chunk = ours.config.embodiment("panda").chunk_size
    spec = demos["panda"].spec

    opt = torch.optim.AdamW([p for p in ours.parameters() if p.requires_grad], lr=1e-4)

    def ours_step():
        batch = mixture.sample(args.batch_size, rng)
        loss, _ = ours(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()

    act_cfg = ACTConfig(
        input_features={
            "observation.state": PolicyFeature(FeatureType.STATE, (spec.state_dim,)),
            "observation.environment_state": PolicyFeature(FeatureType.ENV, (demos["panda"].arrays["observation.environment_state"].shape[1],)),
        },
        output_features={"action": PolicyFeature(FeatureType.ACTION, (spec.action_dim,))},
        chunk_size=chunk, n_action_steps=chunk, dim_model=128, dim_feedforward=384, n_heads=4,
        n_encoder_layers=2, n_decoder_layers=1, n_vae_encoder_layers=2, device="cpu",
        pretrained_backbone_weights=None,
    )
    act = ACTPolicy(act_cfg)
    act_opt = torch.optim.AdamW(act.parameters(), lr=1e-4)
    sampler = mixture.samplers["panda"]

    def act_step():
        b = sampler.sample(args.batch_size, rng)
        batch = {k: b[k] for k in ("observation.state", "observation.environment_state", "action", "action_is_pad")}
        loss, _ = act.forward(batch)
        act_opt.zero_grad()
        loss.backward()
        act_opt.step()

    rows = []
    for name, model, fn in (("locksmith", ours, ours_step), ("LeRobot ACT", act, act_step)):
        model.train()
        seconds = _time(fn, args.steps)
        params = sum(p.numel() for p in model.parameters())
        rows.append((name, params, args.steps * args.batch_size / seconds))
    print(f"batch {args.batch_size}, {args.threads} threads, {args.steps} steps, chunk {chunk}\n")
    print("| policy | parameters | samples/s |")
    print("|---|---|---|")
    for name, params, rate in rows:
        print(f"| {name} | {params / 1e6:.2f} M | {rate:.0f} |")
    print(f"\nratio: {rows[0][2] / rows[1][2]:.2f}x")


if __name__ == "__main__":
    main()
