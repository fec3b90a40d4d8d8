"""Shared fixtures. Real-data tests skip where the data is absent, except under CI, where they fail."""

import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(2)


def real_data(*parts: str) -> Path:
    """The path of a real dataset under $SHOWCASE_DATA; skip (or, in CI, fail) when it is absent."""
    root = os.environ.get("SHOWCASE_DATA")
    path = Path(root, *parts) if root else None
    if path is None or not path.exists():
        reason = f"real data {'/'.join(parts)} not found under SHOWCASE_DATA={root!r}"
        if os.environ.get("CI"):
            pytest.fail(reason + " (CI must have it)")
        pytest.skip(reason)
    return path
