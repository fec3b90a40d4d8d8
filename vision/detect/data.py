"""A run's data: fresh digit scenes from MNIST's training digits with fixed validation and test
scenes, or a COCO folder split by a seeded shuffle (each split says in one line where it comes
from); training batches of scenes composed on the device, and their augmentation."""

import dataclasses
from pathlib import Path

import torch

from core import distributed
from core.errors import ShowcaseError
from vision.detect.coco import load_coco
from vision.detect.scenes import SceneOptions, Scenes, layout, make_scenes, render
from vision.mnist import load_mnist, synthetic_mnist
from vision.shifts import affine, blotches, blur, lay, ramp

TEST_SEED = 20_260_101  # every run is scored on the same test scenes


DIGITS = [str(k) for k in range(10)]


@dataclasses.dataclass
class Data:
    """The training source (a scene loader's digit pool, or fixed COCO images), val and test
    scenes, and a line per split saying where it comes from."""

    names: list[str]
    channels: int
    pool: tuple[torch.Tensor, torch.Tensor] | None  # MNIST digits and classes for fresh scenes
    train: Scenes | None  # fixed training images (COCO)
    val: Scenes | None
    test: Scenes
    splits: dict[str, str]


def count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


UNSEEN = "never seen in training or model selection"


def make_data(cfg) -> Data:
    """The data a run's `DetectConfig` names: digit scenes from MNIST (train digits for training and validation, test digits for test),
    or a COCO folder split by a seeded shuffle into test (10%), validation (10%, or --val-coco)
    and training (the rest)."""
    if cfg.coco:
        return coco_data(cfg)
    mnist = (
        synthetic_mnist(n_train=2048, n_test=512, seed=cfg.seed)
        if cfg.synthetic
        else load_mnist(cfg.data_dir)
    )
    x, y = mnist["train_x"], mnist["train_y"]
    n_val = min(cfg.val_digits, len(x) // 5) if cfg.val_scenes else 0
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(cfg.seed))
    val_ids, train_ids = order[:n_val], order[n_val:]
    opts = cfg.scene_options()
    scenes = (
        (min(cfg.val_scenes, 16), min(cfg.test_scenes, 16))
        if cfg.synthetic
        else (cfg.val_scenes, cfg.test_scenes)
    )
    val = make_scenes(x[val_ids], y[val_ids], scenes[0], cfg.seed + 1, opts) if n_val else None
    test = make_scenes(mnist["test_x"], mnist["test_y"], scenes[1], TEST_SEED, opts)
    source = "synthetic MNIST" if cfg.synthetic else "MNIST"
    splits = {
        "train": f"fresh scenes every step from {count(len(train_ids), source + ' training digit')}",
        "val": (
            f"{count(len(val), 'scene')} from {n_val} other {source} training digits (seed "
            f"{cfg.seed + 1}); they pick the kept weights"
        )
        if val
        else "none (--val-scenes 0 or --val-digits 0): the last step's weights are kept",
        "test": f"{count(len(test), 'scene')} from the {source} test digits (seed {TEST_SEED}), {UNSEEN}",
    }
    return Data(DIGITS, 1, (x[train_ids], y[train_ids]), None, val, test, splits)


def coco_data(cfg) -> Data:
    """A COCO folder split by a seeded shuffle: the first 10% for the test, the next 10% for
    validation (unless --val-coco gives its own folder), the rest for training."""
    scenes, names = load_coco(Path(cfg.coco), cfg.image_size, channels=3)
    parts = 2 if cfg.val_coco else 3
    if len(scenes) < parts:
        raise ShowcaseError(
            f"{cfg.coco}: a COCO training folder needs at least {parts} images "
            f"(training, {'' if cfg.val_coco else 'validation, '}test)"
        )
    order = torch.randperm(len(scenes), generator=torch.Generator().manual_seed(cfg.seed))
    held = max(1, len(scenes) // 10)
    test = scenes.subset(order[:held])
    slice_ = f"a seeded 10% slice of {cfg.coco} (seed {cfg.seed})"
    if cfg.val_coco:
        val, val_names = load_coco(Path(cfg.val_coco), cfg.image_size, channels=3)
        if val_names != names:
            raise ShowcaseError(
                f"{cfg.val_coco}: its categories {val_names} differ from {cfg.coco}'s {names}"
            )
        train = scenes.subset(order[held:])
        val_text = f"{cfg.val_coco}: all {count(len(val), 'image')}"
    else:
        val, train = scenes.subset(order[held : 2 * held]), scenes.subset(order[2 * held :])
        val_text = f"{count(len(val), 'image')}, another {slice_[2:]}"
    splits = {
        "train": f"{cfg.coco}: the other {count(len(train), 'image')}",
        "val": f"{val_text}; they pick the kept weights",
        "test": f"{count(len(test), 'image')}, {slice_}, {UNSEEN}",
    }
    return Data(names, 3, None, train, val, test, splits)


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


class SceneLoader:
    """Endless fresh scenes: batch b is drawn from (seed, b), so a resume continues exactly.

    Each optimizer step takes `batch_size` scenes over all ranks and micro-batches; each rank
    renders only its own slice of every micro-batch's layout."""

    def __init__(
        self,
        digits: torch.Tensor,
        classes: torch.Tensor,
        batch_size: int,
        opts: SceneOptions,
        *,
        grad_accum: int = 1,
        seed: int = 0,
        device=None,
    ) -> None:
        world = distributed.world_size()
        if batch_size % (grad_accum * world):
            raise ShowcaseError(
                f"--batch-size {batch_size} must be divisible by --grad-accum x processes "
                f"({grad_accum} x {world})"
            )
        self.digits, self.classes, self.opts = digits.to(device), classes.to(device), opts
        self.chunk = batch_size // grad_accum
        self.per_rank = self.chunk // world
        self.grad_accum, self.seed, self.device = grad_accum, seed, torch.device(device or "cpu")
        self.batch = 0

    @classmethod
    def for_config(cls, digits, classes, cfg, opts: SceneOptions, device=None) -> "SceneLoader":
        return cls(
            digits,
            classes,
            cfg.batch_size,
            opts,
            grad_accum=cfg.grad_accum,
            seed=cfg.seed,
            device=device,
        )

    def state_dict(self) -> dict[str, int]:
        return {"batch": self.batch}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.batch = int(state["batch"])

    def __iter__(self):
        start = distributed.rank() * self.per_rank
        while True:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.batch + 7_919)
            plan = layout(self.chunk, len(self.digits), self.opts, gen)
            mine = slice(start, start + self.per_rank)
            images, boxes, keep = render(self.digits, plan, self.opts, self.device, mine)
            classes = self.classes[plan["index"][mine, : self.opts.max_digits].to(self.device)]
            self.batch += 1
            yield images, boxes, torch.where(keep, classes, -1)


def coco_test_scenes(folder: str, train_cfg: dict, channels: int, names: list) -> tuple:
    """(scenes, split) of a COCO folder scored whole by `eval --coco`; the split says whether the
    run trained or was selected on images of it."""
    scenes, coco_names = load_coco(Path(folder), train_cfg["image_size"], channels)
    if len(coco_names) != len(names):
        raise ShowcaseError(f"{folder} has {len(coco_names)} categories, the model {len(names)}")
    split = f"{folder}: all {count(len(scenes), 'image')}"
    trained_on = [train_cfg.get("coco"), train_cfg.get("val_coco")]
    if any(d and Path(d).resolve() == Path(folder).resolve() for d in trained_on):
        split += (
            ", among them images the model trained on or was selected on (metrics.json "
            "scores its held-out test slice alone)"
        )
    return scenes, split
