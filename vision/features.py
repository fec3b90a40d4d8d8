"""The digit classifier's feature stack, shared with the detector's `digits` backbone: the same
module names and shapes, so a detector can start from a trained classifier (`--init-from`)."""

from torch import nn


def conv_pool_bn(c_in: int, c_out: int, k: int) -> nn.Sequential:
    """Conv, 2x2 max-pool, batch norm, ReLU: pooling first runs BN and ReLU on 4x fewer values."""
    conv = nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=False)
    return nn.Sequential(conv, nn.MaxPool2d(2), nn.BatchNorm2d(c_out), nn.ReLU())


def digit_features(channels: tuple[int, int, int], in_channels: int = 1) -> nn.Sequential:
    """Three conv-pool-BN-ReLU stages, each halving the image: a thin 5x5 stem, then two 3x3
    stages; (B, in_channels, H, W) -> (B, c3, H/8, W/8)."""
    c1, c2, c3 = channels
    return nn.Sequential(
        conv_pool_bn(in_channels, c1, 5),  # (B, c1, H/2, W/2)
        conv_pool_bn(c1, c2, 3),  # (B, c2, H/4, W/4)
        conv_pool_bn(c2, c3, 3),  # (B, c3, H/8, W/8)
    )
