"""`core.hf_data`: the held-out test rows are those of `datasets`' own seeded split, gathered
without an indices mapping; a named split the source lacks is one line, and so is a missing
column (bad data: exit code 1, as in every demo)."""

import datasets
import pytest

from core.errors import DataError, UsageError
from core.hf_data import column, train_test


def test_the_held_out_rows_are_train_test_splits():
    table = datasets.Dataset.from_dict({"a": list(range(101)), "b": [str(i) for i in range(101)]})
    train, test, note = train_test({"train": table}, seed=7)
    theirs = table.train_test_split(test_size=0.2, seed=7)
    assert train["a"] == theirs["train"]["a"] and test["b"] == theirs["test"]["b"]
    assert len(test) == 21 and "a seeded 20% of it held out as test" in note
    assert train._indices is None and test._indices is None  # gathered: columns read at once


def test_the_source_split_and_a_missing_one():
    parts = {"train": datasets.Dataset.from_dict({"a": [1, 2, 3]})}
    parts["dev"] = datasets.Dataset.from_dict({"a": [4]})
    train, test, note = train_test(parts, seed=0, test="dev")
    assert test["a"] == [4] and note == "the source's dev split"
    with pytest.raises(UsageError, match="--hf-split gold: the source has no such split"):
        train_test(parts, seed=0, test="gold")
    with pytest.raises(DataError, match=r"--hf-dataset t.csv: no column 'b' \(it has: a\)") as err:
        column(parts["train"], "b", "t.csv")
    assert err.value.exit_code == 1


def test_eval_takes_another_source_where_the_demo_has_data():
    from rl.dqn.scoring import DQNEvalConfig
    from vision.classify.train import ClassifyEvalConfig

    with pytest.raises(UsageError, match="--hf-dataset is not supported by rl dqn"):
        DQNEvalConfig(hf_dataset="ratings.csv")
    with pytest.raises(UsageError, match="--hf-columns and --hf-split go with --hf-dataset"):
        ClassifyEvalConfig(hf_split="dev")
    with pytest.raises(UsageError, match="--hf-split is not supported by rl dqn"):
        DQNEvalConfig(hf_split="train")
    with pytest.raises(UsageError, match="--seed must be >= 0"):
        DQNEvalConfig(seed=-5)
    with pytest.raises(UsageError, match="--synthetic and --hf-dataset name two sources"):
        ClassifyEvalConfig(hf_dataset="shapes/", synthetic=True)
