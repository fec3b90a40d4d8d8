"""Recommendations for a user and movies similar to a title: `recommend` and the app's tab."""

import dataclasses
import json

import torch

from core.config import InferenceConfig
from core.demo import Tab, Widget
from core.device import pick_device
from core.errors import ShowcaseError, positive
from core.run import load_run_weights, run_config
from recsys import MF
from recsys.mf.bayes import kept_draws
from recsys.mf.model import BiasedMF, MFConfig
from recsys.mf.rank import new_user_movies, similar_movies, user_movies
from recsys.mf.splits import carve_validation, split_data
from recsys.mf.tables import hf_ratings


@dataclasses.dataclass
class RecommendConfig(InferenceConfig):
    """Print a user's top movies, or the movies nearest a title (--json: one object)."""

    DEMO = MF

    user: str | None = None
    """Raw user id (as in the dataset) to recommend for."""
    similar: str | None = None
    """A movie title: print the nearest movies by embedding cosine."""
    rate: list[str] = dataclasses.field(default_factory=list)
    """A new user's ratings, each TITLE=STARS (e.g. "Star Wars (1977)=5"): their top movies,
    without retraining (fold-in)."""
    top: int = 10
    """How many movies to print."""
    data_dir: str | None = None
    """Data root (default: the run's, else $SHOWCASE_DATA)."""

    def __post_init__(self) -> None:
        positive(self, "top")


def load_run(out_dir: str, data_dir: str | None, device: torch.device):
    """The trained model with its training and test ratings."""
    cfg = run_config(out_dir)
    if cfg.get("hf_dataset"):
        split = cfg.get("hf_split", "test")
        train, test = hf_ratings(cfg["hf_dataset"], cfg["hf_columns"], cfg["seed"], split)
    else:
        folder = data_dir or cfg["data_dir"]
        train, test = split_data(
            folder, cfg["dataset"], cfg["split"], cfg["fold"], cfg["seed"], cfg["synthetic"]
        )
    if cfg["method"] == "bayes":  # the average of the kept draws: their factors side by side
        dim = cfg["dim"] * kept_draws(cfg["max_steps"], cfg["burn_in"])
        shape = MFConfig(train.num_users, train.num_items, dim, init_std=0.0)
    else:
        shape = MFConfig(train.num_users, train.num_items, cfg["dim"], cfg["implicit"], 0.0)
    model = BiasedMF(shape).to(device)
    load_run_weights(model, out_dir)
    if shape.implicit:
        fit_part, _ = carve_validation(train, cfg["val_fraction"], cfg["seed"])
        model.set_history(fit_part.users.to(device), fit_part.items.to(device))
    return model.eval(), train, test


@torch.no_grad()
def recommend(cfg: RecommendConfig) -> dict:
    """Top movies for --user (excluding what they rated), for a new user's --rate pairs, or
    movies --similar to a title."""
    if sum([cfg.user is not None, cfg.similar is not None, bool(cfg.rate)]) != 1:
        raise ShowcaseError(
            "pass exactly one of --user ID, --rate TITLE=STARS ... or --similar TITLE"
        )
    device = pick_device(cfg.device)
    model, train, test = load_run(cfg.out_dir, cfg.data_dir, device)
    if cfg.rate:
        if run_config(cfg.out_dir)["method"] == "bpr":
            raise ShowcaseError("--rate folds in star ratings: a bpr run ranks, it predicts none")
        rows = new_user_movies(model, train, cfg.rate, cfg.top)
        result = {"rated": len(cfg.rate), "fold_in": True, "movies": rows}
        lines = [
            f"top {len(rows)} for a new user from {len(cfg.rate)} ratings (fold-in; ranked by "
            "predicted stars and how often each film is rated):"
        ]
        lines += [f"  {r['predicted']:.2f}  {r['title']}" for r in rows]
    elif cfg.similar is not None:
        rows = similar_movies(model, train.titles, cfg.similar, cfg.top)
        result = {"similar_to": cfg.similar, "movies": rows}
        lines = [f"movies like {cfg.similar}:"] + [
            f"  {r['cosine']:.3f}  {r['title']}" for r in rows
        ]
    else:
        stars = run_config(cfg.out_dir)["method"] != "bpr"  # bpr scores order items; no stars
        found = user_movies(model, train, test, cfg.user, cfg.top, stars)
        if found is None:
            return _popular(cfg, train, torch.bincount(train.items, minlength=train.num_items))
        rows, rated = found
        result = {"user": cfg.user, "rated": rated, "movies": rows}
        lines = [f"top {cfg.top} for user {cfg.user} ({rated} ratings):"] + [
            f"  {r.get('predicted', r.get('score')):.2f}  {r['title']}" for r in rows
        ]
    print(json.dumps(result) if cfg.json else "\n".join(lines))
    return result


def _popular(cfg: RecommendConfig, train, counts: torch.Tensor) -> dict:
    """The fallback for a user with no ratings: well-rated movies that many people rated."""
    sums = torch.zeros(train.num_items).index_add_(0, train.items, train.ratings)
    mean = (sums + 3.0 * 10) / (counts + 10)  # shrunk towards 3 stars by 10 pseudo-ratings
    top = mean.topk(cfg.top)
    rows = [
        {"title": train.titles[i], "mean_rating": round(m, 2)}
        for m, i in zip(top.values.tolist(), top.indices.tolist(), strict=True)
    ]
    result = {"user": cfg.user, "rated": 0, "fallback": "popularity", "movies": rows}
    lines = [
        f"user {cfg.user} has no ratings: most popular well-rated movies instead (popularity fallback):"
    ]
    lines += [f"  {r['mean_rating']:.2f}  {r['title']}" for r in rows]
    print(json.dumps(result) if cfg.json else "\n".join(lines))
    return result


def app_tab():
    """`showcase app`: pick a user -> top-10 films with predicted ratings and what they rated
    highest; or type a title -> similar films."""

    def load(run_dir: str, device: torch.device):
        model, train, test = load_run(run_dir, None, device)
        return model, train, test, run_config(run_dir)["method"] != "bpr"

    def infer(session, user, title) -> tuple:
        model, train, test, stars = session
        if title and title.strip():
            rows = similar_movies(model, train.titles, title.strip(), 10)
            return [[r["title"], r["cosine"]] for r in rows], None
        if not user or not str(user).strip():
            raise ShowcaseError("pick a user or type a title first")
        found = user_movies(model, train, test, str(user).strip(), 10, stars)
        if found is None:
            raise ShowcaseError(f"user {user} has no ratings: try one of the listed users")
        u = [str(i) for i in train.user_ids].index(str(user).strip())
        mine = train.users == u
        order = train.ratings[mine].argsort(descending=True, stable=True)[:10]
        liked = [
            [train.titles[i], r]
            for i, r in zip(
                train.items[mine][order].tolist(), train.ratings[mine][order].tolist(), strict=True
            )
        ]
        return [[r["title"], r.get("predicted", r.get("score"))] for r in found[0]], liked

    def examples(data_dir: str | None) -> list[list]:
        return [["1", ""], ["42", ""], ["", "Star Wars (1977)"]]

    return Tab(
        inputs=[
            Widget("choice", "user id", {"choices": [str(u) for u in range(1, 21)], "value": "1"}),
            Widget("text", "or a film title (similar films)", {"lines": 1}),
        ],
        outputs=[
            Widget(
                "table",
                "recommended (or similar) films",
                {"headers": ["title", "predicted / cosine"]},
            ),
            Widget("table", "what the user rated highest", {"headers": ["title", "rating"]}),
        ],
        load=load,
        infer=infer,
        examples=examples,
        button="Recommend",
        about="A title wins over the user.",
    )
