"""Verified downloads against an HTTP server on 127.0.0.1."""

import hashlib
import http.server
import threading

import pytest

from core.data import data_root, download
from core.errors import DataError, MissingData

GOOD = b"real bytes of a dataset file\n" * 100


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        if self.path == "/good.bin":
            body = GOOD
        elif self.path == "/corrupt.bin":
            body = GOOD[:-1] + b"X"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


SHA = hashlib.sha256(GOOD).hexdigest()


def test_good_file_is_written(server, tmp_path):
    dest = download(f"{server}/good.bin", tmp_path / "d" / "good.bin", SHA)
    assert dest.read_bytes() == GOOD


def test_corrupt_file_leaves_nothing(server, tmp_path):
    with pytest.raises(DataError, match="checksum mismatch"):
        download(f"{server}/corrupt.bin", tmp_path / "corrupt.bin", SHA)
    assert list(tmp_path.iterdir()) == []


def test_404_names_url_and_target(server, tmp_path):
    with pytest.raises(DataError) as info:
        download(f"{server}/missing.bin", tmp_path / "missing.bin", SHA, retries=2)
    text = str(info.value)
    assert (
        "HTTP 404" in text
        and f"{server}/missing.bin" in text
        and str(tmp_path / "missing.bin") in text
    )
    assert not (tmp_path / "missing.bin").exists()


def test_offline_error_is_clear(tmp_path):
    with pytest.raises(MissingData, match="cannot download .* put the file at"):
        download("http://127.0.0.1:9/x.bin", tmp_path / "x.bin", SHA, retries=1, timeout=2)


def test_data_root_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("SHOWCASE_DATA", str(tmp_path))
    assert data_root(None) == tmp_path
    assert data_root(str(tmp_path / "..")) == tmp_path / ".."
    monkeypatch.delenv("SHOWCASE_DATA")
    assert "torch-showcase" in str(data_root(None))
    with pytest.raises(MissingData, match="does not exist"):
        data_root(str(tmp_path / "absent"))
