"""The fitted ratings in the forms one Gibbs sweep needs (`bayes.py`): sorted by user and by item,
as sparse rows, and the thin SVD bases of the implicit feedback (low-rank for a large catalog)."""

import dataclasses

import torch

from recsys.mf.data import Ratings
from recsys.mf.model import DENSE_CELLS


@dataclasses.dataclass
class Observed:
    """The fitted ratings in the forms one Gibbs sweep needs (all on the device), sorted by user;
    `by_item` reorders them by item."""

    users: torch.Tensor  # (N,)
    items: torch.Tensor  # (N,)
    ratings: torch.Tensor  # (N,) minus the global mean
    user_rows: torch.Tensor  # (U + 1,) CSR row starts of the (U, I) rating matrix
    item_rows: torch.Tensor  # (I + 1,) and of its transpose
    by_item: torch.Tensor  # (N,) permutation: the ratings in item order
    item_cols: torch.Tensor  # (N,) users[by_item]
    user_count: torch.Tensor  # (U,)
    item_count: torch.Tensor  # (I,)
    user_rated: torch.Tensor | None = None  # (U, I) sparse 0/1: who rated what
    item_rated: torch.Tensor | None = None  # (I, U) its transpose
    user_implicit: torch.Tensor | None = None  # (U, I) sparse, row u = 1{j rated by u} / |N(u)|^1/2
    item_implicit: torch.Tensor | None = None  # (I, U) sparse, row i = 1{v rated i} / |R(i)|^1/2
    user_basis: tuple | None = None  # thin SVD of user_implicit
    item_basis: tuple | None = None

    def per_user(self, values: torch.Tensor) -> torch.Tensor:
        """The (U, I) sparse matrix holding `values` (N,) at the rated entries."""
        shape = (len(self.user_count), len(self.item_count))
        return torch.sparse_csr_tensor(
            self.user_rows, self.items, values, shape, check_invariants=False
        )

    def per_item(self, values: torch.Tensor) -> torch.Tensor:
        """The (I, U) sparse matrix holding `values` (N,) at the rated entries."""
        shape = (len(self.item_count), len(self.user_count))
        return torch.sparse_csr_tensor(
            self.item_rows,
            self.item_cols,
            values.index_select(0, self.by_item),
            shape,
            check_invariants=False,
        )


def observe(data: Ratings, global_mean: float, implicit: bool, device) -> Observed:
    num_users, num_items = data.num_users, data.num_items
    users, items, ratings = (t.to(device) for t in (data.users, data.items, data.ratings))
    order = torch.argsort(users * num_items + items)
    users, items, ratings = users[order], items[order], ratings[order]
    by_item = torch.argsort(items * num_users + users)
    user_count = torch.bincount(users, minlength=num_users)
    item_count = torch.bincount(items, minlength=num_items)
    starts = [torch.cat([c.new_zeros(1), c.cumsum(0)]) for c in (user_count, item_count)]
    obs = Observed(
        users,
        items,
        ratings - global_mean,
        *starts,
        by_item,
        users[by_item],
        user_count.float(),
        item_count.float(),
    )
    ones = torch.ones_like(ratings)
    obs.user_rated, obs.item_rated = obs.per_user(ones), obs.per_item(ones)
    if implicit:
        obs.user_implicit = obs.per_user(obs.user_count.clamp(min=1).rsqrt()[users] * ones)
        obs.item_implicit = obs.per_item(obs.item_count.clamp(min=1).rsqrt()[items] * ones)
        obs.user_basis = implicit_basis(obs.user_implicit)
        obs.item_basis = implicit_basis(obs.item_implicit)
    return obs


LOW_RANK = 128
"""The rank of the implicit-feedback basis of a large catalog."""
EXACT_SIDE = 4096
"""The most users or items on the smaller side for an exact basis: the eigendecomposition of its
Gram matrix takes seconds at MovieLens-1M's 3,706 films, minutes at 15,000."""


def implicit_basis(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """`thin_svd` of a sparse implicit-feedback matrix (N, F): exact, through its dense form,
    where that fits in DENSE_CELLS and its smaller side in EXACT_SIDE; else `torch.svd_lowrank`'s
    randomized rank-LOW_RANK one, whose other directions the link draws treat as outside the row
    space (prior alone)."""
    if x.shape[0] * x.shape[1] <= DENSE_CELLS and min(x.shape) <= EXACT_SIDE:
        return thin_svd(x.to_dense())
    u, s, v = torch.svd_lowrank(x, q=min(LOW_RANK, *x.shape), niter=2)
    return u.contiguous(), s, v.T.contiguous(), v.contiguous()


def thin_svd(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """(U, S, Vh, Vh^T) of x (N, F), all contiguous, through the eigenvectors of the smaller Gram
    matrix (faster than an SVD); directions with a negligible singular value are dropped."""
    flip = x.shape[0] > x.shape[1]
    x = x.T if flip else x  # (small, large)
    eigenvalues, vectors = torch.linalg.eigh(x @ x.T)
    keep = eigenvalues > eigenvalues.max() * 1e-6
    s = eigenvalues[keep].sqrt()
    u, vh = vectors[:, keep], (vectors[:, keep].T @ x) / s[:, None]
    u, vh = (vh.T, u.T) if flip else (u, vh)
    return u.contiguous(), s, vh.contiguous(), vh.T.contiguous()
