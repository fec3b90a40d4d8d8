"""The detector's training augmentation (--robust): scenes restyled as a person's images look,
on the training device, their boxes moved with them."""

import torch

from vision.shifts import affine, blotches, blur, lay, ramp


def shrink_scenes(x: torch.Tensor, boxes: torch.Tensor, factor: torch.Tensor, g=None):
    """Each scene (B, 1, S, S) shrunk by `factor` (B,) (>= 1) to a random place on a black canvas
    of its own size, as a larger or wider image looks once letterboxed; boxes (B, K, 4) follow."""
    b, size = len(x), x.shape[-1]
    room = (size - size / factor) / 2  # how far the shrunk scene's centre may move
    dx, dy = (room * (2 * torch.rand(2, b, generator=g, device=x.device) - 1)).unbind()
    x = affine(x, torch.zeros_like(factor), 1 / factor, dx, dy)
    shift = torch.stack([dx, dy, dx, dy], -1)[:, None]  # (B, 1, 4)
    return x, (boxes - size / 2) / factor[:, None, None] + size / 2 + shift


def augment_scenes(x: torch.Tensor, boxes: torch.Tensor, p: float = 0.5):
    """Training augmentation against `eval --shift`'s conditions, on the training device: a random
    `p` of the scenes gets, each with its own draw, smaller digits on a larger canvas (boxes
    follow), a background (a gray level, a ramp of uneven light, blotches), fainter ink, dark ink
    on light paper, blur (one sigma per batch) and pixel noise. Scenes (B, 1, H, W) in [0, 1],
    boxes (B, K, 4)."""
    b, device = len(x), x.device
    chosen = torch.rand(b, device=device) < p

    def some(share: float) -> torch.Tensor:  # indices of this share of the chosen scenes
        return (chosen & (torch.rand(b, device=device) < share)).nonzero().flatten()

    def draw(n: int, low: float, high: float) -> torch.Tensor:  # (n, 1, 1, 1) uniform
        return low + (high - low) * torch.rand(n, 1, 1, 1, device=device)

    small = some(0.3)
    if len(small):
        factor = 1 + torch.rand(len(small), device=device)
        shrunk, boxes_shrunk = shrink_scenes(x[small], boxes[small], factor)
        x, boxes = x.index_copy(0, small, shrunk), boxes.index_copy(0, small, boxes_shrunk)
    faint = some(0.5)
    x = x.index_copy(0, faint, x[faint] * draw(len(faint), 0.3, 1))
    ids = chosen.nonzero().flatten()
    n = len(ids)
    level = draw(n, 0, 0.6) + draw(n, 0, 0.4) * ramp(x[ids], None)
    level = level + draw(n, 0, 0.3) * blotches(x[ids], None)
    x = x.index_copy(0, ids, lay(x[ids], level.clamp(max=0.9)))
    dark = some(0.5)
    x = x.index_copy(0, dark, 1 - x[dark])  # dark ink on light paper
    blurred = some(0.25)
    if len(blurred):
        x = x.index_copy(0, blurred, blur(x[blurred], 0.5 + torch.rand(()).item()))
    noisy = some(0.5)
    sigma = draw(len(noisy), 0, 0.08)
    x = x.index_copy(0, noisy, x[noisy] + sigma * torch.randn_like(x[noisy]))
    return x.clamp(0, 1), boxes
