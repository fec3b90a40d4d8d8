"""Predict digits in user images: any size, RGB or grayscale, dark-on-light or light-on-dark.

    showcase vision classify predict digit.png scans/ --out-dir runs/vision-classify [--json]

Each image is brought to MNIST's form: gray, light digit on black, its ink cropped, scaled to
fit 20x20 and centred by its centre of mass in 28x28.
"""

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from tyro.conf import Positional

from core.config import InferenceConfig
from core.demo import Tab, Widget
from core.device import pick_device
from core.errors import ShowcaseError, refuse_failed, within
from core.run import load_run_weights, run_config
from vision import CLASSIFY
from vision.classify.data import normalize
from vision.classify.model import build_model
from vision.images import collect, open_image


@dataclasses.dataclass
class PredictConfig(InferenceConfig):
    """Print the likeliest digits of each image (--json: one object per image)."""

    DEMO = CLASSIFY

    paths: Positional[list[str]]
    """Image files or folders of images."""
    top: int = 3
    """How many classes to print per image."""

    def __post_init__(self) -> None:
        within(self, "[1, 10]", "top")


SHIFTS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]  # test-time shifts, in pixels


@torch.no_grad()
def predict_logits(
    model, x: torch.Tensor, mean: float, std: float, batch_size: int = 1000, tta: bool = False
) -> torch.Tensor:
    """Logits (N, 10) for uint8 images (N, 28, 28), in batches, in eval mode. With `tta`, the
    log of the probabilities averaged over the image and its eight 1-pixel shifts (MNIST digits
    sit inside a 4-pixel empty border, so rolling the image moves nothing across the edge)."""
    model.eval()
    device = next(model.parameters()).device

    def logits(c: torch.Tensor) -> torch.Tensor:  # c: (B, 28, 28) uint8
        if not tta:
            return model(normalize(c, mean, std)).float()
        probs = [model(normalize(c.roll(s, (1, 2)), mean, std)).float().softmax(-1) for s in SHIFTS]
        return torch.stack(probs).mean(0).log()

    chunks = [x[i : i + batch_size].to(device) for i in range(0, len(x), batch_size)]
    return torch.cat([logits(c) for c in chunks])


def to_mnist(image: Image.Image) -> torch.Tensor:
    """A PIL image -> uint8 (28, 28), light digit on black, centred like MNIST."""
    gray = np.asarray(image.convert("L"), dtype=np.float32)
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    if np.median(border) > 127:  # dark ink on a light background
        gray = 255.0 - gray
    gray = np.clip(gray - np.median(border if np.median(border) <= 127 else 255.0 - border), 0, 255)
    ys, xs = (
        np.nonzero(gray > 0.2 * gray.max()) if gray.max() > 0 else (np.array([0]), np.array([0]))
    )
    crop = gray[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    scale = 20.0 / max(crop.shape)
    h, w = max(1, round(crop.shape[0] * scale)), max(1, round(crop.shape[1] * scale))
    small = F.interpolate(torch.from_numpy(crop)[None, None], size=(h, w), mode="area")[
        0, 0
    ]  # (h, w)
    canvas = torch.zeros(28, 28)
    top, left = (28 - h) // 2, (28 - w) // 2
    canvas[top : top + h, left : left + w] = small
    total = canvas.sum()
    if total > 0:  # shift the centre of mass to the centre, as MNIST was made
        rows, cols = torch.arange(28.0), torch.arange(28.0)
        cy = (canvas.sum(1) * rows).sum() / total
        cx = (canvas.sum(0) * cols).sum() / total
        canvas = torch.roll(canvas, (round(13.5 - cy.item()), round(13.5 - cx.item())), dims=(0, 1))
    canvas = canvas * (255.0 / canvas.max()) if canvas.max() > 0 else canvas
    return canvas.round().clamp(0, 255).to(torch.uint8)


def predict(cfg: PredictConfig) -> dict:
    """Print the top classes of every image; bad files are reported and skipped."""
    files, errors = collect(cfg.paths)
    images, good = [], []
    for path in files:
        try:
            with Image.open(path) as im:
                images.append(to_mnist(im))
            good.append(path)
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            errors.append(f"{path}: not a readable image ({type(exc).__name__})")
    results = []
    if images:
        device = pick_device(cfg.device)
        train_cfg = run_config(cfg.out_dir)
        model = build_model(train_cfg["model"], train_cfg["channels"], train_cfg["dropout"]).to(
            device
        )
        load_run_weights(model, cfg.out_dir)
        x = torch.stack(images)
        tta = train_cfg.get("tta", False)
        probs = predict_logits(model, x, train_cfg["mean"], train_cfg["std"], tta=tta).softmax(-1)
        top = probs.topk(min(cfg.top, 10), dim=-1)
        for path, p, k in zip(good, top.values.tolist(), top.indices.tolist(), strict=True):
            result = {
                "file": str(path),
                "top": [{"class": c, "prob": round(q, 4)} for c, q in zip(k, p, strict=True)],
            }
            results.append(result)
            if cfg.json:
                print(json.dumps(result))
            else:
                print(f"{path}: " + "  ".join(f"{c} ({q:.1%})" for c, q in zip(k, p, strict=True)))
    refuse_failed(errors, len(results), "input(s) could not be predicted")
    return {"predictions": results}


def app_tab():
    """`showcase app`: draw a digit or upload an image -> the top-3 classes."""

    def load(run_dir: str, device: torch.device):
        cfg = run_config(run_dir)
        model = build_model(cfg["model"], cfg["channels"], cfg["dropout"]).to(device)
        load_run_weights(model, run_dir)
        return model.eval(), cfg

    def infer(session, sketch, upload) -> tuple:
        model, cfg = session
        image = open_image(upload) if upload else sketch
        if image is None:
            raise ShowcaseError("draw a digit or upload an image first")
        logits = predict_logits(
            model, to_mnist(image)[None], cfg["mean"], cfg["std"], tta=cfg.get("tta", False)
        )
        return ({str(k): p for k, p in enumerate(logits.softmax(-1)[0].tolist())},)

    def examples(data_dir: str | None) -> list[list]:
        import tempfile

        from vision.mnist import load_mnist

        try:
            test = load_mnist(data_dir)
        except ShowcaseError:
            return []
        folder = Path(tempfile.mkdtemp(prefix="showcase-mnist-"))
        rows = []
        for i in (0, 1, 2, 3):  # real MNIST test digits, written as PNGs
            path = folder / f"mnist-test-{i}-label-{int(test['test_y'][i])}.png"
            Image.fromarray(test["test_x"][i].numpy()).save(path)
            rows.append([None, str(path)])
        return rows

    return Tab(
        inputs=[Widget("sketch", "draw a digit"), Widget("image", "or upload an image")],
        outputs=[Widget("label", "prediction")],
        load=load,
        infer=infer,
        examples=examples,
        button="Classify",
        about="An upload wins over the sketch.",
    )
