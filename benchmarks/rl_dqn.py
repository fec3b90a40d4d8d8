"""rl-dqn: our Double DQN vs Stable-Baselines3 DQN (rl-baselines3-zoo CartPole-v1 hyperparameters)
under one protocol (`rl.dqn.scoring.SolveProtocol`, Gymnasium's definition of solved): every
1,000 environment steps the greedy policy plays 100 seeded episodes; a run is solved at the first
evaluation whose mean reaches the env's reward threshold (CartPole-v1: 475); the kept (best
evaluated) policy then plays 100 episodes on fresh seeds. Seconds to solve exclude evaluation
time (reported apart). Seeds 0-9, the two agents alternating; 50,000 steps at most. Then ours
alone, 5 seeds each, on Acrobot-v1 (threshold -100) and MountainCar-v0 (-110) with their
per-environment defaults and step budgets."""

import copy
import math
import sys
import tempfile
import time

import numpy as np
import torch

from core.parse import build
from rl.dqn.scoring import SolveProtocol, evaluate_policy
from rl.dqn.train import ENV_DEFAULTS, DQNConfig, main

SEEDS, OTHER_SEEDS = range(10), range(5)
EVAL_EVERY, EPISODES, MAX_STEPS = 1000, 100, 50_000
FINAL_SEED = 100_000  # + seed: the kept policy's 100 fresh episodes (evaluations use 10,000 on)

NEEDS = ("stable_baselines3",)  # the peer's library (the bench extra)


def ours(
    seed: int, device: str, env: str = "CartPole-v1", max_steps: int | None = None, **overrides
) -> dict:
    steps = max_steps or (MAX_STEPS if env == "CartPole-v1" else ENV_DEFAULTS[env]["max_steps"])
    protocol = {"eval_every": EVAL_EVERY, "eval_episodes": EPISODES, "final_episodes": EPISODES}
    cfg = build(
        DQNConfig,
        env=env,
        seed=seed,
        device=device,
        out_dir=tempfile.mkdtemp(),
        max_steps=steps,
        **protocol,
        **overrides,
    )
    m = main(cfg)["metrics"]
    return {
        "steps_to_solve": m["steps_to_solve"],
        "seconds_to_solve": m["seconds_to_solve"],
        "eval_seconds": m["eval_seconds"],
        "final_return_mean": m["return_mean"],
    }


def sb3(seed: int, device: str, max_steps: int = MAX_STEPS) -> dict:
    from stable_baselines3 import DQN
    from stable_baselines3.common.callbacks import BaseCallback

    torch.set_num_threads(2)
    model = DQN(
        "MlpPolicy",
        "CartPole-v1",
        learning_rate=2.3e-3,
        batch_size=64,
        buffer_size=100_000,
        learning_starts=1000,
        gamma=0.99,
        target_update_interval=10,
        train_freq=256,
        gradient_steps=128,
        exploration_fraction=0.16,
        exploration_final_eps=0.04,
        policy_kwargs=dict(net_arch=[256, 256]),
        seed=seed,
        device=device,
        verbose=0,
    )

    def act(obs: np.ndarray) -> np.ndarray:
        return model.predict(obs, deterministic=True)[0]

    protocol = SolveProtocol("CartPole-v1", EPISODES)
    record = {"best": -np.inf, "params": None, "steps_to_solve": None, "seconds_to_solve": None}
    start = time.perf_counter()

    class Protocol(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps % EVAL_EVERY:
                return True
            mean, solved = protocol.check(act)
            if mean > record["best"]:
                record.update(best=mean, params=copy.deepcopy(model.policy.state_dict()))
            if solved:
                seconds = time.perf_counter() - start - protocol.eval_seconds
                record.update(steps_to_solve=self.num_timesteps, seconds_to_solve=seconds)
            return not solved

    model.learn(total_timesteps=max_steps, callback=Protocol())
    model.policy.load_state_dict(record["params"])
    final = evaluate_policy(act, "CartPole-v1", EPISODES, seed=seed + FINAL_SEED)
    return {
        "steps_to_solve": record["steps_to_solve"],
        "seconds_to_solve": record["seconds_to_solve"],
        "eval_seconds": protocol.eval_seconds,
        "final_return_mean": float(final.mean()),
    }


def quartiles(values: list) -> list:
    """[25th, 50th, 75th] percentiles; an unsolved run (None) counts as slower than every solved
    one, and a percentile that falls on unsolved runs is None."""
    xs = sorted(math.inf if v is None else float(v) for v in values)

    def percentile(p: float) -> float:  # linear between the two nearest ranks, as numpy's default
        pos = p * (len(xs) - 1)
        lo, frac = int(pos), pos - int(pos)
        return xs[lo] if frac == 0 else xs[lo] + (xs[lo + 1] - xs[lo]) * frac

    return [round(q, 2) if math.isfinite(q) else None for q in map(percentile, (0.25, 0.5, 0.75))]


def run(args) -> dict:
    device = "cpu" if args.device == "auto" else args.device
    seeds, others = ([0], [0]) if args.quick else (list(SEEDS), list(OTHER_SEEDS))
    cap = 3000 if args.quick else None
    results = {"ours": [], "sb3": []}
    for seed in seeds:  # alternate, so both agents meet the same machine conditions
        results["ours"].append(ours(seed, device, max_steps=cap))
        results["sb3"].append(sb3(seed, device, cap or MAX_STEPS))
        print(
            f"seed {seed}: ours {results['ours'][-1]} | sb3 {results['sb3'][-1]}", file=sys.stderr
        )
    out = {"device": device, "seeds": seeds}
    for agent, rows in results.items():
        for key in ("steps_to_solve", "seconds_to_solve", "eval_seconds", "final_return_mean"):
            out[f"{agent}_{key}"] = [None if r[key] is None else round(r[key], 2) for r in rows]
        out[f"{agent}_solved"] = sum(r["steps_to_solve"] is not None for r in rows)
        out[f"{agent}_steps_quartiles"] = quartiles([r["steps_to_solve"] for r in rows])
        out[f"{agent}_seconds_quartiles"] = quartiles([r["seconds_to_solve"] for r in rows])
    for name, key in (("wall", "seconds"), ("steps", "steps")):
        ours_median, sb3_median = out[f"ours_{key}_quartiles"][1], out[f"sb3_{key}_quartiles"][1]
        out[f"{name}_ratio_median"] = (
            round(ours_median / sb3_median, 3) if ours_median is not None and sb3_median else None
        )
    for env, key in (("Acrobot-v1", "acrobot"), ("MountainCar-v0", "mountaincar")):
        rows = [ours(seed, device, env, max_steps=cap) for seed in others]
        print(f"{env}: {rows}", file=sys.stderr)
        out[f"{key}_return_mean"] = [round(r["final_return_mean"], 1) for r in rows]
        out[f"{key}_steps_to_solve"] = [r["steps_to_solve"] for r in rows]
        out[f"{key}_seconds_to_solve"] = [
            None if r["seconds_to_solve"] is None else round(r["seconds_to_solve"], 1) for r in rows
        ]
    return out
