"""Runs trained before the redesign still serve: `tests/fixtures/before-redesign` holds a tiny synthetic run
of every demo, written by main at 1de4791 (before `core` and the front were split; weights,
config and reports only; the folder each was written to is recorded as `runs/<demo>`). Every command besides `train` runs on a copy of each, as a user runs
`eval` and `predict` on a run folder they already have, and the app loads each tab from them."""

import shutil
from pathlib import Path

import pytest
import torch

from showcase import catalog
from tests.test_demos import COMMAND_ARGS, IDS, READY, command_config

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "before-redesign"


def old_run(demo, tmp_path) -> Path:
    """A copy of the demo's old run (commands write eval.json and pictures into it)."""
    source = FIXTURES / f"{demo.domain}-{demo.task}"
    assert (source / "model.safetensors").is_file(), f"no fixture run for {demo.name}"
    return Path(shutil.copytree(source, tmp_path / "run"))


@pytest.mark.parametrize("demo", READY, ids=IDS)
def test_a_run_from_before_the_redesign_still_evaluates_and_predicts(demo, tmp_path):
    run = old_run(demo, tmp_path)
    commands = catalog.commands(demo)
    for name, make_args in COMMAND_ARGS[(demo.domain, demo.task)].items():
        command = commands[name]
        cfg = command_config(command, str(run), make_args(tmp_path))
        assert command(cfg), f"{name} returned nothing"
    assert (run / "eval.json").is_file()


@pytest.mark.parametrize("demo", [d for d in READY if d.app], ids=lambda d: f"{d.domain}.{d.task}")
def test_the_app_loads_a_run_from_before_the_redesign(demo, tmp_path):
    session = catalog.tab(demo).load(str(old_run(demo, tmp_path)), torch.device("cpu"))
    assert session is not None


def test_old_runs_keep_their_plain_training_and_model(tmp_path):
    """A run from before `--robust` existed stays the plain model it was: eval and predict build
    the detector without input standardization, and resuming it with today's robust default is
    refused in one line rather than silently switching recipes."""
    from core.config import resume_mismatch
    from core.parse import from_run
    from core.run import run_config
    from speech.ctc.train import SpeechConfig
    from vision.classify.train import ClassifyConfig
    from vision.detect.predict import load_trained
    from vision.detect.train import DetectConfig

    detect = Path(shutil.copytree(FIXTURES / "vision-detect", tmp_path / "detect"))
    model, *_ = load_trained(str(detect), torch.device("cpu"))
    assert model.standardize_input is False
    for cls, name in (
        (DetectConfig, "vision-detect"),
        (ClassifyConfig, "vision-classify"),
        (SpeechConfig, "speech-ctc"),
    ):
        saved = run_config(FIXTURES / name)
        assert "robust" not in saved and from_run(cls, saved).robust is False
        today = from_run(cls, saved, robust=True)  # what a bare `train --resume` asks for
        assert "--robust was False" in resume_mismatch(today, saved)
