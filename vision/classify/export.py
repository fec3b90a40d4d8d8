"""`export`: the classifier as an ONNX file or a torch.export program (`core.export`).

    showcase vision classify export --format onnx --quantize int8 --out exported/

The graph takes MNIST-form images, uint8 (N, 28, 28), a light digit on black (`predict.to_mnist`
makes them from any picture), normalises them and returns logits (N, 10). The test-time shifts of
`eval` are left out: one forward pass per image.
"""

import dataclasses

import torch
from torch import nn

from core.export import ExportConfig, ExportSpec, export
from core.run import check_task, load_run_weights, run_config
from vision import CLASSIFY
from vision.classify.model import build_model
from vision.mnist import load_mnist, synthetic_mnist

TASK = "vision.classify"


class Classifier(nn.Module):
    """uint8 images -> logits, the normalisation inside the graph."""

    def __init__(self, model: nn.Module, mean: float, std: float) -> None:
        super().__init__()
        self.model, self.mean, self.std = model, mean, std

    def forward(self, images: torch.Tensor) -> torch.Tensor:  # images: (N, 28, 28) uint8
        x = (images.float() / 255.0 - self.mean) / self.std  # (N, 28, 28)
        return self.model(x[:, None])  # (N, 10) logits


@dataclasses.dataclass
class ClassifyExportConfig(ExportConfig):
    DEMO = CLASSIFY


def spec_for(cfg: ClassifyExportConfig) -> ExportSpec:
    """What `export` writes of the run's classifier, checked on 256 real test images (int8:
    calibrated on 512 training images)."""
    check_task(cfg.out_dir, TASK)
    train_cfg = run_config(cfg.out_dir)
    model = build_model(train_cfg["model"], train_cfg["channels"], train_cfg["dropout"])
    load_run_weights(model, cfg.out_dir)
    model = model.to(memory_format=torch.contiguous_format).eval()
    mnist = synthetic_mnist() if train_cfg.get("synthetic") else load_mnist(cfg.data_dir)
    calibration = [(mnist["train_x"][i : i + 64].clone(),) for i in range(0, 512, 64)]
    return ExportSpec(
        name="vision-classify",
        module=Classifier(model, train_cfg["mean"], train_cfg["std"]),
        inputs=(mnist["test_x"][:256].clone(),),  # a copy: a view would save all 10,000
        input_names=["images"],
        output_names=["logits"],
        dynamic={"images": {0: "batch"}},
        sidecar={
            "labels": [str(k) for k in range(10)],
            "images": "uint8, a light digit on black, MNIST-centred in 28x28 (predict.to_mnist)",
            "logits": "softmax gives each label's probability",
        },
        int8="static",
        calibration=calibration,
    )


def export_model(cfg: ClassifyExportConfig) -> dict:
    """Write the run's classifier in --format (int8 with --quantize) to --out, checked."""
    return export(spec_for(cfg), cfg)
