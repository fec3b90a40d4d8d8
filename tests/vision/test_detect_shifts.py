import pytest
import torch

from core.errors import UsageError
from core.parse import build
from vision import shifts
from vision.detect.augment import augment_scenes, shrink_scenes
from vision.detect.model import standardize
from vision.detect.predict import as_model_input
from vision.detect.scenes import INK, SceneOptions, make_scenes
from vision.detect.scoring import SHIFTS
from vision.detect.train import DetectConfig, DetectEvalConfig, evaluate, main
from vision.mnist import synthetic_mnist

CLEAN = SceneOptions(noise=0.0, clutter=0)


@pytest.fixture(scope="module")
def scenes():
    data = synthetic_mnist(n_train=256, n_test=64, seed=0)
    return make_scenes(data["test_x"], data["test_y"], 12, seed=5, opts=CLEAN)


def assert_boxes_hold_the_ink(images: torch.Tensor, boxes: torch.Tensor, labels: torch.Tensor):
    """Every box holds ink, and no clear ink lies outside the boxes (1 pixel of slack)."""
    ink = images[:, 0].float() / 255
    covered = torch.zeros_like(ink, dtype=torch.bool)
    for i in range(len(images)):
        for box, label in zip(boxes[i].tolist(), labels[i].tolist(), strict=True):
            if label < 0:
                continue
            x1, y1 = int(box[0]) - 1, int(box[1]) - 1
            x2, y2 = int(box[2] + 1) + 1, int(box[3] + 1) + 1
            region = ink[i, max(y1, 0) : y2, max(x1, 0) : x2]
            assert region.max() >= 0.05
            covered[i, max(y1, 0) : y2, max(x1, 0) : x2] = True
    assert not ((ink >= INK) & ~covered).any()


@pytest.mark.parametrize("shift", SHIFTS, ids=[s.name for s in SHIFTS])
def test_scene_suite_is_seeded_and_keeps_boxes_with_their_digits(shift, scenes):
    a = shift.apply(scenes, shift.middle, torch.Generator().manual_seed(3))
    b = shift.apply(scenes, shift.middle, torch.Generator().manual_seed(3))
    assert torch.equal(a.images, b.images) and torch.equal(a.boxes, b.boxes)
    assert a.images.dtype == torch.uint8 and a.images.shape == scenes.images.shape
    assert not torch.equal(a.images, scenes.images)
    assert torch.equal(a.labels, scenes.labels)
    if shift.name == "canvas":  # the digits shrink and move: the boxes follow them
        assert_boxes_hold_the_ink(a.images, a.boxes, a.labels)
        widths = (a.boxes[..., 2] - a.boxes[..., 0])[a.labels >= 0]
        before = (scenes.boxes[..., 2] - scenes.boxes[..., 0])[scenes.labels >= 0]
        assert torch.allclose(widths, before / shift.middle)
    else:
        assert torch.equal(a.boxes, scenes.boxes)


def test_shrunk_scenes_keep_their_boxes_on_the_digits(scenes):
    x = scenes.images.float() / 255
    factor = torch.linspace(1.0, 2.0, len(scenes))
    shrunk, boxes = shrink_scenes(x, scenes.boxes, factor, torch.Generator().manual_seed(0))
    images = shrunk.mul(255).round().to(torch.uint8)
    assert_boxes_hold_the_ink(images, boxes * (scenes.labels >= 0).unsqueeze(-1), scenes.labels)


def test_standardize_undoes_background_level_polarity_and_faint_ink(scenes):
    x = scenes.images.float() / 255
    clean = standardize(x)
    for changed in (
        shifts.background(x, 0.4),
        1 - x,  # dark ink on white paper
        shifts.paper(x, 0.0),
        shifts.contrast(x, 0.4),
        1 - shifts.background(shifts.contrast(x, 0.5), 0.3),
    ):
        assert torch.allclose(standardize(changed), clean, atol=1e-4)


def test_augment_scenes_keeps_shapes_range_and_untouched_scenes(scenes):
    torch.manual_seed(0)
    x = scenes.images.float() / 255
    out, boxes = augment_scenes(x, scenes.boxes, p=1.0)
    assert out.shape == x.shape and boxes.shape == scenes.boxes.shape
    assert out.min() >= 0 and out.max() <= 1 and not torch.equal(out, x)
    same, same_boxes = augment_scenes(x, scenes.boxes, p=0.0)
    assert torch.equal(same, x) and torch.equal(same_boxes, scenes.boxes)


def test_eval_shift_on_a_tiny_synthetic_run(tmp_path):
    out = tmp_path / "run"
    main(
        build(
            DetectConfig,
            out_dir=str(out),
            device="cpu",
            synthetic=True,
            max_steps=4,
            warmup_steps=0,
            eval_every=4,
            log_every=4,
        )
    )
    report = evaluate(DetectEvalConfig(out_dir=str(out), device="cpu", shift=True))
    table = report["metrics"]["shift"]
    assert list(table["conditions"]) == [s.name for s in SHIFTS]
    assert all(len(row["scores"]) == 3 for row in table["conditions"].values())
    for picture in ("shift.png", "shift_failures.png"):
        assert (out / picture).stat().st_size > 1000


def test_shift_is_refused_with_a_coco_folder():
    with pytest.raises(UsageError, match="--shift"):
        DetectEvalConfig(coco="somewhere", shift=True)


def test_a_wide_photo_of_paper_reaches_the_model_as_light_ink_on_black(scenes):
    """Dark ink on off-white paper, 4:3: inverted, letterboxed with its own background rather than
    black bars, then standardized: the ink is bright and the padding dark."""
    ink = scenes.images[0, 0].float() / 255  # (128, 128) light ink on black
    paper = 0.8 * (1 - ink[:96])  # (96, 128): the scene's top rows, dark ink on paper
    photo = (paper * 255).round().to(torch.uint8)[None]  # wider than tall
    x, scale = as_model_input(photo, 128)
    assert scale == 1.0 and x.shape == (1, 128, 128)
    seen = standardize(x[None].float() / 255)[0, 0]  # (128, 128)
    assert seen[96:].max() < 0.05  # the padding below the photo is background
    digits = ink[:96] >= 0.5
    assert digits.sum() > 50
    assert seen[:96][digits].mean() > 0.5  # the ink is what stands out
