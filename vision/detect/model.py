"""A compact anchor-free detector (FCOS-style, one output level) with its loss and decoding.

Every location of the stride-`stride` output grid predicts class scores, the distances
(left, top, right, bottom) from its centre to the sides of its box, and a centerness. Training
targets (FCOS, Tian et al. 2019): a location is positive for the smallest box whose centre region
(`radius` strides) holds it; focal loss for the classes, GIoU loss for the boxes (weighted by the
centerness target), binary cross-entropy for the centerness.
"""

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import (
    batched_nms,
    clip_boxes_to_image,
    generalized_box_iou_loss,
    nms,
    sigmoid_focal_loss,
)

from vision.features import digit_features


class ConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__(
            nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
        )


@dataclasses.dataclass
class DetectorConfig:
    in_channels: int = 1
    num_classes: int = 10
    width: int = 32
    """Channels of the stride-4 stage; the stride-8 and stride-16 stages have 2x and 4x."""
    standardize_input: bool = False
    """Bring every gray input to light ink on black at full contrast first (`standardize`)."""
    backbone: str = "compact"
    """compact: the detector's own (a 3x3 stem, stages of width, 2x, 4x); digits: the digit
    classifier's feature stack (`vision/features.py`) to stride 8, so a classifier's weights can
    start it."""


DIGIT_CHANNELS = (16, 48, 96)
"""The digit classifier's default feature widths (`vision.classify.model.CNNConfig`)."""


def standardize(x: torch.Tensor) -> torch.Tensor:
    """Gray scenes (B, 1, H, W) in [0, 1] of any background level and ink polarity -> light ink
    on black at full contrast: subtract the background (the median pixel), flip dark ink on light
    paper (the pixels' mean lies below the median), divide by the ink's brightness (the largest
    3x3 mean), clamp to [0, 1]. A bar of another level (black letterbox padding on gray paper) can
    outweigh the ink: pad with the background (`as_model_input` does)."""
    n = x[0].numel()
    pixels = x.flatten(1).sort(1).values  # (B, H*W); ONNX has sort, not median
    background = pixels[:, (n - 1) // 2].view(-1, 1, 1, 1)  # the median, as torch.median gives it
    x = x - background
    x = x * torch.where(x.mean((1, 2, 3), keepdim=True) >= 0, 1.0, -1.0)
    ink = F.avg_pool2d(x, 3, stride=1, padding=1).amax((1, 2, 3), keepdim=True)
    return (x / ink.clamp(min=0.05)).clamp(0, 1)


class Detector(nn.Module):
    stride = 4

    def __init__(self, cfg: DetectorConfig) -> None:
        super().__init__()
        c = cfg.width
        self.in_channels = cfg.in_channels
        self.standardize_input = cfg.standardize_input
        self.backbone = cfg.backbone
        if cfg.backbone == "digits":  # named and shaped as the classifier's: --init-from loads it
            self.features = digit_features(DIGIT_CHANNELS, cfg.in_channels)  # /2, /4, /8
            self.lateral4 = nn.Conv2d(DIGIT_CHANNELS[1], c, 1)
            c8 = DIGIT_CHANNELS[2]
        else:
            self.stem = ConvBN(cfg.in_channels, c // 2, 2)  # /2
            self.stage4 = nn.Sequential(ConvBN(c // 2, c, 2), ConvBN(c, c))  # /4
            self.stage8 = nn.Sequential(ConvBN(c, 2 * c, 2), ConvBN(2 * c, 2 * c))  # /8
            c8 = 2 * c
        self.stage16 = nn.Sequential(
            ConvBN(c8, 4 * c, 2), ConvBN(4 * c, 4 * c), ConvBN(4 * c, 4 * c)
        )
        self.lateral8 = nn.Conv2d(c8, c, 1)
        self.lateral16 = nn.Conv2d(4 * c, c, 1)
        self.tower = nn.Sequential(ConvBN(c, c), ConvBN(c, c))
        self.classes = nn.Conv2d(c, cfg.num_classes, 3, padding=1)
        self.box = nn.Conv2d(c, 4, 3, padding=1)
        self.centerness = nn.Conv2d(c, 1, 3, padding=1)
        nn.init.constant_(self.classes.bias, -4.6)  # start at p = 0.01, as FCOS and RetinaNet do

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self.standardize_input:
            x = standardize(x)  # (B, 1, H, W)
        if self.backbone == "digits":
            x4 = self.features[1](self.features[0](x))  # (B, 48, H/4, W/4)
            x8 = self.features[2](x4)  # (B, 96, H/8, W/8)
            x4 = self.lateral4(x4)  # (B, c, H/4, W/4)
        else:
            x4 = self.stage4(self.stem(x))  # (B, c, H/4, W/4)
            x8 = self.stage8(x4)  # (B, 2c, H/8, W/8)
        x16 = self.stage16(x8)  # (B, 4c, H/16, W/16)
        top = self.lateral8(x8) + F.interpolate(self.lateral16(x16), scale_factor=2.0)
        f = self.tower(x4 + F.interpolate(top, scale_factor=2.0))  # (B, c, H/4, W/4)
        logits = self.classes(f).flatten(2).transpose(1, 2)  # (B, L, C), L = H/4 * W/4
        ltrb = F.softplus(self.box(f)).flatten(2).transpose(1, 2) * self.stride  # (B, L, 4) pixels
        centerness = self.centerness(f).flatten(1)  # (B, L) logits
        return logits, ltrb, centerness


def build_model(cfg: DetectorConfig) -> Detector:
    """The detector in channels-last memory format (faster convolutions on CPU and GPU)."""
    return Detector(cfg).to(memory_format=torch.channels_last)


def grid_points(height: int, width: int, stride: int, device=None) -> torch.Tensor:
    """Centres (L, 2) of the output locations, (x, y) in input pixels, row-major."""
    ys = (torch.arange(height // stride, device=device) + 0.5) * stride
    xs = (torch.arange(width // stride, device=device) + 0.5) * stride
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([xx.flatten(), yy.flatten()], -1)


def to_boxes(points: torch.Tensor, ltrb: torch.Tensor) -> torch.Tensor:
    """Distances (..., L, 4) from points (L, 2) -> boxes (..., L, 4) x1y1x2y2."""
    return torch.cat([points - ltrb[..., :2], points + ltrb[..., 2:]], -1)


def to_ltrb(points: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Boxes (..., 4) -> distances (..., 4) of the sides from points (..., 2): the inverse of to_boxes."""
    return torch.cat([points - boxes[..., :2], boxes[..., 2:] - points], -1)


def assign(points, boxes, labels, stride: int, radius: float = 1.5):
    """Each location's box: the smallest one whose centre region holds the location.

    points (L, 2), boxes (B, K, 4), labels (B, K) with -1 padding -> matched (B, L) index into K,
    positive (B, L)."""
    p = points.view(1, -1, 1, 2)  # (1, L, 1, 2)
    inside = to_ltrb(p, boxes.unsqueeze(1)).amin(-1) > 0  # (B, L, K)
    centre = (boxes[..., :2] + boxes[..., 2:]).unsqueeze(1) / 2  # (B, 1, K, 2)
    near = ((p - centre).abs() < radius * stride).all(-1)
    area = (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])  # (B, K)
    ok = inside & near & (labels >= 0).unsqueeze(1)
    cost = torch.where(ok, area.unsqueeze(1), torch.inf)
    best, matched = cost.min(-1)  # (B, L)
    return matched, best.isfinite()


def detection_loss(
    logits, ltrb, centerness, boxes, labels, points, stride: int
) -> dict[str, torch.Tensor]:
    """FCOS losses, each averaged over the positive locations of the batch."""
    matched, positive = assign(points, boxes, labels, stride)
    num_pos = positive.sum().clamp(min=1)
    target_cls = labels.gather(1, matched).clamp(min=0)  # (B, L)
    onehot = F.one_hot(target_cls, logits.shape[-1]).to(logits.dtype) * positive.unsqueeze(-1)
    cls_loss = sigmoid_focal_loss(logits, onehot, reduction="sum") / num_pos
    target_box = boxes.gather(1, matched.unsqueeze(-1).expand(-1, -1, 4))[positive]  # (P, 4)
    p = points.expand(len(boxes), -1, -1)[positive]  # (P, 2)
    t = to_ltrb(p, target_box)
    ctr_target = (
        (t[:, [0, 2]].amin(1) / t[:, [0, 2]].amax(1))
        * (t[:, [1, 3]].amin(1) / t[:, [1, 3]].amax(1))
    ).sqrt()
    pred_box = to_boxes(p, ltrb[positive])
    giou = generalized_box_iou_loss(pred_box.float(), target_box, reduction="none")
    box_loss = (giou * ctr_target).sum() / ctr_target.sum().clamp(min=1e-6)
    ctr_loss = (
        F.binary_cross_entropy_with_logits(centerness[positive], ctr_target, reduction="sum")
        / num_pos
    )
    return {"cls": cls_loss, "box": box_loss, "ctr": ctr_loss}


def boxes_and_scores(logits, ltrb, centerness, points, size: tuple[int, int] | None = None):
    """Every location's box (B, L, 4), clipped to `size` (H, W) when given, and its score per
    class (B, L, C): the geometric mean of the class probability and the centerness. The part of
    decoding an exported graph holds."""
    scores = (logits.sigmoid() * centerness.sigmoid().unsqueeze(-1)).sqrt()  # (B, L, C)
    boxes = to_boxes(points, ltrb)  # (B, L, 4)
    return (boxes if size is None else clip_boxes_to_image(boxes, size)), scores


@torch.no_grad()
def select(
    boxes,
    scores,
    score_thresh: float = 0.05,
    nms_iou: float = 0.6,
    max_det: int = 100,
    pre_nms: int = 1000,
) -> list[dict[str, torch.Tensor]]:
    """Per image the detections kept from `boxes_and_scores`: the best `pre_nms` (location,
    class) pairs above `score_thresh`, class-wise NMS at `nms_iou`, at most `max_det`; batched
    over the images. The post-processing after an exported graph."""
    b, n_loc, n_cls = scores.shape
    top, idx = scores.flatten(1).topk(min(pre_nms, n_loc * n_cls), dim=1)  # (B, k)
    loc, label = idx // n_cls, idx % n_cls
    boxes = boxes.gather(1, loc.unsqueeze(-1).expand(-1, -1, 4))  # (B, k, 4)
    image = torch.arange(b, device=scores.device).unsqueeze(1).expand_as(label)
    keep = top > score_thresh
    boxes, top, label, image = boxes[keep], top[keep], label[keep], image[keep]
    kept = batched_nms(
        boxes.float(), top.float(), image * n_cls + label, nms_iou
    )  # sorted by score
    out = []
    for i in range(b):  # split the kept detections by image (no per-image compute)
        mine = kept[image[kept] == i][:max_det]
        out.append(
            {"boxes": boxes[mine].float(), "scores": top[mine].float(), "labels": label[mine]}
        )
    return out


@torch.no_grad()
def decode(
    logits, ltrb, centerness, points, *keep, size: tuple[int, int] | None = None
) -> list[dict[str, torch.Tensor]]:
    """Per image the boxes (clipped to `size` (H, W) when given), scores and labels kept by
    class-wise NMS, batched over the images; `keep`: `select`'s thresholds after the scores."""
    boxes, scores = boxes_and_scores(logits, ltrb, centerness, points, size)
    return select(boxes, scores, *keep)


def one_per_object(det: dict[str, torch.Tensor], nms_iou: float = 0.6) -> dict[str, torch.Tensor]:
    """One image's detections after class-agnostic NMS: a box overlapping a better-scored box of
    any class by more than `nms_iou` is dropped. For drawing and `predict`; COCO scoring keeps
    `decode`'s class-wise NMS, as detectors are conventionally scored."""
    keep = nms(det["boxes"].float(), det["scores"].float(), nms_iou)
    return {k: v[keep] for k, v in det.items()}
