"""Building blocks that more than one domain uses."""

from torch import nn


class MLP(nn.Sequential):
    """Linear -> activation -> ... -> Linear: the two-layer network, generalised to any depth.

    MLP(4, [256, 256], 2) is the DQN Q-network; MLP(64, [64], 1) a recommender head.
    """

    def __init__(
        self, in_dim: int, hidden: list[int], out_dim: int, dropout: float = 0.0, act=nn.ReLU
    ):
        layers: list[nn.Module] = []
        for width in hidden:
            layers += [nn.Linear(in_dim, width), act()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            in_dim = width
        layers.append(nn.Linear(in_dim, out_dim))
        super().__init__(*layers)
