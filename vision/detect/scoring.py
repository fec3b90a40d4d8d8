"""How a detector is scored and shown: COCO mAP (torchmetrics, with faster-coco-eval: pycocotools'
numbers to the last digit, four times sooner) of its detections, and a grid of scenes with their
drawn detections."""

from pathlib import Path

import torch
from torchmetrics.detection import MeanAveragePrecision
from torchvision.utils import draw_bounding_boxes, make_grid

from core.files import atomic_write
from vision.detect.model import one_per_object
from vision.detect.predict import detect
from vision.detect.scenes import Scenes


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


def mean_ap(
    model, scenes: Scenes, score_thresh: float = 0.05, nms_iou: float = 0.6
) -> dict[str, float]:
    """COCO mAP@[.5:.95] and mAP@.5 of `model` on `scenes`."""
    result = coco_map(detect(model, scenes.images, score_thresh, nms_iou), scenes)
    return {"map": result["map"].item(), "map_50": result["map_50"].item()}


def plot_scenes(
    scenes: Scenes, dets: list[dict], names: list[str], path: Path, nms_iou: float, n: int = 16
) -> None:
    """A grid of `n` scenes: ground truth in green, detections (score >= 0.3, one per object:
    class-agnostic NMS at `nms_iou`) in red."""
    from PIL import Image

    tiles = []
    for i in range(min(n, len(scenes))):
        image = scenes.images[i].expand(3, -1, -1)
        truth = scenes.targets(i)
        if len(truth["boxes"]):
            image = draw_bounding_boxes(image, truth["boxes"], colors="lime")
        det = one_per_object(dets[i], nms_iou)
        shown = det["scores"] >= 0.3
        labels = [f"{names[k]} {s:.2f}" for k, s in zip(det["labels"][shown].tolist(),
                                                         det["scores"][shown].tolist(), strict=True)]  # fmt: skip
        if labels:
            image = draw_bounding_boxes(image, det["boxes"][shown], labels, colors="red")
        tiles.append(image)
    grid = make_grid(torch.stack(tiles), nrow=4, padding=4, pad_value=128).permute(1, 2, 0).numpy()
    big = Image.fromarray(grid).resize((grid.shape[1] * 2, grid.shape[0] * 2), Image.NEAREST)
    atomic_write(path, lambda tmp: big.save(tmp, format="PNG"))
