"""Detect digits (or a COCO-trained model's classes) in user images of any size.

    showcase vision detect predict scene.png photos/ --out-dir runs/vision-detect [--json]

Each image is letterboxed into the model's input (a gray model gets gray pixels, light ink on
black: a light background is inverted), and the boxes are mapped back to the image's own
coordinates. Overlapping boxes of different classes are one object: only the best is kept
(class-agnostic NMS). A PNG with the boxes drawn is written per image to
`<out-dir>/predictions/<name>.png`, `<name>-2.png` for a second input of the same name, and so on;
each result says which file holds its drawing and whether it replaced an earlier one.
"""

import dataclasses
import json
from pathlib import Path

import torch
from tyro.conf import Positional

from core.config import InferenceConfig
from core.demo import Tab, Widget
from core.device import pick_device
from core.errors import DataError, ShowcaseError, fraction, refuse_failed
from core.run import load_run_weights, run_config
from vision import DETECT
from vision.detect.coco import letterbox, read_image
from vision.detect.model import DetectorConfig, build_model, decode, grid_points, one_per_object
from vision.images import collect, draw, drawing_path, save_drawn

CLASSES = "classes.json"


def load_trained(out_dir: str, device: torch.device):
    """A finished run's detector (eval mode), its class names, its training config and the
    step its weights come from."""
    cfg = run_config(out_dir)
    try:
        info = json.loads((Path(out_dir) / CLASSES).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ShowcaseError(
            f"{out_dir}/{CLASSES} is missing or damaged: train the run again"
        ) from exc
    robust = cfg.get("robust", False) and not (cfg.get("coco") or cfg.get("hf_dataset"))
    config = DetectorConfig(
        info["in_channels"],
        len(info["names"]),
        cfg["width"],
        standardize_input=robust,
        backbone=cfg.get("backbone", "compact"),
    )
    model = build_model(config)
    meta = load_run_weights(model, out_dir)
    return model.to(device).eval(), info["names"], cfg, meta.get("step", 0)


@torch.no_grad()
def detect(
    model,
    images: torch.Tensor,
    score_thresh: float = 0.05,
    nms_iou: float = 0.6,
    batch_size: int = 100,
) -> list[dict[str, torch.Tensor]]:
    """Detections (boxes xyxy, scores, labels) for uint8 images (N, C, S, S), batched, on CPU."""
    model.eval()
    device = next(model.parameters()).device
    size = images.shape[-1]
    points = grid_points(size, size, model.stride, device)
    out = []
    for i in range(0, len(images), batch_size):
        x = images[i : i + batch_size].to(device).float() / 255
        x = x.contiguous(memory_format=torch.channels_last)
        dets = decode(*model(x), points, score_thresh, nms_iou, size=(size, size))
        out += [{k: v.cpu() for k, v in d.items()} for d in dets]
    return out


@dataclasses.dataclass
class PredictConfig(InferenceConfig):
    """Print the digits found in each image and draw them in the run's predictions/ folder
    (--json: one object per image)."""

    DEMO = DETECT

    paths: Positional[list[str]]
    """Image files or folders of images."""
    score_thresh: float = 0.3
    """Smallest score printed and drawn."""

    def __post_init__(self) -> None:
        fraction(self, "score_thresh")


def as_model_input(pixels: torch.Tensor, size: int) -> tuple[torch.Tensor, float]:
    """uint8 (C, H, W) -> the letterboxed input and its scale. Gray images with a light border are
    inverted to the training scenes' light ink on black, and padded with their background (the
    border's median), so that a photo of paper does not gain black bars brighter or darker than
    both its paper and its ink."""
    if pixels.shape[0] != 1:
        return letterbox(pixels, size)
    border = torch.cat([pixels[0, 0], pixels[0, -1], pixels[0, :, 0], pixels[0, :, -1]])
    if border.float().median() > 127:
        pixels, border = 255 - pixels, 255 - border
    return letterbox(pixels, size, fill=int(border.median()))


def detect_image(
    model,
    names: list[str],
    size: int,
    original: torch.Tensor,
    score_thresh: float,
    nms_iou: float = 0.6,
):
    """Boxes (N, 4) in the image's own coordinates and the detections as dicts, of one uint8
    (C, H, W) image: one box per object (class-agnostic NMS at `nms_iou`)."""
    device = next(model.parameters()).device
    x, scale = as_model_input(original, size)
    (det,) = detect(model, x[None].to(device), score_thresh, nms_iou)
    det = one_per_object(det, nms_iou)
    h, w = original.shape[1:]
    boxes = (det["boxes"].cpu() / scale).clamp(min=0)
    boxes = torch.minimum(boxes, torch.tensor([w, h, w, h], dtype=boxes.dtype))
    detections = [
        {"box": [round(v, 1) for v in b], "label": names[k], "score": round(s, 4)}
        for b, k, s in zip(
            boxes.tolist(), det["labels"].tolist(), det["scores"].tolist(), strict=True
        )
    ]
    return boxes, detections


def predict(cfg: PredictConfig) -> dict:
    """Print the detections of every image and draw them; bad files are reported and skipped."""
    files, errors = collect(cfg.paths)
    device = pick_device(cfg.device)
    model, names, train_cfg, _ = load_trained(cfg.out_dir, device)
    channels = model.in_channels
    size = train_cfg["image_size"]
    results, taken = [], set()
    for path in files:
        try:
            original = read_image(path, channels)
        except DataError as exc:
            errors.append(str(exc))
            continue
        boxes, detections = detect_image(
            model, names, size, original, cfg.score_thresh, train_cfg["nms_iou"]
        )
        drawn = drawing_path(Path(cfg.out_dir) / "predictions", path, taken)
        replaced = drawn.exists()
        save_drawn(
            read_image(path, 3),
            boxes,
            [f"{d['label']} {d['score']:.2f}" for d in detections],
            drawn,
        )
        result = {
            "file": str(path),
            "detections": detections,
            "drawn": str(drawn),
            "replaced": replaced,
        }
        results.append(result)
        if cfg.json:
            print(json.dumps(result))
        else:
            found = "  ".join(f"{d['label']} ({d['score']:.2f}) {d['box']}" for d in detections)
            note = " (replaced an earlier drawing)" if replaced else ""
            print(f"{path}: {found or 'nothing found'}  -> {drawn}{note}")
    refuse_failed(errors, len(results), "input(s) could not be predicted")
    return {"predictions": results}


def app_tab():
    """`showcase app`: upload an image -> the image with boxes drawn, and a table of detections."""
    from PIL import Image

    def load(run_dir: str, device: torch.device):
        return load_trained(run_dir, device)

    def infer(session, upload) -> tuple:
        model, names, train_cfg, _ = session
        if not upload:
            raise ShowcaseError("upload an image first")
        original = read_image(Path(upload), model.in_channels)
        boxes, detections = detect_image(
            model, names, train_cfg["image_size"], original, 0.3, train_cfg["nms_iou"]
        )
        labels = [f"{d['label']} {d['score']:.2f}" for d in detections]
        drawn = draw(read_image(Path(upload), 3), boxes, labels)
        rows = [[d["label"], d["score"], *d["box"]] for d in detections]
        return Image.fromarray(drawn.permute(1, 2, 0).numpy()), rows

    def examples(data_dir: str | None) -> list[list]:
        import tempfile

        from vision.detect.scenes import SceneOptions, make_scenes
        from vision.mnist import load_mnist

        try:
            mnist = load_mnist(data_dir)
        except ShowcaseError:
            return []
        scenes = make_scenes(mnist["test_x"], mnist["test_y"], 3, 2026, SceneOptions())
        folder = Path(tempfile.mkdtemp(prefix="showcase-scenes-"))
        rows = []
        for i, image in enumerate(scenes.images):  # scenes of real MNIST test digits
            path = folder / f"scene-{i}.png"
            Image.fromarray(image[0].numpy()).save(path)
            rows.append([str(path)])
        return rows

    return Tab(
        inputs=[Widget("image", "upload an image")],
        outputs=[
            Widget("image", "detections"),
            Widget("table", "boxes", {"headers": ["label", "score", "x1", "y1", "x2", "y2"]}),
        ],
        load=load,
        infer=infer,
        examples=examples,
        button="Detect",
        about="Boxes with a score of at least 0.3 are drawn.",
    )
