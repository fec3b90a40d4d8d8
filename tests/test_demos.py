"""Every ready demo trains a few steps on synthetic data, in-process: none can be skipped silently."""

import importlib

import pytest

from core import registry
from core.config import build

READY = [d for d in registry.all_demos() if d.status == "ready"]


def test_registry_has_ready_demos():
    assert READY


@pytest.mark.parametrize("demo", READY, ids=[f"{d.domain}.{d.task}" for d in READY])
def test_smoke(demo, tmp_path):
    train = importlib.import_module(demo.module)
    cfg_cls = registry.config_class(train.COMMANDS["train"])
    cfg = build(
        cfg_cls,
        synthetic=True,
        max_steps=3,
        out_dir=str(tmp_path / "run"),
        device="cpu",
        log_every=1,
    )
    report = train.COMMANDS["train"](cfg)
    assert 3 <= report["steps"] <= 8  # RL counts environment steps, 4 envs at a time
    assert report["task"] == f"{demo.domain}.{demo.task}"
    assert (tmp_path / "run" / "metrics.json").exists()
