"""The classifier's images: MNIST, or your own through `datasets` (--hf-dataset), brought to MNIST's
form (`to_mnist`); their batched, on-device preprocessing and augmentation."""

import io
import math
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from core.errors import DataError
from core.hf_data import column_names, open_source, train_test
from vision.mnist import load_mnist, synthetic_mnist


def split_validation(x: torch.Tensor, y: torch.Tensor, size: int, seed: int):
    """Carve a fixed random validation set of `size` samples out of the training data."""
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    val, train = order[:size], order[size:]
    return (x[train], y[train]), (x[val], y[val])


def normalize(x: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    """uint8 (B, 28, 28) -> float (B, 1, 28, 28), standardised."""
    return ((x.float() / 255.0 - mean) / std).unsqueeze(1)


def random_affine(
    x: torch.Tensor, max_shift: float = 2.0, max_degrees: float = 10.0
) -> torch.Tensor:
    """Shift each image by up to `max_shift` pixels and rotate it by up to `max_degrees`, batched."""
    b, _, h, w = x.shape  # (B, 1, H, W)
    angle = (torch.rand(b, device=x.device) * 2 - 1) * math.radians(max_degrees)
    shift = (torch.rand(b, 2, device=x.device) * 2 - 1) * (
        2 * max_shift / torch.tensor([w, h], device=x.device)
    )
    cos, sin = angle.cos(), angle.sin()
    theta = torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
    )  # (B, 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    background = x.amin(dim=(1, 2, 3), keepdim=True)  # the normalised value of a black pixel
    return (
        F.grid_sample(x - background, grid, align_corners=False, padding_mode="zeros") + background
    )


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


def load_images(run: dict, data_dir: str | None, decoded=("train", "test"), classes=None) -> dict:
    """A run's images by its config (`run`, as in config.json): MNIST, synthetic digits, or
    --hf-dataset's (then with their `classes` and a `note` on the test images; only the
    `decoded` splits' images are read: `eval` needs the test images alone, labelled by the
    trained model's `classes`)."""
    if run.get("synthetic"):
        return synthetic_mnist(seed=run.get("seed", 0))
    if run.get("hf_dataset"):
        source, pairs, seed = run["hf_dataset"], run.get("hf_columns", []), run.get("seed", 0)
        return hf_images(source, pairs, seed, run.get("hf_split", "test"), decoded, classes)
    return load_mnist(data_dir)


COLUMNS = {"image": "image", "label": "label"}
"""--hf-dataset's columns by role (rename with --hf-columns, e.g. image=img label=letter)."""


def hf_images(
    source: str,
    pairs: list[str],
    seed: int,
    test: str = "test",
    decoded=("train", "test"),
    classes: list[str] | None = None,
) -> dict:
    """Your labelled images through `datasets` (an image folder with a folder per class, or a
    table of images and labels), each brought to MNIST's form: train_x, test_x (N, 28, 28) uint8,
    train_y, test_y (N,) class indices, `classes` (their names) and `note` (where the test images
    come from). An unreadable image is skipped and counted, the first one named; a test label
    outside the training classes is refused in one line."""
    names = column_names(pairs, COLUMNS)
    train, test, note = train_test(open_source(source), seed, test)
    for part in (train, test):
        for key in ("image", "label"):
            if names[key] not in part.column_names:
                have = ", ".join(part.column_names)
                raise DataError(f"--hf-dataset {source}: no column {names[key]!r} (it has: {have})")
    # the classes are those of the training images (a class folder of the test split alone is not)
    classes = classes or sorted({label_name(train, names, v) for v in train[names["label"]]})
    data = {"classes": classes, "note": note}
    folder = Path(source) if Path(source).is_dir() else Path(source).parent
    for split, part in (("train", train), ("test", test)):
        if split not in decoded:
            continue
        x, y = read_images(part, names, classes, source, split, folder)
        data[f"{split}_x"], data[f"{split}_y"] = x, y
    return data


def label_name(table, names: dict, value) -> str:
    """A label's name: a class folder's (a ClassLabel's index) or the value as text."""
    feature = table.features[names["label"]]
    return feature.names[value] if hasattr(feature, "names") else str(value)


def read_images(table, names: dict, classes: list[str], source: str, split: str, folder) -> tuple:
    """(images (N, 28, 28) uint8, labels (N,)) of one split; unreadable images skipped. A table's
    relative image paths are read from the table's `folder`."""
    import datasets

    raw = table.cast_column(names["image"], datasets.Image(decode=False))
    images, labels, bad = [], [], []
    for row, (image, label) in enumerate(
        zip(raw[names["image"]], raw[names["label"]], strict=True)
    ):
        name = label_name(table, names, label)
        if name not in classes:
            raise DataError(
                f"--hf-dataset {source} ({split} split): data row {row + 1} has label {name!r}, "
                f"not one of the training classes ({', '.join(classes)})"
            )
        try:
            if image["bytes"]:
                opened = Image.open(io.BytesIO(image["bytes"]))
            else:  # a path: a table's relative one is read from the table's folder
                opened = Image.open(Path(folder, image["path"]))
            with opened:
                images.append(to_mnist(opened))
        except (OSError, ValueError, TypeError):
            bad.append(image.get("path") or f"data row {row + 1}")
            continue
        labels.append(classes.index(name))
    if bad:
        print(
            f"showcase: warning: {source} ({split} split): skipped {len(bad)} unreadable "
            f"image(s), the first {bad[0]}",
            file=sys.stderr,
        )
    if not images:
        raise DataError(f"--hf-dataset {source}: no readable images in its {split} split")
    return torch.stack(images), torch.tensor(labels)
