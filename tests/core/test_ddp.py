"""torchrun with 2 CPU processes ends where 1 process ends, for the same global batch."""

import socket
import subprocess
import sys
from pathlib import Path

import torch

from core.checkpoint import read_file

WORKER = Path(__file__).with_name("ddp_worker.py")
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_match_one(tmp_path):
    subprocess.run(
        [sys.executable, str(WORKER), str(tmp_path / "one")],
        check=True,
        cwd=ROOT,
        capture_output=True,
    )
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                "--master_addr", "127.0.0.1", "--master_port", str(free_port())]  # fmt: skip
    result = subprocess.run(
        [*torchrun, str(WORKER), str(tmp_path / "two")], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("train step 30") == 1  # only rank 0 logs
    one, _ = read_file(tmp_path / "one" / "model.safetensors")
    two, _ = read_file(tmp_path / "two" / "model.safetensors")
    for name in one:
        torch.testing.assert_close(one[name], two[name], atol=1e-5, rtol=0)
