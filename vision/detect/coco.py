"""Your boxes: COCO-format folders (`images/` plus an annotations JSON, written from scenes and
read back), or an image folder with its boxes in metadata through `datasets` (--hf-dataset).

Any such folder loads: images of any size and channel count are letterboxed (scaled to fit,
padded at the right and bottom) into the model's square input, and their boxes scaled alike.
COCO category ids map to labels 0..C-1 in id order; metadata categories in name order.
"""

import io
import json
import sys
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

from core.errors import DataError
from core.files import atomic_write, write_text
from vision.detect.scenes import Scenes

ANNOTATIONS = "annotations.json"


def save_coco(scenes: Scenes, folder: Path, names: list[str]) -> None:
    """Write scenes as `folder/images/NNNNN.png` and `folder/annotations.json` (category id = label + 1)."""
    folder = Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for i in range(len(scenes)):
        name = f"{i:05d}.png"
        pixels = scenes.images[i].permute(1, 2, 0).squeeze(-1).numpy()
        atomic_write(
            folder / "images" / name,
            lambda tmp, p=pixels: Image.fromarray(p).save(tmp, format="PNG"),
        )
        h, w = scenes.images.shape[-2:]
        images.append({"id": i, "file_name": name, "width": int(w), "height": int(h)})
        target = scenes.targets(i)
        for box, label in zip(target["boxes"].tolist(), target["labels"].tolist(), strict=True):
            x1, y1, x2, y2 = box
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": i,
                    "category_id": label + 1,
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "area": (x2 - x1) * (y2 - y1),
                    "iscrowd": 0,
                }
            )
    categories = [{"id": k + 1, "name": n} for k, n in enumerate(names)]
    doc = {"images": images, "annotations": annotations, "categories": categories}
    write_text(folder / ANNOTATIONS, json.dumps(doc) + "\n")


def annotations_file(folder: Path) -> Path:
    """`folder/annotations.json`, else the one JSON file in `folder` or `folder/annotations/`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such COCO folder (expected images/ and an annotations JSON)")
    if (folder / ANNOTATIONS).is_file():
        return folder / ANNOTATIONS
    found = sorted(folder.glob("*.json")) + sorted(folder.glob("annotations/*.json"))
    if len(found) != 1:
        raise DataError(
            f"{folder}: expected one annotations JSON (annotations.json), found {len(found)}"
        )
    return found[0]


def _field(item: dict, key: str, where: str):
    if not isinstance(item, dict) or key not in item:
        raise DataError(f"{where}: missing '{key}'")
    return item[key]


def read_coco(folder: Path) -> tuple[list[dict], list[str]]:
    """The images (file, width, height, boxes xyxy, category ids, crowd flags) and the category
    names, checked.

    A missing field or a box outside its image is an error naming the file and the annotation;
    boxes under 1 pixel wide or high are dropped with one warning that counts them."""
    path = annotations_file(folder)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from exc
    for key in ("images", "annotations", "categories"):
        if not isinstance(doc.get(key) if isinstance(doc, dict) else None, list):
            raise DataError(f"{path}: missing the '{key}' list")
    categories = sorted(doc["categories"], key=lambda c: _field(c, "id", f"{path}: category {c}"))
    ids = [c["id"] for c in categories]
    names = [str(c.get("name", c["id"])) for c in categories]
    images = {}
    for k, im in enumerate(doc["images"]):
        where = f"{path}: image {k}"
        images[_field(im, "id", where)] = {
            "file": Path(folder) / "images" / _field(im, "file_name", where),
            "width": _field(im, "width", where),
            "height": _field(im, "height", where),
            "boxes": [],
            "categories": [],
            "crowd": [],
        }
    dropped = 0
    for k, ann in enumerate(doc["annotations"]):
        where = (
            f"{path}: annotation {k} (id {ann.get('id', '?') if isinstance(ann, dict) else '?'})"
        )
        image = images.get(_field(ann, "image_id", where))
        if image is None:
            raise DataError(f"{where}: image_id {ann['image_id']} is not among the images")
        category = _field(ann, "category_id", where)
        if category not in ids:
            raise DataError(f"{where}: category_id {category} is not among the categories")
        bbox = _field(ann, "bbox", where)
        if not (
            isinstance(bbox, list)
            and len(bbox) == 4
            and all(isinstance(v, int | float) for v in bbox)
        ):
            raise DataError(f"{where}: bbox must be [x, y, width, height], got {bbox!r}")
        x, y, w, h = bbox
        if x < -1 or y < -1 or x + w > image["width"] + 1 or y + h > image["height"] + 1:
            raise DataError(
                f"{where}: bbox {bbox} lies outside its image "
                f"{image['file'].name} ({image['width']}x{image['height']})"
            )
        if w < 1 or h < 1:
            dropped += 1
            continue
        image["boxes"].append(
            [max(x, 0), max(y, 0), min(x + w, image["width"]), min(y + h, image["height"])]
        )
        image["categories"].append(ids.index(category))
        image["crowd"].append(bool(ann.get("iscrowd", 0)))
    if dropped:
        warnings.warn(
            f"{path}: dropped {dropped} degenerate box(es) under 1 pixel wide or high", stacklevel=2
        )
    return list(images.values()), names


def read_image(path, channels: int) -> torch.Tensor:
    """An image file (a path, or an open binary file) as uint8 (C, H, W), gray (C=1) or RGB
    (C=3); DataError naming the file."""
    if hasattr(path, "seek"):
        path.seek(0)
    try:
        with Image.open(path) as im:
            im = im.convert("L" if channels == 1 else "RGB")
            pixels = torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8)
            return pixels.view(im.height, im.width, channels).permute(2, 0, 1).clone()
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable image ({type(exc).__name__})") from exc


def letterbox(image: torch.Tensor, size: int, fill: int = 0) -> tuple[torch.Tensor, float]:
    """uint8 (C, H, W) -> uint8 (C, size, size): scaled to fit, padded right and bottom with `fill`
    (black). Returns the scale, so boxes map back by dividing by it."""
    c, h, w = image.shape
    scale = size / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    resized = F.interpolate(
        image[None].float(), size=(nh, nw), mode="bilinear", antialias=True, align_corners=False
    )
    out = torch.full((c, size, size), fill, dtype=torch.uint8)
    out[:, :nh, :nw] = resized[0].round().clamp(0, 255).to(torch.uint8)
    return out, scale


def load_coco(folder: Path, size: int, channels: int) -> tuple[Scenes, list[str]]:
    """A COCO folder as letterboxed scenes (boxes padded with label -1, `iscrowd` regions marked
    as crowd) and the category names."""
    records, names = read_coco(folder)
    if not records:
        raise DataError(f"{folder}: the annotations list no images")
    return as_scenes(records, size, channels), names


def as_scenes(records: list[dict], size: int, channels: int) -> Scenes:
    """Image records (as `read_coco` gives them) as letterboxed scenes."""
    most = max(1, max(len(r["boxes"]) for r in records))
    images = torch.zeros(len(records), channels, size, size, dtype=torch.uint8)
    boxes = torch.zeros(len(records), most, 4)
    labels = torch.full((len(records), most), -1, dtype=torch.long)
    crowd = torch.zeros(len(records), most, dtype=torch.bool)
    for i, r in enumerate(records):
        pixels = read_image(r["file"], channels)
        if pixels.shape[1:] != (r["height"], r["width"]):
            raise DataError(
                f"{r['file']}: is {pixels.shape[2]}x{pixels.shape[1]}, "
                f"the annotations say {r['width']}x{r['height']}"
            )
        images[i], scale = letterbox(pixels, size)
        n = len(r["boxes"])
        if n:
            boxes[i, :n] = torch.tensor(r["boxes"], dtype=torch.float32) * scale
            labels[i, :n] = torch.tensor(r["categories"])
            crowd[i, :n] = torch.tensor(r["crowd"])
    return Scenes(images, boxes, labels, crowd)


COLUMNS = {"image": "image", "objects": "objects"}
"""--hf-dataset's columns by role (rename with --hf-columns, e.g. objects=annotations)."""


def read_hf_boxes(table, cols: dict, names: list[str], where: str) -> list[dict]:
    """Image records of one split of an image folder whose metadata gives each image's
    `objects` (`bbox`: [x, y, width, height] boxes, `categories`: their classes), as Hugging Face
    describes object-detection folders. An unreadable image is skipped and counted; a box outside
    its image, objects without both lists, or a category not among `names` is one line."""
    import datasets

    table = table.cast_column(cols["image"], datasets.Image(decode=False))
    records, bad = [], []
    rows = zip(table[cols["image"]], table[cols["objects"]], strict=True)
    for row, (image, objects) in enumerate(rows):
        at = image["path"] or f"{where}: data row {row + 1}"
        file = io.BytesIO(image["bytes"]) if image["bytes"] else image["path"]
        try:
            with Image.open(file) as im:
                width, height = im.size
        except (OSError, ValueError):
            bad.append(at)
            continue
        if not isinstance(objects, dict) or None in (
            objects.get("bbox"),
            objects.get("categories"),
        ):
            raise DataError(f"{at}: objects need 'bbox' and 'categories' lists")
        boxes, categories = objects["bbox"], objects["categories"]
        if len(boxes) != len(categories):
            raise DataError(f"{at}: {len(boxes)} boxes but {len(categories)} categories")
        record = {"file": file, "width": width, "height": height, "boxes": [], "categories": []}
        for (x, y, w, h), category in zip(boxes, categories, strict=True):
            if str(category) not in names:
                known = ", ".join(names)
                raise DataError(f"{at}: category {category!r} is not a training one ({known})")
            if x < -1 or y < -1 or x + w > width + 1 or y + h > height + 1:
                raise DataError(
                    f"{at}: bbox {[x, y, w, h]} lies outside its {width}x{height} image"
                )
            if w >= 1 and h >= 1:
                box = [max(x, 0), max(y, 0), min(x + w, width), min(y + h, height)]
                record["boxes"].append(box)
                record["categories"].append(names.index(str(category)))
        record["crowd"] = [False] * len(record["boxes"])
        records.append(record)
    if bad:
        print(
            f"showcase: warning: skipped {len(bad)} unreadable image(s), the first {bad[0]}",
            file=sys.stderr,
        )
    return records
