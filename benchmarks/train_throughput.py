"""Training throughput: the locksmith policy against LeRobot's ACT at a similar parameter count.

    .venv/bin/python benchmarks/train_throughput.py [--dataset DIR] [--steps 60] [--batch-size 64] [--threads 2] [--rounds 3]
    .venv/bin/python benchmarks/train_throughput.py --observation pixels [--image-size 64] ...

Both train on the same demonstrations (state + environment-state inputs, action chunks of one
second), from the same in-memory batches, on `--threads` threads, each with its own library's
training step: locksmith with the optimizer of `locksmith.train.loop` (fused AdamW) and its
gradient clipping; ACT with LeRobot's optimizer preset for ACT (AdamW, built as `lerobot-train`
builds it) and that preset's gradient clipping. A third row gives ACT the fused AdamW too, so
the share of the difference that is the optimizer is visible. ACT is LeRobot 0.6.1's own
`ACTPolicy` (no vision backbone: no image inputs), sized so its parameter count is close to
ours. Prints one Markdown table row per policy.

With ``--observation pixels`` both read the robot's first camera (recorded at ``--image-size``)
in place of the environment state: our pixel policy (`locksmith.policy.vision`) against ACT with
its own image backbone, ResNet-18 (random weights; the smallest backbone ACT builds, so the
parameter counts are not alike: the table says both), with the task as the colours its text
names (`train.act_peer`, the audit's pixel ACT).
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


def _rates(arms, args, warmup: int = 5) -> dict[str, list[float]]:
    """Samples/s of each (name, model, step) per round, the arms interleaved within each round so a
    slow spell of the machine hits every policy."""
    rates: dict[str, list[float]] = {name: [] for name, _, _ in arms}
    for _ in range(args.rounds):
        for name, model, fn in arms:
            model.train()
            rates[name].append(args.steps * args.batch_size / _time(fn, args.steps, warmup=warmup))
    return rates


def _table(arms, rates: dict[str, list[float]]) -> None:
    """One Markdown row per policy: parameters, median samples/s, every round's."""
    print("| policy | parameters | samples/s (median) | per round |")
    print("|---|---|---|---|")
    for name, model, _ in arms:
        params = sum(p.numel() for p in model.parameters())
        per_round = ", ".join(f"{r:.0f}" for r in rates[name])
        print(f"| {name} | {params / 1e6:.2f} M | {np.median(rates[name]):.0f} | {per_round} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, default=None, help="a panda dataset (default: record 20 demos)")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds (median reported)")
    parser.add_argument("--observation", choices=("state", "pixels"), default="state")
    parser.add_argument("--image-size", type=int, default=64, help="the camera's square size with pixels")
    args = parser.parse_args()
    if args.observation == "pixels":
        pixel_rows(args)
        return
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
    rates = _rates(arms, args)
    print(f"batch {args.batch_size}, {args.threads} threads, {args.rounds} rounds of {args.steps} steps, "
          f"chunk {chunk}; median over rounds\n")
    _table(arms, rates)
    ratios = [a / b for a, b in zip(rates["locksmith"], rates["LeRobot ACT"], strict=True)]
    fused = [a / b for a, b in zip(rates["locksmith"], rates["LeRobot ACT, fused AdamW"], strict=True)]
    print(f"\nratio to ACT: {np.median(ratios):.2f}x (per round {', '.join(f'{r:.2f}' for r in ratios)}); "
          f"to ACT with fused AdamW: {np.median(fused):.2f}x")


def pixel_rows(args) -> None:
    """Our pixel policy against the audit's pixel ACT (ResNet-18), on the same camera frames."""
    from locksmith.data.loading import load_demonstrations
    from locksmith.data.record import record_demos
    from locksmith.train.act_inputs import NAMED_KEY, feature_stats, image_stats, named_colours
    from locksmith.train.act_peer import build_act_peer
    from locksmith.train.loop import TrainConfig, make_optimizer
    from locksmith.train.pretrain import build_mixture, build_policy

    torch.manual_seed(0)
    root = args.dataset
    if root is None:
        root = Path(f"runs/bench/panda_pick_place_{args.image_size}px")
        if not (root / "meta" / "info.json").is_file():
            record_demos("panda", "pick_place", 20, root, camera=True, image_size=args.image_size, overwrite=True,
                         progress=False)
    demos = {"panda": load_demonstrations(root, images=True)}
    ours = build_policy(demos, observation="pixels", image_size=args.image_size, grounding_weight=0.0)
    mixture = build_mixture(ours, demos)
    rng = np.random.default_rng(0)
    train_config = TrainConfig()
    params = [p for p in ours.parameters() if p.requires_grad]
    opt = make_optimizer(params, train_config)

    def ours_step():
        loss, _ = ours(mixture.sample(args.batch_size, rng))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, train_config.grad_clip)
        opt.step()

    d = demos["panda"]
    named = torch.as_tensor(named_colours(d.tasks))
    peer = build_act_peer(d.spec, {**d.stats, NAMED_KEY: feature_stats(named.numpy()),
                                   ours.camera_feature("panda"): image_stats(d.images[ours.camera_feature("panda")])},
                          0, image_size=args.image_size)
    camera = peer.camera
    sampler = mixture.samplers["panda"]
    act_params = [p for p in peer.policy.parameters() if p.requires_grad]
    act_opt = make_optimizer(act_params, train_config)  # the audit trains every arm with the same optimizer

    def act_step():
        idx = rng.integers(0, len(sampler), size=args.batch_size)
        raw = sampler.gather(idx)
        raw[camera] = raw[camera].float().movedim(-1, -3) / 255.0
        raw["observation.environment_state"] = named[idx]
        loss, _ = peer.policy.forward(peer.preprocessor({k: raw[k] for k in peer.train_keys}))
        act_opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(act_params, train_config.grad_clip)
        act_opt.step()

    arms = (("locksmith, pixels", ours, ours_step), ("LeRobot ACT, ResNet-18", peer.policy, act_step))
    rates = _rates(arms, args, warmup=2)
    print(f"pixels at {args.image_size} px, batch {args.batch_size}, {args.threads} threads, {args.rounds} rounds "
          f"of {args.steps} steps; median over rounds\n")
    _table(arms, rates)
    ratios = [a / b for a, b in zip(rates["locksmith, pixels"], rates["LeRobot ACT, ResNet-18"], strict=True)]
    print(f"\nratio to ACT: {np.median(ratios):.2f}x (per round {', '.join(f'{r:.2f}' for r in ratios)})")


if __name__ == "__main__":
    main()
