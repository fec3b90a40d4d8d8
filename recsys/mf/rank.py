"""Which films to show: a known user's top unrated films, a new user's from their first ratings
(folded in, no retraining), and a film's nearest neighbours by embedding."""

import difflib

import torch

from core.errors import ShowcaseError
from recsys.mf.data import Ratings
from recsys.mf.model import BiasedMF, fold_in, pair_scores


def closest(name: str, options: list[str], what: str) -> ShowcaseError:
    matches = difflib.get_close_matches(name, options, n=3, cutoff=0.4)
    hint = f"; closest: {', '.join(repr(m) for m in matches)}" if matches else ""
    return ShowcaseError(f"unknown {what} {name!r}{hint}")


@torch.no_grad()
def similar_movies(model: BiasedMF, titles: list[str], title: str, top: int) -> list[dict]:
    """The `top` movies nearest to `title` by item-embedding cosine."""
    if title not in titles:
        raise closest(title, titles, "title")
    item = titles.index(title)
    vectors = torch.nn.functional.normalize(model.item_factors, dim=1)
    cosine = vectors @ vectors[item]
    cosine[item] = -2.0
    best = cosine.topk(top)
    return [
        {"title": titles[i], "cosine": round(c, 3)}
        for c, i in zip(best.values.tolist(), best.indices.tolist(), strict=True)
    ]


@torch.no_grad()
def user_movies(model: BiasedMF, train: Ratings, test: Ratings, user: str, top: int, stars: bool):
    """(rows, number rated) of a known user's top unrated movies, or None for a new user with no
    ratings (the popularity fallback applies); an unknown id raises with the closest ones."""
    user_ids = [str(u) for u in train.user_ids]
    if user not in user_ids:
        if user.isdigit() and int(user) > 0:  # a new user: no ratings to go on
            return None
        raise closest(user, user_ids, "user")
    u = user_ids.index(user)
    # everything the user rated, held-out test ratings included
    rated = torch.cat([train.items[train.users == u], test.items[test.users == u]])
    if len(rated) == 0:
        return None
    items = torch.arange(model.num_items, device=model.global_mean.device)
    scores = pair_scores(model, torch.full_like(items, u), items)  # (I,) unclamped: no ties at top
    scores[rated.to(scores.device)] = -float("inf")  # never recommend what the user already rated
    best = scores.topk(min(top, len(scores) - len(rated.unique())))
    rows = [
        {"title": train.titles[i], "predicted": round(min(max(s, 1.0), 5.0), 2)}
        if stars
        else {"title": train.titles[i], "score": round(s, 3)}
        for s, i in zip(best.values.tolist(), best.indices.tolist(), strict=True)
    ]
    return rows, len(rated)


FOLD_IN_PENALTY, FOLD_IN_BOOST = 3.0, 3.2
"""`new_user_scores`' ridge penalty and popularity boost for the default model, chosen on
validation users by `python -m benchmarks recsys-foldin`."""


def new_user_scores(
    model: BiasedMF,
    counts: torch.Tensor,
    items: torch.Tensor,
    ratings: torch.Tensor,
    penalty: float,
    boost: float,
) -> torch.Tensor:
    """(num_items,) ranking scores for a user the model never saw, from their first `ratings` of
    `items`: the folded-in predicted rating (`fold_in`) plus `boost` times the log of each film's
    training count `counts`, so that films the user would like and is likely to watch come first."""
    return fold_in(model, items, ratings, penalty) + boost * counts.log1p()


def parse_rated(pairs: list[str], titles: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """(items, ratings) of --rate's TITLE=STARS pairs; one line on a bad one."""
    items, ratings = [], []
    for pair in pairs:
        title, sep, stars = pair.rpartition("=")
        if not sep:
            raise ShowcaseError(f"--rate {pair!r}: give TITLE=STARS, e.g. 'Fargo (1996)=4'")
        if title not in titles:
            raise closest(title, titles, "title")
        if titles.index(title) in items:
            raise ShowcaseError(f"--rate: {title!r} is rated twice")
        try:
            value = float(stars)
        except ValueError:
            value = 0.0
        if not 1 <= value <= 5:
            raise ShowcaseError(f"--rate {pair!r}: give TITLE=STARS with 1 to 5 stars")
        items.append(titles.index(title))
        ratings.append(value)
    return torch.tensor(items), torch.tensor(ratings)


@torch.no_grad()
def new_user_movies(model: BiasedMF, train: Ratings, pairs: list[str], top: int) -> list[dict]:
    """A new user's top unrated movies from their --rate pairs (`new_user_scores`)."""
    items, ratings = parse_rated(pairs, train.titles)
    model = model.cpu()
    counts = torch.bincount(train.items, minlength=train.num_items).float()
    scores = new_user_scores(model, counts, items, ratings, FOLD_IN_PENALTY, FOLD_IN_BOOST)
    predicted = fold_in(model, items, ratings, FOLD_IN_PENALTY)  # what is shown: stars
    scores[items] = -float("inf")  # never recommend what the user already rated
    best = scores.topk(min(top, len(scores) - len(items))).indices.tolist()
    return [
        {"title": train.titles[i], "predicted": round(predicted[i].clamp(1, 5).item(), 2)}
        for i in best
    ]
