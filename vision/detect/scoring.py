"""How a detector is scored and shown: COCO mAP (torchmetrics, with faster-coco-eval: pycocotools'
numbers to the last digit, four times sooner) of its detections, and a grid of scenes with their
drawn detections; the test scenes of `eval --coco` and of `eval --hf-dataset` on another
source."""

import dataclasses
from pathlib import Path

import torch
from torchmetrics.detection import MeanAveragePrecision
from torchvision.ops import box_iou
from torchvision.utils import draw_bounding_boxes, make_grid

from core.errors import DataError, ShowcaseError
from core.files import atomic_write, save_figure
from core.hf_data import column_names, open_source, scored_source
from core.shift import Shift, middle_sets, plot_shifts, run_shifts
from vision.detect.augment import shrink_scenes
from vision.detect.coco import COLUMNS, as_scenes, load_coco, read_hf_boxes
from vision.detect.data import count, is_coco
from vision.detect.model import one_per_object
from vision.detect.predict import detect
from vision.detect.scenes import Scenes
from vision.shifts import background, blur, contrast, gradient, jpeg, noise, paper, texture


def scene_shift(shift):
    """A condition of the suite on scenes: `shift` restyles the pixels, the boxes stay."""

    def apply(scenes: Scenes, severity: float, generator: torch.Generator) -> Scenes:
        shifted = shift(scenes.images.float() / 255, severity, generator)
        return dataclasses.replace(scenes, images=shifted.mul(255).round().to(torch.uint8))

    return apply


def canvas(scenes: Scenes, factor: float, generator: torch.Generator) -> Scenes:
    """The scenes on a `factor` times larger black canvas, letterboxed back to the model's size:
    digits `factor` times smaller in a random place, boxes following them."""
    factors = torch.full((len(scenes),), float(factor))
    x, boxes = shrink_scenes(scenes.images.float() / 255, scenes.boxes, factors, generator)
    boxes = boxes * (scenes.labels >= 0).unsqueeze(-1)  # padding slots stay zero
    images = x.mul(255).round().to(torch.uint8)
    return dataclasses.replace(scenes, images=images, boxes=boxes)


SHIFTS = [
    Shift("background", (0.2, 0.4, 0.6), scene_shift(background), "gray level"),
    Shift("gradient", (0.3, 0.5, 0.7), scene_shift(gradient), "brightest background"),
    Shift("texture", (0.3, 0.5, 0.7), scene_shift(texture), "brightest blotch"),
    Shift("paper", (0.1, 0.3, 0.5), scene_shift(paper), "dark ink; shade across white paper"),
    Shift("contrast", (0.6, 0.4, 0.2), scene_shift(contrast), "ink level"),
    Shift("noise", (0.05, 0.1, 0.15), scene_shift(noise), "sigma"),
    Shift("blur", (0.75, 1.25, 1.75), scene_shift(blur), "sigma, pixels"),
    Shift("jpeg", (50, 25, 10), scene_shift(jpeg), "quality"),
    Shift("canvas", (1.5, 2, 3), canvas, "times larger canvas"),
]
"""The detector's shift suite, mild to strong (the middle one is the target's): backgrounds of a
gray level, a gradient, blotches, dark ink on light paper, faint ink, noise, blur, JPEG, and
canvases of other sizes."""


def coco_map(dets: list[dict], scenes: Scenes, class_metrics: bool = False) -> dict:
    """torchmetrics' COCO mAP (faster-coco-eval) of detections against the scenes' boxes."""
    # The caller holds every detection (rank 0 alone under torchrun): nothing to gather over ranks.
    metric = MeanAveragePrecision(
        box_format="xyxy",
        iou_type="bbox",
        class_metrics=class_metrics,
        sync_on_compute=False,
        backend="faster_coco_eval",
    )
    metric.update(dets, [scenes.targets(i) for i in range(len(scenes))])
    return metric.compute()


def map_metrics(result: dict, names: list[str]) -> dict:
    """mAP, mAP@.5, mAP@.75 and each class's mAP (by name) from `coco_map(..., class_metrics=True)`;
    a class the scored images do not have (COCO's -1) is left out."""
    classes, per_class = result["classes"].flatten(), result["map_per_class"].flatten()
    return {
        "map": result["map"].item(),
        "map_50": result["map_50"].item(),
        "map_75": result["map_75"].item(),
        "per_class_map": {
            names[int(k)]: round(v.item(), 4)
            for k, v in zip(classes, per_class, strict=True)
            if v >= 0
        },
    }


def mean_ap(
    model, scenes: Scenes, score_thresh: float = 0.05, nms_iou: float = 0.6
) -> dict[str, float]:
    """COCO mAP@[.5:.95] and mAP@.5 of `model` on `scenes`."""
    result = coco_map(detect(model, scenes.images, score_thresh, nms_iou), scenes)
    return {"map": result["map"].item(), "map_50": result["map_50"].item()}


def plot_scenes(
    scenes: Scenes, dets: list[dict], names: list[str], path: Path, nms_iou: float, n: int = 16
) -> None:
    """A grid of `n` scenes with their ground truth and detections (`drawn`)."""
    from PIL import Image

    tiles = [drawn(scenes, i, dets[i], names, nms_iou) for i in range(min(n, len(scenes)))]
    grid = make_grid(torch.stack(tiles), nrow=4, padding=4, pad_value=128).permute(1, 2, 0).numpy()
    big = Image.fromarray(grid).resize((grid.shape[1] * 2, grid.shape[0] * 2), Image.NEAREST)
    atomic_write(path, lambda tmp: big.save(tmp, format="PNG"))


def drawn(scenes: Scenes, i: int, det: dict, names: list[str], nms_iou: float) -> torch.Tensor:
    """Scene `i` (3, H, W) uint8 with its ground truth in green and its detections (score >= 0.3,
    one per object: class-agnostic NMS at `nms_iou`) in red."""
    image = scenes.images[i].expand(3, -1, -1)
    truth = scenes.targets(i)
    if len(truth["boxes"]):
        image = draw_bounding_boxes(image, truth["boxes"], colors="lime")
    det = one_per_object(det, nms_iou)
    shown = det["scores"] >= 0.3
    labels = [
        f"{names[k]} {s:.2f}"
        for k, s in zip(det["labels"][shown].tolist(), det["scores"][shown].tolist(), strict=True)
    ]
    if labels:
        image = draw_bounding_boxes(image, det["boxes"][shown], labels, colors="red")
    return image


def scene_errors(det: dict, target: dict, nms_iou: float, score: float = 0.3) -> int:
    """Misses plus false detections in one scene: a detection (score >= `score`, one per object)
    is right when it has the class of a not yet matched box at IoU >= 0.5."""
    det = one_per_object(det, nms_iou)
    shown = det["scores"] >= score
    boxes, labels = det["boxes"][shown], det["labels"][shown]
    iou = box_iou(boxes, target["boxes"]) * (labels[:, None] == target["labels"][None])
    matched = 0
    for row in iou:  # detections in score order
        best = row.argmax() if len(row) else None
        if best is not None and row[best] >= 0.5:
            matched += 1
            iou[:, best] = 0
    return len(boxes) + len(target["boxes"]) - 2 * matched


def plot_shift_failures(model, shifted: dict, names, train_cfg: dict, path: Path, n: int = 4):
    """For each condition at its middle severity (`shifted[name]`: scenes), the `n` scenes with the
    most misses and false detections, ground truth green, detections red."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(shifted), n, figsize=(n * 2, len(shifted) * 2), squeeze=False)
    for row, (name, scenes) in zip(axes, shifted.items(), strict=True):
        dets = detect(model, scenes.images, train_cfg["score_thresh"], train_cfg["nms_iou"])
        errors = [
            scene_errors(d, scenes.targets(i), train_cfg["nms_iou"]) for i, d in enumerate(dets)
        ]
        worst = torch.tensor(errors).argsort(descending=True)[:n].tolist()
        for ax, i in zip(row, worst, strict=False):
            tile = drawn(scenes, i, dets[i], names, train_cfg["nms_iou"])  # (3, H, W)
            ax.imshow(tile.permute(1, 2, 0).numpy())
            ax.set_title(f"{errors[i]} wrong", fontsize=8)
        row[0].text(-0.1, 0.5, name, transform=row[0].transAxes, ha="right", va="center")
        for ax in row:
            ax.axis("off")
    fig.suptitle("most wrong scenes under each shift (middle severity)")
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def score_shifts(model, scenes: Scenes, names, train_cfg: dict, out_dir: str) -> dict:
    """The shift suite's table (test mAP) on the test scenes; saves shift.png and
    shift_failures.png."""
    thresh, nms_iou = train_cfg["score_thresh"], train_cfg["nms_iou"]
    table = run_shifts(SHIFTS, scenes, lambda s: mean_ap(model, s, thresh, nms_iou)["map"])
    middle = middle_sets(SHIFTS, scenes)
    plot_shifts(table, "test mAP", f"{out_dir}/shift.png")
    plot_shift_failures(model, middle, names, train_cfg, Path(out_dir) / "shift_failures.png")
    return table


def coco_test_scenes(folder: str, train_cfg: dict, channels: int, names: list) -> tuple:
    """(scenes, split) of a COCO folder scored whole by `eval --coco`; the split says whether the
    run trained or was selected on images of it."""
    scenes, coco_names = load_coco(Path(folder), train_cfg["image_size"], channels)
    if len(coco_names) != len(names):
        raise ShowcaseError(f"{folder} has {len(coco_names)} categories, the model {len(names)}")
    split = f"{folder}: all {count(len(scenes), 'image')}"
    trained_on = [train_cfg.get(key) for key in ("coco", "val_coco", "hf_dataset")]
    if any(d and Path(d).resolve() == Path(folder).resolve() for d in trained_on):
        split += (
            ", among them images the model trained on or was selected on (metrics.json "
            "scores its held-out test slice alone)"
        )
    return scenes, split


def hf_test_scenes(run: dict, channels: int, names: list) -> tuple:
    """(scenes, split) of `eval --hf-dataset` on another source (`run`: the run's config with
    its hf_* fields, as `scored_source` gives it): the chosen split's images, read with the
    run's categories (another one is one line) and channels."""
    source, split = run["hf_dataset"], run["hf_split"]
    cols = column_names(run["hf_columns"], COLUMNS)
    table = open_source(source)[split]
    missing = [cols[k] for k in ("image", "objects") if cols[k] not in table.column_names]
    if missing:
        columns = ", ".join(table.column_names)
        raise DataError(f"--hf-dataset {source}: no column {missing[0]!r} (it has: {columns})")
    records = read_hf_boxes(table, cols, [str(n) for n in names], f"{source} ({split})")
    scenes = as_scenes(records, run["image_size"], channels)
    which = "all" if split == "train" else f"the {split} split:"
    return scenes, f"{source}: {which} {count(len(scenes), 'image')}"


def other_test_scenes(cfg, run: dict, channels: int, names: list) -> tuple | None:
    """(scenes, split) of the images `eval --coco DIR` or `eval --hf-dataset SOURCE` names in
    place of the run's own test scenes (None: the run's own)."""
    folder = cfg.coco or (cfg.hf_dataset if cfg.hf_dataset and is_coco(cfg.hf_dataset) else None)
    if folder:
        return coco_test_scenes(folder, run, channels, names)
    scored = scored_source(cfg, run)
    return None if scored is run else hf_test_scenes(scored, channels, names)
