"""Every ready demo trains a few steps on synthetic data, in-process, then every other command of
it runs on that run: none can be skipped silently."""

import dataclasses
import json

import numpy as np
import pytest
from PIL import Image

from core.checkpoint import read_file
from core.command import config_class
from core.parse import build
from core.run import WEIGHTS
from showcase import catalog

READY = [d for d in catalog.all_demos() if d.status == "ready"]
IDS = [f"{d.domain}.{d.task}" for d in READY]


def tone_wav(tmp_path):
    import soundfile

    path = tmp_path / "tone.wav"
    t = np.arange(16000) / 16000
    soundfile.write(path, np.stack([np.sin(2 * np.pi * 440 * t)] * 2, 1) * 0.3, 16000)
    return {"paths": [str(path)]}


def digit_png(tmp_path):
    path = tmp_path / "digit.png"
    Image.fromarray((np.random.default_rng(0).random((40, 40)) * 255).astype(np.uint8)).save(path)
    return {"paths": [str(path)]}


# The arguments of each command besides `train`, per demo (the run's --out-dir is added).
def exported(tmp):
    return {"out": str(tmp / "exported")}


def pushed(tmp):
    return {"to": str(tmp / "pushed")}


COMMAND_ARGS = {
    ("vision", "classify"): {
        "eval": lambda tmp: {"synthetic": True},
        "predict": digit_png,
        "export": exported,
        "push": pushed,
    },
    ("vision", "detect"): {
        "eval": lambda tmp: {},
        "predict": digit_png,
        "export": exported,
        "push": pushed,
    },
    ("rl", "dqn"): {
        "eval": lambda tmp: {"episodes": 2},
        "play": lambda tmp: {"episodes": 1, "gif": str(tmp / "play.gif")},
        "export": exported,
        "push": pushed,
    },
    ("recsys", "mf"): {
        "eval": lambda tmp: {},
        "recommend": lambda tmp: {"user": "3", "top": 5},
        "export": exported,
        "push": pushed,
    },
    ("speech", "ctc"): {
        "eval": lambda tmp: {},
        "transcribe": tone_wav,
        "export": exported,
        "push": pushed,
    },
    ("translation", "seq2seq"): {
        "eval": lambda tmp: {},
        "translate": lambda tmp: {"sentences": ["eins zwei", ""]},
        "export": exported,
        "push": pushed,
    },
}


def command_config(command, out_dir: str, args: dict):
    """The config of a command run on `out_dir` with `args`, on the CPU (export has no device
    field: it always runs there)."""
    cls = config_class(command)
    if "device" in {f.name for f in dataclasses.fields(cls)}:
        args = {**args, "device": "cpu"}
    return cls(out_dir=out_dir, **args)


def test_the_catalog_has_ready_demos():
    assert READY


@pytest.mark.parametrize("demo", READY, ids=IDS)
def test_every_command_of_every_demo_is_smoke_tested(demo):
    commands = set(catalog.commands(demo)) - {"train"}
    assert commands == set(COMMAND_ARGS.get((demo.domain, demo.task), {}))


@pytest.mark.parametrize("demo", READY, ids=IDS)
def test_smoke(demo, tmp_path, capsys):
    commands = catalog.commands(demo)
    cfg_cls = config_class(commands["train"])
    out_dir = str(tmp_path / "run")
    cfg = build(cfg_cls, synthetic=True, max_steps=3, out_dir=out_dir, device="cpu", log_every=1)
    report = commands["train"](cfg)
    assert 3 <= report["steps"] <= 8  # RL counts environment steps, 4 envs at a time
    assert report["task"] == f"{demo.domain}.{demo.task}"
    assert (tmp_path / "run" / "metrics.json").exists()
    for name, make_args in COMMAND_ARGS[(demo.domain, demo.task)].items():
        command = commands[name]
        result = command(command_config(command, out_dir, make_args(tmp_path)))
        assert result, f"{name} returned nothing"
    assert (tmp_path / "run" / "eval.json").exists()  # beside the training report, which stays
    weights_step = read_file(tmp_path / "run" / WEIGHTS)[1]["step"]
    assert json.loads((tmp_path / "run" / "eval.json").read_text())["steps"] == weights_step > 0
    assert (tmp_path / "run" / "metrics.json").exists()
