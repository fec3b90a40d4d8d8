"""The Q-network (core's MLP) and the Double-DQN target and loss, as named functions."""

import torch
import torch.nn.functional as F
from torch import nn

from core.models import MLP


class ObsScale(nn.Module):
    """Maps each bounded observation dimension from [low, high] onto [-1, 1]; unbounded ones pass
    through. MountainCar's velocity spans +-0.07 while its position spans 1.8: unscaled, the
    network barely sees the velocity it must learn to build up."""

    def __init__(self, low: torch.Tensor, high: torch.Tensor) -> None:
        super().__init__()
        bounded = (low > -1e6) & (high < 1e6) & (high > low)  # CartPole's "unbounded": float32 max
        self.register_buffer("center", torch.where(bounded, (high + low) / 2, 0.0))
        self.register_buffer("radius", torch.where(bounded, (high - low) / 2, 1.0))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return (obs - self.center) / self.radius  # (B, obs_dim)


def q_network(obs_dim: int, num_actions: int, hidden: tuple[int, ...], bounds=None) -> nn.Module:
    """Observations (B, obs_dim) -> action values (B, num_actions); with `bounds` (low, high), the
    observations are first scaled onto [-1, 1] (`ObsScale`)."""
    mlp = MLP(obs_dim, list(hidden), num_actions)
    if bounds is None:
        return mlp
    low, high = (torch.as_tensor(b, dtype=torch.float32) for b in bounds)
    return nn.Sequential(ObsScale(low, high), mlp)


def double_dqn_targets(
    next_q_online: torch.Tensor,
    next_q_target: torch.Tensor,
    rewards: torch.Tensor,
    terminated: torch.Tensor,
    gamma: float | torch.Tensor,
) -> torch.Tensor:
    """r + gamma * Q_target(s', argmax_a Q_online(s', a)), with no bootstrap past a termination.

    Truncation (a time limit) is not termination: those transitions bootstrap. For n-step
    returns, `rewards` is the discounted sum and `gamma` (B,) the discount of s' (gamma^n).
    """
    next_actions = next_q_online.argmax(dim=1, keepdim=True)  # (B, 1)
    next_values = next_q_target.gather(1, next_actions).squeeze(1)  # (B,)
    return rewards + gamma * (1.0 - terminated) * next_values


def td_loss(q: torch.Tensor, actions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Huber loss between Q(s, a) of the taken actions and the (detached) targets."""
    return F.smooth_l1_loss(q.gather(1, actions.unsqueeze(1)).squeeze(1), targets.detach())
