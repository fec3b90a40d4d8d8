import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from core.errors import ShowcaseError
from core.parse import build
from tests.conftest import real_data
from vision.classify.data import to_mnist
from vision.classify.model import CNN, Net
from vision.classify.predict import PredictConfig, predict
from vision.classify.train import ClassifyConfig, ClassifyEvalConfig, evaluate, main
from vision.mnist import load_mnist

ROOT = Path(__file__).resolve().parents[2]


def test_net_shape_and_parameter_count():
    net = Net()
    assert net(torch.zeros(4, 1, 28, 28)).shape == (4, 10)
    assert sum(p.numel() for p in net.parameters()) == 21_840


@pytest.mark.parametrize("model", [Net(), CNN()], ids=["net", "cnn"])
def test_overfits_one_batch(model):
    torch.manual_seed(0)
    x, y = torch.randn(32, 1, 28, 28), torch.randint(0, 10, (32,))
    model.train()
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    for _ in range(200):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()  # judged without dropout's noise
    with torch.no_grad():
        assert F.cross_entropy(model(x), y).item() < 0.05


def test_preprocessing_is_invariant_to_polarity_and_size():
    img = np.zeros((28, 28), dtype=np.uint8)
    img[6:22, 12:16] = 255  # a "1"
    base = to_mnist(Image.fromarray(img)).float()
    assert torch.equal(to_mnist(Image.fromarray(255 - img).convert("RGB")).float(), base)
    big_dark_on_light = Image.fromarray(255 - img).resize((200, 200)).convert("RGB")
    assert (to_mnist(big_dark_on_light).float() - base).abs().mean() < 8  # only edges blur


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A short real-data run of the default config (about 15 s on 2 CPU cores)."""
    root = real_data("MNIST", "raw")
    out = tmp_path_factory.mktemp("classify") / "run"
    cfg = build(
        ClassifyConfig,
        data_dir=str(root.parent.parent),
        out_dir=str(out),
        device="cpu",
        max_steps=200,
        warmup_steps=20,
        val_size=1000,
        log_every=100,
    )
    return cfg, main(cfg)


@pytest.mark.real_data
@pytest.mark.slow
def test_short_real_run_reaches_97_percent(trained):
    cfg, report = trained
    assert report["metrics"]["test_acc"] >= 0.97
    saved = json.loads((Path(cfg.out_dir) / "metrics.json").read_text())
    assert saved["task"] == "vision.classify" and saved["steps"] == 200 and saved["device"] == "cpu"


@pytest.mark.real_data
@pytest.mark.slow
def test_eval_reports_per_class_and_plots(trained):
    cfg, _ = trained
    report = evaluate(ClassifyEvalConfig(out_dir=cfg.out_dir, data_dir=cfg.data_dir, device="cpu"))
    assert report["metrics"]["test_acc"] >= 0.97
    assert set(report["metrics"]["per_class_acc"]) == {str(k) for k in range(10)}
    assert (Path(cfg.out_dir) / "confusion.png").stat().st_size > 1000
    assert (Path(cfg.out_dir) / "mistakes.png").stat().st_size > 1000
    # The evaluation sits beside the training report, which keeps its validation metric.
    trained_report = json.loads((Path(cfg.out_dir) / "metrics.json").read_text())
    assert "val_acc" in trained_report["metrics"] and trained_report["steps"] == 200
    assert json.loads((Path(cfg.out_dir) / "eval.json").read_text())["metrics"]["test_acc"] >= 0.97


@pytest.mark.real_data
@pytest.mark.slow
def test_predict_user_images(trained, tmp_path, capsys):
    cfg, _ = trained
    test = load_mnist(cfg.data_dir)
    digits = list(range(10))
    for i in digits:
        x = test["test_x"][i].numpy()
        Image.fromarray(x).save(tmp_path / f"{i}_light_on_dark.png")
        Image.fromarray(255 - x).convert("RGB").save(tmp_path / f"{i}_dark_on_light_rgb.png")
        Image.fromarray(255 - x).resize((200, 200), Image.BILINEAR).save(tmp_path / f"{i}_big.jpg")
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(ShowcaseError, match="1 input"):
        predict(PredictConfig(paths=[str(tmp_path)], out_dir=cfg.out_dir, device="cpu", json=True))
    captured = capsys.readouterr()
    results = [json.loads(line) for line in captured.out.splitlines()]
    assert len(results) == 30 and "notes.txt: not an image file" in captured.err
    for r in results:
        i = int(Path(r["file"]).name.split("_")[0])
        assert r["top"][0]["class"] == test["test_y"][i].item(), r
        assert len(r["top"]) == 3


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: d / "missing.png", "no such file or folder"),
        (lambda d: (d / "empty").mkdir() or d / "empty", "folder holds no image files"),
        (
            lambda d: (d / "fake.png").write_bytes(b"nope") and d / "fake.png",
            "fake.png: not a readable image",
        ),
    ],
)
def test_predict_bad_input_exits_1_with_one_line(make, message, tmp_path):
    path = make(tmp_path)
    cmd = [
        sys.executable,
        "-m",
        "vision.classify",
        "predict",
        str(path),
        "--out-dir",
        str(tmp_path / "run"),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 1
    assert message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.real_data
def test_truncated_or_missing_mnist_file_is_named(tmp_path, monkeypatch):
    from torchvision.datasets import MNIST

    monkeypatch.setattr(MNIST, "mirrors", ["http://127.0.0.1:9/"])  # offline, at once
    source = real_data("MNIST", "raw")
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte"):
        (raw / name).symlink_to(source / name)
    with pytest.raises(ShowcaseError, match=r"MNIST file\(s\) t10k-labels-idx1-ubyte missing in"):
        load_mnist(str(tmp_path))  # main named all four files
    (raw / "t10k-labels-idx1-ubyte").write_bytes(
        (source / "t10k-labels-idx1-ubyte").read_bytes()[:5000]
    )
    with pytest.raises(
        ShowcaseError, match="t10k-labels-idx1-ubyte is damaged or not the expected"
    ):
        load_mnist(str(tmp_path))


def test_confusion_counts_true_rows_and_predicted_columns():
    from vision.classify.scoring import confusion

    cm = confusion(torch.tensor([0, 0, 1, 2, 2, 2]), torch.tensor([0, 1, 1, 2, 0, 2]), 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
