import itertools
import json
from pathlib import Path

import pytest
import torch

from core.errors import MissingData, ShowcaseError
from core.parse import build
from recsys.mf.bayes import draw_link, draw_rows
from recsys.mf.data import load_ratings, synthetic_ratings
from recsys.mf.model import (
    BiasedMF,
    MFConfig,
    fold_in,
    hit_rate_ndcg,
    predict_ratings,
    rating_loss,
    rmse_mae,
)
from recsys.mf.observed import thin_svd
from recsys.mf.predict import RecommendConfig, load_run, recommend
from recsys.mf.scoring import item_map
from recsys.mf.splits import kfold
from recsys.mf.train import MFTrainConfig, main
from tests.conftest import real_data


def fit_full_batch(model, data, steps=300, lr=0.05, reg=0.0):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        loss = rating_loss(model, data.users, data.items, data.ratings, reg, 0.0, len(data.ratings))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


def test_mf_recovers_a_planted_low_rank_matrix():
    torch.manual_seed(0)
    data = synthetic_ratings(num_users=100, num_items=120, rank=3, density=0.5)
    folds = kfold(len(data.ratings), 5, seed=0)
    train, test = data.subset(torch.cat(folds[1:])), data.subset(folds[0])
    model = fit_full_batch(
        BiasedMF(MFConfig(100, 120, dim=3), train.ratings.mean().item()), train, reg=1e-3
    )
    with torch.no_grad():
        rmse = rmse_mae(predict_ratings(model, test.users, test.items), test.ratings)["rmse"]
    assert rmse < 0.15  # the ratings' own spread is about 1


def test_gibbs_recovers_a_planted_low_rank_matrix(tmp_path):
    cfg = build(
        MFTrainConfig,
        synthetic=True,
        out_dir=str(tmp_path / "run"),
        device="cpu",
        dim=3,
        max_steps=60,
        burn_in=0.3,
    )
    metrics = main(cfg)["metrics"]
    assert metrics["test_rmse"] < 0.2  # the ratings' own spread is about 1
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in log if r["kind"] == "train"]
    assert steps == list(range(5, 61, 5))  # a training curve, not one point at the end


def test_draw_rows_matches_the_gaussian_posterior():
    torch.manual_seed(0)
    a = torch.randn(3, 3)
    gram = a @ a.T + torch.eye(3)  # one row's sum of outer products
    weighted, prior_mean, prior_precision = torch.randn(3), torch.randn(3), torch.rand(3) + 0.5
    n = 40_000
    draws = draw_rows(
        gram.expand(n, 3, 3),
        weighted.expand(n, 3),
        prior_mean.expand(n, 3),
        prior_precision,
        torch.tensor(2.0),
    )
    precision = 2.0 * gram + torch.diag(prior_precision)
    mean = torch.linalg.solve(precision, prior_precision * prior_mean + 2.0 * weighted)
    assert torch.allclose(draws.mean(0), mean, atol=0.02)
    assert torch.allclose(draws.T.cov(), torch.linalg.inv(precision), atol=0.02)


def test_draw_link_matches_the_ridge_posterior():
    torch.manual_seed(0)
    x = torch.randn(4, 6)  # more features than rows: the prior alone fixes part of W
    target, precision, link_reg = torch.randn(4, 1), torch.tensor([4.0]), 0.5
    basis = thin_svd(x)
    assert torch.allclose(basis[0] @ torch.diag(basis[1]) @ basis[2], x, atol=1e-4)
    draws = torch.stack([draw_link(basis, target, precision, link_reg) for _ in range(20_000)])
    a = x.T @ x + link_reg * torch.eye(6)  # posterior precision / precision
    mean = torch.linalg.solve(a, x.T @ target)
    assert torch.allclose(draws.mean(0), mean, atol=0.02)
    assert torch.allclose(draws[:, :, 0].T.cov(), torch.linalg.inv(a) / 4.0, atol=0.02)


def test_gibbs_resume_continues_the_same_chain(tmp_path, monkeypatch):
    from recsys.mf import bayes as train_mod

    common = dict(synthetic=True, device="cpu", dim=3, max_steps=16, burn_in=0.25, ckpt_every=5)
    whole = main(build(MFTrainConfig, out_dir=str(tmp_path / "whole"), **common))
    real_sweep, calls = train_mod.gibbs_sweep, []

    def interrupted(*args):
        calls.append(1)
        if len(calls) == 12:
            raise KeyboardInterrupt
        real_sweep(*args)

    monkeypatch.setattr(train_mod, "gibbs_sweep", interrupted)
    with pytest.raises(KeyboardInterrupt):
        main(build(MFTrainConfig, out_dir=str(tmp_path / "cut"), **common))
    monkeypatch.setattr(train_mod, "gibbs_sweep", real_sweep)
    resumed = main(build(MFTrainConfig, out_dir=str(tmp_path / "cut"), resume=True, **common))
    assert resumed["steps"] == 16  # sweeps 11..16 rerun from the checkpoint at sweep 10
    assert resumed["metrics"]["test_rmse"] == whole["metrics"]["test_rmse"]


@pytest.mark.real_data
def test_biases_beat_the_global_mean(ml100k):
    folds = kfold(len(ml100k.ratings), 5, seed=0)
    train, test = ml100k.subset(torch.cat(folds[1:])), ml100k.subset(folds[0])
    mean_rmse = rmse_mae(torch.full_like(test.ratings, train.ratings.mean().item()), test.ratings)[
        "rmse"
    ]
    model = BiasedMF(
        MFConfig(ml100k.num_users, ml100k.num_items, dim=1, init_std=0.0),
        train.ratings.mean().item(),
    )
    opt = torch.optim.Adam([model.user_bias, model.item_bias], lr=0.05)  # the factors stay at 0
    for _ in range(200):
        loss = rating_loss(
            model, train.users, train.items, train.ratings, 0.0, 0.05, len(train.ratings)
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        bias_rmse = rmse_mae(predict_ratings(model, test.users, test.items), test.ratings)["rmse"]
    assert mean_rmse > 1.1 and bias_rmse < 0.96


def test_ranking_metrics_on_a_hand_made_case():
    scores = torch.tensor(
        [[5.0, 1.0, 2.0], [1.0, 3.0, 2.0], [2.0, 3.0, 1.0]]
    )  # positive first: ranks 0, 2, 1
    metrics = hit_rate_ndcg(scores, k=2)
    assert metrics["hr@2"] == pytest.approx(2 / 3)
    assert metrics["ndcg@2"] == pytest.approx(
        (1.0 + 0.0 + 1 / torch.log2(torch.tensor(3.0)).item()) / 3
    )


@pytest.fixture(scope="module")
def ml100k():
    real_data("ml-100k", "u.data")
    return load_ratings(None, "ml-100k")


@pytest.mark.real_data
def test_loader_counts_and_splits(ml100k):
    assert len(ml100k.ratings) == 100_000 and ml100k.num_users == 943 and ml100k.num_items == 1682
    assert ml100k.malformed == 0 and ml100k.titles[49] == "Star Wars (1977)"
    base, test = load_ratings(None, "ml-100k", "u1.base"), load_ratings(None, "ml-100k", "u1.test")
    assert (len(base.ratings), len(test.ratings)) == (80_000, 20_000)
    assert len(load_ratings(None, "ml-100k", "ua.test").ratings) == 9430  # 10 per user


def test_malformed_lines_are_counted_with_the_first_line(tmp_path, capsys):
    folder = tmp_path / "ml-latest-small"  # a layout without pinned checksums, as users' own data
    folder.mkdir()
    (folder / "movies.csv").write_text(
        "movieId,title,genres\n1,Toy Story (1995),x\n2,GoldenEye (1995),x\n"
    )
    (folder / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n1,1,5,100\n1,2\n2,2,four,100\n2,1,3,100\n"
    )
    data = load_ratings(str(tmp_path), "ml-latest-small")
    assert len(data.ratings) == 2 and data.malformed == 2
    assert "skipped 2 malformed line(s), the first at line 3" in capsys.readouterr().err


def test_missing_dataset_names_files_and_place(tmp_path):
    with pytest.raises(
        ShowcaseError, match="ml-latest-small is missing ratings.csv, movies.csv: put its files in"
    ):
        load_ratings(str(tmp_path), "ml-latest-small")


@pytest.mark.real_data
def test_partial_or_damaged_ml100k_names_the_file(tmp_path, monkeypatch):
    import recsys.mf.data as mf_data

    offline = mf_data.Remote("ml-100k.zip", "http://127.0.0.1:9/ml-100k.zip", "md5:00")
    monkeypatch.setitem(mf_data.ARCHIVES, "ml-100k", offline)
    source = real_data("ml-100k")
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    (folder / "u.data").symlink_to(source / "u.data")  # u.item and u.user are missing
    with pytest.raises(
        MissingData, match=r"ml-100k is missing u.item, u.user in .*cannot download"
    ):
        load_ratings(str(tmp_path), "ml-100k")
    for name in ("u.item", "u.user"):
        (folder / name).symlink_to(source / name)
    assert len(load_ratings(str(tmp_path), "ml-100k").ratings) == 100_000
    (folder / "u1.base").write_bytes((source / "u1.base").read_bytes()[:-100])  # truncated
    with pytest.raises(ShowcaseError, match=r"u1.base is damaged or not the expected file"):
        load_ratings(str(tmp_path), "ml-100k", "u1.base")
    with pytest.raises(ShowcaseError, match="unknown ml-100k split 'u9.base'"):
        load_ratings(str(tmp_path), "ml-100k", "u9.base")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    real_data("ml-100k", "u.data")
    cfg = build(MFTrainConfig, out_dir=str(tmp_path_factory.mktemp("mf") / "run"), device="cpu")
    return cfg, main(cfg)  # the default: Bayesian MF, 100 Gibbs sweeps


@pytest.mark.real_data
def test_short_real_run(trained):
    cfg, report = trained
    assert report["metrics"]["test_rmse"] < 0.91  # Surprise's SVD: 0.936
    assert (
        json.loads((Path(cfg.out_dir) / "metrics.json").read_text())["metrics"]["test_mae"] < 0.72
    )


@pytest.mark.real_data
def test_item_map_names_the_most_rated_films_without_overlaps(trained):
    cfg, _ = trained
    model, train, _ = load_run(cfg.out_dir, None, torch.device("cpu"))
    fig = item_map(model, train, labels=12)
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    boxes = [t.get_window_extent(renderer) for t in ax.texts]
    assert len(boxes) >= 10
    assert not any(a.overlaps(b) for a, b in itertools.combinations(boxes, 2))
    frame = ax.get_window_extent(renderer)
    assert all(frame.contains(b.x0, b.y0) and frame.contains(b.x1, b.y1) for b in boxes)
    assert "Star Wars (1977)" in {t.get_text() for t in ax.texts}  # the most rated film


@pytest.mark.real_data
def test_map_method_on_real_data(tmp_path):
    real_data("ml-100k", "u.data")
    cfg = build(
        MFTrainConfig, method="map", out_dir=str(tmp_path / "map"), device="cpu", max_steps=60
    )
    metrics = main(cfg)["metrics"]
    assert metrics["test_rmse"] < 0.97 and "val_rmse" in metrics


@pytest.mark.real_data
def test_recommend_excludes_rated_items(trained, capsys):
    cfg, _ = trained
    result = recommend(RecommendConfig(out_dir=cfg.out_dir, user="42", top=20, device="cpu"))
    data = load_ratings(None, "ml-100k")
    rated = {data.titles[i] for i in data.items[data.users == data.user_ids.index("42")].tolist()}
    assert len(result["movies"]) == 20 and not rated & {m["title"] for m in result["movies"]}
    assert all(1.0 <= m["predicted"] <= 5.0 for m in result["movies"])


@pytest.mark.real_data
def test_similar_and_bad_input(trained, capsys):
    cfg, _ = trained
    result = recommend(
        RecommendConfig(out_dir=cfg.out_dir, similar="Star Wars (1977)", top=5, device="cpu")
    )
    assert len(result["movies"]) == 5 and "Star Wars (1977)" not in {
        m["title"] for m in result["movies"]
    }
    with pytest.raises(
        ShowcaseError, match="unknown title 'Star Wars 1977'; closest: 'Star Wars \\(1977\\)'"
    ):
        recommend(RecommendConfig(out_dir=cfg.out_dir, similar="Star Wars 1977", device="cpu"))
    with pytest.raises(ShowcaseError, match="unknown user 'bob'"):
        recommend(RecommendConfig(out_dir=cfg.out_dir, user="bob", device="cpu"))
    fallback = recommend(RecommendConfig(out_dir=cfg.out_dir, user="5000", device="cpu"))
    assert fallback["fallback"] == "popularity"
    assert "popularity fallback" in capsys.readouterr().out


def test_leave_latest_out_and_negatives():
    from recsys.mf.splits import leave_latest_out, sample_negatives

    data = synthetic_ratings(num_users=20, num_items=40, density=0.5)
    data.timestamps = torch.randperm(len(data.ratings))
    train, test = leave_latest_out(data)
    assert len(test.ratings) == 20 and len(train.ratings) == len(data.ratings) - 20
    for u in range(20):
        mine = data.users == u
        assert test.timestamps[test.users == u].item() == data.timestamps[mine].max().item()
    negatives = sample_negatives(data, test.users, 10, seed=0)
    rated = set(zip(data.users.tolist(), data.items.tolist(), strict=True))
    assert all(
        (u, i) not in rated
        for u, row in zip(test.users.tolist(), negatives.tolist(), strict=True)
        for i in row
    )


@pytest.mark.real_data
def test_bpr_ranks_held_out_items_under_the_ncf_protocol(tmp_path):
    real_data("ml-100k", "u.data")
    cfg = build(
        MFTrainConfig,
        method="bpr",
        split="ncf",
        out_dir=str(tmp_path / "bpr"),
        device="cpu",
        max_steps=120,
    )
    metrics = main(cfg)["metrics"]
    assert (
        metrics["test_hr_at_10"] > 0.5 and metrics["test_ndcg_at_10"] > 0.25
    )  # popularity-blind random: 0.10
    assert "test_rmse" not in metrics


@pytest.mark.real_data
def test_eval_reproduces_train_metrics_and_plots(trained):
    from recsys.mf.train import MFEvalConfig, evaluate

    cfg, report = trained
    again = evaluate(MFEvalConfig(out_dir=cfg.out_dir, device="cpu"))
    assert again["metrics"]["test_rmse"] == pytest.approx(report["metrics"]["test_rmse"], abs=1e-5)
    assert (Path(cfg.out_dir) / "items.png").stat().st_size > 1000


def ml100k_latest_held_out(threads):
    torch.set_num_threads(threads)
    try:
        from recsys.mf.splits import leave_latest_out

        _, held = leave_latest_out(load_ratings(None, "ml-100k"))
    finally:
        torch.set_num_threads(2)
    return held


@pytest.mark.real_data
def test_ncf_split_holds_out_each_users_latest_deterministically():
    real_data("ml-100k", "u.data")
    data = load_ratings(None, "ml-100k")
    runs = [ml100k_latest_held_out(t) for t in (1, 2, 2)]
    for other in runs[1:]:  # the same 943 ratings, whatever the thread count
        assert torch.equal(runs[0].users, other.users) and torch.equal(runs[0].items, other.items)
    held = runs[0]
    assert len(held.ratings) == 943 and len(set(held.users.tolist())) == 943
    latest = torch.zeros(data.num_users, dtype=torch.long).scatter_reduce(
        0, data.users, data.timestamps, reduce="amax"
    )
    assert torch.equal(held.timestamps, latest[held.users])  # each is its user's latest
    # of ratings in the same second, the later line of u.data is held out
    line = {
        (u, i): k
        for k, (u, i) in enumerate(zip(data.users.tolist(), data.items.tolist(), strict=True))
    }
    for u, i, t in zip(
        held.users.tolist(), held.items.tolist(), held.timestamps.tolist(), strict=True
    ):
        same_second = ((data.users == u) & (data.timestamps == t)).nonzero().flatten()
        assert line[(u, i)] == same_second.max().item()


def test_a_constant_scorer_hits_nothing():
    metrics = hit_rate_ndcg(torch.ones(50, 100), 10)
    assert metrics == {"hr@10": 0.0, "ndcg@10": 0.0}  # main: ties counted as hits (1.0)


def test_map_penalty_means_the_same_at_any_batch_size():
    data = synthetic_ratings(seed=3)
    model = BiasedMF(MFConfig(data.num_users, data.num_items, 4))
    n = len(data.ratings) // 4 * 4
    u, i, r = data.users[:n], data.items[:n], data.ratings[:n]
    whole = rating_loss(model, u, i, r, 15.0, 0.1, n)
    quarters = [rating_loss(model, *(t[k::4] for t in (u, i, r)), 15.0, 0.1, n) for k in range(4)]
    torch.testing.assert_close(torch.stack(quarters).mean(), whole)


@pytest.mark.parametrize("fold", [-1, 5])
def test_fold_outside_0_to_4_is_refused(fold):
    with pytest.raises(ShowcaseError, match="--fold picks one of 5 folds: 0-4"):
        build(MFTrainConfig, fold=fold)


def test_evaluation_does_not_touch_the_gibbs_chain(tmp_path):
    common = dict(synthetic=True, device="cpu", dim=3, max_steps=12, val_fraction=0.1)
    often = main(build(MFTrainConfig, out_dir=str(tmp_path / "often"), eval_every=2, **common))
    once = main(build(MFTrainConfig, out_dir=str(tmp_path / "once"), eval_every=1000, **common))
    assert often["metrics"]["test_rmse"] == once["metrics"]["test_rmse"]


def test_latest_small_titles_are_utf8(tmp_path):
    folder = tmp_path / "ml-latest-small"
    folder.mkdir()
    (folder / "movies.csv").write_text(
        "movieId,title,genres\n1,Amélie (2001),x\n2,Léon: The Professional (1994),x\n",
        encoding="utf-8",
    )
    (folder / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,5,100\n1,2,4,101\n")
    assert load_ratings(str(tmp_path), "ml-latest-small").titles == [
        "Amélie (2001)",
        "Léon: The Professional (1994)",
    ]


def test_recommend_ranks_by_raw_score_and_bpr_eval_ranks(tmp_path, capsys):
    from core.checkpoint import read_file, save_weights
    from recsys.mf.predict import load_run
    from recsys.mf.train import MFEvalConfig, evaluate

    out = tmp_path / "map"
    main(
        build(
            MFTrainConfig, method="map", synthetic=True, device="cpu", max_steps=3, out_dir=str(out)
        )
    )
    tensors, meta = read_file(out / "model.safetensors")
    tensors["item_bias"][:20] = 10.0 + torch.arange(
        20.0
    )  # twenty items predicted far above 5 stars
    model = BiasedMF(MFConfig(200, 300, 64, True))
    model.load_state_dict(tensors)
    save_weights(model, out / "model.safetensors", meta)
    result = recommend(RecommendConfig(out_dir=str(out), user="0", top=5, device="cpu"))
    loaded, train, test = load_run(str(out), None, torch.device("cpu"))
    scores = loaded()[0]
    scores[torch.cat([train.items[train.users == 0], test.items[test.users == 0]])] = -float("inf")
    expected = [train.titles[i] for i in scores.topk(5).indices.tolist()]
    assert [m["title"] for m in result["movies"]] == expected  # main: arbitrary among ties at 5.0
    assert all(m["predicted"] == 5.0 for m in result["movies"])
    bpr = tmp_path / "bpr"
    main(
        build(
            MFTrainConfig, method="bpr", synthetic=True, device="cpu", max_steps=3, out_dir=str(bpr)
        )
    )
    metrics = evaluate(MFEvalConfig(out_dir=str(bpr), device="cpu"))["metrics"]
    assert "test_hr_at_10" in metrics and "test_rmse" not in metrics  # main: RMSE of non-stars
    assert (
        "score"
        in recommend(RecommendConfig(out_dir=str(bpr), user="0", top=3, device="cpu"))["movies"][0]
    )


def test_fold_in_recovers_a_planted_users_ratings():
    """A user the model never saw, rated from the planted factors: folding in 15 of their ratings
    predicts the other films far better than the films' own means do."""
    torch.manual_seed(0)
    data = synthetic_ratings(num_users=101, num_items=120, rank=3, density=0.6)
    seen = data.subset((data.users < 100).nonzero().flatten())
    model = fit_full_batch(
        BiasedMF(MFConfig(101, 120, dim=3), seen.ratings.mean().item()), seen, reg=1e-3
    )
    mine = (data.users == 100).nonzero().flatten()
    told, later = mine[:15], mine[15:]
    scores = fold_in(model, data.items[told], data.ratings[told], penalty=0.1)
    with torch.no_grad():
        folded = rmse_mae(scores[data.items[later]], data.ratings[later])["rmse"]
        means = model.global_mean + model.item_bias[data.items[later]]
        baseline = rmse_mae(means, data.ratings[later])["rmse"]
    assert folded < 0.5 * baseline


@pytest.mark.real_data
def test_recommend_for_a_new_user_from_their_ratings(trained, capsys):
    cfg, _ = trained
    rate = ["Star Wars (1977)=5", "Fargo (1996)=4"]
    result = recommend(RecommendConfig(out_dir=cfg.out_dir, rate=rate, top=10, device="cpu"))
    titles = {m["title"] for m in result["movies"]}
    assert len(titles) == 10 and not titles & {"Star Wars (1977)", "Fargo (1996)"}
    assert result["fold_in"] and all(1.0 <= m["predicted"] <= 5.0 for m in result["movies"])
    with pytest.raises(ShowcaseError, match="unknown title 'Star Wars'; closest: 'Star Wars"):
        recommend(RecommendConfig(out_dir=cfg.out_dir, rate=["Star Wars=5"], device="cpu"))
    with pytest.raises(ShowcaseError, match="with 1 to 5 stars"):
        recommend(RecommendConfig(out_dir=cfg.out_dir, rate=["Fargo (1996)=six"], device="cpu"))
    with pytest.raises(ShowcaseError, match="pass exactly one of --user ID, --rate"):
        recommend(RecommendConfig(out_dir=cfg.out_dir, rate=rate, user="42", device="cpu"))
