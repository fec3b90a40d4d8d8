"""A user's ratings table through `datasets`: user, item and rating columns (timestamp and title
where present), read once into `Ratings` tensors; bad rows are skipped, counted and named."""

import sys

import torch

from core.errors import DataError
from recsys.mf.data import Ratings

COLUMNS = {
    "user": "user",
    "item": "item",
    "rating": "rating",
    "timestamp": "timestamp",
    "title": "title",
}
"""--hf-dataset's columns by role (rename with --hf-columns); timestamp and title may be absent."""


def hf_ratings(
    source: str, pairs: list[str], seed: int, test: str = "test"
) -> tuple[Ratings, Ratings]:
    """(train, test) ratings from a table through `datasets` (csv, tsv, json, parquet or a Hub
    dataset) with user, item and rating columns, and timestamp and title where present: the
    source's test split, or a seeded fifth of its rows. Users and items are indexed over both
    parts. A row without a user or item, or whose rating is not a number, is skipped and
    counted, the first one named by its data row."""
    import numpy as np

    from core.hf_data import column, column_names, open_source, train_test

    names = column_names(pairs, COLUMNS)
    splits = open_source(source)
    for name, table in splits.items():  # bad rows named by their row in the source
        bad = np.flatnonzero(~usable(table, names, source))
        if len(bad):
            where = f"{source} ({name} split): skipped {len(bad)} row(s) without a user, an item"
            print(
                f"showcase: warning: {where} or a numeric rating, the first data row {bad[0] + 1}",
                file=sys.stderr,
            )
    train, test, note = train_test(splits, seed, test)
    parts = {"train": train, "test": test}
    read = {}  # each column of each part read and converted once: users, items, ratings
    for name, table in parts.items():
        read[name] = (
            ids(column(table, names["user"], source)),
            ids(column(table, names["item"], source)),
            numbers(column(table, names["rating"], source)),
        )
    all_users = np.concatenate([users for users, _, _ in read.values()])
    all_items = np.concatenate([items for _, items, _ in read.values()])
    user_ids, user_index = np.unique(all_users, return_inverse=True)
    item_ids, item_index = np.unique(all_items, return_inverse=True)
    titles = item_titles(parts, names, source, item_ids)
    result, start = [], 0
    for name, table in parts.items():
        rows = slice(start, start + len(table))
        start += len(table)
        users, items, values = read[name]
        stamps = np.zeros(len(table), dtype=np.int64)
        if names["timestamp"] in table.column_names:
            stamps = seconds(column(table, names["timestamp"], source))
        good = present(users) & present(items) & ~np.isnan(values)
        ratings = Ratings(
            torch.from_numpy(user_index[rows][good]),
            torch.from_numpy(item_index[rows][good]),
            torch.from_numpy(values[good]),
            torch.from_numpy(stamps[good]),
            user_ids.tolist(),
            item_ids.tolist(),
            titles,
            malformed=int((~good).sum()),
        )
        if len(ratings.ratings) == 0:
            raise DataError(f"--hf-dataset {source}: no ratings in its {name} split")
        ratings.notes.append(f"test: {note}")
        result.append(ratings)
    return result[0], result[1]


def usable(table, names: dict, source: str):
    """(N,) True where a row has a user, an item and a numeric rating."""
    import numpy as np

    from core.hf_data import column

    rated = ~np.isnan(numbers(column(table, names["rating"], source)))
    return (
        rated
        & present(ids(column(table, names["user"], source)))
        & present(ids(column(table, names["item"], source)))
    )


def ids(values):
    """Raw ids: an integer column as it is (no id is missing there), else strings, whole numbers
    without a decimal point (a column with a blank cell reads as floats), a missing one as ''."""
    import numpy as np
    import pandas as pd

    if np.issubdtype(values.dtype, np.integer):
        return values.astype(np.int64, copy=False)
    series = pd.Series(values)
    number = pd.to_numeric(series, errors="coerce")
    whole = number.notna() & (number == number.round())
    text = series.astype(str).where(series.notna(), "")
    text[whole] = number[whole].astype(np.int64).astype(str)
    return text.to_numpy(dtype=str)


def present(ids):
    """(N,) True where an id (from `ids`) is there."""
    import numpy as np

    return ids != "" if ids.dtype.kind == "U" else np.ones(len(ids), dtype=bool)


def seconds(values):
    """Timestamps as int64 seconds: numbers as they are, dates (ISO strings) converted, 0 where
    missing or unreadable."""
    import numpy as np
    import pandas as pd

    series = pd.Series(values)
    number = pd.to_numeric(series, errors="coerce")
    if number.isna().all() and series.notna().any():  # dates, not numbers
        dates = pd.to_datetime(series, errors="coerce", utc=True)
        number = (dates - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    return number.fillna(0).to_numpy(dtype=np.float64).astype(np.int64)


def numbers(values):
    """A column as float32, NaN where a value is not a number."""
    import numpy as np
    import pandas as pd

    return pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=np.float32)


def item_titles(parts: dict, names: dict, source: str, item_ids) -> list[str]:
    """Each item's title from the title column where the source has one, else its id."""
    from core.hf_data import column

    titles = {}
    for table in parts.values():
        if names["title"] in table.column_names:
            keys = ids(column(table, names["item"], source))
            values = column(table, names["title"], source).astype(str)
            titles.update(zip(keys, values, strict=True))
    return [titles.get(i, str(i)) for i in item_ids]


def known_ratings(run: dict, known: Ratings) -> tuple[Ratings, dict]:
    """The ratings of --hf-dataset in `run` (its hf_split, as `eval` chose it) of the users and
    films of `known` (the run's training ratings), indexed as there, and what the report says of
    them: a rating by a user or of a film the run never saw is left out and counted."""
    import numpy as np

    source = run["hf_dataset"]
    theirs = hf_ratings(source, run["hf_columns"], run["seed"], run["hf_split"])[1]

    def lookup(raw: list, index: list) -> torch.Tensor:  # raw index -> known index (-1: unknown)
        place = {str(v): k for k, v in enumerate(index)}
        return torch.tensor([place.get(str(v), -1) for v in raw], dtype=torch.int64)

    users = lookup(theirs.user_ids, known.user_ids)[theirs.users]
    items = lookup(theirs.item_ids, known.item_ids)[theirs.items]
    keep = torch.from_numpy(np.flatnonzero(((users >= 0) & (items >= 0)).numpy()))
    if len(keep) == 0:
        raise DataError(f"--hf-dataset {source}: no rating by a user of a film the run knows")
    found = Ratings(
        users[keep],
        items[keep],
        theirs.ratings[keep],
        theirs.timestamps[keep],
        known.user_ids,
        known.item_ids,
        known.titles,
    )
    left = len(theirs.ratings) - len(keep)
    where = f"{len(keep)} ratings of {source} ({theirs.notes[-1]}; {left} left out: a user or "
    return found, {"test_ratings": where + "film the run never saw)", "left_out": left}
