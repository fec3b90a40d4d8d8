"""MovieLens ratings as tensors: ml-100k (with its canonical splits), ml-1m and ml-latest-small.

Raw user and movie ids are mapped to 0-based indices once; every batch is an index slice.
Malformed lines are counted and reported with the first line number, never silently dropped.
"""

import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from core.data import Remote, data_root, download
from core.errors import DataError

GROUPLENS = "https://files.grouplens.org/datasets/movielens"
ARCHIVES = {  # GroupLens publishes MD5s only
    "ml-100k": Remote(
        "ml-100k.zip", f"{GROUPLENS}/ml-100k.zip", "md5:0e33842e24a9c977be4e0107933c0723"
    ),
    "ml-1m": Remote("ml-1m.zip", f"{GROUPLENS}/ml-1m.zip", "md5:c4d9eecfca2ab87c1945afe126590906"),
}
LAYOUTS = {  # ratings file, separator, movies file, separator, header lines
    "ml-100k": ("u.data", "\t", "u.item", "|", 0),
    "ml-1m": ("ratings.dat", "::", "movies.dat", "::", 0),
    "ml-latest-small": ("ratings.csv", ",", "movies.csv", ",", 1),
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
        return Ratings(self.users[idx], self.items[idx], self.ratings[idx], self.timestamps[idx],
                       self.user_ids, self.item_ids, self.titles)  # fmt: skip


def dataset_dir(data_dir: str | None, name: str) -> Path:
    """`<root>/<name>`, downloaded and unpacked when missing and possible."""
    if name not in LAYOUTS:
        raise DataError(f"unknown dataset {name!r}: choose from {', '.join(LAYOUTS)}")
    root = data_root(data_dir)
    folder = root / name
    if (folder / LAYOUTS[name][0]).exists():
        return folder
    if name not in ARCHIVES:
        raise DataError(
            f"{name} is missing: put its files ({LAYOUTS[name][0]}, {LAYOUTS[name][2]}) in {folder}"
        )
    try:
        archive = download(ARCHIVES[name].url, root / ARCHIVES[name].path, ARCHIVES[name].checksum)
    except DataError as exc:
        raise DataError(
            f"{name} is missing in {folder} ({LAYOUTS[name][0]} not found) and {exc}"
        ) from exc
    with zipfile.ZipFile(archive) as z:
        z.extractall(root)
    return folder


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
    folder = dataset_dir(data_dir, name)
    ratings_file, sep, movies_file, msep, header = LAYOUTS[name]
    encoding = "latin-1"
    movies, bad_movies, _ = _read_table(folder / movies_file, msep, header, 2, encoding)
    item_ids = [m[0] for m in movies]
    titles = [m[1] for m in movies]
    item_index = {raw: i for i, raw in enumerate(item_ids)}
    path = folder / (split or ratings_file)
    if not path.exists():
        raise DataError(f"{path} does not exist")
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
    result = Ratings(torch.tensor(users), torch.tensor(items), torch.tensor(values, dtype=torch.float32),
                     torch.tensor(stamps), list(user_index), item_ids, titles, malformed)  # fmt: skip
    if malformed:
        note = f"{path.name}: skipped {malformed} malformed line(s), the first at {first}"
        result.notes.append(note)
        print(f"showcase: warning: {note}", file=sys.stderr)
    return result


def kfold(n: int, folds: int, seed: int) -> list[torch.Tensor]:
    """A random partition of range(n) into `folds` index tensors."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return list(order.chunk(folds))


def leave_latest_out(data: Ratings) -> tuple[Ratings, Ratings]:
    """The NCF protocol's split: each user's latest rating is held out, the rest is training."""
    order = torch.argsort(
        data.timestamps * data.num_users + data.users, stable=True
    )  # by time, ties by user
    latest = torch.zeros(data.num_users, dtype=torch.long)
    latest[data.users[order]] = order  # the last write per user wins: their latest rating
    held = torch.zeros(len(data.ratings), dtype=torch.bool)
    held[latest[torch.bincount(data.users, minlength=data.num_users) > 0]] = True
    return data.subset((~held).nonzero().flatten()), data.subset(held.nonzero().flatten())


def sample_negatives(data: Ratings, users: torch.Tensor, count: int, seed: int) -> torch.Tensor:
    """(B, count) items that each user never rated, drawn uniformly without replacement."""
    rated = torch.zeros(data.num_users, data.num_items, dtype=torch.bool)
    rated[data.users, data.items] = True
    gen = torch.Generator().manual_seed(seed)
    weights = (~rated[users]).float()  # (B, I)
    return torch.multinomial(weights, count, replacement=False, generator=gen)


def synthetic_ratings(
    num_users: int = 200, num_items: int = 300, rank: int = 3, density: float = 0.3, seed: int = 0
) -> Ratings:
    """A planted low-rank rating matrix on the 1-5 scale (smoke tests and the recovery test)."""
    gen = torch.Generator().manual_seed(seed)
    p, q = torch.randn(num_users, rank, generator=gen), torch.randn(num_items, rank, generator=gen)
    full = (3.0 + (p @ q.T) / rank**0.5).clamp(1, 5)
    mask = torch.rand(num_users, num_items, generator=gen) < density
    users, items = mask.nonzero(as_tuple=True)
    return Ratings(users, items, full[users, items], torch.zeros_like(users), list(range(num_users)),
                   list(range(num_items)), [f"movie {i}" for i in range(num_items)])  # fmt: skip
