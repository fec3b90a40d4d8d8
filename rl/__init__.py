"""Reinforcement learning: a DQN agent on gymnasium (planned)."""

from core.registry import Demo

DEMOS = [Demo("rl", "dqn", "Double DQN agent", "CartPole-v1 (gymnasium)", "episode return")]
