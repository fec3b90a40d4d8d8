"""Your own data through Hugging Face `datasets`: `--hf-dataset SOURCE` is a local file (its format
from the extension: csv, tsv, json, jsonl, parquet), a local folder (images in class subfolders:
imagefolder; audio files: the metadata tables naming them; else the tables inside), or, with
network, a dataset on the Hub (`owner/name`). `datasets` keeps an Arrow cache, so a second run does not decode again.

    splits = open_source("my_ratings.parquet")            # {"train": Dataset}
    train, test, note = train_test(splits, seed=0)         # a seeded test slice if it has none
    users = column(train, "user", "my_ratings.parquet")    # one line if the column is missing
"""

import math
from pathlib import Path

import numpy as np

from core.errors import DataError, MissingData, UsageError

TABLES = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}
IMAGES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}
AUDIO = {".wav", ".flac", ".mp3", ".ogg"}
TEST_SHARE = 0.2
"""The share of a source without a test split held out as test (seeded)."""


def builder(path: Path) -> tuple[str, dict]:
    """The `datasets` builder and its arguments for a local file or folder."""
    if path.is_file():
        kind = TABLES.get(path.suffix.lower())
        if kind is None:
            raise UsageError(
                f"--hf-dataset {path}: unknown file type {path.suffix!r}; "
                f"use one of {', '.join(sorted(TABLES))} or a folder"
            )
        extra = {"delimiter": "\t"} if path.suffix.lower() == ".tsv" else {}
        return kind, {"data_files": str(path), **extra}
    suffixes = {p.suffix.lower() for p in path.rglob("*") if p.is_file()}
    if suffixes & IMAGES:
        return "imagefolder", {"data_dir": str(path)}
    if suffixes & AUDIO:  # its metadata tables: datasets' audiofolder encodes through torchcodec
        tables = metadata_tables(path)
        if not tables:
            raise DataError(
                f"--hf-dataset {path}: an audio folder needs a metadata.csv naming each file "
                "(file_name) and what it says, in it or in its train/ and test/ folders"
            )
        suffix = next(iter(tables.values())).suffix.lower()
        extra = {"delimiter": "\t"} if suffix == ".tsv" else {}
        files = {split: str(table) for split, table in tables.items()}
        return TABLES[suffix], {"data_files": files, **extra}
    tables = sorted(suffixes & set(TABLES))
    if not tables:
        raise DataError(f"--hf-dataset {path}: no images, audio or tables inside")
    return TABLES[tables[0]], {"data_dir": str(path)}  # train*/test* files name the splits


def metadata_tables(path: Path) -> dict[str, Path]:
    """An audio folder's metadata table by split: `metadata.*` in it (train), or in its split
    folders (`train/`, `test/`, `validation/`); file names in a table are relative to its folder."""

    def table(folder: Path) -> Path | None:
        found = sorted(p for p in folder.glob("metadata.*") if p.suffix.lower() in TABLES)
        return found[0] if found else None

    if table(path):
        return {"train": table(path)}
    splits = {name: table(path / name) for name in ("train", "test", "validation")}
    return {name: found for name, found in splits.items() if found}


def open_source(source: str) -> dict:
    """The splits of `source` by name (a local source without named splits has only `train`)."""
    import datasets
    import huggingface_hub

    datasets.logging.set_verbosity_error()  # retries and progress: the outcome is one line
    datasets.disable_progress_bars()
    huggingface_hub.logging.set_verbosity_error()
    path = Path(source).expanduser()
    try:
        if path.exists():
            kind, arguments = builder(path)
            return dict(datasets.load_dataset(kind, **arguments))
        if source.count("/") != 1 or source.startswith((".", "/", "~")):
            raise UsageError(f"--hf-dataset {source}: no such file or folder")
        return dict(datasets.load_dataset(source))
    except (UsageError, DataError):  # ours already: one line each
        raise
    except (ConnectionError, OSError) as exc:
        raise MissingData(
            f"--hf-dataset {source}: cannot fetch it from the Hugging Face Hub "
            f"({type(exc).__name__}); download it (`hf download {source} --repo-type dataset "
            f"--local-dir DIR`) and pass DIR"
        ) from None
    except Exception as exc:  # a file datasets cannot parse: one line, naming it
        reason = " ".join(str(exc).split())[:200]
        if "corresponds to no data" in reason:  # datasets' words for a split without rows
            raise DataError(f"--hf-dataset {source}: no data rows (a header alone?)") from None
        raise DataError(f"--hf-dataset {source}: unreadable ({reason})") from None


def train_test(splits: dict, seed: int, test: str = "test") -> tuple:
    """(train, test, note): the source's own `test` split, or a seeded TEST_SHARE of its only
    split held out (the note says which, for the report)."""
    names = ", ".join(splits) or "none"
    if "train" not in splits:
        raise DataError(f"--hf-dataset has no train split (it has: {names})")
    train = splits["train"]
    if len(train) == 0:
        raise DataError("--hf-dataset: the train split is empty")
    if test in splits:
        whole = " (every row of it)" if test == "train" else ""
        return train, splits[test], f"the source's {test} split{whole}"
    if test != "test":
        raise UsageError(f"--hf-split {test}: the source has no such split (it has: {names})")
    if len(train) < 2:
        raise DataError("--hf-dataset: one row is too few to hold out a test set")
    # the rows `train_test_split(test_size=TEST_SHARE, seed=seed)` holds out, gathered by Arrow:
    # the indices mapping datasets would keep instead reads a column row by row (minutes for 25M)
    order = np.random.default_rng(seed).permutation(len(train))
    held = math.ceil(TEST_SHARE * len(train))
    note = f"no {test} split in the source: a seeded {TEST_SHARE:.0%} of it held out as test"
    return rows(train, order[held:]), rows(train, order[:held]), note


def rows(table, which: np.ndarray):
    """The rows `which` of a split (in that order), as a split of their own, in memory."""
    import datasets

    taken = table.with_format("arrow")[:].take(which)  # no indices mapping: one Arrow gather
    return datasets.Dataset(datasets.table.InMemoryTable(taken), info=table.info.copy())


def column(table, name: str, source: str):
    """Column `name` of a split as a numpy array; a missing one is one line naming the source,
    the column and those it has."""
    if name not in table.column_names:
        have = ", ".join(table.column_names)
        raise DataError(f"--hf-dataset {source}: no column {name!r} (it has: {have})")
    return table.with_format("arrow")[name].to_numpy(zero_copy_only=False)  # rows in split order


def column_names(pairs: list[str], defaults: dict[str, str]) -> dict[str, str]:
    """--hf-columns KEY=COLUMN pairs over the demo's `defaults` (key -> column name)."""
    names = dict(defaults)
    for pair in pairs:
        key, sep, name = pair.partition("=")
        if not sep or key not in defaults or not name:
            keys = ", ".join(defaults)
            raise UsageError(f"--hf-columns {pair!r}: give KEY=COLUMN with KEY one of {keys}")
        names[key] = name
    return names


def scored_source(cfg, run: dict, **others) -> dict:
    """The run's config (`run`, as in config.json) with `eval`'s --hf-dataset as its data: the
    source's --hf-split split, or every row of it where it has no test split; `others` clear
    the run's fields that name another data source. The run's own source (or no --hf-dataset)
    keeps the run's held-out test rows, unless --hf-split names another of its splits."""
    if not cfg.hf_dataset:
        return run
    if cfg.hf_dataset == run.get("hf_dataset") and cfg.hf_split == "test":
        if cfg.hf_columns:
            raise UsageError("--hf-columns: the run reads its own source with its own columns")
        return run  # the run's held-out test rows
    split, splits = cfg.hf_split, open_source(cfg.hf_dataset)
    if split not in splits and split != "test":
        have = ", ".join(splits)
        raise UsageError(f"--hf-split {split}: the source has no such split (it has: {have})")
    split = split if split in splits else "train"  # no test split: score all of it
    own = {"hf_dataset": cfg.hf_dataset, "hf_columns": cfg.hf_columns, "hf_split": split}
    return {**run, "synthetic": False, **others, **own}
