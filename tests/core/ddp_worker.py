"""Trains a small MLP with core.fit; run under torchrun (any world size) or plain python.

python ddp_worker.py OUT_DIR [--max-steps N] [--dropout P] [--with-eval] [--on-main] [--eval-fails]
                     [--resume] [--nan-rank R]
"""

import argparse
import sys

import torch
import torch.nn.functional as F

from core import distributed
from core.config import TrainConfig
from core.errors import ShowcaseError
from core.loop import fit, setup
from core.models import MLP
from core.tensor_data import TensorLoader

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("out_dir")
    parser.add_argument("--max-steps", type=int, default=30)
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument(
        "--with-eval", action="store_true", help="evaluate every 10 steps, keep the best"
    )
    parser.add_argument(
        "--on-main", action="store_true", help="evaluate through distributed.on_main"
    )
    parser.add_argument(
        "--eval-fails", action="store_true", help="the second evaluation raises (on rank 0)"
    )
    parser.add_argument("--resume", action="store_true")
    parser.add_argument(
        "--nan-rank", type=int, default=-1, help="this rank's loss is NaN at step 7"
    )
    args = parser.parse_args()
    cfg = TrainConfig(
        out_dir=args.out_dir,
        device="cpu",
        max_steps=args.max_steps,
        batch_size=32,
        lr=0.05,
        log_every=10,
        eval_every=10 if args.with_eval else 0,
        ckpt_every=10,
        resume=args.resume,
    )
    try:
        device = setup(cfg)
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(640, 8, generator=gen)
        y = (x[:, 0] + x[:, 1] > 0).long()
        model = MLP(8, [32, 32], 2, dropout=args.dropout)
        calls = evaluations = 0

        def step(m, batch):
            global calls
            calls += 1
            xb, yb = batch
            logits = m(xb)
            loss = F.cross_entropy(logits, yb)
            if calls == 7 and distributed.rank() == args.nan_rank:
                loss = loss * float("nan")
            return loss, {"acc": (logits.argmax(-1) == yb).float().mean()}

        def evaluate(m):
            global evaluations
            evaluations += 1
            if args.eval_fails and evaluations == 2:
                raise ShowcaseError("the validation set is unreadable")
            return {"val_acc": (m(x[512:]).argmax(-1) == y[512:]).float().mean().item()}

        if args.on_main:
            evaluate = distributed.on_main(evaluate)
        loader = TensorLoader.for_config((x[:512], y[:512]), cfg)
        result = fit(
            model,
            step,
            loader,
            cfg,
            device=device,
            evaluate=evaluate if args.with_eval else None,
            monitor="val_acc" if args.with_eval else None,
        )
        print(f"result best {result.best} weights_step {result.weights_step}")
        print(f"rank {distributed.rank()} evaluated {evaluations} times")
    except ShowcaseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
