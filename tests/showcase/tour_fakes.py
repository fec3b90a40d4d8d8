"""Made-up applications for the tour's tests: one that works, one that fails, one whose data is
missing, one that keeps its data alive, one whose process dies. A module on disk, so that the
tour's child processes import it too."""

import dataclasses
import os
from pathlib import Path

from core.errors import MissingData
from core.logger import RunLogger

LEAKED = []  # what hog_train keeps alive after it ends


@dataclasses.dataclass
class FakeConfig:
    out_dir: str = "runs/fake"
    data_dir: str | None = None
    device: str = "cpu"
    seed: int = 0
    max_steps: int = 10
    synthetic: bool = False


def fake_train(cfg: FakeConfig) -> dict:
    logger = RunLogger(Path(cfg.out_dir), cfg.max_steps, 0, True)
    for step in range(1, cfg.max_steps + 1):
        logger.advance(1)
        logger.log("train", step, {"loss": 1 / step})
    logger.close()
    print("training output goes to the log")
    return {"steps": cfg.max_steps, "wall_seconds": 0.5, "device": cfg.device}


def fake_eval(cfg: FakeConfig) -> dict:
    return {"metrics": {"score": 0.75}}


def broken_train(cfg: FakeConfig) -> dict:
    raise RuntimeError("the fake model exploded")


def no_data_train(cfg: FakeConfig) -> dict:
    raise MissingData("fake data is missing in /nowhere: put fake.csv there")


def hog_train(cfg: FakeConfig) -> dict:
    LEAKED.append(b"\x01" * 300_000_000)  # written, so resident
    return fake_train(cfg)


def dying_train(cfg: FakeConfig) -> dict:
    os._exit(9)  # as if the system had killed it
