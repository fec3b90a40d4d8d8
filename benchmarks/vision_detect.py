"""vision-detect: our anchor-free detector vs torchvision's SSDlite320-MobileNetV3 (weights=None,
num_classes=11, at most 100 detections per image, as ours and COCO's evaluation keep), trained
from scratch on the same fresh digit scenes (same seed, batch 32) for the same wall-clock time (ours: the default config; SSDlite: SGD with the torchvision reference recipe
scaled to batch 32, lr 0.15 x 32/192, momentum 0.9, weight decay 4e-5, warmup then cosine over
the budget). Both are scored on the same 1,000 test scenes: COCO mAP@[.5:.95] and mAP@.5,
parameter counts, training seconds and inference images/s (batches of 100, NMS included)."""

import math
import tempfile
import time
from pathlib import Path

import torch
from torchvision.models.detection import ssdlite320_mobilenet_v3_large

from core.config import build
from core.device import pick_device
from core.seed import seed_everything
from vision.detect.data import SceneLoader
from vision.detect.predict import detect, load_trained
from vision.detect.train import DetectConfig, coco_map, main, make_data


def out_dir(args, name: str) -> str:
    return str(Path(args.keep_runs) / name) if args.keep_runs else tempfile.mkdtemp()


def score(dets: list[dict], scenes) -> dict[str, float]:
    result = coco_map(dets, scenes)
    return {"map": round(result["map"].item(), 4), "map_50": round(result["map_50"].item(), 4)}


def images_per_s(infer, images: torch.Tensor) -> float:
    """Test images per second through `infer` (a list of per-image detections), after a warm-up."""
    infer(images[:100])
    t0 = time.perf_counter()
    infer(images)
    return round(len(images) / (time.perf_counter() - t0), 1)


def train_ssdlite(cfg: DetectConfig, pool, budget: float, device: torch.device):
    """SSDlite trained for `budget` seconds on the scene stream ours saw; returns (model, steps)."""
    seed_everything(cfg.seed)
    model = ssdlite320_mobilenet_v3_large(
        weights=None, weights_backbone=None, num_classes=11, detections_per_img=100
    ).to(device)
    lr = 0.15 * cfg.batch_size / 192  # the reference recipe: lr 0.15 for 8 GPUs x 24 images
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=4e-5)
    loader = SceneLoader(*pool, cfg.batch_size, cfg.scene_options(), seed=cfg.seed, device=device)
    model.train()
    t0, steps = time.perf_counter(), 0
    for images, boxes, labels in loader:
        elapsed = time.perf_counter() - t0
        if elapsed >= budget:
            break
        warm = min(1.0, (steps + 1) / cfg.warmup_steps)
        for group in opt.param_groups:  # warmup, then cosine over the time budget
            group["lr"] = lr * warm * 0.5 * (1 + math.cos(math.pi * elapsed / budget))
        targets = [
            {"boxes": b[k >= 0], "labels": k[k >= 0] + 1}
            for b, k in zip(boxes, labels, strict=True)
        ]
        losses = model(list(images.expand(-1, 3, -1, -1).float() / 255), targets)
        opt.zero_grad(set_to_none=True)
        sum(losses.values()).backward()
        opt.step()
        steps += 1
    return model.eval(), steps


@torch.no_grad()
def ssdlite_detect(model, images: torch.Tensor, batch_size: int = 100) -> list[dict]:
    device = next(model.parameters()).device
    out = []
    for i in range(0, len(images), batch_size):
        x = images[i : i + batch_size].to(device).expand(-1, 3, -1, -1).float() / 255
        for d in model(list(x)):
            out.append(
                {
                    "boxes": d["boxes"].cpu(),
                    "scores": d["scores"].cpu(),
                    "labels": d["labels"].cpu() - 1,
                }
            )
    return out


def run(args) -> dict:
    fields = (
        {"max_steps": 30, "test_scenes": 100, "val_scenes": 50, "eval_every": 0}
        if args.quick
        else {}
    )
    cfg = build(DetectConfig, out_dir=out_dir(args, "default"), data_dir=args.data_dir,
                device=args.device, **fields)  # fmt: skip
    ours = main(cfg)
    budget = ours["wall_seconds"]
    device = pick_device(args.device)
    model, _, _, _ = load_trained(cfg.out_dir, device)
    data = make_data(cfg)
    peer, peer_steps = train_ssdlite(cfg, data.pool, budget, device)
    if args.keep_runs:
        from core.checkpoint import save_weights

        save_weights(
            peer, Path(out_dir(args, "ssdlite")) / "model.safetensors", {"steps": peer_steps}
        )
    test = data.test
    peer_scores = score(ssdlite_detect(peer, test.images), test)
    return {
        "device": ours["device"],
        "train_seconds": round(budget, 1),
        "steps": ours["steps"],
        "map": round(ours["metrics"]["map"], 4),
        "map_50": round(ours["metrics"]["map_50"], 4),
        "val_map": round(ours["metrics"].get("val_map", float("nan")), 4),
        "params": sum(p.numel() for p in model.parameters()),
        "images_per_s": images_per_s(lambda x: detect(model, x), test.images),
        "ssdlite_map": peer_scores["map"],
        "ssdlite_map_50": peer_scores["map_50"],
        "ssdlite_params": sum(p.numel() for p in peer.parameters()),
        "ssdlite_steps": peer_steps,
        "ssdlite_images_per_s": images_per_s(lambda x: ssdlite_detect(peer, x), test.images),
        "test_scenes": len(test),
    }
