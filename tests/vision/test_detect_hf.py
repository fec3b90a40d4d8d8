"""`--hf-dataset` for the detector: an image folder whose metadata.jsonl gives each image's boxes
(Hugging Face's object-detection layout, written here), or a COCO folder; and the one-line errors
bad boxes get."""

import json

import numpy as np
import pytest
from PIL import Image

from core.errors import ShowcaseError
from core.parse import build
from vision.detect.data import make_data
from vision.detect.train import DetectConfig, DetectEvalConfig, evaluate, main


def bars(folder, n: int = 30, outside: bool = False) -> None:
    """n images of one bright bar each (tall: category 'tall', wide: 'wide'), boxes in metadata."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    lines = []
    for i in range(n):
        pixels = np.zeros((48, 64, 3), np.uint8)
        x, y = int(rng.integers(0, 40)), int(rng.integers(0, 24))
        w, h = (20, 8) if i % 2 else (8, 20)
        pixels[y : y + h, x : x + w] = 255
        Image.fromarray(pixels).save(folder / f"{i}.png")
        box = [x, y, w + (60 if outside and i == 3 else 0), h]
        objects = {"bbox": [box], "categories": ["wide" if i % 2 else "tall"]}
        lines.append(json.dumps({"file_name": f"{i}.png", "objects": objects}))
    (folder / "metadata.jsonl").write_text("\n".join(lines) + "\n")


SMALL = {"image_size": 64, "batch_size": 4, "max_steps": 2, "device": "cpu"}


def test_an_image_folder_with_box_metadata_trains_and_evaluates(tmp_path):
    bars(tmp_path / "bars")
    cfg = build(
        DetectConfig, hf_dataset=str(tmp_path / "bars"), out_dir=str(tmp_path / "run"), **SMALL
    )
    data = make_data(cfg)
    assert data.names == ["tall", "wide"] and len(data.test) == 3 and len(data.val) == 3
    assert len(data.train) == 24 and "seeded 10% slice" in data.splits["test"]
    wide = data.test.labels[data.test.labels >= 0]
    assert set(wide.tolist()) <= {0, 1}
    report = main(cfg)
    assert report["metrics"]["splits"]["test"] == data.splits["test"]
    scored = evaluate(DetectEvalConfig(out_dir=cfg.out_dir, device="cpu"))["metrics"]
    assert scored["map"] == pytest.approx(report["metrics"]["map"])


def test_eval_scores_a_run_on_another_folder(tmp_path):
    """`eval --hf-dataset`: every image of another box folder, read with the run's categories;
    a category the run does not know is one line."""
    bars(tmp_path / "bars")
    cfg = build(
        DetectConfig, hf_dataset=str(tmp_path / "bars"), out_dir=str(tmp_path / "run"), **SMALL
    )
    main(cfg)
    bars(tmp_path / "more", n=8)
    other = DetectEvalConfig(out_dir=cfg.out_dir, device="cpu", hf_dataset=str(tmp_path / "more"))
    scored = evaluate(other)["metrics"]
    assert scored["images"] == 8 and scored["split"].endswith("more: all 8 images")
    meta = tmp_path / "more" / "metadata.jsonl"
    meta.write_text(meta.read_text().replace('"wide"', '"round"'))
    with pytest.raises(ShowcaseError, match="round"):
        evaluate(other)
    with pytest.raises(
        ShowcaseError, match=r"--shift \(the test scenes\), --coco and --hf-dataset"
    ):
        DetectEvalConfig(out_dir=cfg.out_dir, coco="a/", hf_dataset="b/")


def test_a_coco_folder_through_hf_dataset_reads_as_coco(tmp_path):
    from tests.test_readme import coco

    coco(tmp_path / "coco")
    cfg = build(DetectConfig, hf_dataset=str(tmp_path / "coco"), **SMALL)
    assert make_data(cfg).names == ["tall", "wide"]


def test_bad_boxes_and_flags_get_one_line(tmp_path):
    bars(tmp_path / "bad", outside=True)
    cfg = build(DetectConfig, hf_dataset=str(tmp_path / "bad"), **SMALL)
    with pytest.raises(ShowcaseError, match=r"3.png: bbox \[.*\] lies outside its 64x48 image"):
        make_data(cfg)
    with pytest.raises(ShowcaseError, match="choose one of --hf-dataset and --coco"):
        build(DetectConfig, hf_dataset="a/", coco="b/")


def test_bad_metadata_gets_one_line_and_columns_can_be_renamed(tmp_path, capsys):
    folder = tmp_path / "boxes"
    bars(folder, n=20)
    lines = (folder / "metadata.jsonl").read_text().splitlines()
    (folder / "metadata.jsonl").write_text("\n".join(lines).replace('"objects"', '"annotations"'))
    cfg = build(DetectConfig, hf_dataset=str(folder), hf_columns=["objects=annotations"], **SMALL)
    assert make_data(cfg).names == ["tall", "wide"]
    (folder / "3.png").write_bytes(b"not an image")
    assert (
        len(make_data(cfg).train) == 17 and "skipped 1 unreadable image" in capsys.readouterr().err
    )
    cases = {  # the first image's objects, broken, and the line each gets
        '"kinds": ["tall"]': "objects need 'bbox' and 'categories' lists",
        '"categories": ["tall", "wide"]': "1 boxes but 2 categories",
    }
    for broken, message in cases.items():
        first = lines[0].replace('"categories": ["tall"]', broken)
        text = "\n".join([first, *lines[1:]]).replace('"objects"', '"annotations"')
        (folder / "metadata.jsonl").write_text(text)
        with pytest.raises(ShowcaseError, match=message):
            make_data(cfg)
    with pytest.raises(ShowcaseError, match="--hf-split dev: the source has no such split"):
        make_data(build(DetectConfig, hf_dataset=str(folder), hf_split="dev", **SMALL))
