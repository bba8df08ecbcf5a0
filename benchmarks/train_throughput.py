"""Training throughput: the locksmith policy against LeRobot's ACT at a similar parameter count.

    .venv/bin/python benchmarks/train_throughput.py [--dataset DIR] [--steps 60] [--batch-size 64] [--threads 2] [--rounds 3]

Both train on the same demonstrations (state + environment-state inputs, action chunks of one
second), from the same in-memory batches, on `--threads` threads, each with its own library's
training step: locksmith with the optimizer of `locksmith.train.loop` (fused AdamW) and its
gradient clipping; ACT with LeRobot's optimizer preset for ACT (AdamW, built as `lerobot-train`
builds it) and that preset's gradient clipping. A third row gives ACT the fused AdamW too, so
the share of the difference that is the optimizer is visible. ACT is LeRobot 0.6.1's own
`ACTPolicy` (no vision backbone: no image inputs), sized so its parameter count is close to
ours. Prints one Markdown table row per policy.
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
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds (median reported)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot.policies.act.configuration_act import ACTConfig
    from lerobot.policies.act.modeling_act import ACTPolicy

    from locksmith.data.loading import load_demonstrations
    from locksmith.data.record import record_demos
    from locksmith.train.loop import TrainConfig, make_optimizer
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

    train_config = TrainConfig()
    params = [p for p in ours.parameters() if p.requires_grad]
    opt = make_optimizer(params, train_config)

    def ours_step():
        batch = mixture.sample(args.batch_size, rng)
        loss, _ = ours(batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, train_config.grad_clip)
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
    preset = act_cfg.get_optimizer_preset()
    sampler = mixture.samplers["panda"]

    def act_step_with(act_opt):
        def act_step():
            b = sampler.sample(args.batch_size, rng)
            batch = {k: b[k] for k in ("observation.state", "observation.environment_state", "action", "action_is_pad")}
            loss, _ = act.forward(batch)
            act_opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(act.parameters(), preset.grad_clip_norm)
            act_opt.step()
        return act_step

    act_lerobot = act_step_with(preset.build(act.get_optim_params()))
    act_fused = act_step_with(torch.optim.AdamW(act.parameters(), lr=preset.lr, weight_decay=preset.weight_decay, fused=True))
    arms = (("locksmith", ours, ours_step), ("LeRobot ACT", act, act_lerobot),
            ("LeRobot ACT, fused AdamW", act, act_fused))
    rates: dict[str, list[float]] = {name: [] for name, _, _ in arms}
    for _ in range(args.rounds):  # interleaved, so a slow spell of the machine hits every policy
        for name, model, fn in arms:
            model.train()
            rates[name].append(args.steps * args.batch_size / _time(fn, args.steps))
    print(f"batch {args.batch_size}, {args.threads} threads, {args.rounds} rounds of {args.steps} steps, "
          f"chunk {chunk}; median over rounds\n")
    print("| policy | parameters | samples/s (median) | per round |")
    print("|---|---|---|---|")
    for name, model, _ in arms:
        params = sum(p.numel() for p in model.parameters())
        per_round = ", ".join(f"{r:.0f}" for r in rates[name])
        print(f"| {name} | {params / 1e6:.2f} M | {np.median(rates[name]):.0f} | {per_round} |")
    ratios = [a / b for a, b in zip(rates["locksmith"], rates["LeRobot ACT"], strict=True)]
    fused = [a / b for a, b in zip(rates["locksmith"], rates["LeRobot ACT, fused AdamW"], strict=True)]
    print(f"\nratio to ACT: {np.median(ratios):.2f}x (per round {', '.join(f'{r:.2f}' for r in ratios)}); "
          f"to ACT with fused AdamW: {np.median(fused):.2f}x")


if __name__ == "__main__":
    main()
