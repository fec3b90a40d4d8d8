"""vision-transfer: the digit classifier as a start for a new label set. MNIST digits relabelled
odd or even: a few hundred training images (EXAMPLES, a seeded draw from MNIST's training set)
written as an image folder and read through `--hf-dataset`, scored on all 10,000 MNIST test
images (relabelled; no run saw them). Three runs of one recipe, fixed in advance: from scratch,
fine-tuned from a digit classifier (`--init-from`, the head re-initialised for two classes), and
the head alone trained on the digit classifier's frozen features (`--freeze ^features`). The
digit classifier is the tour's quick one (reused from --keep-runs DIR/digits when finished)."""

import tempfile
from pathlib import Path

import torch
from PIL import Image

from benchmarks.runs import run_dir, train_ours
from core.run import WEIGHTS
from vision import CLASSIFY
from vision.classify.train import main
from vision.mnist import load_mnist

EXAMPLES = 300
"""Training images of the new task."""
SEEDS = (0, 1, 2)
"""Each seed draws its own examples and trains each run once."""
RECIPE = {
    "max_steps": 200,
    "batch_size": 64,
    "lr": 2e-3,
    "warmup_steps": 10,
    "val_size": 0,
}
"""The one recipe of every run (about 10 s on a 2-core CPU), not tuned: no test image chose it."""
RUNS = {
    "scratch": {},
    "fine_tuned": {"init_from": "digits"},
    "head_only": {"init_from": "digits", "freeze": "^features"},
}


def write_images(folder: Path, images: torch.Tensor, labels: torch.Tensor) -> None:
    """An image folder of odd and even digits: folder/even/*.png, folder/odd/*.png."""
    for name in ("even", "odd"):
        (folder / name).mkdir(parents=True)
    for i, (image, label) in enumerate(zip(images, labels.tolist(), strict=True)):
        name = "odd" if label % 2 else "even"
        Image.fromarray(image.numpy()).save(folder / name / f"{i}.png")


def run(args) -> dict:
    mnist = load_mnist(args.data_dir)
    digits = Path(args.keep_runs or "") / "digits"
    if not args.keep_runs or not (digits / WEIGHTS).is_file():
        quick = {"max_steps": 3} if args.quick else CLASSIFY.tour.quick
        digits = Path(train_ours(args, main, "digits", **quick)["config"]["out_dir"])
    test_images = 200 if args.quick else len(mnist["test_x"])
    recipe = {**RECIPE, **({"max_steps": 3} if args.quick else {})}
    row = {"examples": EXAMPLES, "steps": recipe["max_steps"], "test_images": test_images}
    accuracy = {name: [] for name in RUNS}
    for seed in SEEDS[: 1 if args.quick else None]:
        folder = Path(tempfile.mkdtemp(prefix="odd-even-"))
        pick = torch.randperm(60_000, generator=torch.Generator().manual_seed(seed))[:EXAMPLES]
        write_images(folder / "train", mnist["train_x"][pick], mnist["train_y"][pick])
        write_images(folder / "test", mnist["test_x"][:test_images], mnist["test_y"][:test_images])
        for name, start in RUNS.items():
            start = {k: str(digits) if v == "digits" else v for k, v in start.items()}
            report = train_ours(
                args, main, f"{name}-{seed}", hf_dataset=str(folder), seed=seed, **recipe, **start
            )
            accuracy[name].append(report["metrics"]["test_acc"])
    for name, values in accuracy.items():
        row[f"{name}_test_acc"] = [round(v, 4) for v in values]
        row[f"{name}_mean"] = round(sum(values) / len(values), 4)
    row["digits_run"] = run_dir(args, "digits") if args.keep_runs else "trained here"
    return row
