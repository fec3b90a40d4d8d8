"""The installed `showcase` console script, run as a user types it: the one beside this Python (the
venv's bin/), in a subprocess. Missing (the package not installed): a skip, except in CI, a failure."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def console_script(name: str = "showcase") -> Path:
    """The venv's console script `name`."""
    path = BIN / name
    if not path.is_file():
        reason = f"{path} is missing: pip install -e . puts it there"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return path


def free_port() -> int:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        return free.getsockname()[1]


def terminal_sigint() -> None:
    """Ctrl-C as a terminal delivers it: a suite started in the background (`cmd &` in a script)
    has SIGINT ignored, the child would inherit that, and Python then never raises
    KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextlib.contextmanager
def showcase_app(args: list[str], cwd: Path, seconds: float = 180.0) -> Iterator[str]:
    """`showcase app ARGS --port P` in a subprocess: yields the page's URL once it answers; then
    Ctrl-C (SIGINT), which must stop it with exit code 0."""
    port = free_port()
    log = cwd / f"app-{port}.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [str(console_script()), "app", *args, "--port", str(port)],
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=terminal_sigint,
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + seconds
        while True:
            if proc.poll() is not None:
                raise AssertionError(
                    f"showcase app exited with {proc.returncode}:\n{log.read_text()}"
                )
            try:
                with urllib.request.urlopen(url, timeout=5) as page:
                    if page.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"showcase app did not answer in {seconds} s:\n{log.read_text()}"
                )
            time.sleep(0.5)
        yield url
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise AssertionError(
                    f"Ctrl-C did not stop showcase app:\n{log.read_text()}"
                ) from None
    assert proc.returncode == 0, f"showcase app exited with {proc.returncode}:\n{log.read_text()}"
