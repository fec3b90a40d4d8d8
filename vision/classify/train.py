"""MNIST digit classifier (or your own labelled images).

showcase vision classify train                      # default CNN on MNIST
showcase vision classify train --recipe classic     # pytorch/examples' Net, the classic SGD recipe
showcase vision classify train --hf-dataset letters/ --init-from runs/vision-classify  # new labels
showcase vision classify eval --out-dir runs/vision-classify
showcase vision classify predict my_digit.png --out-dir runs/vision-classify
torchrun --nproc_per_node 2 -m vision.classify train --device cpu
"""

import dataclasses
import time
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F

from core import distributed
from core.config import EvalConfig, TrainConfig, to_dict
from core.device import pick_device
from core.errors import ShowcaseError, UsageError, fraction, non_negative, positive
from core.hf_data import scored_source
from core.loop import fit, setup
from core.metrics import Mean, accuracy
from core.report import report_eval, report_train
from core.run import run_step
from core.share import push_command
from core.shift import shift_summary
from core.tensor_data import TensorLoader
from vision import CLASSIFY
from vision.classify.data import load_images, normalize, random_affine, split_validation
from vision.classify.export import export_model
from vision.classify.model import build_model
from vision.classify.predict import load_trained, predict, predict_logits, save_classes
from vision.shifts import augment

TASK = "vision.classify"


@dataclasses.dataclass
class ClassifyConfig(TrainConfig):
    DEMO = CLASSIFY
    LEGACY: ClassVar[dict] = {"robust": False}  # runs from before --robust
    PRESETS: ClassVar[dict] = {
        "default": {},
        # pytorch/examples' Net with the recipe of the LeNet-style tutorials (not pytorch/examples' own
        # Adadelta recipe): SGD(lr 0.01, momentum 0.5), batch 32, mean/std 0.5, 10 epochs of all 60k.
        "classic": dict(
            model="net",
            optimizer="sgd",
            lr=0.01,
            momentum=0.5,
            weight_decay=0.0,
            batch_size=32,
            max_steps=18750,
            schedule="constant",
            warmup_steps=0,
            mean=0.5,
            std=0.5,
            augment=False,
            val_size=0,
            label_smoothing=0.0,
            tta=False,
        ),
    }
    DEFAULTS: ClassVar[dict] = {
        "max_steps": 2600,
        "batch_size": 256,
        "lr": 4e-3,
        "weight_decay": 5e-4,
        "schedule": "cosine",
        "warmup_steps": 100,
    }

    recipe: Literal["default", "classic"] = "default"
    """Preset of the fields below: the stronger default, or the classic recipe (pytorch/examples'
    Net, SGD 0.01/0.5, batch 32, mean/std 0.5, 10 epochs)."""
    model: Literal["cnn", "net"] = "cnn"
    """cnn: the default batch-norm CNN; net: the classic 21,840-parameter Net."""
    channels: tuple[int, int, int] = (16, 48, 96)
    """Channels of the CNN's three stages."""
    dropout: float = 0.1
    """Dropout before the CNN's head."""
    optimizer: Literal["adamw", "sgd"] = "adamw"
    """Optimizer (sgd uses --momentum)."""
    momentum: float = 0.9
    """SGD momentum."""
    label_smoothing: float = 0.1
    """Label smoothing of the cross-entropy loss."""
    augment: bool = True
    """Augment on the training device: random shifts (2 px) and rotations (10 degrees), or with
    --robust, the shift suite's conditions."""
    robust: bool = True
    """With --augment: random rotations, scales, moves, stroke widths, blur, contrast and gray
    backgrounds (`vision/shifts.py:augment`), so the model holds up under `eval --shift`."""
    mean: float = 0.1307
    """Normalisation mean of pixel values in [0, 1]."""
    std: float = 0.3081
    """Normalisation standard deviation."""
    val_size: int = 0
    """Training images held out for validation and model selection (0: none). The default recipe
    was tuned with --val-size 5000; its final fit uses all 60k images."""
    tta: bool = True
    """Test-time augmentation: average the predictions for each image and its eight 1-pixel
    shifts (eval, predict and the reported accuracies)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        positive(self, "std")
        non_negative(self, "val_size", "momentum")
        if any(c <= 0 for c in self.channels):
            raise UsageError(f"--channels must all be > 0, got {self.channels}")
        fraction(self, "dropout", "label_smoothing")
        if self.val_size >= 60_000:
            raise UsageError(
                f"--val-size must leave training images (MNIST has 60000), got {self.val_size}"
            )


def make_step(cfg: ClassifyConfig):
    """The training step: normalise, augment, cross-entropy."""

    def step(model, batch):
        x, y = batch  # (B, 28, 28) uint8, (B,)
        if cfg.augment and cfg.robust:
            x = (augment(x.float().div(255).unsqueeze(1)) - cfg.mean) / cfg.std  # (B, 1, 28, 28)
        else:
            x = normalize(x, cfg.mean, cfg.std)  # (B, 1, 28, 28)
            x = random_affine(x) if cfg.augment else x
        logits = model(x)
        loss = F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)
        return loss, {"acc": accuracy(logits.detach(), y)}

    return step


def main(cfg: ClassifyConfig) -> dict:
    """Train, pick the best validation checkpoint, report test accuracy."""
    device = setup(cfg)
    data = load_images(to_dict(cfg), cfg.data_dir)
    train, val = (data["train_x"], data["train_y"]), None
    if cfg.val_size >= len(train[0]):
        raise UsageError(f"--val-size {cfg.val_size} leaves no training images of {len(train[0])}")
    if cfg.val_size:
        train, val = split_validation(*train, size=cfg.val_size, seed=cfg.seed)
    classes = data.get("classes")
    if classes and distributed.is_main():
        save_classes(cfg.out_dir, classes)
    model = build_model(cfg.model, cfg.channels, cfg.dropout, len(classes) if classes else 10)
    if cfg.optimizer == "sgd":
        opt = torch.optim.SGD(
            model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    loader = TensorLoader.for_config(train, cfg, device=device)

    def validate(m):
        logits = predict_logits(m, val[0], cfg.mean, cfg.std, tta=cfg.tta)
        return {"val_acc": accuracy(logits, val[1].to(logits.device)).item()}

    result = fit(
        model,
        make_step(cfg),
        loader,
        cfg,
        device=device,
        optimizer=opt,
        evaluate=validate if val is not None else None,
        monitor="val_acc" if val is not None else None,
    )
    test_logits = predict_logits(model, data["test_x"], cfg.mean, cfg.std, tta=cfg.tta)
    metrics = {**result.best, "test_acc": accuracy(test_logits, data["test_y"].to(device)).item()}
    notes = (f"test: {data['note']}",) if "note" in data else ()
    metrics |= {"test_images": data["note"]} if "note" in data else {}
    return report_train(cfg, TASK, metrics, result, device, shown=["test_acc"], notes=notes)


@dataclasses.dataclass
class ClassifyEvalConfig(EvalConfig):
    DEMO = CLASSIFY
    shift: bool = False
    """Also score the shift suite (rotation, scale, position, stroke width, blur, contrast and
    background, each at three severities, made from the test images); saves shift.png and
    shift_mistakes.png."""
    synthetic: bool = False
    """Evaluate on tiny random data (smoke tests only)."""


def evaluate(cfg: ClassifyEvalConfig) -> dict:
    """Test accuracy and per-class accuracy; saves confusion.png and mistakes.png in the run dir."""
    from vision.classify.scoring import (  # matplotlib: only eval needs it
        plot_confusion,
        plot_mistakes,
        score_shifts,
    )

    t0 = time.perf_counter()
    device = pick_device(cfg.device)
    model, train_cfg, classes = load_trained(cfg.out_dir, device)
    if train_cfg.get("synthetic") and not (cfg.synthetic or cfg.hf_dataset):
        raise ShowcaseError(f"{cfg.out_dir} was trained on synthetic data; pass --synthetic")
    run = scored_source(cfg, {**train_cfg, "synthetic": cfg.synthetic})
    names = classes or [str(k) for k in range(10)]
    data = load_images(run, cfg.data_dir, ("test",), names)
    x, y = data["test_x"], data["test_y"].to(device)
    tta = train_cfg.get("tta", False)
    logits = predict_logits(model, x, train_cfg["mean"], train_cfg["std"], cfg.batch_size, tta)
    pred = logits.argmax(-1)
    per_class = Mean()
    for k, name in enumerate(names):
        if not (y == k).any():  # a class the scored images do not have (another source)
            continue
        per_class.add({name: (pred[y == k] == k).float().mean()})
    per_class_acc = per_class.compute()
    metrics = {"test_acc": (pred == y).float().mean().item(), "per_class_acc": per_class_acc}
    metrics |= {"test_images": data["note"]} if "note" in data else {}
    plot_confusion(y.cpu(), pred.cpu(), f"{cfg.out_dir}/confusion.png", names)
    plot_mistakes(x, y.cpu(), logits.softmax(-1).cpu(), f"{cfg.out_dir}/mistakes.png", names)
    summary = "\n".join(
        [
            f"test_acc {metrics['test_acc']:.4f} on {len(y)} images"
            + (f" ({run['hf_dataset']}: {data['note']})" if "note" in data else ""),
            "per-class " + "  ".join(f"{k}:{v:.3f}" for k, v in per_class_acc.items()),
            f"wrote {cfg.out_dir}/confusion.png and {cfg.out_dir}/mistakes.png",
        ]
    )
    if cfg.shift:
        metrics["shift"] = score_shifts(model, (x, y.cpu()), train_cfg, cfg.out_dir)
        summary += "\n" + shift_summary(metrics["shift"], "test_acc")
        summary += f"\nwrote {cfg.out_dir}/shift.png and {cfg.out_dir}/shift_mistakes.png"
    return report_eval(
        cfg, TASK, metrics, run_step(cfg.out_dir), time.perf_counter() - t0, device, summary
    )


COMMANDS = {
    "train": main,
    "eval": evaluate,
    "predict": predict,
    "export": export_model,
    "push": push_command(CLASSIFY),
}
