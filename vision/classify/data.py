"""The classifier's batched, on-device preprocessing and augmentation of MNIST."""

import math

import torch
import torch.nn.functional as F


def split_validation(x: torch.Tensor, y: torch.Tensor, size: int, seed: int):
    """Carve a fixed random validation set of `size` samples out of the training data."""
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    val, train = order[:size], order[size:]
    return (x[train], y[train]), (x[val], y[val])


def normalize(x: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    """uint8 (B, 28, 28) -> float (B, 1, 28, 28), standardised."""
    return ((x.float() / 255.0 - mean) / std).unsqueeze(1)


def random_affine(
    x: torch.Tensor, max_shift: float = 2.0, max_degrees: float = 10.0
) -> torch.Tensor:
    """Shift each image by up to `max_shift` pixels and rotate it by up to `max_degrees`, batched."""
    b, _, h, w = x.shape  # (B, 1, H, W)
    angle = (torch.rand(b, device=x.device) * 2 - 1) * math.radians(max_degrees)
    shift = (torch.rand(b, 2, device=x.device) * 2 - 1) * (
        2 * max_shift / torch.tensor([w, h], device=x.device)
    )
    cos, sin = angle.cos(), angle.sin()
    theta = torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
    )  # (B, 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    background = x.amin(dim=(1, 2, 3), keepdim=True)  # the normalised value of a black pixel
    return (
        F.grid_sample(x - background, grid, align_corners=False, padding_mode="zeros") + background
    )
