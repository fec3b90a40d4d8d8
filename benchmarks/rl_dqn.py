"""rl-dqn: our Double DQN vs Stable-Baselines3 DQN (rl-baselines3-zoo CartPole-v1 hyperparameters),
seeds 0-4, one protocol for both: greedy evaluation every 1,000 steps over 20 seeded episodes,
stop at mean >= 475, then 100 episodes of the kept (best-evaluated) policy. Also Acrobot-v1 with
our per-environment defaults (100k steps at most)."""

import copy
import statistics
import tempfile
import time

import numpy as np
import torch

from core.config import build
from rl.dqn.predict import evaluate_policy
from rl.dqn.train import DQNConfig, main

SEEDS = range(5)
EVAL_EVERY, EVAL_EPISODES, FINAL_EPISODES, THRESHOLD, MAX_STEPS = 1000, 20, 100, 475.0, 50_000


NEEDS = ("stable_baselines3",)  # the peer's library (the bench extra)


def ours(seed: int, device: str) -> dict:
    cfg = build(DQNConfig, seed=seed, device=device, out_dir=tempfile.mkdtemp(), eval_every=EVAL_EVERY,
                eval_episodes=EVAL_EPISODES, final_episodes=FINAL_EPISODES, max_steps=MAX_STEPS)  # fmt: skip
    m = main(cfg)["metrics"]
    return {
        "steps_to_solve": m["steps_to_solve"],
        "seconds_to_solve": m["seconds_to_solve"],
        "final_return_mean": m["return_mean"],
    }


def sb3(seed: int, device: str) -> dict:
    from stable_baselines3 import DQN
    from stable_baselines3.common.callbacks import BaseCallback

    torch.set_num_threads(2)
    model = DQN("MlpPolicy", "CartPole-v1", learning_rate=2.3e-3, batch_size=64, buffer_size=100_000,
                learning_starts=1000, gamma=0.99, target_update_interval=10, train_freq=256, gradient_steps=128,
                exploration_fraction=0.16, exploration_final_eps=0.04, policy_kwargs=dict(net_arch=[256, 256]),
                seed=seed, device=device, verbose=0)  # fmt: skip

    def act(obs: np.ndarray) -> np.ndarray:
        return model.predict(obs, deterministic=True)[0]

    record = {"best": -np.inf, "params": None, "steps_to_solve": None, "seconds_to_solve": None}
    start = time.perf_counter()

    class Protocol(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps % EVAL_EVERY:
                return True
            mean = float(evaluate_policy(act, "CartPole-v1", EVAL_EPISODES, seed=10_000).mean())
            if mean > record["best"]:
                record.update(best=mean, params=copy.deepcopy(model.policy.state_dict()))
            if mean >= THRESHOLD:
                record.update(
                    steps_to_solve=self.num_timesteps, seconds_to_solve=time.perf_counter() - start
                )
                return False
            return True

    model.learn(total_timesteps=MAX_STEPS, callback=Protocol())
    model.policy.load_state_dict(record["params"])
    final = evaluate_policy(act, "CartPole-v1", FINAL_EPISODES, seed=seed + 100_000)
    return {"steps_to_solve": record["steps_to_solve"], "seconds_to_solve": record["seconds_to_solve"],
            "final_return_mean": float(final.mean())}  # fmt: skip


def run(args) -> dict:
    device = "cpu" if args.device == "auto" else args.device
    seeds = [0] if args.quick else list(SEEDS)
    results = {"ours": [], "sb3": []}
    for seed in seeds:  # alternate, so both agents meet the same machine conditions
        results["ours"].append(ours(seed, device))
        results["sb3"].append(sb3(seed, device))
    out = {"device": device}
    for agent, rows in results.items():
        for key in ("steps_to_solve", "seconds_to_solve", "final_return_mean"):
            out[f"{agent}_{key}"] = [None if r[key] is None else round(r[key], 2) for r in rows]
    solved = lambda rows: [r["seconds_to_solve"] for r in rows if r["seconds_to_solve"] is not None]  # noqa: E731
    if solved(results["ours"]) and solved(results["sb3"]):
        out["wall_ratio_median"] = round(
            statistics.median(solved(results["ours"])) / statistics.median(solved(results["sb3"])),
            3,
        )
    out["ours_solved"] = sum(r["steps_to_solve"] is not None for r in results["ours"])
    out["sb3_solved"] = sum(r["steps_to_solve"] is not None for r in results["sb3"])
    acro = build(DQNConfig, env="Acrobot-v1", seed=0, device=device, out_dir=tempfile.mkdtemp(),
                 max_steps=5000 if args.quick else 100_000, final_episodes=FINAL_EPISODES)  # fmt: skip
    acro_metrics = main(acro)["metrics"]
    out["acrobot_return_mean"] = round(acro_metrics["return_mean"], 1)
    out["acrobot_steps"] = acro_metrics["steps_to_solve"]
    return out
