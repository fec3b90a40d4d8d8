"""A run's data: fresh digit scenes from MNIST's training digits with fixed validation and test
scenes, or a COCO folder split by a seeded shuffle (each split says in one line where it comes
from); training batches of scenes composed on the device, and their augmentation."""

import dataclasses
from pathlib import Path

import torch

from core import distributed
from core.errors import DataError, ShowcaseError, UsageError
from core.hf_data import column_names, open_source
from vision.detect.coco import COLUMNS, as_scenes, load_coco, read_hf_boxes
from vision.detect.scenes import SceneOptions, Scenes, layout, make_scenes, render
from vision.mnist import load_mnist, synthetic_mnist

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
        return coco_data(cfg, cfg.coco)
    if cfg.hf_dataset:
        return hf_box_data(cfg)
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


def coco_data(cfg, folder: str) -> Data:
    """A COCO folder split by a seeded shuffle: the first 10% for the test, the next 10% for
    validation (unless --val-coco gives its own folder), the rest for training."""
    scenes, names = load_coco(Path(folder), cfg.image_size, channels=3)
    parts = 2 if cfg.val_coco else 3
    if len(scenes) < parts:
        raise ShowcaseError(
            f"{folder}: a COCO training folder needs at least {parts} images "
            f"(training, {'' if cfg.val_coco else 'validation, '}test)"
        )
    order = torch.randperm(len(scenes), generator=torch.Generator().manual_seed(cfg.seed))
    held = max(1, len(scenes) // 10)
    test = scenes.subset(order[:held])
    slice_ = f"a seeded 10% slice of {folder} (seed {cfg.seed})"
    if cfg.val_coco:
        val, val_names = load_coco(Path(cfg.val_coco), cfg.image_size, channels=3)
        if val_names != names:
            raise ShowcaseError(
                f"{cfg.val_coco}: its categories {val_names} differ from {folder}'s {names}"
            )
        train = scenes.subset(order[held:])
        val_text = f"{cfg.val_coco}: all {count(len(val), 'image')}"
    else:
        val, train = scenes.subset(order[held : 2 * held]), scenes.subset(order[2 * held :])
        val_text = f"{count(len(val), 'image')}, another {slice_[2:]}"
    splits = {
        "train": f"{folder}: the other {count(len(train), 'image')}",
        "val": f"{val_text}; they pick the kept weights",
        "test": f"{count(len(test), 'image')}, {slice_}, {UNSEEN}",
    }
    return Data(names, 3, None, train, val, test, splits)


def is_coco(source: str) -> bool:
    """Whether --hf-dataset names a COCO folder (a JSON file or an annotations folder inside)."""
    folder = Path(source)
    return folder.is_dir() and bool(
        list(folder.glob("*.json")) or (folder / "annotations").is_dir()
    )


def hf_box_data(cfg) -> Data:
    """--hf-dataset: a COCO folder (read as --coco reads it), or an image folder whose metadata
    gives each image's boxes, through `datasets`: the source's test split (else a seeded 10%
    slice) for the test, a seeded 10% slice of the rest for validation, the rest for training."""
    source = cfg.hf_dataset
    if is_coco(source):
        return coco_data(cfg, source)
    splits, cols = open_source(source), column_names(cfg.hf_columns, COLUMNS)
    have = ", ".join(splits)
    if "train" not in splits:
        raise UsageError(f"--hf-dataset {source} has no train split (it has: {have})")
    if cfg.hf_split != "test" and cfg.hf_split not in splits:
        raise UsageError(
            f"--hf-split {cfg.hf_split}: the source has no such split (it has: {have})"
        )
    for part in {"train", cfg.hf_split} & set(splits):
        missing = [
            cols[k] for k in ("image", "objects") if cols[k] not in splits[part].column_names
        ]
        if missing:
            columns = ", ".join(splits[part].column_names)
            raise DataError(f"--hf-dataset {source}: no column {missing[0]!r} (it has: {columns})")
    objects = splits["train"][cols["objects"]]
    found = {v for o in objects if isinstance(o, dict) for v in o.get("categories") or []}
    names = [str(v) for v in sorted(found)]  # the training images' categories
    scenes = {
        name: as_scenes(read_hf_boxes(part, cols, names, f"{source} ({name})"), cfg.image_size, 3)
        for name, part in splits.items()
        if name in ("train", cfg.hf_split)
    }
    order = torch.randperm(len(scenes["train"]), generator=torch.Generator().manual_seed(cfg.seed))
    held = max(1, len(order) // 10)
    if len(order) < (2 if cfg.hf_split in scenes else 3):
        raise ShowcaseError(
            f"--hf-dataset {source}: too few images to hold out validation and test"
        )
    slice_ = f"seeded 10% slice of {source} (seed {cfg.seed})"
    if cfg.hf_split in scenes:
        test, test_text = scenes[cfg.hf_split], f"{source}'s {cfg.hf_split} split"
        val, train = scenes["train"].subset(order[:held]), scenes["train"].subset(order[held:])
    else:
        test, test_text = scenes["train"].subset(order[:held]), f"a {slice_}"
        val = scenes["train"].subset(order[held : 2 * held])
        train = scenes["train"].subset(order[2 * held :])
    splits_text = {
        "train": f"{source}: the other {count(len(train), 'image')}",
        "val": f"{count(len(val), 'image')}, a {slice_}; they pick the kept weights",
        "test": f"{count(len(test), 'image')}, {test_text}, {UNSEEN}",
    }
    return Data(names, 3, None, train, val, test, splits_text)


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
