"""Recommender systems: matrix factorization on MovieLens (planned)."""

from core.registry import Demo

DEMOS = [
    Demo(
        "recsys",
        "mf",
        "matrix-factorization recommender",
        "MovieLens-100k",
        "RMSE",
        "recsys.mf.train",
    )
]
