"""The DQN agent's parts: epsilon-greedy acting, collecting experience into the replay buffer,
Double-DQN updates, and the target network's update. `train.py` runs them in its loop."""

import numpy as np
import torch
from torch import nn

from rl.dqn.data import ReplayBuffer, env_step
from rl.dqn.model import double_dqn_targets, td_loss


def epsilon(cfg, step: int) -> float:
    """Linear decay from --eps-start to --eps-end over --eps-fraction of the run (`cfg`: its
    DQNConfig)."""
    span = max(1, int(cfg.eps_fraction * cfg.max_steps))
    return cfg.eps_end + (cfg.eps_start - cfg.eps_end) * max(0.0, 1.0 - step / span)


def update_target(target: nn.Module, online: nn.Module, tau: float) -> None:
    """Move the target network's weights a fraction `tau` towards the online one's (1: copy)."""
    with torch.no_grad():
        for t, o in zip(target.parameters(), online.parameters(), strict=True):
            t.lerp_(o, tau)


def act(q_net: nn.Module, obs: np.ndarray, eps: float, num_actions: int, device) -> np.ndarray:
    """Epsilon-greedy actions, one per environment: the greedy one, or with probability `eps` a
    uniformly random one."""
    with torch.no_grad():
        greedy = q_net(torch.as_tensor(obs, dtype=torch.float32, device=device)).argmax(1).cpu()
    explore = torch.rand(len(greedy)) < eps
    return torch.where(explore, torch.randint(0, num_actions, (len(greedy),)), greedy).numpy()


def collect(
    envs,
    buffer: ReplayBuffer,
    obs: np.ndarray,
    actions: np.ndarray,
    returns: np.ndarray,
    finished: list[float],
) -> np.ndarray:
    """One step of every environment into the replay buffer; an episode that ends adds its return
    to `finished`. Returns the next observations."""
    next_obs, real_next, rewards, terminated, done = env_step(envs, actions)
    buffer.add(obs, actions, rewards, real_next, terminated, done)
    returns += rewards
    for i in np.flatnonzero(done):
        finished.append(returns[i])
        returns[i] = 0.0
    return next_obs


def learn(q_net: nn.Module, target: nn.Module, optimizer, buffer: ReplayBuffer, cfg) -> int:
    """`--gradient-steps` Double-DQN updates on replayed n-step transitions (`cfg`: the run's
    DQNConfig); returns their count."""
    for _ in range(cfg.gradient_steps):
        s, a, r, s2, term, discount = buffer.sample(
            cfg.batch_size, cfg.n_step, cfg.gamma, cfg.num_envs
        )
        with torch.no_grad():  # Q(s') needs no backward pass
            targets = double_dqn_targets(q_net(s2), target(s2), r, term, discount)
        loss = td_loss(q_net(s), a, targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(q_net.parameters(), cfg.grad_clip)
        optimizer.step()
    return cfg.gradient_steps
