"""vision-detect: our anchor-free detector vs two torchvision detectors, all trained from scratch
on the same fresh digit scenes (same seed, batch 32) for the same wall-clock time, and scored
with the same COCO mAP on the same 1,000 test scenes.

Ours runs its default config; its training time is the peers' budget. The peers (weights=None,
weights_backbone=None, at most 100 detections per image, as ours and COCO's evaluation keep)
train with SGD, momentum 0.9, their torchvision
reference recipe's lr scaled to batch 32, warmup over --warmup-steps as ours, then cosine over
the budget:
- SSDlite320-MobileNetV3: lr 0.15 x 32/192, weight decay 4e-5; it resizes each scene to 320x320;
  11 softmax classes, class 0 the background.
- FCOS with a ResNet18-FPN backbone (P3-P7, 256 channels, built as torchvision's
  fcos_resnet50_fpn builds its ResNet50 one; BatchNorm trained, every layer trainable, as
  torchvision does without weights): lr 0.01 x 32/16, weight decay 1e-4; at the scenes' own size
  (min_size = max_size = 128, no resize), with ours' score threshold 0.05; 10 sigmoid classes, as
  ours (a sigmoid detector has no background class).
Reported per model: mAP@[.5:.95], mAP@.5, parameters, GMACs per image, training steps,
inference images/s (batches of 100, NMS included); for ours also the shift suite of `eval --shift`
on the test scenes (mAP per condition, mild to strong) and the worst of its background and
contrast conditions at the middle severity. The peers train on the clean scenes as their recipes
do; ours trains with its default robust augmentation, so the clean comparison does not favour it."""

import functools
import math
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from torchvision.models.detection import FCOS, ssdlite320_mobilenet_v3_large
from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
from torchvision.ops.feature_pyramid_network import LastLevelP6P7

from benchmarks.runs import run_dir
from core.device import pick_device
from core.parse import build
from core.seed import seed_everything
from core.shift import at_middle, shift_rows
from vision.detect.data import SceneLoader, make_data
from vision.detect.predict import detect, load_trained
from vision.detect.scoring import coco_map, score_shifts
from vision.detect.train import DetectConfig, main


def score(dets: list[dict], scenes) -> dict[str, float]:
    result = coco_map(dets, scenes)
    return {"map": round(result["map"].item(), 4), "map_50": round(result["map_50"].item(), 4)}


def images_per_s(infer, images: torch.Tensor) -> float:
    """Test images per second through `infer` (a list of per-image detections), after a warm-up."""
    infer(images[:100])
    t0 = time.perf_counter()
    infer(images)
    return round(len(images) / (time.perf_counter() - t0), 1)


@torch.no_grad()
def gmacs(infer, image: torch.Tensor) -> float:
    """Multiply-accumulates (in billions) of `infer` on one image, as torch's FLOP counter sees them."""
    with FlopCounterMode(display=False) as counter:
        infer(image[None])
    return round(counter.get_total_flops() / 2e9, 3)


def build_ssdlite(size: int) -> nn.Module:
    """SSDlite320 on MobileNetV3-Large, from scratch; it resizes any input to 320 x 320."""
    return ssdlite320_mobilenet_v3_large(
        weights=None, weights_backbone=None, num_classes=11, detections_per_img=100
    )


def build_fcos(size: int) -> nn.Module:
    """FCOS on ResNet18-FPN, from scratch, at `size` x `size` inputs (no resize)."""
    backbone = resnet_fpn_backbone(
        backbone_name="resnet18",
        weights=None,
        norm_layer=nn.BatchNorm2d,
        trainable_layers=5,
        returned_layers=[2, 3, 4],
        extra_blocks=LastLevelP6P7(256, 256),
    )
    return FCOS(
        backbone,
        num_classes=10,
        min_size=size,
        max_size=size,
        score_thresh=0.05,
        detections_per_img=100,
    )


# name: (builder, the reference recipe's lr and batch, weight decay, label of digit 0)
PEERS = {
    "ssdlite": (build_ssdlite, 0.15, 192, 4e-5, 1),  # 8 GPUs x 24 images; 0: the background
    "fcos": (build_fcos, 0.01, 16, 1e-4, 0),  # 8 GPUs x 2 images
}


def train_peer(
    name: str,
    cfg: DetectConfig,
    pool,
    budget: float,
    device: torch.device,
    max_steps: int | None = None,
) -> tuple[nn.Module, int, str | None]:
    """Peer `name` trained for `budget` seconds (or `max_steps`) on the scene stream ours saw;
    returns the model, its steps and why it stopped early (a non-finite loss), if it did."""
    builder, base_lr, base_batch, weight_decay, first = PEERS[name]
    seed_everything(cfg.seed)
    model = builder(cfg.image_size).to(device)
    lr = base_lr * cfg.batch_size / base_batch
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay)
    loader = SceneLoader(*pool, cfg.batch_size, cfg.scene_options(), seed=cfg.seed, device=device)
    model.train()
    t0, steps, stopped = time.perf_counter(), 0, None
    for images, boxes, labels in loader:
        elapsed = time.perf_counter() - t0
        if elapsed >= budget or steps == max_steps:
            break
        warm = min(1.0, (steps + 1) / cfg.warmup_steps)
        for group in opt.param_groups:  # warmup, then cosine over the time budget
            group["lr"] = lr * warm * 0.5 * (1 + math.cos(math.pi * elapsed / budget))
        targets = [
            {"boxes": b[k >= 0], "labels": k[k >= 0] + first}
            for b, k in zip(boxes, labels, strict=True)
        ]
        loss = sum(model(list(images.expand(-1, 3, -1, -1).float() / 255), targets).values())
        if not torch.isfinite(loss):  # stop before the step, so the weights stay finite
            stopped = f"non-finite loss at step {steps + 1}"
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        steps += 1
    return model.eval(), steps, stopped


@torch.no_grad()
def peer_detect(name: str, model, images: torch.Tensor, batch_size: int = 100) -> list[dict]:
    """Peer `name`'s detections on uint8 scenes, labels back to 0..9."""
    first = PEERS[name][-1]
    device = next(model.parameters()).device
    out = []
    for i in range(0, len(images), batch_size):
        x = images[i : i + batch_size].to(device).expand(-1, 3, -1, -1).float() / 255
        for d in model(list(x)):
            out.append(
                {
                    "boxes": d["boxes"].cpu(),
                    "scores": d["scores"].cpu(),
                    "labels": d["labels"].cpu() - first,
                }
            )
    return out


def run(args) -> dict:
    fields = (
        {"max_steps": 10, "test_scenes": 50, "val_scenes": 20, "eval_every": 0}
        if args.quick
        else {}
    )
    cfg = build(
        DetectConfig,
        out_dir=run_dir(args, "default"),
        data_dir=args.data_dir,
        device=args.device,
        **fields,
    )
    ours = main(cfg)
    budget = ours["wall_seconds"]
    device = pick_device(args.device)
    model, names, train_cfg, _ = load_trained(cfg.out_dir, device)
    data = make_data(cfg)
    test = data.test
    result = {
        "device": ours["device"],
        "train_seconds": round(budget, 1),
        "steps": ours["steps"],
        "map": round(ours["metrics"]["map"], 4),
        "map_50": round(ours["metrics"]["map_50"], 4),
        "val_map": round(ours["metrics"].get("val_map", float("nan")), 4),
        "params": sum(p.numel() for p in model.parameters()),
        "gmacs_per_image": gmacs(lambda x: detect(model, x), test.images[0]),
        "images_per_s": images_per_s(lambda x: detect(model, x), test.images),
    }
    table = score_shifts(model, test, names, train_cfg, cfg.out_dir)
    result["shift"] = shift_rows(table)
    lighting = ("background", "gradient", "texture", "paper", "contrast")
    result["shift_worst_lighting_middle"] = round(min(at_middle(table)[k] for k in lighting), 4)
    for name in PEERS:
        peer, steps, stopped = train_peer(name, cfg, data.pool, budget, device)
        if args.keep_runs:
            from core.checkpoint import save_weights

            save_weights(peer, Path(run_dir(args, name)) / "model.safetensors", {"steps": steps})
        infer = functools.partial(peer_detect, name, peer)
        scores = score(infer(test.images), test)
        result |= {
            f"{name}_map": scores["map"],
            f"{name}_map_50": scores["map_50"],
            f"{name}_params": sum(p.numel() for p in peer.parameters()),
            f"{name}_gmacs_per_image": gmacs(infer, test.images[0]),
            f"{name}_steps": steps,
            f"{name}_images_per_s": images_per_s(infer, test.images),
        }
        if stopped:
            result[f"{name}_stopped"] = stopped
        del peer, infer
    return result | {"test_scenes": len(test)}
