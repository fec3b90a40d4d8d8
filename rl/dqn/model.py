"""The Q-network (core's MLP) and the Double-DQN target and loss, as named functions."""

import torch
import torch.nn.functional as F

from core.models import MLP


def q_network(obs_dim: int, num_actions: int, hidden: tuple[int, ...]) -> MLP:
    """Observations (B, obs_dim) -> action values (B, num_actions)."""
    return MLP(obs_dim, list(hidden), num_actions)


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
