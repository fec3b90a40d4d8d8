"""core-overhead: the classic MNIST Net trained 300 steps at batch 64 on random tensors, by
`core.fit` and by a bare PyTorch loop, 5 alternating runs each; reports the median wall ratio."""

import shutil
import statistics
import tempfile
import time

import torch
import torch.nn.functional as F

from core.config import TrainConfig
from core.device import pick_device
from core.loop import fit
from core.tensor_data import TensorLoader
from vision.classify.model import Net

STEPS, BATCH, RUNS = 300, 64, 5


def _data(device):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(STEPS * BATCH, 1, 28, 28, generator=gen).to(device)
    y = torch.randint(0, 10, (STEPS * BATCH,), generator=gen).to(device)
    return x, y


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def bare(x, y, device) -> float:
    torch.manual_seed(0)
    model = Net().to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.5)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0)).to(device)
    _sync(device)
    t0 = time.perf_counter()
    model.train()
    for i in range(STEPS):
        idx = order[i * BATCH : (i + 1) * BATCH]
        loss = F.nll_loss(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if (i + 1) % 100 == 0:
            print(f"step {i + 1} | loss {loss.item():.4f}")
    _sync(device)
    return time.perf_counter() - t0


def with_fit(x, y, device) -> float:
    torch.manual_seed(0)
    model = Net().to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.5)
    out = tempfile.mkdtemp()
    cfg = TrainConfig(
        out_dir=out, max_steps=STEPS, batch_size=BATCH, log_every=100, device=str(device)
    )

    def step(m, batch):
        xb, yb = batch
        return F.nll_loss(m(xb), yb), {}

    _sync(device)
    t0 = time.perf_counter()
    fit(model, step, TensorLoader((x, y), BATCH), cfg, device=device, optimizer=opt)
    _sync(device)
    elapsed = time.perf_counter() - t0
    shutil.rmtree(out)
    return elapsed


def run(args) -> dict:
    device = pick_device(args.device)
    x, y = _data(device)
    runs = 1 if args.quick else RUNS
    bare(x, y, device), with_fit(x, y, device)  # warm up kernels and imports
    fit_s, bare_s = [], []
    for _ in range(runs):
        fit_s.append(with_fit(x, y, device))
        bare_s.append(bare(x, y, device))
    ratios = [f / b for f, b in zip(fit_s, bare_s, strict=True)]
    return {
        "device": str(device),
        "fit_seconds_median": round(statistics.median(fit_s), 3),
        "bare_seconds_median": round(statistics.median(bare_s), 3),
        "wall_ratio_median": round(statistics.median(ratios), 4),
    }
