"""Finding and opening the user's image files, shared by the vision demos' `predict` and app tabs."""

from pathlib import Path

from PIL import Image, UnidentifiedImageError

from core.errors import DataError

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
