"""The user's image files, shared by the vision demos' `predict` and app tabs: finding and opening
them, and writing them back with boxes drawn."""

from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError
from torchvision.utils import draw_bounding_boxes

from core.errors import DataError
from core.files import atomic_write

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def collect(paths: list[str]) -> tuple[list[Path], list[str]]:
    """Image files named directly or found in folders, and one error line per bad path."""
    files, errors = [], []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            found = sorted(
                p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            )
            others = sorted(
                p for p in path.iterdir() if p.is_file() and p.suffix.lower() not in IMAGE_SUFFIXES
            )
            errors += [f"{p}: not an image file" for p in others]
            if not found:
                errors.append(f"{path}: folder holds no image files")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            errors.append(f"{path}: no such file or folder")
    return files, errors


def open_image(path: str | Path) -> Image.Image:
    """An image file read into memory; DataError naming the file if it is not a readable image."""
    try:
        with Image.open(path) as im:
            im.load()
            return im.copy()
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataError(f"{Path(path).name}: not a readable image ({type(exc).__name__})") from exc


def drawing_path(folder: Path, image: Path, taken: set[Path]) -> Path:
    """`folder/<stem>.png` for `image`, or `<stem>-2.png`, `-3`, ... if this call already drew an
    image of that name (`taken`, updated)."""
    path, k = folder / f"{image.stem}.png", 1
    while path in taken:
        k += 1
        path = folder / f"{image.stem}-{k}.png"
    taken.add(path)
    return path


def draw(image: torch.Tensor, boxes: torch.Tensor, labels: list[str]) -> torch.Tensor:
    """`image` (3, H, W) uint8 with `boxes` drawn in red, their labels beside them."""
    width = max(1, round(max(image.shape[1:]) / 200))
    return (
        draw_bounding_boxes(image, boxes, labels, colors="red", width=width)
        if len(boxes)
        else image
    )


def save_drawn(image: torch.Tensor, boxes: torch.Tensor, labels: list[str], path: Path) -> None:
    """Write `image` (3, H, W) uint8 with `boxes` drawn, as a PNG, atomically."""
    pixels = draw(image, boxes, labels).permute(1, 2, 0).numpy()
    atomic_write(path, lambda tmp: Image.fromarray(pixels).save(tmp, format="PNG"))
