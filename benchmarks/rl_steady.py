"""rl-steady: how often Acrobot-v1's kept policy misses the threshold on fresh seeds, for the
online network as the evaluated policy (`--ema 0`) and for the moving average of its weights
(the Acrobot default). Each run follows rl-dqn's protocol (`rl.dqn.scoring.SolveProtocol`): it
stops at its first 100-episode evaluation at or above -100, and the kept policy then plays 100
episodes on fresh seeds; a miss is a fresh mean below -100. The 40 seeds (1000-1039) are tuning
seeds, apart from rl-dqn's reported seeds 0-4."""

import statistics
import sys

from benchmarks.rl_dqn import ours
from rl.dqn.train import ENV_DEFAULTS

ENV, THRESHOLD = "Acrobot-v1", -100.0
SEEDS = range(1000, 1040)


def summary(rows: list[dict]) -> dict:
    returns = [r["final_return_mean"] for r in rows]
    steps = [r["steps_to_solve"] for r in rows if r["steps_to_solve"] is not None]
    return {
        "misses": sum(r < THRESHOLD for r in returns),
        "runs": len(rows),
        "unsolved": len(rows) - len(steps),
        "return_median": round(statistics.median(returns), 1),
        "return_worst": round(min(returns), 1),
        "steps_median": statistics.median(steps) if steps else None,
        "returns": [round(r, 1) for r in returns],
    }


def run(args) -> dict:
    device = "cpu" if args.device == "auto" else args.device
    seeds = list(SEEDS)[:2] if args.quick else list(SEEDS)
    cap = 3000 if args.quick else None
    chosen = ENV_DEFAULTS[ENV]["ema"]
    out = {"device": device, "env": ENV, "seeds": f"{seeds[0]}-{seeds[-1]}", "ema": chosen}
    arms = {"online": 0.0, "average": chosen}
    rows = {name: [] for name in arms}
    for seed in seeds:  # alternate, so both policies meet the same machine conditions
        for name, ema in arms.items():
            rows[name].append(ours(seed, device, ENV, max_steps=cap, ema=ema))
            print(f"{name} seed {seed}: {rows[name][-1]}", file=sys.stderr)
    return out | {name: summary(rows[name]) for name in arms}
