"""Digit images a little unlike MNIST's: the shifts `eval --shift` measures a model under, and the
random augmentation that trains a model to shrug them off.

Each shift takes float images in [0, 1], light ink on a dark background, (B, 1, H, W), a severity
in the shift's own unit and a `torch.Generator` for whatever it draws, and returns images of the
same shape in [0, 1]. Nothing here reads or writes the data root.
"""

import io
import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.transforms.functional import gaussian_blur


def _uniform(b: int, low: float, high: float, g: torch.Generator | None, device) -> torch.Tensor:
    return low + (high - low) * torch.rand(b, generator=g, device=device)


def _sign(b: int, g: torch.Generator | None, device) -> torch.Tensor:
    return torch.randint(0, 2, (b,), generator=g, device=device) * 2.0 - 1.0


def affine(x: torch.Tensor, degrees, zoom, dx, dy) -> torch.Tensor:
    """Rotate each image by `degrees`, scale it by `zoom` (< 1: smaller) and move it by (dx, dy)
    pixels about its centre; tensors of shape (B,). What moves in from outside is dark."""
    b, _, h, w = x.shape  # (B, 1, H, W)
    angle = torch.deg2rad(degrees)
    cos, sin = angle.cos() / zoom, angle.sin() / zoom
    tx, ty = -2 * dx / w, -2 * dy / h  # the grid samples where each output pixel comes from
    theta = torch.stack(
        [
            torch.stack([cos, -sin, tx * cos - ty * sin], 1),
            torch.stack([sin, cos, tx * sin + ty * cos], 1),
        ],
        1,
    )  # (B, 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")


def rotate(x: torch.Tensor, degrees: float, g: torch.Generator | None = None) -> torch.Tensor:
    """Rotated by `degrees`, clockwise or anticlockwise at random."""
    b, zero = len(x), torch.zeros(len(x), device=x.device)
    return affine(x, degrees * _sign(b, g, x.device), zero + 1, zero, zero)


def scale(x: torch.Tensor, zoom: float, g: torch.Generator | None = None) -> torch.Tensor:
    """Scaled by `zoom` about the centre (0.5: half the height)."""
    zero = torch.zeros(len(x), device=x.device)
    return affine(x, zero, zero + zoom, zero, zero)


def move(x: torch.Tensor, pixels: float, g: torch.Generator | None = None) -> torch.Tensor:
    """Moved `pixels` in a random direction."""
    b, zero = len(x), torch.zeros(len(x), device=x.device)
    direction = _uniform(b, 0, 2 * math.pi, g, x.device)
    return affine(x, zero, zero + 1, pixels * direction.cos(), pixels * direction.sin())


def thicken(x: torch.Tensor, steps: float, g: torch.Generator | None = None) -> torch.Tensor:
    """Strokes grown by `steps` pixels on every side (a fraction blends in the next step)."""
    for _ in range(math.ceil(steps)):
        grown = F.max_pool2d(x, 3, stride=1, padding=1)
        part = min(1.0, steps)
        x, steps = x + part * (grown - x), steps - 1
    return x


def thin(x: torch.Tensor, amount: float, g: torch.Generator | None = None) -> torch.Tensor:
    """Strokes worn away: `amount` of a one-pixel erosion (1: all of it)."""
    eroded = -F.max_pool2d(-x, 3, stride=1, padding=1)
    return x + amount * (eroded - x)


def blur(x: torch.Tensor, sigma: float, g: torch.Generator | None = None) -> torch.Tensor:
    """Gaussian blur of standard deviation `sigma` pixels."""
    size = 2 * math.ceil(3 * sigma) + 1
    return gaussian_blur(x, [size, size], [sigma, sigma])


def contrast(x: torch.Tensor, ink: float, g: torch.Generator | None = None) -> torch.Tensor:
    """Faint ink: the brightest stroke at `ink` (1: unchanged) on the same dark background."""
    return x * ink


def lay(x: torch.Tensor, level: torch.Tensor | float) -> torch.Tensor:
    """The ink of `x` (light on black) laid over a background of brightness `level` (a number or a
    map broadcasting to x): full-brightness ink stays at 1."""
    return level + (1 - level) * x


def background(x: torch.Tensor, level: float, g: torch.Generator | None = None) -> torch.Tensor:
    """A gray background at `level` (0: black) under the same full-brightness ink."""
    return lay(x, level)


def ramp(x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    """(B, 1, H, W): a linear ramp across each image in a random direction, 0.5 at the centre; it
    spans [0, 1] corner to corner on a diagonal, [0.15, 0.85] along an axis."""
    b, _, h, w = x.shape
    angle = _uniform(b, 0, 2 * math.pi, g, x.device).view(b, 1, 1, 1)
    ys = torch.linspace(-0.5, 0.5, h, device=x.device).view(1, 1, h, 1)
    xs = torch.linspace(-0.5, 0.5, w, device=x.device).view(1, 1, 1, w)
    return (angle.cos() * xs + angle.sin() * ys) / math.sqrt(2) + 0.5


def gradient(x: torch.Tensor, amount: float, g: torch.Generator | None = None) -> torch.Tensor:
    """Uneven light: a background rising across the image in a random direction, by up to
    `amount` (all of it corner to corner on a diagonal, 70% along an axis)."""
    return lay(x, amount * ramp(x, g))


def blotches(x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    """(B, 1, H, W) in [0, 1]: smooth random blotches, about six across an image."""
    coarse = torch.rand(len(x), 1, 6, 6, generator=g, device=x.device)
    return F.interpolate(coarse, size=x.shape[-2:], mode="bicubic", align_corners=False).clamp(0, 1)


def texture(x: torch.Tensor, amount: float, g: torch.Generator | None = None) -> torch.Tensor:
    """A blotchy background (shadows, stains) between black and `amount`."""
    return lay(x, amount * blotches(x, g))


def paper(x: torch.Tensor, shade: float, g: torch.Generator | None = None) -> torch.Tensor:
    """Dark ink on white paper under uneven light: the paper darkens by `shade` across the image
    (the inverse of `gradient`)."""
    return 1 - gradient(x, shade, g)


def jpeg(x: torch.Tensor, quality: float, g: torch.Generator | None = None) -> torch.Tensor:
    """Saved as JPEG at `quality` (100: best) and read back (Pillow, image by image)."""
    pixels = x.mul(255).round().to(torch.uint8).cpu().numpy()  # (B, 1, H, W)
    out = []
    for image in pixels:
        buffer = io.BytesIO()
        Image.fromarray(image[0]).save(buffer, format="JPEG", quality=int(quality))
        out.append(torch.from_numpy(np.array(Image.open(buffer)))[None])
    return torch.stack(out).to(x.device).float() / 255


def noise(x: torch.Tensor, sigma: float, g: torch.Generator | None = None) -> torch.Tensor:
    """Gaussian pixel noise of standard deviation `sigma`."""
    return (x + sigma * torch.randn(x.shape, generator=g, device=x.device)).clamp(0, 1)


def augment(x: torch.Tensor, share: float = 0.35, p: float = 0.5) -> torch.Tensor:
    """Training augmentation against the shifts above, on the training device. A random `share`
    of the batch gets a strong affine (rotation up to 40 degrees, scale 0.6 to 1.15, moves up to
    4 pixels) and then each of stroke width, blur, contrast and background with chance `p`, at a
    severity drawn once per batch; the rest get a mild one (10 degrees, 2 pixels), as plain
    training does. Images (B, 1, H, W) in [0, 1]."""
    b, device = len(x), x.device
    strong = torch.rand(b, device=device) < share
    reach = torch.where(strong, 1.0, 0.0)  # how far towards the strong ranges each image goes
    x = affine(
        x,
        _uniform(b, -1, 1, None, device) * (10 + 30 * reach),
        1 + _uniform(b, -0.4, 0.15, None, device) * reach,
        _uniform(b, -1, 1, None, device) * (2 + 2 * reach),
        _uniform(b, -1, 1, None, device) * (2 + 2 * reach),
    )
    shifts = [
        (thicken, 2 * torch.rand(()).item()),
        (thin, torch.rand(()).item()),
        (blur, 0.3 + 1.7 * torch.rand(()).item()),
        (contrast, 0.15 + 0.85 * torch.rand(()).item()),
        (background, 0.7 * torch.rand(()).item()),
    ]
    for shift, severity in shifts:
        chosen = strong & (torch.rand(b, device=device) < p)
        x = torch.where(chosen[:, None, None, None], shift(x, severity), x)
    return x.clamp(0, 1)
