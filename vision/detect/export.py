"""`export`: the detector as an ONNX file or a torch.export program (`core.export`).

    showcase vision detect export --format onnx --quantize int8 --out exported/

The graph takes uint8 images (N, C, S, S) at the run's image size and returns, for every location
of the stride-4 grid, its box and its score per class: `boxes` (N, L, 4) x1y1x2y2 in pixels,
clipped to the image, and `scores` (N, L, classes), the geometric mean of the class probability
and the centerness. Non-maximum suppression is the documented step after it (`model.select`: scores
above `score_thresh`, the best `pre_nms` per image, class-wise NMS at `nms_iou`, at most `max_det`
boxes; the sidecar gives the run's values).
"""

import dataclasses

import numpy as np
import torch
from torch import nn

from core.errors import ShowcaseError
from core.export import ExportConfig, ExportSpec, export
from core.parse import from_run
from core.run import check_task
from vision import DETECT
from vision.detect.model import boxes_and_scores, grid_points
from vision.detect.predict import load_trained
from vision.detect.scenes import make_scenes

TASK = "vision.detect"


class BoxesAndScores(nn.Module):
    """uint8 images -> every location's box and class scores (decoding in the graph, NMS not)."""

    def __init__(self, model: nn.Module, size: int) -> None:
        super().__init__()
        self.model, self.size = model, size
        self.points = nn.Buffer(grid_points(size, size, model.stride))  # (L, 2)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        outputs = self.model(images.float() / 255)  # (N, L, C), (N, L, 4), (N, L)
        return boxes_and_scores(
            *outputs, self.points, (self.size, self.size)
        )  # (N, L, 4), (N, L, C)


def best_class(outputs: list[np.ndarray]) -> np.ndarray:
    """The class of each image's most confident detection: the int8 check's answer (neighbouring
    locations of one digit score alike, so which of them wins is no answer)."""
    return outputs[1].max(1).argmax(-1)  # (N, L, C) -> (N,)


@dataclasses.dataclass
class DetectExportConfig(ExportConfig):
    DEMO = DETECT


def preprocess_note(standardized: bool) -> str:
    """How an image becomes the graph's input (the sidecar's `preprocess`), as `predict` does it."""
    steps = (
        "gray: invert when the border's median is above 127; letterbox into the square input "
        "(scale to fit, pad right and bottom with the border's median)"
    )
    if standardized:
        return steps + "; the graph itself standardizes background level, ink polarity and contrast"
    return steps + "; the model expects light ink on a black background"


def spec_for(cfg: DetectExportConfig) -> ExportSpec:
    """What `export` writes of the run's detector, checked on 64 test scenes (int8: calibrated on
    256 scenes of training digits)."""
    from vision.detect.augment import augment_scenes
    from vision.detect.data import make_data
    from vision.detect.train import DetectConfig  # train.py lists this command: import late

    check_task(cfg.out_dir, TASK)
    model, names, train_cfg, _ = load_trained(cfg.out_dir, torch.device("cpu"))
    if train_cfg.get("coco"):
        raise ShowcaseError(
            f"{cfg.out_dir} was trained on a COCO folder: its export is not supported yet"
        )
    run_cfg = from_run(DetectConfig, train_cfg, data_dir=cfg.data_dir or train_cfg.get("data_dir"))
    data = make_data(run_cfg)
    digits, classes = data.pool
    calibration = make_scenes(digits, classes, 256, run_cfg.seed + 2, run_cfg.scene_options())
    calibration_images = calibration.images
    if model.standardize_input:  # calibrate on what a robust model meets: restyled scenes too
        with torch.random.fork_rng():
            torch.manual_seed(run_cfg.seed + 2)
            x, _ = augment_scenes(calibration.images.float() / 255, calibration.boxes)
        calibration_images = x.mul(255).round().to(torch.uint8)
    size = train_cfg["image_size"]
    model = model.to(memory_format=torch.contiguous_format).eval()
    return ExportSpec(
        name="vision-detect",
        module=BoxesAndScores(model, size).eval(),
        inputs=(data.test.images[:64].clone(),),
        input_names=["images"],
        output_names=["boxes", "scores"],
        dynamic={"images": {0: "batch"}},
        sidecar={
            "labels": names,
            "images": f"uint8 (batch, {model.in_channels}, {size}, {size}), values 0-255",
            "preprocess": preprocess_note(model.standardize_input),
            "postprocess": {
                "score_thresh": train_cfg["score_thresh"],
                "pre_nms": 1000,
                "nms_iou": train_cfg["nms_iou"],
                "nms": "class-wise",
                "max_det": 100,
            },
        },
        int8="static",
        calibration=[(calibration_images[i : i + 32].clone(),) for i in range(0, 256, 32)],
        int8_ops=("Conv",),  # the input standardization's sort, median and division stay float
        int8_ranges="percentile",  # chosen on the validation scenes (docs/export.md)
        answer=best_class,
    )


def export_model(cfg: DetectExportConfig) -> dict:
    """Write the run's detector in --format (int8 with --quantize) to --out, checked."""
    return export(spec_for(cfg), cfg)
