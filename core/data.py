"""The data root and verified downloads.

Data root: `--data-dir`, else `$SHOWCASE_DATA`, else a per-user cache directory. Downloads are
checked against a sha256, written atomically and retried; offline they stop with one line that
names the file, its URL and where to put it by hand.
"""

import hashlib
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from core.errors import DataError
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
            raise DataError(f"data dir {root} does not exist")
        return root
    if os.environ.get("SHOWCASE_DATA"):
        root = Path(os.environ["SHOWCASE_DATA"]).expanduser()
        if not root.is_dir():
            raise DataError(f"SHOWCASE_DATA={root} does not exist")
        return root
    return Path(platformdirs.user_cache_dir("torch-showcase"))


def download(url: str, dest: Path, checksum: str, retries: int = 3, timeout: float = 30.0) -> Path:
    """Fetch `url` to `dest` unless it is already there; verify the checksum; write atomically.

    `checksum` is `sha256:<hex>` or `md5:<hex>`; a bare hex string is taken as sha256.
    """
    algorithm, _, expected = checksum.rpartition(":")
    algorithm = algorithm or "sha256"
    dest = Path(dest)
    if dest.exists():
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
            actual = hashlib.new(algorithm, payload).hexdigest()
            if actual != expected:
                raise DataError(
                    f"checksum mismatch for {url}: expected {algorithm} {expected}, got {actual}"
                )
            atomic_write(dest, lambda tmp, data=payload: Path(tmp).write_bytes(data))
            return dest
        if attempt + 1 < retries:
            time.sleep(0.5 * 2**attempt)
    raise DataError(f"cannot download {url} ({last_error}); put the file at {dest} by hand")
