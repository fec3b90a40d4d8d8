"""torchrun with 2 CPU processes: the same run as 1 process for the same global batch, with
evaluation, early-stopping state, dropout per rank, exact resume, a NaN on one rank, and the
decoding evaluations run by rank 0 alone."""

import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from core.checkpoint import read_file

pytestmark = pytest.mark.slow

WORKER = Path(__file__).with_name("ddp_worker.py")
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(out_dir, *args, procs=2, check=True, worker=WORKER):
    torchrun = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        str(procs),
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(free_port()),
    ]
    command = [*torchrun] if procs > 1 else [sys.executable]
    result = subprocess.run(
        [*command, str(worker), str(out_dir), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


def weights(run_dir):
    return read_file(Path(run_dir) / "model.safetensors")


def assert_same(a, b, atol=0.0):
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=atol, rtol=0)


def test_two_processes_match_one(tmp_path):
    launch(tmp_path / "one", procs=1)
    result = launch(tmp_path / "two")
    assert result.stdout.count("train step 30") == 1  # only rank 0 logs
    assert_same(weights(tmp_path / "one")[0], weights(tmp_path / "two")[0], atol=1e-5)


def test_evaluation_dropout_and_resume_under_torchrun(tmp_path):
    opts = ("--with-eval", "--dropout", "0.2")
    one = launch(tmp_path / "one", *opts, procs=1)
    two = launch(tmp_path / "two", *opts)  # crashed on main: a barrier inside a file-exists check
    # Each rank draws its own dropout: the ranks' random streams differ, rank 0's is the 1-process one.
    ckpt, meta = read_file(tmp_path / "two" / "checkpoint.safetensors")
    assert meta["world_size"] == 2 and not torch.equal(ckpt["rng.0.torch"], ckpt["rng.1.torch"])
    single, _ = read_file(tmp_path / "one" / "checkpoint.safetensors")
    assert "rng.1.torch" not in single
    # Both runs keep their best evaluated weights and say which step they come from.
    for out, run in ((one, "one"), (two, "two")):
        best_step = weights(tmp_path / run)[1]["step"]
        assert f"weights_step {best_step}" in out.stdout and best_step in (10, 20, 30)
        assert weights(tmp_path / run)[1]["metrics"]["val_acc"] > 0.85
    # Interrupted at step 20 and resumed: bit-exact with the straight run, every rank's RNG restored.
    launch(tmp_path / "resumed", *opts, "--max-steps", "20")
    launch(tmp_path / "resumed", *opts, "--resume")
    straight, _ = read_file(tmp_path / "two" / "checkpoint.safetensors")
    resumed, _ = read_file(tmp_path / "resumed" / "checkpoint.safetensors")
    assert_same(straight, resumed)
    # A different number of processes cannot continue those random streams.
    again = launch(
        tmp_path / "resumed", *opts, "--resume", "--max-steps", "40", procs=1, check=False
    )
    assert again.returncode == 1 and "written by 2 process(es)" in again.stderr


def test_nan_on_one_rank_stops_every_rank(tmp_path):
    result = launch(tmp_path / "nan", "--nan-rank", "1", check=False)
    assert result.returncode != 0
    assert result.stderr.count("loss is nan at step 7") == 2, result.stderr[-2000:]  # both ranks
    assert "last good checkpoint: none written yet" in result.stderr


def test_an_evaluation_on_main_runs_on_rank_0_alone(tmp_path):
    every = launch(tmp_path / "every", "--with-eval")  # may shard and reduce: every rank calls it
    assert "rank 0 evaluated 3 times" in every.stdout and "rank 1 evaluated 3 times" in every.stdout
    alone = launch(tmp_path / "alone", "--with-eval", "--on-main")
    assert "rank 0 evaluated 3 times" in alone.stdout and "rank 1 evaluated 0 times" in alone.stdout
    # Every rank got rank 0's numbers: the same best step, the same kept weights.
    assert weights(tmp_path / "alone")[1]["step"] == weights(tmp_path / "every")[1]["step"]
    assert_same(weights(tmp_path / "alone")[0], weights(tmp_path / "every")[0])
    assert alone.stdout.count(f"weights_step {weights(tmp_path / 'alone')[1]['step']}") == 2
    # Rank 0's evaluation fails: every rank stops with one line instead of waiting for it.
    failed = launch(tmp_path / "fails", "--with-eval", "--on-main", "--eval-fails", check=False)
    assert failed.returncode != 0
    assert "error: the validation set is unreadable" in failed.stderr
    assert "error: rank 0 failed in evaluate: the validation set is unreadable" in failed.stderr


DEMO_WORKER = Path(__file__).with_name("ddp_demo_worker.py")


@pytest.mark.parametrize("demo", ["speech ctc", "vision detect", "translation seq2seq"])
def test_decoding_demos_decode_on_rank_0_alone(tmp_path, demo):
    result = launch(tmp_path / "run", *demo.split(), worker=DEMO_WORKER)
    calls = dict(re.findall(r"rank (\d) eval calls (\d+)", result.stdout))
    assert int(calls["0"]) > 0 and calls["1"] == "0", result.stdout[-2000:]  # main: both decoded
    assert result.stdout.count("metrics [") == 2  # both ranks return the full report
