"""Predict digits (or a run's own classes) in user images: any size, RGB or grayscale,
dark-on-light or light-on-dark.

    showcase vision classify predict digit.png scans/ --out-dir runs/vision-classify [--json]

Each image is brought to MNIST's form: gray, light digit on black, its ink cropped, scaled to
fit 20x20 and centred by its centre of mass in 28x28.
"""

import dataclasses
import json
from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError
from tyro.conf import Positional

from core.config import InferenceConfig
from core.demo import Tab, Widget
from core.device import pick_device
from core.errors import ShowcaseError, refuse_failed, within
from core.files import write_text
from core.run import load_run_weights, run_config
from vision import CLASSIFY
from vision.classify.data import normalize, to_mnist
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


CLASSES = "classes.json"
"""A run trained on your own images keeps its class names here (MNIST runs: digits 0-9)."""


def save_classes(out_dir: str, classes: list[str]) -> None:
    write_text(Path(out_dir) / CLASSES, json.dumps(classes))


def load_classes(run_dir: str) -> list[str] | None:
    """The run's class names, or None for a digit classifier (classes 0-9)."""
    path = Path(run_dir) / CLASSES
    return json.loads(path.read_text()) if path.is_file() else None


def load_trained(run_dir: str, device: torch.device) -> tuple:
    """(model in eval mode, the run's config, its class names or None for digits)."""
    cfg, classes = run_config(run_dir), load_classes(run_dir)
    num_classes = len(classes) if classes else 10
    model = build_model(cfg["model"], cfg["channels"], cfg["dropout"], num_classes).to(device)
    load_run_weights(model, run_dir)
    return model.eval(), cfg, classes


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
        model, train_cfg, classes = load_trained(cfg.out_dir, pick_device(cfg.device))
        x = torch.stack(images)
        tta = train_cfg.get("tta", False)
        probs = predict_logits(model, x, train_cfg["mean"], train_cfg["std"], tta=tta).softmax(-1)
        top = probs.topk(min(cfg.top, probs.shape[-1]), dim=-1)
        for path, p, k in zip(good, top.values.tolist(), top.indices.tolist(), strict=True):
            k = [classes[i] for i in k] if classes else k
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

    def infer(session, sketch, upload) -> tuple:
        model, cfg, classes = session
        image = open_image(upload) if upload else sketch
        if image is None:
            raise ShowcaseError("draw a digit or upload an image first")
        logits = predict_logits(
            model, to_mnist(image)[None], cfg["mean"], cfg["std"], tta=cfg.get("tta", False)
        )
        probs = logits.softmax(-1)[0].tolist()
        return ({str(classes[k] if classes else k): p for k, p in enumerate(probs)},)

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
        load=load_trained,
        infer=infer,
        examples=examples,
        button="Classify",
        about="An upload wins over the sketch.",
    )
