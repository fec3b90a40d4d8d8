"""MNIST as uint8 tensors, shared by the vision demos (the classifier and the detector's scenes)."""

from pathlib import Path

import torch

from core.data import data_root, missing_files
from core.errors import MissingData

RAW_FILES = {  # the uncompressed IDX files, by sha256
    "train-images-idx3-ubyte": "sha256:ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "sha256:65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "sha256:0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "sha256:ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}


def load_mnist(data_dir: str | None) -> dict[str, torch.Tensor]:
    """Train and test images (N, 28, 28) uint8 and labels (N,) int64 from `<root>/MNIST/raw`.

    Each file present is verified by its sha256; missing ones are downloaded (torchvision checks
    the archives' MD5s, then the unpacked files are verified here); offline that is one clear error
    naming the missing files.
    """
    from torchvision.datasets import MNIST  # imported here: torchvision takes seconds to import

    root = data_root(data_dir)
    raw = Path(root) / "MNIST" / "raw"
    missing = missing_files(raw, RAW_FILES)
    if missing:
        try:
            MNIST(str(root), train=True, download=True)
        except (RuntimeError, OSError) as exc:
            raise MissingData(
                f"MNIST file(s) {', '.join(missing)} missing in {raw} and could not be downloaded "
                f"({' '.join(str(exc).split())[:120]}); put the IDX files there"
            ) from exc
        missing_files(raw, RAW_FILES)
    train = MNIST(str(root), train=True, download=False)
    test = MNIST(str(root), train=False, download=False)
    return {
        "train_x": train.data,
        "train_y": train.targets,
        "test_x": test.data,
        "test_y": test.targets,
    }


def synthetic_mnist(
    n_train: int = 8192, n_test: int = 1024, seed: int = 0
) -> dict[str, torch.Tensor]:
    """Random digit-shaped tensors for smoke tests: class k is a bright bar at row 2k + 4."""
    gen = torch.Generator().manual_seed(seed)

    def make(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.randint(0, 10, (n,), generator=gen)
        x = torch.randint(0, 60, (n, 28, 28), generator=gen, dtype=torch.uint8)
        rows = 2 * y + 4
        x[torch.arange(n), rows] = 255
        return x, y

    train_x, train_y = make(n_train)
    test_x, test_y = make(n_test)
    return {"train_x": train_x, "train_y": train_y, "test_x": test_x, "test_y": test_y}
