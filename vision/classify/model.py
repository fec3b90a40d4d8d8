"""Two digit classifiers: the classic `Net` (as in pytorch/examples) and a stronger default `CNN`."""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vision.features import digit_features


class Net(nn.Module):
    """The classic MNIST network (21,840 parameters with 10 classes); returns log-probabilities."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        self.conv2_drop = nn.Dropout2d()
        self.fc1 = nn.Linear(320, 50)
        self.fc2 = nn.Linear(50, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, 1, 28, 28)
        x = F.relu(F.max_pool2d(self.conv1(x), 2))  # (B, 10, 12, 12)
        x = F.relu(F.max_pool2d(self.conv2_drop(self.conv2(x)), 2))  # (B, 20, 4, 4)
        x = x.flatten(1)  # (B, 320)
        x = F.dropout(F.relu(self.fc1(x)), training=self.training)  # (B, 50)
        return F.log_softmax(self.fc2(x), dim=1)  # (B, num_classes)


@dataclass
class CNNConfig:
    channels: tuple[int, int, int] = (16, 48, 96)
    dropout: float = 0.1
    num_classes: int = 10


class CNN(nn.Module):
    """Three conv-pool-BN-ReLU stages, each halving the image, then a linear head.

    Pooling right after a thin 5x5 stem keeps the costly full-resolution work small, and the
    width goes into the cheap low-resolution stages: that is what makes it fast on a CPU.
    """

    def __init__(self, cfg: CNNConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or CNNConfig()
        self.features = digit_features(cfg.channels)  # (B, c3, 3, 3)
        self.dropout = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.channels[2] * 9, cfg.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, 1, 28, 28)
        x = self.features(x).flatten(1)  # (B, 9 c3)
        return self.head(self.dropout(x))  # (B, num_classes) logits


def build_model(
    name: str, channels: tuple[int, int, int] | list[int], dropout: float, num_classes: int = 10
) -> nn.Module:
    """The model a config names: `net` (classic) or `cnn` (default), in channels-last layout
    (oneDNN's faster convolution kernels on CPU; harmless elsewhere)."""
    if name == "net":
        model = Net(num_classes)
    else:
        model = CNN(CNNConfig(tuple(channels), dropout, num_classes))
    return model.to(memory_format=torch.channels_last)
