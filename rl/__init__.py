"""Reinforcement learning: a Double DQN agent on gymnasium (`rl.dqn`)."""

from core.demo import Demo, Tour

GYMNASIUM = "No dataset: the agent learned from its Gymnasium environment (MIT licence)."

DQN = Demo(
    "rl",
    "dqn",
    "Double DQN agent",
    "CartPole-v1 (gymnasium)",
    "episode return",
    run_dir="runs/rl-dqn",
    module="rl.dqn.train",
    tour=Tour(
        metric="return_mean",
        target=475.0,
        chance=22.2,  # mean of 1,000 episodes
        chance_is="a random policy",
        quick={"max_steps": 20000},
        pictures=("curve.png", "episode.gif"),
        full=500.0,  # the kept policy of seed 0 (the tour's seed)
        full_source="rl-dqn ours_final_return_mean[0]",
    ),
    app="rl.dqn.predict:app_tab",
    licence=GYMNASIUM,
)

DEMOS = [DQN]
