"""The `showcase` command as a user meets it: exit codes and one-line errors."""

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from core.demo import Demo
from core.errors import UsageError
from showcase import catalog
from showcase.cli import main

ROOT = Path(__file__).resolve().parents[2]


def run(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "showcase", *args], capture_output=True, text=True, cwd=ROOT, env=env
    )


def test_list_prints_catalog(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "vision" in out and "classify" in out and "ready" in out


def test_every_demo_package_is_registered():
    registered = {(d.domain, d.task) for d in catalog.all_demos() if d.status == "ready"}
    on_disk = {(p.parent.parent.name, p.parent.name) for p in ROOT.glob("*/*/train.py")}
    assert on_disk and on_disk == registered
    for demo in catalog.all_demos():
        if demo.module:
            commands = importlib.import_module(demo.module).COMMANDS
            assert {"train", "eval"} <= set(commands)


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["vision", "classify", "train", "--no-such-flag"], 2, "Unrecognized options"),
        (["vision", "classify", "train", "--max-steps", "x"], 2, "--max-steps"),
        (["vision", "classify", "train", "--device", "tpu"], 2, "unknown device 'tpu'"),
        (
            ["vision", "classify", "train", "--data-dir", "/no/such/dir"],
            1,
            "data dir /no/such/dir does not exist",
        ),
        (["vision", "nope", "train"], 2, "unknown demo"),
        (["vision", "classify", "fly"], 2, "unknown command 'fly'"),
        (["translation", "seq2seq", "train", "--heads", "3"], 2, "divisible by --heads 3"),
    ],
)
def test_bad_input_is_one_line(args, code, message, tmp_path):
    result = run(*args, "--out-dir", str(tmp_path / "run")) if args[-1] != "fly" else run(*args)
    assert result.returncode == code, result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_a_planned_demo_says_so():
    demo = Demo("audio", "tts", "text to speech", "LJSpeech", "MOS")
    assert demo.status == "planned"
    with pytest.raises(UsageError, match="planned but not implemented"):
        catalog.commands(demo)


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="needs a machine without CUDA")
def test_absent_device_exits_1(tmp_path):
    result = run(
        "vision", "classify", "train", "--device", "cuda", "--synthetic", "--out-dir", str(tmp_path)
    )
    assert result.returncode == 1 and "no CUDA device" in result.stderr


def test_python_dash_m_and_help():
    result = subprocess.run(
        [sys.executable, "-m", "vision.classify", "train", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0
    assert "--max-steps" in result.stdout and "--recipe" in result.stdout


def test_resume_with_a_tuple_flag_the_saved_run_lacks_is_one_line(tmp_path, capsys):
    from torch import nn

    from core.checkpoint import save_checkpoint
    from core.config import to_dict
    from core.parse import build
    from translation.seq2seq.train import TranslationConfig

    run_dir = tmp_path / "run"
    saved = build(TranslationConfig, out_dir=str(run_dir))  # trained on Multi30k: no --train-files
    extra = {"state": {"step": 5}, "config": to_dict(saved)}
    save_checkpoint(run_dir / "checkpoint.safetensors", nn.Linear(1, 1), None, None, None, extra)
    files = [str(tmp_path / "a.de"), str(tmp_path / "a.en")]
    argv = ["translation", "seq2seq", "train", "--resume", "--out-dir", str(run_dir)]
    code = main([*argv, "--train-files", *files])  # main: TypeError, NoneType not iterable
    err = capsys.readouterr().err
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert f"cannot resume {run_dir}: --train-files was None in the saved run, now" in err
