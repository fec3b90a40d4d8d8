"""Digit scenes: canvases of 1-6 real MNIST digits at 0.7x-3x, composed on the training device.

A scene's layout (how many digits, which ones, their scales and places, the clutter) is drawn from
a seeded CPU generator, so the same seed gives the same scenes on every device; the pixels are
rendered batched with `grid_sample`. Each digit's box is tight around its rendered ink (pixels
>= INK), in pixel-edge coordinates (x1, y1, x2, y2).
"""

import dataclasses
import functools
import math

import torch

INK = 0.25  # a pixel at or above this brightness (of 1) belongs to a digit's box
MAX_DIGITS = 6


@dataclasses.dataclass
class SceneOptions:
    size: int = 128
    max_digits: int = MAX_DIGITS
    min_scale: float = 0.7
    max_scale: float = 3.0
    max_overlap: float = 0.05
    """Largest IoU a digit's frame may have with an earlier digit's (else it is left out)."""
    noise: float = 0.05
    """Largest standard deviation of the Gaussian background noise (0: none)."""
    clutter: int = 2
    """Most short random strokes per scene (0: none)."""


@dataclasses.dataclass
class Scenes:
    """A fixed set of scenes; boxes and labels are padded with label -1 to `max_digits` per scene.

    `crowd` marks COCO `iscrowd` regions: they are no training target, and in COCO scoring a
    detection on one is neither a hit nor a false positive, nor is the region a miss."""

    images: torch.Tensor  # (N, C, H, W) uint8
    boxes: torch.Tensor  # (N, K, 4) float, xyxy pixels
    labels: torch.Tensor  # (N, K) int64, -1: no box
    crowd: torch.Tensor | None = None  # (N, K) bool, True: a crowd region

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, ids: torch.Tensor) -> "Scenes":
        crowd = None if self.crowd is None else self.crowd[ids]
        return Scenes(self.images[ids], self.boxes[ids], self.labels[ids], crowd)

    def training_tensors(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Images, boxes and labels for training: crowd regions get label -1 (no target)."""
        labels = self.labels if self.crowd is None else self.labels.masked_fill(self.crowd, -1)
        return self.images, self.boxes, labels

    def targets(self, i: int) -> dict[str, torch.Tensor]:
        """Scene `i`'s boxes and labels (and `iscrowd` flags), as COCO scoring takes them."""
        keep = self.labels[i] >= 0
        target = {"boxes": self.boxes[i][keep], "labels": self.labels[i][keep]}
        if self.crowd is not None:
            target["iscrowd"] = self.crowd[i][keep].long()
        return target


def layout(n: int, pool_size: int, opts: SceneOptions, gen: torch.Generator) -> dict:
    """Draw the layout of `n` scenes. Slots 0..K-1 hold digits, the last `clutter` slots strokes;
    each slot has a glyph index, a frame (x1, y1, x2, y2) for the glyph's 28x28, a gain and a flag."""
    k, m, s = opts.max_digits, opts.clutter, opts.size
    count = torch.randint(1, k + 1, (n,), generator=gen)
    log_scale = torch.empty(n, k).uniform_(
        math.log(opts.min_scale), math.log(opts.max_scale), generator=gen
    )
    side = torch.cat([28 * log_scale.exp(), 28 * (0.5 + 0.5 * torch.rand(n, m, generator=gen))], 1)
    side = side.clamp(max=s)  # (n, k + m) the 28x28 frame's side in pixels
    x = torch.rand(n, k + m, generator=gen) * (s - side)
    y = torch.rand(n, k + m, generator=gen) * (s - side)
    frames = torch.stack([x, y, x + side, y + side], -1)  # (n, k + m, 4)
    index = torch.cat(
        [
            torch.randint(0, pool_size, (n, k), generator=gen),
            torch.randint(0, STROKES, (n, m), generator=gen),
        ],
        1,
    )
    gain = torch.cat(
        [0.7 + 0.3 * torch.rand(n, k, generator=gen), 0.2 + 0.4 * torch.rand(n, m, generator=gen)],
        1,
    )
    ink = frames[:, :k] + (4 / 28) * side[:, :k, None] * torch.tensor(
        [1, 1, -1, -1]
    )  # MNIST's border
    iou = pairwise_iou(ink)  # (n, k, k)
    keep = torch.zeros(n, k, dtype=torch.bool)
    for j in range(k):  # greedy: slot j stays if it is wanted and clear of the kept earlier slots
        clear = ((iou[:, j, :j] <= opts.max_overlap) | ~keep[:, :j]).all(1)
        keep[:, j] = (j < count) & clear
    strokes = torch.arange(m) < torch.randint(0, m + 1, (n, 1), generator=gen)  # (n, m)
    noise = opts.noise * torch.rand(n, generator=gen)
    return {
        "frames": frames,
        "index": index,
        "gain": gain,
        "keep": torch.cat([keep, strokes], 1),
        "noise": noise,
        "noise_seed": int(torch.randint(0, 2**31, (1,), generator=gen)),
    }


def pairwise_iou(boxes: torch.Tensor) -> torch.Tensor:
    """IoU (n, k, k) between the k boxes (n, k, 4) of each scene."""
    lt = torch.maximum(boxes[:, :, None, :2], boxes[:, None, :, :2])
    rb = torch.minimum(boxes[:, :, None, 2:], boxes[:, None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area = (boxes[..., 2:] - boxes[..., :2]).prod(-1)
    return inter / (area[:, :, None] + area[:, None, :] - inter)


def render(
    digits: torch.Tensor,
    plan: dict,
    opts: SceneOptions,
    device: torch.device,
    rows: slice = slice(None),
):
    """Pixels (n, 1, H, W) uint8, ink-tight boxes (n, K, 4) and which digit slots hold a digit
    (n, K) for the scenes `rows` of `plan`; `digits` (P, 28, 28) uint8 is the pool."""
    total, k = len(plan["index"]), opts.max_digits
    plan = {key: v if key == "noise_seed" else v[rows] for key, v in plan.items()}
    n, slots = plan["index"].shape
    s = opts.size
    index = plan["index"].to(device)
    glyphs = torch.cat([digits[index[:, :k]], stroke_bank(device)[index[:, k:]]], 1)
    glyphs = glyphs.flatten(0, 1).float() / 255  # (N, 28, 28), N = n * slots
    frames = plan["frames"].to(device).flatten(0, 1)  # (n * slots, 4)
    ry = bilinear_weights(frames[:, 1], frames[:, 3] - frames[:, 1], s)  # (N, H, 28)
    rx = bilinear_weights(frames[:, 0], frames[:, 2] - frames[:, 0], s)  # (N, W, 28)
    layers = ry @ glyphs @ rx.transpose(1, 2)  # (N, H, W): separable bilinear resampling
    keep = plan["keep"].to(device)
    layers = layers.view(n, slots, s, s) * (plan["gain"].to(device) * keep).view(n, slots, 1, 1)
    boxes, found = ink_boxes(layers[:, :k])  # (n, K, 4), (n, K)
    keep = keep[:, :k] & found
    images = layers.amax(1)  # (n, H, W)
    gen = torch.Generator().manual_seed(plan["noise_seed"])
    noise = torch.randn(total, s, s, generator=gen)[rows].to(device)  # the same pixels on any rank
    images = (images + noise.abs() * plan["noise"].to(device).view(n, 1, 1)).clamp(0, 1)
    return (images * 255).round().to(torch.uint8).unsqueeze(1), boxes * keep.unsqueeze(-1), keep


def bilinear_weights(
    start: torch.Tensor, side: torch.Tensor, size: int, src: int = 28
) -> torch.Tensor:
    """(N, size, src) weights that resample a `src`-pixel axis onto `size` canvas pixels, the glyph
    spanning [start, start + side): bilinear with zero padding, as grid_sample (align_corners=False)."""
    centres = torch.arange(size, device=start.device) + 0.5
    u = (centres - start[:, None]) / side[:, None] * src - 0.5  # (N, size) glyph coordinate
    return (1 - (u[:, :, None] - torch.arange(src, device=start.device)).abs()).clamp(min=0)


def ink_boxes(layers: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Boxes (n, k, 4) around the pixels >= INK of each layer (n, k, H, W), and which have ink."""
    ink = layers >= INK
    rows, cols = ink.any(-1), ink.any(-2)  # (n, k, H), (n, k, W)
    size = layers.shape[-1]

    def span(mask):
        first = mask.float().argmax(-1)
        last = size - 1 - mask.flip(-1).float().argmax(-1)
        return first.float(), last.float() + 1

    y1, y2 = span(rows)
    x1, x2 = span(cols)
    return torch.stack([x1, y1, x2, y2], -1), rows.any(-1)


STROKES = 64


@functools.cache
def stroke_bank(device: torch.device) -> torch.Tensor:
    """STROKES fixed 28x28 glyphs (uint8) of short straight or bent strokes: clutter, not digits."""
    gen = torch.Generator().manual_seed(12345)
    start = 8 + 12 * torch.rand(STROKES, 2, generator=gen)
    angle = torch.rand(STROKES, generator=gen) * 2 * math.pi
    bend = (torch.rand(STROKES, generator=gen) - 0.5) * 2.5
    centres = torch.arange(28.0) + 0.5
    yy, xx = torch.meshgrid(centres, centres, indexing="ij")
    pixels = torch.stack([xx, yy], -1).view(1, 1, -1, 2)  # (1, 1, 784, 2)
    t = torch.linspace(0, 1, 12)
    heading = angle[:, None] + bend[:, None] * t  # (S, 12) a bent path of 12 points, 7 px long
    steps = torch.stack([heading.cos(), heading.sin()], -1) * (7 / 12)
    path = start[:, None] + steps.cumsum(1)  # (S, 12, 2)
    dist = (pixels - path.unsqueeze(2)).norm(dim=-1).amin(1)  # (S, 784)
    glyphs = (1.6 - dist).clamp(0, 1).view(STROKES, 28, 28)
    return (glyphs * 255).round().to(torch.uint8).to(device)


def compose(
    digits: torch.Tensor,
    classes: torch.Tensor,
    n: int,
    seed: int,
    opts: SceneOptions,
    device: torch.device | str = "cpu",
):
    """`n` scenes from seed `seed`: images (n, 1, H, W) uint8, boxes (n, K, 4), labels (n, K)."""
    gen = torch.Generator().manual_seed(seed)
    plan = layout(n, len(digits), opts, gen)
    images, boxes, keep = render(digits, plan, opts, device)
    return (
        images,
        boxes,
        torch.where(keep, classes[plan["index"][:, : opts.max_digits]].to(device), -1),
    )


def make_scenes(
    digits: torch.Tensor,
    classes: torch.Tensor,
    n: int,
    seed: int,
    opts: SceneOptions,
    chunk: int = 256,
) -> Scenes:
    """A fixed set of `n` scenes on the CPU, rendered `chunk` at a time."""
    parts = [
        compose(digits, classes, min(chunk, n - i), seed * 1_000_003 + i, opts)
        for i in range(0, n, chunk)
    ]
    return Scenes(*(torch.cat(p) for p in zip(*parts, strict=True)))
