"""Rebuild the published prior that ships with locksmith, and its model card.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/publish_prior.py --threads 1

Pretrains with `locksmith pretrain`'s defaults into ``--out`` (resumed when killed; a finished
build there is reused), evaluates every pool robot closed loop on evaluation seeds, and writes
``src/locksmith/priors/default/`` (checkpoint, ``pretrain.json``, ``README.md``).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/prior"), help="pretraining folder")
    parser.add_argument("--episodes", type=int, default=100, help="evaluation episodes per pool robot")
    parser.add_argument("--threads", type=int, default=None, help="torch threads for training")
    parser.add_argument("--workers", type=int, default=None, help="evaluation processes (default: cores)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    import torch

    from locksmith.priors.card import publish
    from locksmith.train.prior import (
        DEFAULT_PRETRAIN,
        PRETRAIN_RECORD,
        PriorRecipe,
        build_prior,
    )

    if args.threads:
        torch.set_num_threads(args.threads)
    if not (args.out / PRETRAIN_RECORD).is_file():
        build_prior(PriorRecipe(), DEFAULT_PRETRAIN, args.out, resume=True)
    record = publish(args.out, episodes=args.episodes, workers=args.workers)
    for robot, r in record["evaluation"]["robots"].items():
        print(f"{robot}: {100 * r['success_rate']:.0f} % [{100 * r['ci95'][0]:.0f}, {100 * r['ci95'][1]:.0f}]")
    print("published to src/locksmith/priors/default/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
