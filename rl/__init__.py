"""Reinforcement learning: a Double DQN agent on gymnasium (`rl.dqn`)."""

from core.registry import Demo

DEMOS = [
    Demo(
        "rl", "dqn", "Double DQN agent", "CartPole-v1 (gymnasium)", "episode return", "rl.dqn.train"
    )
]
