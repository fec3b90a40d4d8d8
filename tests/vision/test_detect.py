import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.ops import box_iou

from core import distributed
from core.checkpoint import save_weights
from core.config import to_dict
from core.errors import DataError, ShowcaseError
from core.parse import build
from tests.conftest import real_data
from vision.detect import predict as predict_mod
from vision.detect.coco import load_coco, save_coco
from vision.detect.data import SceneLoader, make_data
from vision.detect.model import (
    Detector,
    DetectorConfig,
    decode,
    detection_loss,
    grid_points,
    to_boxes,
    to_ltrb,
)
from vision.detect.predict import PredictConfig, predict
from vision.detect.scenes import INK, SceneOptions, compose, make_scenes
from vision.detect.scoring import coco_map, mean_ap
from vision.detect.train import DetectConfig, DetectEvalConfig, evaluate, main
from vision.mnist import synthetic_mnist

CLEAN = SceneOptions(noise=0.0, clutter=0)


@pytest.fixture(scope="module")
def pool():
    data = synthetic_mnist(n_train=512, n_test=64, seed=0)
    return data["train_x"], data["train_y"]


def test_scenes_are_deterministic_and_boxes_tight(pool):
    images, boxes, labels = compose(*pool, 16, seed=3, opts=CLEAN)
    again = compose(*pool, 16, seed=3, opts=CLEAN)
    assert all(torch.equal(a, b) for a, b in zip((images, boxes, labels), again, strict=True))
    assert not torch.equal(images, compose(*pool, 16, seed=4, opts=CLEAN)[0])
    assert images.shape == (16, 1, 128, 128) and images.dtype == torch.uint8
    assert ((labels >= 0).sum(1) >= 1).all() and ((labels >= 0).sum(1) <= 6).all()
    ink = images[:, 0].float() / 255 >= INK + 0.02
    covered = torch.zeros_like(ink)
    for i in range(16):
        for (x1, y1, x2, y2), label in zip(
            boxes[i].long().tolist(), labels[i].tolist(), strict=True
        ):
            if label < 0:
                continue
            covered[i, y1:y2, x1:x2] = True
            region = images[i, 0, y1:y2, x1:x2].float() / 255
            for edge in (
                region[0],
                region[-1],
                region[:, 0],
                region[:, -1],
            ):  # ink touches each side
                assert edge.max() >= INK - 0.02
    assert not (ink & ~covered).any()  # no ink outside the boxes


def test_training_scenes_resume_exactly_and_shard_over_ranks(pool, monkeypatch):
    loader = SceneLoader(*pool, batch_size=8, opts=SceneOptions(), seed=1)
    batches = iter(loader)
    next(batches), next(batches)
    state = loader.state_dict()
    third = next(batches)
    resumed = SceneLoader(*pool, batch_size=8, opts=SceneOptions(), seed=1)
    resumed.load_state_dict(state)
    assert all(torch.equal(a, b) for a, b in zip(third, next(iter(resumed)), strict=True))
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    halves = []
    for rank in (0, 1):
        monkeypatch.setattr(distributed, "rank", lambda r=rank: r)
        shard = SceneLoader(*pool, batch_size=8, opts=SceneOptions(), seed=1)
        shard.load_state_dict(state)
        halves.append(next(iter(shard)))
    for whole, a, b in zip(third, *halves, strict=True):
        assert torch.equal(whole, torch.cat([a, b]))  # two ranks see exactly the batch one would


def test_coco_round_trip(pool, tmp_path):
    scenes = make_scenes(*pool, 5, seed=0, opts=SceneOptions())
    save_coco(scenes, tmp_path, [str(k) for k in range(10)])
    loaded, names = load_coco(tmp_path, 128, channels=1)
    assert names == [str(k) for k in range(10)]
    assert torch.equal(loaded.images, scenes.images)
    for i in range(5):
        a, b = loaded.targets(i), scenes.targets(i)
        assert torch.equal(a["labels"], b["labels"]) and torch.allclose(a["boxes"], b["boxes"])
    small, _ = load_coco(tmp_path, 64, channels=3)  # letterboxed to another size, boxes scaled
    assert small.images.shape == (5, 3, 64, 64)
    assert torch.allclose(small.targets(0)["boxes"], scenes.targets(0)["boxes"] / 2)


def write_coco(tmp_path, annotations, size=(40, 30)):
    (tmp_path / "images").mkdir(exist_ok=True)
    Image.fromarray(np.zeros(size[::-1], dtype=np.uint8)).save(tmp_path / "images" / "a.png")
    doc = {
        "images": [{"id": 1, "file_name": "a.png", "width": size[0], "height": size[1]}],
        "annotations": annotations,
        "categories": [{"id": 3, "name": "cat"}],
    }
    (tmp_path / "annotations.json").write_text(json.dumps(doc))


def test_bad_coco_annotations_name_the_file_and_annotation(tmp_path):
    write_coco(tmp_path, [{"id": 7, "image_id": 1, "category_id": 3}])
    with pytest.raises(DataError, match=r"annotations.json: annotation 0 \(id 7\): missing 'bbox'"):
        load_coco(tmp_path, 32, 1)
    write_coco(tmp_path, [{"id": 8, "image_id": 1, "category_id": 3, "bbox": [30, 5, 20, 10]}])
    with pytest.raises(DataError, match=r"annotation 0 \(id 8\): bbox .* outside its image a.png"):
        load_coco(tmp_path, 32, 1)
    write_coco(
        tmp_path,
        [
            {"id": 1, "image_id": 1, "category_id": 3, "bbox": [1, 1, 10, 10]},
            {"id": 2, "image_id": 1, "category_id": 3, "bbox": [5, 5, 0, 4]},
        ],
    )
    with pytest.warns(UserWarning, match="dropped 1 degenerate box"):
        scenes, names = load_coco(tmp_path, 40, 1)
    assert names == ["cat"] and scenes.targets(0)["boxes"].tolist() == [[1.0, 1.0, 11.0, 11.0]]
    write_coco(tmp_path, [])
    (tmp_path / "images" / "a.png").write_text("not a png")
    with pytest.raises(DataError, match="a.png: not a readable image"):
        load_coco(tmp_path, 40, 1)


def test_model_shapes_and_box_coding():
    model = Detector(DetectorConfig(in_channels=1, num_classes=10))
    logits, ltrb, centerness = model(torch.zeros(2, 1, 128, 128))
    assert (
        logits.shape == (2, 32 * 32, 10)
        and ltrb.shape == (2, 1024, 4)
        and centerness.shape == (2, 1024)
    )
    assert (ltrb >= 0).all()
    assert 300_000 < sum(p.numel() for p in model.parameters()) < 1_000_000
    points = grid_points(128, 128, 4)
    assert points[0].tolist() == [2.0, 2.0] and points[33].tolist() == [6.0, 6.0]
    boxes = torch.tensor([[10.0, 20.0, 50.0, 44.0]]).expand(1024, 4)
    assert torch.allclose(to_boxes(points, to_ltrb(points, boxes)), boxes)


def test_decode_keeps_the_best_box_per_object():
    points = grid_points(32, 32, 4)  # 8x8 locations
    logits = torch.full((1, 64, 3), -9.0)
    ltrb = torch.full((1, 64, 4), 10.0)
    logits[0, 9, 1] = 5.0  # location (1, 1): class 1 around (6, 6)
    logits[0, 10, 1] = 3.0  # its neighbour: the same object, lower score, suppressed by NMS
    logits[0, 54, 2] = 4.0  # another class far away
    dets = decode(logits, ltrb, torch.full((1, 64), 9.0), points, size=(32, 32))
    assert dets[0]["labels"].tolist() == [1, 2]
    assert dets[0]["boxes"][0].tolist() == [0.0, 0.0, 16.0, 16.0]  # clipped to the image


@pytest.fixture(scope="module")
def overfit(tmp_path_factory):
    """The detector trained on 4 scenes of real MNIST digits until it knows them, saved as a run."""
    root = real_data("MNIST", "raw")
    from vision.mnist import load_mnist

    data = load_mnist(str(root.parent.parent))
    scenes = make_scenes(
        data["train_x"][:200], data["train_y"][:200], 4, seed=0, opts=SceneOptions()
    )
    torch.manual_seed(0)
    model = Detector(DetectorConfig())
    points = grid_points(128, 128, 4)
    opt = torch.optim.AdamW(model.parameters(), 3e-3)
    for _ in range(150):
        losses = detection_loss(
            *model(scenes.images.float() / 255), scenes.boxes, scenes.labels, points, 4
        )
        opt.zero_grad()
        sum(losses.values()).backward()
        opt.step()
    run = tmp_path_factory.mktemp("overfit")
    plain = to_dict(DetectConfig(robust=False))  # trained without the robust input standardization
    save_weights(model, run / "model.safetensors", {"config": plain})
    (run / "classes.json").write_text(
        json.dumps({"names": [str(k) for k in range(10)], "in_channels": 1})
    )
    return model, scenes, run


def test_overfits_a_few_real_scenes(overfit):
    model, scenes, _ = overfit
    assert mean_ap(model, scenes)["map_50"] > 0.9


def test_predict_finds_the_digits_in_an_image_of_another_size(overfit, tmp_path, capsys):
    _, scenes, run = overfit
    scene = 255 - scenes.images[1, 0].numpy()  # dark ink on white, as on paper
    Image.fromarray(scene).resize((256, 256), Image.BICUBIC).convert("RGB").save(
        tmp_path / "big.png"
    )
    predict(PredictConfig([str(tmp_path / "big.png")], out_dir=str(run), device="cpu", json=True))
    found = json.loads(capsys.readouterr().out.strip())["detections"]
    truth = scenes.targets(1)
    assert len(truth["labels"]) >= 2
    predicted = torch.tensor([d["box"] for d in found])
    for box, label in zip(truth["boxes"] * 2, truth["labels"].tolist(), strict=True):  # 256 / 128
        best = box_iou(box[None], predicted)[0].argmax()
        assert box_iou(box[None], predicted)[0, best] > 0.7 and found[best]["label"] == str(label)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A short synthetic run (smoke quality only; real quality is the benchmark's)."""
    out = tmp_path_factory.mktemp("detect") / "run"
    cfg = build(
        DetectConfig, synthetic=True, out_dir=str(out), device="cpu", max_steps=3, log_every=1
    )
    main(cfg)
    return out


def test_predict_reports_bad_files_and_predicts_good_ones(trained, tmp_path, capsys):
    good = tmp_path / "wide.png"
    Image.fromarray(np.zeros((60, 200, 3), dtype=np.uint8)).save(good)
    bad = tmp_path / "notes.png"
    bad.write_text("hello")
    with pytest.raises(ShowcaseError, match="1 input"):
        predict(PredictConfig([str(good), str(bad)], out_dir=str(trained), device="cpu", json=True))
    out = capsys.readouterr()
    result = json.loads(out.out.strip().splitlines()[-1])
    assert result["file"] == str(good) and isinstance(result["detections"], list)
    for det in result["detections"]:
        x1, y1, x2, y2 = det["box"]
        assert 0 <= x1 <= x2 <= 200 and 0 <= y1 <= y2 <= 60  # in the image's own coordinates
    assert "notes.png: not a readable image" in out.err
    assert (trained / "predictions" / "wide.png").exists()


def test_eval_writes_report_and_picture(trained):
    report = evaluate(DetectEvalConfig(out_dir=str(trained), device="cpu"))
    assert set(report["metrics"]) >= {"map", "map_50", "per_class_map"}
    assert (trained / "detections.png").stat().st_size > 1000


def test_bad_config_values_are_refused():
    for bad in (
        {"image_size": 100},
        {"max_scale": 0.5},
        {"nms_iou": 1.0},
        {"val_digits": 60_000},
        {"val_coco": "val"},
    ):
        with pytest.raises(ShowcaseError):
            build(DetectConfig, **bad)


def test_trains_and_evaluates_on_a_coco_folder(pool, tmp_path, capsys):
    scenes = make_scenes(*pool, 12, seed=0, opts=SceneOptions())
    folder = tmp_path / "coco"
    save_coco(scenes, folder, [str(k) for k in range(10)])
    out = tmp_path / "run"
    cfg = build(
        DetectConfig,
        coco=str(folder),
        out_dir=str(out),
        device="cpu",
        max_steps=3,
        batch_size=4,
        log_every=1,
        eval_every=0,
    )
    report = main(cfg)
    assert {"map", "map_50"} <= set(report["metrics"])
    report = evaluate(DetectEvalConfig(out_dir=str(out), device="cpu", coco=str(folder), json=True))
    assert report["metrics"]["images"] == 12
    with pytest.raises(ShowcaseError, match="pass --coco"):
        evaluate(DetectEvalConfig(out_dir=str(out), device="cpu"))


def test_coco_training_keeps_validation_and_test_apart(pool, tmp_path):
    scenes = make_scenes(*pool, 30, seed=0, opts=SceneOptions())
    folder = tmp_path / "coco"
    save_coco(scenes, folder, [str(k) for k in range(10)])
    data = make_data(build(DetectConfig, coco=str(folder), device="cpu"))

    def rows(part):
        return {bytes(image.numpy()) for image in part.images}

    train, val, test = rows(data.train), rows(data.val), rows(data.test)
    assert len(val) == 3 and len(test) == 3 and len(train) == 24
    assert not (val & test) and not (train & val) and not (train & test)
    assert set(data.splits) == {"train", "val", "test"}
    other = tmp_path / "other"
    save_coco(
        make_scenes(*pool, 5, seed=9, opts=SceneOptions()), other, [str(k) for k in range(10)]
    )
    data = make_data(build(DetectConfig, coco=str(folder), val_coco=str(other), device="cpu"))
    assert len(data.val) == 5 and len(data.test) == 3 and len(data.train) == 27
    assert str(other) in data.splits["val"]


def test_coco_run_report_names_its_splits(pool, tmp_path, capsys):
    folder = tmp_path / "coco"
    save_coco(
        make_scenes(*pool, 10, seed=0, opts=SceneOptions()), folder, [str(k) for k in range(10)]
    )
    cfg = build(
        DetectConfig,
        coco=str(folder),
        out_dir=str(tmp_path / "run"),
        device="cpu",
        max_steps=2,
        batch_size=4,
        log_every=1,
        eval_every=0,
    )
    report = main(cfg)
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["metrics"]["splits"] == report["metrics"]["splits"]
    assert "1 image" in report["metrics"]["splits"]["test"]
    assert "never seen in training or model selection" in report["metrics"]["splits"]["test"]
    printed = capsys.readouterr().out
    assert "  validation: " in printed and "  test: " in printed


def write_crowd_coco(folder):
    (folder / "images").mkdir(parents=True)
    Image.fromarray(np.zeros((64, 64), dtype=np.uint8)).save(folder / "images" / "a.png")
    doc = {
        "images": [{"id": 1, "file_name": "a.png", "width": 64, "height": 64}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [4, 4, 20, 20], "iscrowd": 0},
            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [30, 30, 30, 30], "iscrowd": 1},
        ],
        "categories": [{"id": 1, "name": "digit"}],
    }
    (folder / "annotations.json").write_text(json.dumps(doc))


def test_crowd_regions_neither_match_nor_count_as_misses_nor_train(tmp_path):
    write_crowd_coco(tmp_path)
    scenes, _ = load_coco(tmp_path, 64, channels=1)
    exact = [
        {
            "boxes": torch.tensor([[4.0, 4.0, 24.0, 24.0]]),
            "scores": torch.tensor([0.9]),
            "labels": torch.tensor([0]),
        }
    ]
    assert coco_map(exact, scenes)["map"].item() == pytest.approx(1.0)
    on_crowd = [
        {
            "boxes": torch.tensor([[4.0, 4.0, 24.0, 24.0], [30.0, 30.0, 60.0, 60.0]]),
            "scores": torch.tensor([0.9, 0.95]),
            "labels": torch.tensor([0, 0]),
        }
    ]
    assert coco_map(on_crowd, scenes)["map"].item() == pytest.approx(1.0)  # not a false positive
    _, boxes, labels = scenes.training_tensors()
    assert labels[0].tolist().count(0) == 1 and boxes[0][labels[0] == 0].tolist() == [
        [4, 4, 24, 24]
    ]


def test_predict_names_each_drawing_apart(trained, tmp_path, capsys):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        Image.fromarray(np.zeros((40, 40), dtype=np.uint8)).save(tmp_path / folder / "x.png")
    paths = [str(tmp_path / "a" / "x.png"), str(tmp_path / "b" / "x.png")]
    predict(PredictConfig(paths, out_dir=str(trained), device="cpu", json=True))
    assert len(list((trained / "predictions").glob("x*.png"))) == 2  # one drawing per input
    drawn = [json.loads(line)["drawn"] for line in capsys.readouterr().out.strip().splitlines()]
    assert len(set(drawn)) == 2 and all(Path(p).is_file() for p in drawn)
    predict(PredictConfig(paths[:1], out_dir=str(trained), device="cpu"))
    assert "replaced" in capsys.readouterr().out  # an earlier drawing of the same name is replaced


def test_eval_report_gives_the_step_its_weights_come_from(trained):
    report = evaluate(DetectEvalConfig(out_dir=str(trained), device="cpu"))
    assert report["steps"] == 3
    assert "MNIST test digits" in report["metrics"]["split"]


def test_drawn_boxes_do_not_repeat_an_object_under_another_class(
    trained, tmp_path, capsys, monkeypatch
):
    Image.fromarray(np.zeros((128, 128), dtype=np.uint8)).save(tmp_path / "scene.png")
    twice = {
        "boxes": torch.tensor(
            [[10.0, 10.0, 40.0, 40.0], [11.0, 10.0, 40.0, 41.0], [70.0, 70.0, 90.0, 90.0]]
        ),
        "scores": torch.tensor([0.9, 0.8, 0.7]),
        "labels": torch.tensor([3, 8, 8]),
    }
    monkeypatch.setattr(predict_mod, "detect", lambda *args, **kwargs: [twice])
    predict(
        PredictConfig([str(tmp_path / "scene.png")], out_dir=str(trained), device="cpu", json=True)
    )
    found = json.loads(capsys.readouterr().out.strip())["detections"]
    assert [d["label"] for d in found] == ["3", "8"]


def test_one_box_per_object_for_drawing_class_wise_for_scoring():
    from vision.detect.model import one_per_object

    dets = {
        "boxes": torch.tensor([[10.0, 10.0, 40.0, 40.0], [11.0, 10.0, 40.0, 41.0]]),
        "scores": torch.tensor([0.9, 0.8]),
        "labels": torch.tensor([3, 8]),
    }
    assert one_per_object(dets, 0.6)["labels"].tolist() == [3]
    points = grid_points(32, 32, 4)
    logits = torch.full((1, 64, 3), -9.0)
    logits[0, 9, 1], logits[0, 9, 2] = 5.0, 4.0  # one location, two classes
    dets = decode(logits, torch.full((1, 64, 4), 6.0), torch.full((1, 64), 9.0), points)
    assert dets[0]["labels"].tolist() == [1, 2]  # COCO scoring keeps both


def test_the_digits_backbone_starts_from_a_classifier(tmp_path, capsys):
    """`--backbone digits`: the classifier's feature stack by name and shape, so --init-from a
    `vision classify` run loads all of it; the run trains, evaluates and predicts as any other."""
    from vision.classify.train import ClassifyConfig
    from vision.classify.train import main as train_classifier

    digits = build(ClassifyConfig, synthetic=True, max_steps=2, out_dir=str(tmp_path / "digits"))
    train_classifier(digits)
    capsys.readouterr()
    cfg = build(
        DetectConfig,
        synthetic=True,
        backbone="digits",
        init_from=digits.out_dir,
        max_steps=2,
        batch_size=4,
        val_scenes=4,
        test_scenes=4,
        out_dir=str(tmp_path / "detector"),
    )
    main(cfg)
    assert "loaded 18 of" in capsys.readouterr().out  # 3 stages: conv weight, BN's 5 tensors
    model = Detector(DetectorConfig(backbone="digits"))
    assert [k for k in model.state_dict() if k.startswith("features.")][:2] == [
        "features.0.0.weight",
        "features.0.2.weight",
    ]
    assert evaluate(DetectEvalConfig(out_dir=cfg.out_dir, device="cpu"))["metrics"]["images"] == 4
    with pytest.raises(ShowcaseError, match="none of its .* tensors fits this model"):
        main(
            build(
                DetectConfig,
                **{**to_dict(cfg), "backbone": "compact", "out_dir": str(tmp_path / "c")},
            )
        )
