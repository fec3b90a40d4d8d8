"""`--hf-dataset` for the classifier: your own labelled images (an image folder with a folder per
class, or a table of image paths and labels, written here) train a classifier of their classes,
which eval, predict, export and the app name; a digit run is a start (--init-from) whose head is
re-initialised for the new classes."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image, ImageDraw

from core.errors import ShowcaseError
from core.parse import build
from vision.classify.data import load_images
from vision.classify.predict import PredictConfig, load_trained, predict
from vision.classify.train import ClassifyConfig, ClassifyEvalConfig, evaluate, main

SHAPES = ("bar", "circle", "cross")


def shape(kind: str, rng: np.random.Generator) -> Image.Image:
    """A dark shape drawn on light paper, at a random place and size (a person's scan)."""
    image = Image.new("L", (40, 40), 230)
    pen = ImageDraw.Draw(image)
    x, y, r = rng.integers(14, 26), rng.integers(14, 26), rng.integers(7, 12)
    if kind == "bar":
        pen.line([(x - r, y), (x + r, y)], fill=20, width=4)
    elif kind == "circle":
        pen.ellipse([x - r, y - r, x + r, y + r], outline=20, width=3)
    else:
        pen.line([(x - r, y - r), (x + r, y + r)], fill=20, width=3)
        pen.line([(x - r, y + r), (x + r, y - r)], fill=20, width=3)
    return image


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    """An image folder: 40 drawings of each shape in its class folder, and one broken file."""
    folder = tmp_path_factory.mktemp("shapes")
    rng = np.random.default_rng(0)
    for kind in SHAPES:
        (folder / kind).mkdir()
        for i in range(40):
            shape(kind, rng).save(folder / kind / f"{i}.png")
    (folder / "cross" / "broken.png").write_bytes(b"not a png")
    return folder


def train(tmp_path, source, **fields) -> dict:
    cfg = build(
        ClassifyConfig,
        hf_dataset=str(source),
        out_dir=str(tmp_path / "run"),
        device="cpu",
        **{"max_steps": 60, "batch_size": 32, "warmup_steps": 5, **fields},
    )
    return main(cfg)


def test_an_image_folder_trains_a_classifier_of_its_classes(shapes, tmp_path, capsys):
    report = train(tmp_path, shapes)
    err = capsys.readouterr().err
    assert "skipped 1 unreadable image(s), the first" in err and "broken.png" in err
    run = report["config"]["out_dir"]
    assert json.loads((tmp_path / "run" / "classes.json").read_text()) == list(SHAPES)
    assert "a seeded 20% of it held out as test" in report["metrics"]["test_images"]
    assert report["metrics"]["test_acc"] > 0.6  # three shapes; chance is a third
    scored = evaluate(ClassifyEvalConfig(out_dir=run, device="cpu"))["metrics"]
    assert scored["test_acc"] == pytest.approx(report["metrics"]["test_acc"])
    assert set(scored["per_class_acc"]) == set(SHAPES)
    drawing = tmp_path / "mine.png"
    shape("circle", np.random.default_rng(1)).save(drawing)
    found = predict(PredictConfig(paths=[str(drawing)], out_dir=run, device="cpu", top=5))
    top = found["predictions"][0]["top"]
    assert len(top) == 3 and {t["class"] for t in top} == set(SHAPES)
    model, _, classes = load_trained(run, torch.device("cpu"))
    assert classes == list(SHAPES) and model.head.out_features == 3


def test_a_digit_run_is_a_start_for_new_classes(shapes, tmp_path, capsys):
    digits = build(ClassifyConfig, synthetic=True, max_steps=2, out_dir=str(tmp_path / "digits"))
    main(digits)
    capsys.readouterr()
    train(tmp_path, shapes, init_from=digits.out_dir, max_steps=5)
    out = capsys.readouterr().out
    assert "re-initialised head.weight, head.bias" in out


def test_a_table_of_image_paths_and_labels(shapes, tmp_path):
    folder = tmp_path / "table"
    folder.mkdir()
    rows = [{"path": str(shapes / k / f"{i}.png"), "kind": k} for k in SHAPES for i in range(30)]
    pd.DataFrame(rows).to_csv(folder / "train.csv", index=False)
    pd.DataFrame(rows[:3]).to_csv(folder / "test.csv", index=False)
    run = {"hf_dataset": str(folder), "hf_columns": ["image=path", "label=kind"]}
    images = load_images(run, None)
    assert images["classes"] == list(SHAPES) and images["note"] == "the source's test split"
    assert images["train_x"].shape == (90, 28, 28) and images["test_y"].tolist() == [0, 0, 0]
    pd.DataFrame([*rows[:3], {"path": rows[0]["path"], "kind": "star"}]).to_csv(
        folder / "test.csv", index=False
    )
    with pytest.raises(ShowcaseError, match="data row 4 has label 'star', not one of the training"):
        load_images(run, None)
    with pytest.raises(ShowcaseError, match="no column 'label'"):
        load_images({**run, "hf_columns": ["image=path"]}, None)


def test_a_class_of_the_test_split_alone_and_relative_table_paths(shapes, tmp_path, monkeypatch):
    split = tmp_path / "split"
    for part, kinds in (("train", ("bar", "circle")), ("test", ("bar", "cross"))):
        for kind in kinds:
            (split / part / kind).mkdir(parents=True)
            for i in range(3):
                (split / part / kind / f"{i}.png").write_bytes(
                    (shapes / kind / f"{i}.png").read_bytes()
                )
    with pytest.raises(ShowcaseError, match="has label 'cross', not one of the training classes"):
        load_images({"hf_dataset": str(split)}, None)
    table = tmp_path / "table"
    table.mkdir()
    rows = [{"path": f"{k}/{i}.png", "kind": k} for k in SHAPES for i in range(10)]
    for row in rows:  # images beside the table, named relative to it
        (table / row["path"]).parent.mkdir(exist_ok=True)
        (table / row["path"]).write_bytes((shapes / row["path"]).read_bytes())
    pd.DataFrame(rows).to_csv(table / "images.csv", index=False)
    monkeypatch.chdir(tmp_path.parent)  # not the table's folder
    run = {"hf_dataset": str(table / "images.csv"), "hf_columns": ["image=path", "label=kind"]}
    assert load_images(run, None)["train_x"].shape == (24, 28, 28)
    with pytest.raises(ShowcaseError, match="--hf-columns and --hf-split go with --hf-dataset"):
        build(ClassifyConfig, hf_columns=["label=kind"], synthetic=True)


def test_eval_scores_a_run_on_another_source(shapes, tmp_path):
    """`eval --hf-dataset`: every image of a folder without a test split, labelled by the run's
    classes; a label the run does not know is one line; the run's own source keeps its test."""
    report = train(tmp_path, shapes)
    run = report["config"]["out_dir"]
    other = tmp_path / "other"
    rng = np.random.default_rng(5)  # other drawings: another hand
    for kind in ("circle", "bar"):
        (other / kind).mkdir(parents=True)
        for i in range(7):
            shape(kind, rng).save(other / kind / f"{i}.png")
    scored = evaluate(ClassifyEvalConfig(out_dir=run, device="cpu", hf_dataset=str(other)))
    metrics = scored["metrics"]
    assert "the source's train split (every row of it)" in metrics["test_images"]
    assert set(metrics["per_class_acc"]) == {"bar", "circle"}  # no crosses to score
    seen = [metrics["per_class_acc"][k] for k in ("bar", "circle")]
    correct = sum(seen) * 7
    assert metrics["test_acc"] == pytest.approx(correct / 14)
    own = evaluate(ClassifyEvalConfig(out_dir=run, device="cpu", hf_dataset=str(shapes)))
    assert own["metrics"]["test_acc"] == pytest.approx(report["metrics"]["test_acc"])
    with pytest.raises(ShowcaseError, match="--hf-split dev: the source has no such split"):
        evaluate(ClassifyEvalConfig(out_dir=run, hf_dataset=str(shapes), hf_split="dev"))
    with pytest.raises(ShowcaseError, match="the run reads its own source with its own columns"):
        evaluate(ClassifyEvalConfig(out_dir=run, hf_dataset=str(shapes), hf_columns=["label=x"]))
    (other / "star").mkdir()
    shape("bar", rng).save(other / "star" / "0.png")
    with pytest.raises(ShowcaseError, match="has label 'star', not one of the training classes"):
        evaluate(ClassifyEvalConfig(out_dir=run, device="cpu", hf_dataset=str(other)))
