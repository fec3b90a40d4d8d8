"""Trains a small MLP with core.fit; run under torchrun (any world size) or plain python."""

import sys

import torch
import torch.nn.functional as F

from core.config import TrainConfig
from core.loop import fit, setup
from core.models import MLP
from core.tensor_data import TensorLoader

if __name__ == "__main__":
    cfg = TrainConfig(
        out_dir=sys.argv[1], device="cpu", max_steps=30, batch_size=32, lr=0.05, log_every=10
    )
    device = setup(cfg)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(512, 8, generator=gen)
    y = (x[:, 0] + x[:, 1] > 0).long()
    model = MLP(8, [32, 32], 2)

    def step(m, batch):
        xb, yb = batch
        logits = m(xb)
        return F.cross_entropy(logits, yb), {"acc": (logits.argmax(-1) == yb).float().mean()}

    fit(model, step, TensorLoader((x, y), cfg.batch_size), cfg, device=device)
