"""`--hf-dataset` for the translator: sentence pairs in a table through Hugging Face `datasets`
(a csv and a folder of parquet splits, written here), and the one-line errors bad tables get."""

import pandas as pd
import pytest

from core.errors import ShowcaseError
from core.parse import build
from translation.seq2seq.data import load_texts
from translation.seq2seq.predict import TranslateConfig, translate
from translation.seq2seq.train import TranslationConfig, TranslationEvalConfig, evaluate, main

TINY = {"d_model": 32, "heads": 2, "layers": 1, "d_ff": 64, "vocab_size": 300, "beam": 1}


def pairs(n: int, start: int = 0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "de": [f"satz {i}" for i in range(start, start + n)],
            "en": [f"sentence {i}" for i in range(start, start + n)],
        }
    )


def config(tmp_path, source, **fields) -> TranslationConfig:
    return build(
        TranslationConfig,
        hf_dataset=str(source),
        hf_columns=["source=de", "target=en"],
        out_dir=str(tmp_path / "run"),
        device="cpu",
        **fields,
    )


def test_a_csv_of_pairs_trains_evaluates_and_translates(tmp_path, capsys):
    path = tmp_path / "pairs.csv"
    pairs(300).to_csv(path, index=False)
    cfg = config(tmp_path, path, max_steps=2, **TINY)
    texts = load_texts(cfg)
    assert {name: len(src) for name, (src, _) in texts.items()} == {
        "train": 240,
        "val": 30,
        "test": 30,
    }
    assert not set(texts["test"][0]) & set(texts["train"][0] + texts["val"][0])
    metrics = main(cfg)["metrics"]
    assert metrics["test_pairs"].startswith("30 pairs held out of --hf-dataset (second seeded")
    scored = evaluate(TranslationEvalConfig(out_dir=cfg.out_dir, device="cpu"))["metrics"]
    assert scored["test_pairs"] == metrics["test_pairs"] and scored["sentences"] == 30
    capsys.readouterr()
    out = translate(TranslateConfig(sentences=["satz 7"], out_dir=cfg.out_dir, device="cpu"))
    assert len(out["translations"]) == 1
    other = tmp_path / "other.csv"  # `eval --hf-dataset`: every pair of another table
    pairs(40, start=1000).to_csv(other, index=False)
    columns = ["source=de", "target=en"]
    scored = evaluate(
        TranslationEvalConfig(
            out_dir=cfg.out_dir, device="cpu", hf_dataset=str(other), hf_columns=columns
        )
    )["metrics"]
    assert scored["sentences"] == 40 and scored["test_pairs"].startswith("every pair of")


def test_a_folder_of_splits_uses_its_own_validation_and_test(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    pairs(200).to_parquet(folder / "train.parquet")
    pairs(12, start=500).to_parquet(folder / "validation.parquet")
    pairs(15, start=900).to_parquet(folder / "test.parquet")
    cfg = config(tmp_path, folder)
    texts = load_texts(cfg)
    assert len(texts["train"][0]) == 200  # nothing held out: the source has both splits
    assert texts["val"][0][0] == "satz 500" and texts["test"][0][0] == "satz 900"


def test_bad_tables_get_one_line(tmp_path, capsys):
    blank = pairs(300)
    blank.loc[4, "en"] = None
    path = tmp_path / "blank.csv"
    blank.to_csv(path, index=False)
    texts = load_texts(config(tmp_path, path))
    assert sum(len(src) for src, _ in texts.values()) == 299
    assert "skipped 1 pair(s) with an empty side, the first data row 5" in capsys.readouterr().err
    with pytest.raises(ShowcaseError, match="no column 'english'"):
        load_texts(
            build(
                TranslationConfig, hf_dataset=str(path), hf_columns=["source=de", "target=english"]
            )
        )
    few = tmp_path / "few.csv"
    pairs(5).to_csv(few, index=False)
    with pytest.raises(ShowcaseError, match="--hf-dataset holds 5 pairs: too few to hold out"):
        load_texts(config(tmp_path, few))
    with pytest.raises(ShowcaseError, match="choose one of --hf-dataset and --train-files"):
        build(TranslationConfig, hf_dataset=str(path), train_files=("a.de", "a.en"))


def test_hf_split_names_the_test_split(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    pairs(200).to_parquet(folder / "train.parquet")
    pairs(12, start=500).to_parquet(folder / "validation.parquet")
    cfg = config(tmp_path, folder, hf_split="validation")
    texts = load_texts(cfg)
    assert texts["test"][0][0] == "satz 500" and len(texts["test"][0]) == 12
    assert len(texts["val"][0]) == 20 and not set(texts["val"][0]) & set(texts["train"][0])
    with pytest.raises(ShowcaseError, match="--hf-split dev: the source has no such split"):
        load_texts(config(tmp_path, folder, hf_split="dev"))
