import json
from pathlib import Path

import pytest
import torch

from core.parse import build
from core.shift import Shift, at_middle, run_shifts
from tests.conftest import real_data
from vision import shifts
from vision.classify.scoring import SHIFTS
from vision.classify.train import ClassifyConfig, ClassifyEvalConfig, evaluate, main


def bar(height: int = 12, width: int = 4) -> torch.Tensor:
    """A bright vertical bar in the middle of a dark 28x28 image, (1, 1, 28, 28) in [0, 1]."""
    x = torch.zeros(1, 1, 28, 28)
    top, left = 14 - height // 2, 14 - width // 2
    x[..., top : top + height, left : left + width] = 1.0
    return x


def ink_box(x: torch.Tensor, level: float = 0.5) -> tuple[int, int]:
    """Height and width of the region brighter than `level`."""
    rows, cols = (x[0, 0] > level).nonzero(as_tuple=True)
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)


def centre(x: torch.Tensor) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    w = x[0, 0] / x[0, 0].sum()
    return torch.stack([(w * ys).sum(), (w * xs).sum()])


def test_each_shift_does_what_it_says():
    g = torch.Generator().manual_seed(0)
    assert ink_box(shifts.rotate(bar(), 90.0, g)) == (4, 12)  # the bar lies down
    assert ink_box(shifts.scale(bar(), 0.5, g)) == (6, 2)
    moved = centre(shifts.move(bar(), 5.0, g)) - centre(bar())
    assert moved.norm().item() == pytest.approx(5.0, abs=0.1)
    assert ink_box(shifts.thicken(bar(), 1.0)) == (14, 6)
    assert ink_box(shifts.thin(bar(), 1.0)) == (10, 2)
    assert shifts.contrast(bar(), 0.3).max().item() == pytest.approx(0.3)
    gray = shifts.background(bar(), 0.4)
    assert gray.min().item() == pytest.approx(0.4) and gray.max().item() == 1.0
    blurred = shifts.blur(bar(), 1.0)
    assert blurred.sum().item() == pytest.approx(bar().sum().item(), rel=1e-3)  # ink is kept
    assert 0.0 < blurred[0, 0, 14, 11].item() < 1.0  # and spread past the edges


def test_augment_keeps_shape_and_range():
    torch.manual_seed(0)
    x = torch.rand(64, 1, 28, 28)
    out = shifts.augment(x)
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    assert not torch.equal(out, x)


def tiny_test_set():
    g = torch.Generator().manual_seed(1)
    return torch.randint(0, 256, (40, 28, 28), generator=g, dtype=torch.uint8), torch.arange(
        40
    ) % 10


@pytest.mark.parametrize("shift", SHIFTS, ids=[s.name for s in SHIFTS])
def test_suite_keeps_labels_and_is_seeded(shift):
    data = tiny_test_set()
    a = shift.apply(data, shift.middle, torch.Generator().manual_seed(3))
    b = shift.apply(data, shift.middle, torch.Generator().manual_seed(3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], data[1])
    assert a[0].dtype == torch.uint8 and a[0].shape == data[0].shape
    assert not torch.equal(a[0], data[0])


def test_run_shifts_tables_every_severity_and_repeats_for_a_seed():
    def jitter(data, severity, g):
        return data + severity * torch.rand(data.shape, generator=g)

    suite = [Shift("jitter", (0.1, 0.2, 0.3), jitter), Shift("more", (1.0, 2.0, 3.0), jitter)]
    data = torch.zeros(100)
    first = run_shifts(suite, data, lambda d: d.mean().item(), seed=5)
    assert first == run_shifts(suite, data, lambda d: d.mean().item(), seed=5)
    assert first != run_shifts(suite, data, lambda d: d.mean().item(), seed=6)
    assert first["clean"] == 0.0
    scores = first["conditions"]["jitter"]["scores"]
    assert len(scores) == 3 and scores[0] < scores[1] < scores[2]
    assert at_middle(first) == {
        "jitter": scores[1],
        "more": first["conditions"]["more"]["scores"][1],
    }


def test_eval_shift_on_a_tiny_synthetic_run(tmp_path):
    out = tmp_path / "run"
    cfg = build(
        ClassifyConfig,
        out_dir=str(out),
        device="cpu",
        synthetic=True,
        max_steps=5,
        warmup_steps=0,
        log_every=5,
    )
    main(cfg)
    report = evaluate(
        ClassifyEvalConfig(out_dir=str(out), device="cpu", synthetic=True, shift=True)
    )
    table = report["metrics"]["shift"]
    assert set(table["conditions"]) == {s.name for s in SHIFTS}
    assert all(len(row["scores"]) == 3 for row in table["conditions"].values())
    saved = json.loads((out / "eval.json").read_text())["metrics"]["shift"]
    assert saved == table
    for picture in ("shift.png", "shift_mistakes.png"):
        assert (out / picture).stat().st_size > 1000


@pytest.mark.real_data
@pytest.mark.slow
def test_eval_shift_leaves_the_data_root_unchanged(tmp_path):
    """The shifted copies live in memory: the data root's files are the same before and after."""
    root = real_data("MNIST", "raw").parent.parent

    def listing() -> dict:
        return {
            str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in (root / "MNIST").rglob("*")
        }

    before = listing()
    out = tmp_path / "run"
    main(
        build(
            ClassifyConfig,
            data_dir=str(root),
            out_dir=str(out),
            device="cpu",
            max_steps=2,
            warmup_steps=0,
            log_every=2,
        )
    )
    evaluate(ClassifyEvalConfig(out_dir=str(out), data_dir=str(root), device="cpu", shift=True))
    assert listing() == before
    assert Path(out / "shift.png").exists()
