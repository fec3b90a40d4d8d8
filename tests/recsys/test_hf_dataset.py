"""`--hf-dataset`: your own ratings table through Hugging Face `datasets` (tiny real-format files
written here), and the one-line errors bad data gets."""

import itertools

import numpy as np
import pandas as pd
import pytest

from core.errors import ShowcaseError
from core.parse import build
from recsys.mf.predict import RecommendConfig, recommend
from recsys.mf.train import MFEvalConfig, MFTrainConfig, evaluate, main


def ratings_table(n: int = 1500, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    table = pd.DataFrame(
        {
            "userId": rng.integers(1, 60, n),
            "movieId": rng.integers(1, 90, n),
            "stars": rng.integers(1, 6, n).astype(float),
            "timestamp": rng.integers(0, 10**9, n),
        }
    )
    table["title"] = "film " + table["movieId"].astype(str)
    return table


COLUMNS = ("user=userId", "item=movieId", "rating=stars")
RUNS = itertools.count()


def train(tmp_path, source, *columns: str, **fields) -> dict:
    """A short run on `source` in a new run folder under tmp_path/run."""
    cfg = build(
        MFTrainConfig,
        hf_dataset=str(source),
        hf_columns=list(columns),
        out_dir=str(tmp_path / "run" / str(next(RUNS))),
        device="cpu",
        max_steps=10,
        **fields,
    )
    return main(cfg)


def test_a_parquet_table_trains_evaluates_and_recommends(tmp_path, capsys):
    path = tmp_path / "ratings.parquet"
    ratings_table().to_parquet(path)
    report = train(tmp_path, path, *COLUMNS)
    assert 0 < report["metrics"]["test_rmse"] < 3
    assert "a seeded 20% of it held out as test" in report["metrics"]["test_ratings"]
    run = report["config"]["out_dir"]
    again = evaluate(MFEvalConfig(out_dir=run, device="cpu"))  # the same split from the run
    assert again["metrics"]["test_rmse"] == pytest.approx(report["metrics"]["test_rmse"])
    top = recommend(RecommendConfig(out_dir=run, user="5", top=3, device="cpu"))
    assert len(top["movies"]) == 3 and top["movies"][0]["title"].startswith("film ")


def test_eval_scores_a_run_on_another_table(tmp_path):
    """`eval --hf-dataset`: a later table's ratings by the users of films the run knows, every
    row of it scored (a rating by a new user or of a new film is counted and left out)."""
    path = tmp_path / "ratings.parquet"
    ratings_table().to_parquet(path)
    run = train(tmp_path, path, *COLUMNS)["config"]["out_dir"]
    later = ratings_table(200, seed=1)
    later.loc[0, "userId"], later.loc[1, "movieId"] = 999, 999  # never seen by the run
    later.to_csv(tmp_path / "later.csv", index=False)
    cfg = MFEvalConfig(
        out_dir=run, device="cpu", hf_dataset=str(tmp_path / "later.csv"), hf_columns=[*COLUMNS]
    )
    metrics = evaluate(cfg)["metrics"]
    unseen = (~later.movieId.isin(ratings_table().movieId)) | (later.userId == 999)
    assert metrics["test_ratings"].startswith(f"{200 - unseen.sum()} ratings of")
    assert "(test: the source's train split (every row of it)" in metrics["test_ratings"]
    assert metrics["left_out"] == unseen.sum() >= 2 and 0 < metrics["test_rmse"] < 3


def test_a_folder_with_train_and_test_files_keeps_its_test_split(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    table = ratings_table()
    table[:1200].to_csv(folder / "train.csv", index=False)
    table[1200:].to_csv(folder / "test.csv", index=False)
    report = train(tmp_path, folder, *COLUMNS)
    assert report["metrics"]["test_ratings"] == "the source's test split"


def test_bad_data_gets_one_line_naming_the_file_and_row(tmp_path, capsys):
    table = ratings_table().astype({"stars": object})
    table.loc[6, "stars"] = "five"
    path = tmp_path / "ratings.csv"
    table.to_csv(path, index=False)
    train(tmp_path, path, *COLUMNS)  # the bad rating is skipped and counted
    err = capsys.readouterr().err
    assert "ratings.csv (train split): skipped 1 row(s) without a user, an item or a numeric" in err
    assert "the first data row 7" in err
    cases = [
        ((path, "user=userId", "item=movieId"), "no column 'rating' \\(it has: userId, movieId"),
        ((path, "usr=userId"), "give KEY=COLUMN with KEY one of user, item"),
        ((tmp_path / "nothing.csv",), "no such file or folder"),
        ((tmp_path / "notes.txt",), "unknown file type '.txt'"),
    ]
    (tmp_path / "notes.txt").write_text("hello")
    for (source, *columns), message in cases:
        with pytest.raises(ShowcaseError, match=message):
            train(tmp_path, source, *columns)
    empty = tmp_path / "empty.csv"
    table[:0].to_csv(empty, index=False)
    with pytest.raises(ShowcaseError, match="empty"):
        train(tmp_path, empty, *COLUMNS)
    with pytest.raises(ShowcaseError, match="--split names a MovieLens split: leave it out"):
        train(tmp_path, path, *COLUMNS, split="u1")
    with pytest.raises(ShowcaseError, match="--synthetic and --hf-dataset name two sources"):
        train(tmp_path, path, *COLUMNS, synthetic=True)


def test_a_demo_without_a_dataset_refuses_the_flag():
    from rl.dqn.train import DQNConfig

    with pytest.raises(ShowcaseError, match="--hf-dataset is not supported by rl dqn"):
        build(DQNConfig, hf_dataset="episodes/")


def test_ids_with_blank_cells_keep_their_numbers_and_dates_read_as_seconds(tmp_path, capsys):
    """A blank user cell turns the column into floats: ids stay '23', not '23.0', the row is
    skipped and counted; ISO dates are timestamps; a relative path is found from anywhere."""
    table = ratings_table().astype({"userId": float})
    table.loc[3, "userId"] = np.nan
    table["timestamp"] = pd.date_range("2020-01-01", periods=len(table), freq="h").astype(str)
    path = tmp_path / "holes.csv"
    table.to_csv(path, index=False)
    report = train(tmp_path, path, *COLUMNS)
    assert "skipped 1 row(s) without a user" in capsys.readouterr().err
    run = report["config"]["out_dir"]
    user = str(int(table["userId"].dropna().iloc[0]))
    found = recommend(RecommendConfig(out_dir=run, user=user, top=3, device="cpu"))
    assert found["rated"] > 0 and "fallback" not in found
    assert report["config"]["hf_dataset"] == str(path.resolve())


def test_a_catalog_beyond_the_dense_matrices_trains_sparse(tmp_path, monkeypatch):
    """20,000 users x 20,000 items (beyond DENSE_CELLS): bayes trains with a low-rank implicit
    basis and scores pairs, never the (U, I) matrix (its forward fails the test here); map, which
    trains on that matrix, is one line."""
    import recsys.mf.model

    rng = np.random.default_rng(0)
    users, items = rng.integers(1, 20_001, 30_000), rng.integers(1, 20_001, 30_000)
    users[:20_000], items[:20_000] = np.arange(1, 20_001), np.arange(1, 20_001)  # all of each
    table = pd.DataFrame({"user": users, "item": items, "rating": rng.integers(1, 6, 30_000)})
    path = tmp_path / "wide.parquet"
    table.to_parquet(path)
    dense = recsys.mf.model.BiasedMF.forward
    monkeypatch.setattr(recsys.mf.model.BiasedMF, "forward", lambda m: pytest.fail("dense"))
    report = train(tmp_path, path)
    assert 0 < report["metrics"]["test_rmse"] < 3
    run = report["config"]["out_dir"]
    top = recommend(RecommendConfig(out_dir=run, user="5", top=3, device="cpu"))
    assert len(top["movies"]) == 3
    monkeypatch.setattr(recsys.mf.model.BiasedMF, "forward", dense)
    with pytest.raises(ShowcaseError, match="20,000 users x 20,000 items: --method map trains on"):
        train(tmp_path, path, method="map")


def test_pair_scores_are_the_dense_matrix_entries():
    import torch

    from recsys.mf.model import BiasedMF, MFConfig, pair_scores, select

    torch.manual_seed(0)
    model = BiasedMF(MFConfig(30, 40, 6, implicit=True, init_std=0.3), 3.2)
    model.implicit.data.normal_()
    users, items = torch.randint(0, 30, (500,)), torch.randint(0, 40, (500,))
    model.set_history(users[:200], items[:200])
    with torch.no_grad():
        expected = select(model(), users, items)
        assert torch.allclose(pair_scores(model, users, items), expected, atol=1e-5)


def test_a_small_catalog_evaluates_and_bpr_says_why_not(tmp_path):
    table = ratings_table(n=600)
    table["movieId"] = table["movieId"] % 40 + 1  # 40 films, none rated 20 times in training
    path = tmp_path / "small.parquet"
    table.to_parquet(path)
    report = train(tmp_path, path, *COLUMNS)
    scored = evaluate(MFEvalConfig(out_dir=report["config"]["out_dir"], device="cpu"))
    assert scored["metrics"]["test_rmse"] > 0  # items.png from the films it has
    with pytest.raises(ShowcaseError, match="against 99 items its user never rated"):
        train(tmp_path, path, *COLUMNS, method="bpr")
    header = tmp_path / "header.csv"
    header.write_text("userId,movieId,stars\n")
    with pytest.raises(ShowcaseError, match="no data rows"):
        train(tmp_path, header, *COLUMNS)
