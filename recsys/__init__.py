"""Recommender systems: matrix factorization on MovieLens (`recsys.mf`)."""

from core.demo import Demo, Tour

MOVIELENS = (
    "MovieLens-100k (GroupLens): for research only; no commercial use; acknowledge the data "
    "set; no redistribution of the data without permission."
)

MF = Demo(
    "recsys",
    "mf",
    "matrix-factorization recommender",
    "MovieLens-100k",
    "RMSE",
    run_dir="runs/recsys-mf",
    module="recsys.mf.train",
    tour=Tour(
        metric="test_rmse",
        target=0.900,
        chance=1.126,  # on the default split (fold 0)
        chance_is="predicting the mean training rating",
        pictures=("items.png",),
        lower_is_better=True,
        # the quick configuration is the full one, so the tour's own benchmark row measures it
        full=0.8871,
        full_source="tour recsys_mf_test_rmse",
    ),
    app="recsys.mf.predict:app_tab",
    licence=MOVIELENS,
)

DEMOS = [MF]
