"""rl-steady: how often Acrobot-v1's kept policy misses the threshold on fresh seeds, for the
online network as the evaluated policy (`--ema 0`) and for the moving average of its weights
(the Acrobot default). Each run follows rl-dqn's protocol (`rl.dqn.scoring.SolveProtocol`): it
stops at its first 100-episode evaluation at or above -100, and the kept policy then plays 100
episodes on fresh seeds; a miss is a fresh mean below -100. The 40 seeds (1000-1039) are tuning
seeds, apart from rl-dqn's reported seeds 0-4. The runs go side by side, one a CPU core, each on
one thread."""

import multiprocessing
import os
import statistics
import sys
from concurrent.futures import ProcessPoolExecutor

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


def one_run(seed: int, device: str, max_steps: int | None, ema: float) -> dict:
    """One training run in a worker process, on one thread (a small MLP and a Python env loop:
    the runs go side by side, one a core, instead of sharing threads)."""
    import torch

    torch.set_num_threads(1)
    return ours(seed, device, ENV, max_steps=max_steps, ema=ema)


def run(args) -> dict:
    device = "cpu" if args.device == "auto" else args.device
    seeds = list(SEEDS)[:2] if args.quick else list(SEEDS)
    cap = 3000 if args.quick else None
    chosen = ENV_DEFAULTS[ENV]["ema"]
    arms = {"online": 0.0, "average": chosen}
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    workers = 1 if device != "cpu" else max(1, cores or 1)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        jobs = {}
        for seed in seeds:
            for name, ema in arms.items():
                jobs[name, seed] = pool.submit(one_run, seed, device, cap, ema)
        try:
            for (name, seed), job in jobs.items():
                print(f"{name} seed {seed}: {job.result()}", file=sys.stderr)
        except BaseException:  # a failed run or Ctrl-C: drop the queued runs, not wait for them
            pool.shutdown(cancel_futures=True)
            raise
    rows = {name: [jobs[name, seed].result() for seed in seeds] for name in arms}
    out = {"device": device, "env": ENV, "seeds": f"{seeds[0]}-{seeds[-1]}", "ema": chosen}
    return out | {"workers": workers} | {name: summary(rows[name]) for name in arms}
