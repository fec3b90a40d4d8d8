"""One call seeds every random number generator a run touches."""

import os
import random

import numpy as np
import torch


def rank_seed(seed: int, rank: int) -> int:
    """The seed of one process: `seed` itself on rank 0 (a 1-process run), distinct on the others,
    so that ranks draw different dropout and augmentation for their different samples."""
    return seed + 1_000_003 * rank


def seed_everything(seed: int, deterministic: bool = False, rank: int = 0) -> None:
    """Seed Python, NumPy and torch (all devices) for this process's rank; optionally force
    deterministic kernels. Data order does not depend on these seeds (loaders seed their own)."""
    seed = rank_seed(seed, rank)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
