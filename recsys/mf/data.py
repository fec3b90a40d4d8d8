"""MovieLens ratings as tensors: ml-100k (with its canonical splits), ml-1m and ml-latest-small.

Raw user and movie ids are mapped to 0-based indices once; every batch is an index slice.
Malformed lines are counted and reported with the first line number, never silently dropped.
"""

import os
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from core.data import Remote, data_root, download, missing_files
from core.errors import DataError, MissingData

GROUPLENS = "https://files.grouplens.org/datasets/movielens"
ARCHIVES = {  # GroupLens publishes MD5s only
    "ml-100k": Remote(
        "ml-100k.zip", f"{GROUPLENS}/ml-100k.zip", "md5:0e33842e24a9c977be4e0107933c0723"
    ),
    "ml-1m": Remote("ml-1m.zip", f"{GROUPLENS}/ml-1m.zip", "md5:c4d9eecfca2ab87c1945afe126590906"),
}
ML100K = {  # sha256 of the files read here (the publisher gives only the archive's MD5)
    "u.data": "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",
    "u.item": "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701",
    "u.user": "f120e114da2e8cf314fd28f99417c94ae9ddf1cb6db8ce0e4b5995d40e90e62c",
    "u1.base": "ce253ec86c448b44fb3ba9a30d12dcfc2e9210cbde71efada3730c22e9ac212a",
    "u1.test": "18c6014a4b2c7324f250a63f8904a7b16b2b19f911129e346141507b0cbac950",
    "u2.base": "6c06f0b5df4b256da1a994f3ac66edc8da4d3f09bc9282df6b14d893366d703e",
    "u2.test": "4de658d1e04ed9104629509a2e2528fce833ac8e048280183f1df167632038c3",
    "u3.base": "afdc155c291c6edc41c0407e39d7462eb98d341e064f0b0a12175b80b3c4af5d",
    "u3.test": "0f548b51c78327de4c156461d3e430b7e5579fe2b5681586a59416e48fd35f6d",
    "u4.base": "219f0f4d40dfe9c5141d425f53fa91ee23ed275f14e280bbf1b50117afb064ca",
    "u4.test": "7c02ad0a1e7ab1083c8b9d4b627203a051dd7b5eab46d99fa44de33470de8db9",
    "u5.base": "a9574e59ce961eec2121627760b6e9b0974ce1637b3fe69ac32cb14a4bfab485",
    "u5.test": "351cc52e0d15b6c721466276fc24671d40936899e3d01fadeaf312915b8c5634",
    "ua.base": "67b5bcdb380c29f85d56a012ecd88612ae020f30a6730d117a334ee8203b91f2",
    "ua.test": "d0497e202417720f57a184ec8c66be2d1afa4ff41bb53787c57b28d6bf79bc42",
    "ub.base": "237254d253b6ad7de84f919d041055428646254f34ed8f562703c899430cd881",
    "ub.test": "d54a72d05730d5892062734b2bec73e976f9b713d18c828a18b968d6cce442da",
}
LAYOUTS = {  # ratings file, separator, movies file, separator, header lines, text encoding
    "ml-100k": ("u.data", "\t", "u.item", "|", 0, "latin-1"),
    "ml-1m": ("ratings.dat", "::", "movies.dat", "::", 0, "latin-1"),
    "ml-latest-small": ("ratings.csv", ",", "movies.csv", ",", 1, "utf-8"),
}


@dataclass
class Ratings:
    """Aligned tensors of (user, item, rating, timestamp) plus the id maps and titles."""

    users: torch.Tensor  # (N,) int64 indices
    items: torch.Tensor  # (N,) int64 indices
    ratings: torch.Tensor  # (N,) float32
    timestamps: torch.Tensor  # (N,) int64
    user_ids: list  # index -> raw user id
    item_ids: list  # index -> raw item id
    titles: list[str]  # index -> title
    malformed: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def num_users(self) -> int:
        return len(self.user_ids)

    @property
    def num_items(self) -> int:
        return len(self.item_ids)

    def subset(self, idx: torch.Tensor) -> "Ratings":
        """The same users and items, only the ratings at `idx`."""
        return Ratings(
            self.users[idx],
            self.items[idx],
            self.ratings[idx],
            self.timestamps[idx],
            self.user_ids,
            self.item_ids,
            self.titles,
        )


def dataset_dir(data_dir: str | None, name: str, split: str | None = None) -> Path:
    """`<root>/<name>` holding the files a load needs, each verified where its checksum is known;
    missing ones are downloaded and unpacked when possible, else one line names them."""
    if name not in LAYOUTS:
        raise DataError(f"unknown dataset {name!r}: choose from {', '.join(LAYOUTS)}")
    ratings_file, _, movies_file, *_ = LAYOUTS[name]
    needed = [split or ratings_file, movies_file] + (["u.user"] if name == "ml-100k" else [])
    if name == "ml-100k" and needed[0] not in ML100K:
        raise DataError(f"unknown ml-100k split {needed[0]!r}: use u1..u5 or ua, ub")
    checksums = {f: (ML100K.get(f) if name == "ml-100k" else None) for f in needed}
    folder = data_root(data_dir) / name
    missing = missing_files(folder, checksums)
    if not missing:
        return folder
    if name not in ARCHIVES:
        raise MissingData(f"{name} is missing {', '.join(missing)}: put its files in {folder}")
    try:
        archive = download(
            ARCHIVES[name].url, folder.parent / ARCHIVES[name].path, ARCHIVES[name].checksum
        )
    except DataError as exc:
        raise MissingData(f"{name} is missing {', '.join(missing)} in {folder} and {exc}") from exc
    unpack(archive, folder, missing)
    missing_files(folder, checksums)
    return folder


def unpack(archive: Path, folder: Path, names: list[str]) -> None:
    """Extract `names` from the zip's top folder into `folder`; each file appears whole or not at all."""
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive) as z, tempfile.TemporaryDirectory(dir=folder) as tmp:
        for name in names:
            member = f"{folder.name}/{name}"
            if member not in z.namelist():
                raise DataError(f"{archive} has no {member}")
            os.replace(z.extract(member, tmp), folder / name)


def _split(line: str, sep: str, quoted: bool) -> list[str]:
    if quoted and '"' in line:  # ml-latest-small titles may hold commas inside quotes
        import csv

        return next(csv.reader([line]))
    return line.split(sep)


def _read_table(
    path: Path, sep: str, header: int, width: int, encoding: str
) -> tuple[list[list[str]], int, str]:
    rows, malformed, first = [], 0, ""
    with open(path, encoding=encoding) as f:
        for number, line in enumerate(f, start=1):
            if number <= header or not line.strip():
                continue
            parts = _split(line.rstrip("\n"), sep, sep == ",")
            if len(parts) < width:
                malformed += 1
                first = first or f"line {number}: {line.strip()[:60]!r}"
                continue
            rows.append(parts)
    return rows, malformed, first


def load_ratings(data_dir: str | None, name: str = "ml-100k", split: str | None = None) -> Ratings:
    """All ratings of a MovieLens dataset, or of one ml-100k split file (`u1.base`, `ua.test`, ...).

    Users and items are indexed by the dataset's full id lists, so every split of one dataset
    shares the same indices.
    """
    folder = dataset_dir(data_dir, name, split)
    ratings_file, sep, movies_file, msep, header, encoding = LAYOUTS[name]
    movies, bad_movies, _ = _read_table(folder / movies_file, msep, header, 2, encoding)
    item_ids = [m[0] for m in movies]
    titles = [m[1] for m in movies]
    item_index = {raw: i for i, raw in enumerate(item_ids)}
    path = folder / (split or ratings_file)
    rows, malformed, first = _read_table(path, sep, header, 4, encoding)
    users, items, values, stamps = [], [], [], []
    user_index: dict[str, int] = {}
    if name == "ml-100k":  # users 1..943 are listed in u.user
        for line in (folder / "u.user").read_text(encoding=encoding).splitlines():
            if line.strip():
                user_index.setdefault(line.split("|")[0], len(user_index))
    for number, (u, i, r, t, *_) in enumerate(rows, start=1):
        try:
            value, stamp = float(r), int(float(t))
            item = item_index[i]
        except (ValueError, KeyError):
            malformed += 1
            first = first or f"row {number}: {u} {i} {r} {t}"
            continue
        users.append(user_index.setdefault(u, len(user_index)))
        items.append(item)
        values.append(value)
        stamps.append(stamp)
    result = Ratings(
        torch.tensor(users),
        torch.tensor(items),
        torch.tensor(values, dtype=torch.float32),
        torch.tensor(stamps),
        list(user_index),
        item_ids,
        titles,
        malformed,
    )
    if malformed:
        note = f"{path.name}: skipped {malformed} malformed line(s), the first at {first}"
        result.notes.append(note)
        print(f"showcase: warning: {note}", file=sys.stderr)
    return result


def synthetic_ratings(
    num_users: int = 200, num_items: int = 300, rank: int = 3, density: float = 0.3, seed: int = 0
) -> Ratings:
    """A planted low-rank rating matrix on the 1-5 scale (smoke tests and the recovery test)."""
    gen = torch.Generator().manual_seed(seed)
    p, q = torch.randn(num_users, rank, generator=gen), torch.randn(num_items, rank, generator=gen)
    full = (3.0 + (p @ q.T) / rank**0.5).clamp(1, 5)
    mask = torch.rand(num_users, num_items, generator=gen) < density
    users, items = mask.nonzero(as_tuple=True)
    return Ratings(
        users,
        items,
        full[users, items],
        torch.zeros_like(users),
        list(range(num_users)),
        list(range(num_items)),
        [f"movie {i}" for i in range(num_items)],
    )
