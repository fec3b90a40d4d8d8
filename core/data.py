"""The data root and verified downloads.

Data root: `--data-dir`, else `$SHOWCASE_DATA`, else a per-user cache directory. Downloads are
checked against a sha256, written atomically and retried; offline they stop with one line that
names the file, its URL and where to put it by hand.
"""

import gzip
import hashlib
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from core.errors import DataError, MissingData
from core.files import atomic_write


@dataclass(frozen=True)
class Remote:
    """A file of a dataset: where it lives under the data root, its URL and its checksum
    (`sha256:<hex>`, or `md5:<hex>` where the publisher gives only that)."""

    path: str
    url: str
    checksum: str


def data_root(data_dir: str | None = None) -> Path:
    """The data root: the argument, else $SHOWCASE_DATA, else the user cache dir."""
    if data_dir:
        root = Path(data_dir).expanduser()
        if not root.is_dir():
            raise MissingData(f"data dir {root} does not exist")
        return root
    if os.environ.get("SHOWCASE_DATA"):
        root = Path(os.environ["SHOWCASE_DATA"]).expanduser()
        if not root.is_dir():
            raise MissingData(f"SHOWCASE_DATA={root} does not exist")
        return root
    return Path(platformdirs.user_cache_dir("torch-showcase"))


def digest(path: Path, algorithm: str = "sha256") -> str:
    """The hex digest of a file, read in chunks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify(path: Path, checksum: str) -> None:
    """Raise a one-line DataError naming `path` unless its content matches `checksum`
    (`sha256:<hex>`, `md5:<hex>`, or bare sha256 hex)."""
    algorithm, _, expected = checksum.rpartition(":")
    actual = digest(path, algorithm or "sha256")
    if actual != expected:
        raise DataError(
            f"{path} is damaged or not the expected file ({algorithm or 'sha256'} {actual[:12]}..., "
            f"expected {expected[:12]}...): delete it to download it again, or replace it"
        )


def missing_files(folder: Path, checksums: dict[str, str | None]) -> list[str]:
    """Names among `checksums` that are absent from `folder`; each present one is verified
    against its checksum (None: none is known) before it is trusted."""
    missing = []
    for name, checksum in checksums.items():
        path = Path(folder) / name
        if not path.is_file():
            missing.append(name)
        elif checksum:
            verify(path, checksum)
    return missing


def download(
    url: str,
    dest: Path,
    checksum: str,
    retries: int = 3,
    timeout: float = 30.0,
    gunzip: bool = False,
) -> Path:
    """Fetch `url` to `dest` unless it is already there; verify the checksum; write atomically.

    `checksum` is `sha256:<hex>` or `md5:<hex>`; a bare hex string is taken as sha256. A file
    already at `dest` is verified too. With `gunzip`, the payload is decompressed first and the
    checksum is that of the decompressed file.
    """
    algorithm, _, expected = checksum.rpartition(":")
    algorithm = algorithm or "sha256"
    dest = Path(dest)
    if dest.exists():
        verify(dest, checksum)
        return dest
    last_error = ""
    for attempt in range(retries):
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            last_error = f"HTTP {exc.code}"
            if exc.code < 500:
                break  # a 404 will not go away by asking again
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            last_error = str(getattr(exc, "reason", exc))
        else:
            if gunzip:
                try:
                    payload = gzip.decompress(payload)
                except (OSError, EOFError) as exc:
                    raise DataError(f"{url} is not a valid gzip file ({exc})") from exc
            actual = hashlib.new(algorithm, payload).hexdigest()
            if actual != expected:
                raise DataError(
                    f"checksum mismatch for {url}: expected {algorithm} {expected}, got {actual}"
                )
            atomic_write(dest, lambda tmp, data=payload: Path(tmp).write_bytes(data))
            return dest
        if attempt + 1 < retries:
            time.sleep(0.5 * 2**attempt)
    raise MissingData(f"cannot download {url} ({last_error}); put the file at {dest} by hand")
