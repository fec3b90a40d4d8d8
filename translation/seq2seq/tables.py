"""Your sentence pairs through Hugging Face `datasets` (--hf-dataset): a table's source and
target columns, by split, and where the validation and test pairs come from, in words."""

import sys

from core.errors import UsageError
from core.hf_data import column, column_names, open_source

COLUMNS = {"source": "source", "target": "target"}
"""--hf-dataset's columns by role (rename with --hf-columns, e.g. source=de target=en)."""


def own_splits(test: str) -> dict[str, str]:
    """The source's splits used, where it has them, for validation and test (--hf-split): its
    `validation` split validates unless it is the test."""
    return {"val": "validation" if test != "validation" else "", "test": test}


def hf_pairs(
    source: str, pairs: list[str], test: str = "test"
) -> dict[str, tuple[list[str], list[str]] | None]:
    """The sentence pairs of a table through `datasets`, by split: train, and val and test where
    the source has them (None: not there). A pair with an empty side is skipped and counted,
    the first one named by its data row."""
    splits = open_source(source)
    if "train" not in splits:
        raise UsageError(f"--hf-dataset {source} has no train split (it has: {', '.join(splits)})")
    if test != "test" and test not in splits:
        raise UsageError(
            f"--hf-split {test}: the source has no such split (it has: {', '.join(splits)})"
        )
    names = column_names(pairs, COLUMNS)
    out = {}
    for name, split in {"train": "train", **own_splits(test)}.items():
        if split not in splits:
            out[name] = None
            continue
        table = splits[split]
        sides = [column(table, names[key], source) for key in ("source", "target")]
        good = [
            i
            for i in range(len(table))
            if all(isinstance(s[i], str) and s[i].strip() for s in sides)
        ]
        if len(good) < len(table):
            first = next(i for i in range(len(table)) if i not in set(good))
            print(
                f"showcase: warning: {source} ({split} split): skipped {len(table) - len(good)} "
                f"pair(s) with an empty side, the first data row {first + 1}",
                file=sys.stderr,
            )
        out[name] = tuple([str(s[i]) for i in good] for s in sides)
    return out


def hf_sources(cfg, counts: dict[str, int]) -> dict[str, str]:
    """Where --hf-dataset's validation and test pairs (`counts` of each) come from, in words."""
    own, split = open_source(cfg.hf_dataset), own_splits(cfg.hf_split)  # from the Arrow cache
    out = {}
    for name, n in counts.items():
        if split[name] == "train":  # eval on another source without a test split: all of it
            out[name] = f"every pair of {cfg.hf_dataset} ({n} pairs)"
            continue
        if split[name] in own:
            out[name] = f"{cfg.hf_dataset}'s {split[name]} split ({n} pairs)"
            continue
        which = "first" if name == "val" or split["val"] in own else "second"
        out[name] = (
            f"{n} pairs held out of --hf-dataset ({which} seeded slice, seed {cfg.seed}; "
            "not trained on)"
        )
    return out
