"""vision-classify: (a) one epoch of the classic recipe through showcase's tensor pipeline vs the
textbook pipeline (torchvision MNIST + ToTensor/Normalize + DataLoader(num_workers=2)), same Net in
the same (channels-last) memory format, batch 32, alternated, so the ratio measures the pipeline alone; (b) the classic recipe's test accuracy after 10 epochs; (c) the default
config's test accuracy and training wall time; (d) the shift suite (`eval --shift`) of the default
config, trained with and without the robust augmentation (`--no-robust`), on the test images."""

import statistics
import tempfile
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from torchvision import transforms
from torchvision.datasets import MNIST

from core.data import data_root
from core.device import pick_device
from core.parse import build
from core.shift import shift_rows
from vision.classify.model import build_model
from vision.classify.train import ClassifyConfig, ClassifyEvalConfig, evaluate, main

EPOCH = 1875  # steps of batch 32 in 60,000 images


def textbook_epoch(root, device, seed: int) -> tuple[float, float]:
    """The textbook pipeline for one epoch: seconds, then test accuracy. The model is built as
    ours is (channels-last), so the comparison is between input pipelines only."""
    torch.manual_seed(seed)
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])
    train = DataLoader(
        MNIST(root, train=True, transform=tf), batch_size=32, shuffle=True, num_workers=2
    )
    test = DataLoader(MNIST(root, train=False, transform=tf), batch_size=1000, num_workers=2)
    model = build_model("net", (0, 0, 0), 0.0).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.5)
    model.train()
    t0 = time.perf_counter()
    for x, y in train:
        x, y = x.to(device), y.to(device)
        loss = F.nll_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    model.eval()
    correct = 0
    with torch.no_grad():
        for x, y in test:
            correct += (model(x.to(device)).argmax(1) == y.to(device)).sum().item()
    return seconds, correct / 10_000


def showcase_run(args, steps: int, recipe: str, seed: int, **fields) -> dict:
    if steps:
        fields["max_steps"] = steps
    cfg = build(
        ClassifyConfig,
        recipe=recipe,
        out_dir=tempfile.mkdtemp(),
        data_dir=args.data_dir,
        device=args.device,
        seed=seed,
        log_every=10**9,
        **fields,
    )
    return main(cfg)


def shift_table(args, report: dict) -> dict:
    """The shift suite's accuracies of a finished run: clean, and per condition mild to strong."""
    out = report["config"]["out_dir"]
    cfg = build(
        ClassifyEvalConfig, out_dir=out, data_dir=args.data_dir, device=args.device, shift=True
    )
    return shift_rows(evaluate(cfg)["metrics"]["shift"])


def run(args) -> dict:
    device = pick_device(args.device)
    root = str(data_root(args.data_dir))
    rounds = 1 if args.quick else 3
    ours, theirs = [], []
    for seed in range(rounds):
        theirs.append(textbook_epoch(root, device, seed))
        ours.append(showcase_run(args, 200 if args.quick else EPOCH, "classic", seed))
    our_s = statistics.median(r["wall_seconds"] for r in ours)
    their_s = statistics.median(s for s, _ in theirs)
    result = {
        "device": str(device),
        "memory_format": "channels_last (both sides)",
        "classic_epoch_seconds": round(our_s, 2),
        "textbook_epoch_seconds": round(their_s, 2),
        "classic_speedup": round(their_s / our_s, 2),
        "classic_1epoch_test_acc": round(
            statistics.mean(r["metrics"]["test_acc"] for r in ours), 4
        ),
        "textbook_1epoch_test_acc": round(statistics.mean(a for _, a in theirs), 4),
    }
    classic = showcase_run(args, 200 if args.quick else 0, "classic", 0)
    default = showcase_run(args, 200 if args.quick else 0, "default", 0)
    result.update(
        classic_test_acc=round(classic["metrics"]["test_acc"], 4),
        classic_train_seconds=round(classic["wall_seconds"], 1),
        default_test_acc=round(default["metrics"]["test_acc"], 4),
        default_train_seconds=round(default["wall_seconds"], 1),
    )
    plain = showcase_run(args, 200 if args.quick else 0, "default", 0, robust=False)
    result.update(
        plain_test_acc=round(plain["metrics"]["test_acc"], 4),
        plain_train_seconds=round(plain["wall_seconds"], 1),
        shift_default=shift_table(args, default),
        shift_plain=shift_table(args, plain),
    )
    middle = [row[1] for name, row in result["shift_default"].items() if name != "clean"]
    result["shift_default_worst_middle"] = min(middle)
    return result
