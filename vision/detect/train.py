"""A small object detector on digit scenes composed from real MNIST digits, or on your boxes.

    showcase vision detect train                             # fresh scenes every step
    showcase vision detect train --coco DIR --val-coco VAL   # your own COCO folders (images/ + JSON)
    showcase vision detect eval --out-dir runs/vision-detect # test mAP, detections.png
    showcase vision detect eval --coco DIR                   # mAP on any COCO folder (--hf-dataset)
    showcase vision detect predict scene.png --json          # boxes, labels, scores; drawn PNGs
    torchrun --nproc_per_node 2 -m vision.detect train --device cpu

Training scenes are drawn fresh at every step from MNIST training digits, validation scenes from
digits carved out of them, the fixed test scenes from MNIST test digits; the report names each split.
"""

import dataclasses
import json
import time
from pathlib import Path
from typing import ClassVar, Literal

import torch

from core import distributed
from core.config import EvalConfig, TrainConfig
from core.device import pick_device
from core.errors import ShowcaseError, UsageError, fraction, non_negative, positive, within
from core.files import write_text
from core.loop import fit, setup
from core.parse import from_run
from core.report import report_eval, report_train
from core.share import push_command
from core.shift import shift_summary
from core.tensor_data import TensorLoader
from vision import DETECT
from vision.detect.augment import augment_scenes
from vision.detect.data import SceneLoader, make_data
from vision.detect.export import export_model
from vision.detect.model import (
    DetectorConfig,
    build_model,
    detection_loss,
    grid_points,
)
from vision.detect.predict import CLASSES, detect, load_trained, predict
from vision.detect.scenes import SceneOptions, Scenes
from vision.detect.scoring import (
    coco_map,
    map_metrics,
    mean_ap,
    other_test_scenes,
    plot_scenes,
    score_shifts,
)

TASK = "vision.detect"


@dataclasses.dataclass
class DetectConfig(TrainConfig):
    DEMO = DETECT
    LEGACY: ClassVar[dict] = {"robust": False}  # runs from before --robust
    DEFAULTS: ClassVar[dict] = {
        "max_steps": 5000,
        "batch_size": 32,
        "lr": 2e-3,
        "weight_decay": 5e-4,
        "schedule": "cosine",
        "warmup_steps": 200,
        "grad_clip": 10.0,
        "eval_every": 1000,
    }

    width: int = 32
    """Channels of the detector's stride-4 stage (stride 8 and 16 have 2x and 4x)."""
    backbone: Literal["compact", "digits"] = "compact"
    """compact: the detector's own; digits: the digit classifier's (start it: --init-from)."""
    image_size: int = 128
    """Side of the square scenes (and of the letterboxed input for COCO folders)."""
    max_digits: int = 6
    """Most digits per scene."""
    min_scale: float = 0.7
    """Smallest digit scale (1: MNIST's 28 pixels)."""
    max_scale: float = 3.0
    """Largest digit scale."""
    noise: float = 0.05
    """Largest standard deviation of the background noise (0: clean)."""
    clutter: int = 2
    """Most clutter strokes per scene (0: none)."""
    robust: bool = True
    """Train on scenes restyled as a person's images look (gray, graded and blotchy backgrounds,
    faint ink, dark ink on light paper, blur, noise, smaller digits on a larger canvas:
    `vision/detect/data.py:augment_scenes`), and standardize every input inside the model, so it
    holds up under `eval --shift`. Gray digit scenes only (not --coco)."""
    val_digits: int = 5_000
    """MNIST training digits carved out for the validation scenes (0: no validation)."""
    val_scenes: int = 300
    """Validation scenes (model selection)."""
    test_scenes: int = 1_000
    """Test scenes (the reported mAP)."""
    coco: str | None = None
    """Train on a COCO folder (images/ + annotations JSON) instead; a seeded 10% of it is held out
    for the test and another 10% for validation."""
    val_coco: str | None = None
    """With --coco: validate (pick the kept weights) on this COCO folder instead of a slice of --coco."""
    score_thresh: float = 0.05
    """Smallest score kept before NMS in evaluation."""
    nms_iou: float = 0.6
    """IoU above which NMS drops the lower-scored box of the same class."""

    def __post_init__(self) -> None:
        super().__post_init__()
        positive(self, "width", "image_size", "max_digits", "min_scale", "test_scenes")
        non_negative(self, "noise", "clutter", "val_digits", "val_scenes")
        if self.max_scale < self.min_scale:
            raise UsageError(f"--max-scale {self.max_scale} is below --min-scale {self.min_scale}")
        if self.image_size % 16:
            raise UsageError(f"--image-size must be a multiple of 16, got {self.image_size}")
        if 28 * self.min_scale > self.image_size:
            raise UsageError(
                f"digits at --min-scale {self.min_scale} do not fit --image-size {self.image_size}"
            )
        fraction(self, "score_thresh", "nms_iou")
        if self.hf_dataset and self.coco:
            raise UsageError("choose one of --hf-dataset and --coco")
        if self.val_coco and not self.coco:
            raise UsageError("--val-coco needs --coco (the folder to train on)")
        within(self, "[0, 60000)", "val_digits")  # MNIST has 60,000 training digits

    def scene_options(self) -> SceneOptions:
        sizes = (self.image_size, self.max_digits, self.min_scale, self.max_scale)
        return SceneOptions(*sizes, noise=self.noise, clutter=self.clutter)


def make_step(points: torch.Tensor, stride: int, robust: bool = False):
    """The training step: FCOS losses on a batch of uint8 images and padded boxes (restyled
    first, with `robust`)."""

    def step(model, batch):
        images, boxes, labels = batch  # (B, C, H, W) uint8, (B, K, 4), (B, K)
        x = images.float() / 255
        if robust:
            x, boxes = augment_scenes(x, boxes)
        x = x.contiguous(memory_format=torch.channels_last)
        outputs = [o.float() for o in model(x)]  # the losses in float32 under --amp
        losses = detection_loss(*outputs, boxes, labels, points.to(images.device), stride)
        return sum(losses.values()), {k: v.detach() for k, v in losses.items()}

    return step


def main(cfg: DetectConfig, watch: Scenes | None = None) -> dict:
    """Train on fresh scenes (or a COCO folder), keep the best validation mAP, report test mAP.
    `watch` (a benchmark's learning curve) is scored at each evaluation too, never to select."""
    device = setup(cfg)
    data = make_data(cfg)
    robust = cfg.robust and data.pool is not None  # digit scenes, not a COCO folder
    config = DetectorConfig(data.channels, len(data.names), cfg.width, robust, cfg.backbone)
    model = build_model(config)
    if distributed.is_main():
        info = {"names": data.names, "in_channels": data.channels}
        write_text(Path(cfg.out_dir) / CLASSES, json.dumps(info) + "\n")
    if data.pool is not None:
        loader = SceneLoader.for_config(*data.pool, cfg, cfg.scene_options(), device=device)
    else:
        loader = TensorLoader.for_config(data.train.training_tensors(), cfg, device=device)
    points = grid_points(cfg.image_size, cfg.image_size, model.stride)

    limits = (cfg.score_thresh, cfg.nms_iou)

    @distributed.on_main  # rank 0 decodes alone; every rank gets its numbers
    def validate(m):
        found = {f"val_{k}": v for k, v in mean_ap(m, data.val, *limits).items()}
        if watch is not None:
            found |= {f"watch_{k}": v for k, v in mean_ap(m, watch, *limits).items()}
        return found

    result = fit(
        model,
        make_step(points, model.stride, robust),
        loader,
        cfg,
        device=device,
        evaluate=validate if data.val else None,
        monitor="val_map" if data.val else None,
    )
    t0 = time.perf_counter()
    test_map = distributed.on_main(mean_ap)(model, data.test, *limits)
    metrics = {**result.best, **test_map}
    metrics["test_seconds"] = round(time.perf_counter() - t0, 2)
    metrics["splits"] = data.splits
    names = {"train": "train", "val": "validation", "test": "test"}
    notes = tuple(f"{names[key]}: {text}" for key, text in data.splits.items())
    return report_train(cfg, TASK, metrics, result, device, shown=["map", "map_50"], notes=notes)


@dataclasses.dataclass
class DetectEvalConfig(EvalConfig):
    DEMO = DETECT
    DEFAULTS: ClassVar[dict] = {"batch_size": 100}
    coco: str | None = None
    """Evaluate on this COCO folder instead of the test scenes."""
    shift: bool = False
    """Also score the shift suite (backgrounds, dark ink on paper, faint ink, noise, blur, JPEG,
    larger canvases, each at three severities, made from the test scenes); saves shift.png and
    shift_failures.png."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if sum(map(bool, (self.coco, self.hf_dataset, self.shift))) > 1:
            raise UsageError("--shift (the test scenes), --coco and --hf-dataset: pass one")


def evaluate(cfg: DetectEvalConfig) -> dict:
    """Test mAP (or a COCO folder's); saves detections.png in the run dir."""
    t0 = time.perf_counter()
    device = pick_device(cfg.device)
    model, names, train_cfg, step = load_trained(cfg.out_dir, device)
    channels = model.in_channels
    found = other_test_scenes(cfg, train_cfg, channels, names)
    if found is None:  # the run's own test scenes
        if train_cfg.get("coco"):
            raise ShowcaseError(f"{cfg.out_dir} was trained on a COCO folder: pass --coco DIR")
        data_dir = cfg.data_dir or train_cfg.get("data_dir")
        data = make_data(from_run(DetectConfig, train_cfg, data_dir=data_dir, val_scenes=0))
        found = data.test, data.splits["test"]
    scenes, split = found
    dets = detect(
        model, scenes.images, train_cfg["score_thresh"], train_cfg["nms_iou"], cfg.batch_size
    )
    metrics = {**map_metrics(coco_map(dets, scenes, True), names), "images": len(scenes)}
    metrics["split"] = split
    picture = Path(cfg.out_dir) / "detections.png"
    plot_scenes(scenes, dets, names, picture, train_cfg["nms_iou"])
    summary = "\n".join(
        [
            f"map {metrics['map']:.4f}  map_50 {metrics['map_50']:.4f}  map_75 {metrics['map_75']:.4f} "
            f"on {len(scenes)} images (weights of step {step})",
            f"data: {split}",
            "per-class map "
            + "  ".join(f"{k}:{v:.3f}" for k, v in metrics["per_class_map"].items()),
            f"wrote {picture}",
        ]
    )
    if cfg.shift:
        metrics["shift"] = score_shifts(model, scenes, names, train_cfg, cfg.out_dir)
        summary += "\n" + shift_summary(metrics["shift"], "map")
        summary += f"\nwrote {cfg.out_dir}/shift.png and {cfg.out_dir}/shift_failures.png"
    return report_eval(cfg, TASK, metrics, step, time.perf_counter() - t0, device, summary)


COMMANDS = {
    "train": main,
    "eval": evaluate,
    "predict": predict,
    "export": export_model,
    "push": push_command(DETECT),
}
