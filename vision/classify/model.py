"""Two digit classifiers: the classic `Net` of pytorch/examples and a stronger default `CNN`."""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


class Net(nn.Module):
    """The classic MNIST network (21,840 parameters); returns log-probabilities."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        self.conv2_drop = nn.Dropout2d()
        self.fc1 = nn.Linear(320, 50)
        self.fc2 = nn.Linear(50, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, 1, 28, 28)
        x = F.relu(F.max_pool2d(self.conv1(x), 2))  # (B, 10, 12, 12)
        x = F.relu(F.max_pool2d(self.conv2_drop(self.conv2(x)), 2))  # (B, 20, 4, 4)
        x = x.flatten(1)  # (B, 320)
        x = F.dropout(F.relu(self.fc1(x)), training=self.training)  # (B, 50)
        return F.log_softmax(self.fc2(x), dim=1)  # (B, 10)


def conv_bn(c_in: int, c_out: int, k: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())


@dataclass
class CNNConfig:
    width: int = 32
    dropout: float = 0.1
    num_classes: int = 10


class CNN(nn.Module):
    """Three conv-BN-ReLU stages, each halving the image, then a linear head.

    Pooling right after the 5x5 stem keeps the costly full-resolution work to one thin layer,
    which is what makes it fast on a CPU.
    """

    def __init__(self, cfg: CNNConfig = CNNConfig()) -> None:
        super().__init__()
        w = cfg.width
        self.features = nn.Sequential(
            conv_bn(1, w, 5), nn.MaxPool2d(2),  # (B, w, 14, 14)
            conv_bn(w, 2 * w, 3), nn.MaxPool2d(2),  # (B, 2w, 7, 7)
            conv_bn(2 * w, 4 * w, 3), nn.MaxPool2d(2),  # (B, 4w, 3, 3)
        )  # fmt: skip
        self.dropout = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(4 * w * 9, cfg.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, 1, 28, 28)
        x = self.features(x).flatten(1)  # (B, 36w)
        return self.head(self.dropout(x))  # (B, num_classes) logits


def build_model(name: str, width: int, dropout: float) -> nn.Module:
    """The model a config names: `net` (classic) or `cnn` (default)."""
    return Net() if name == "net" else CNN(CNNConfig(width=width, dropout=dropout))
