"""`export`: the classifier as an ONNX file or a torch.export program (`core.export`).

    showcase vision classify export --format onnx --quantize int8 --out exported/

The graph takes MNIST-form images, uint8 (N, 28, 28), a light digit on black (`predict.to_mnist`
makes them from any picture), normalises them and returns logits (N, classes). The test-time shifts of
`eval` are left out: one forward pass per image.
"""

import dataclasses

import torch
from torch import nn

from core.export import ExportConfig, ExportSpec, export
from core.run import check_task
from vision import CLASSIFY
from vision.classify.data import load_images
from vision.classify.predict import load_trained

TASK = "vision.classify"


class Classifier(nn.Module):
    """uint8 images -> logits, the normalisation inside the graph."""

    def __init__(self, model: nn.Module, mean: float, std: float) -> None:
        super().__init__()
        self.model, self.mean, self.std = model, mean, std

    def forward(self, images: torch.Tensor) -> torch.Tensor:  # images: (N, 28, 28) uint8
        x = (images.float() / 255.0 - self.mean) / self.std  # (N, 28, 28)
        return self.model(x[:, None])  # (N, classes) logits


@dataclasses.dataclass
class ClassifyExportConfig(ExportConfig):
    DEMO = CLASSIFY


def spec_for(cfg: ClassifyExportConfig) -> ExportSpec:
    """What `export` writes of the run's classifier, checked on 256 real test images (int8:
    calibrated on 512 training images)."""
    check_task(cfg.out_dir, TASK)
    model, train_cfg, classes = load_trained(cfg.out_dir, torch.device("cpu"))
    model = model.to(memory_format=torch.contiguous_format)
    images = load_images(train_cfg, cfg.data_dir)
    calibration = [(images["train_x"][i : i + 64].clone(),) for i in range(0, 512, 64)]
    return ExportSpec(
        name="vision-classify",
        module=Classifier(model, train_cfg["mean"], train_cfg["std"]),
        inputs=(images["test_x"][:256].clone(),),  # a copy: a view would save them all
        input_names=["images"],
        output_names=["logits"],
        dynamic={"images": {0: "batch"}},
        sidecar={
            "labels": classes or [str(k) for k in range(10)],
            "images": "uint8, a light digit on black, MNIST-centred in 28x28 (predict.to_mnist)",
            "logits": "softmax gives each label's probability",
        },
        int8="static",
        calibration=calibration,
    )


def export_model(cfg: ClassifyExportConfig) -> dict:
    """Write the run's classifier in --format (int8 with --quantize) to --out, checked."""
    return export(spec_for(cfg), cfg)
