"""recsys-scale: `recsys mf` on a ratings table the size of MovieLens-25M, from a parquet file
through `--hf-dataset`. The table is generated with ML-25M's shape (25,000,095 ratings of 59,047
films by 162,541 users, each user with at least 20), power-law film popularity and user activity,
half-star ratings from 1 to 5 planted by a rank-8 biased MF plus noise, and ML-25M's span of
timestamps; no (user, film) pair twice. Then `python -m recsys.mf train --hf-dataset` runs twice
in a child process, with the default configuration, a fresh `datasets` cache and a fresh run
folder: the first run converts the parquet file to Arrow, the second reads its cache. Each run's
wall time (start to report, the test ratings scored) and peak resident memory are measured; a run
that stops records the line it stopped with."""

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

USERS, ITEMS, RATINGS = 162_541, 59_047, 25_000_095
"""MovieLens-25M: users, films with a rating, ratings."""
LEAST = 20
"""Every ML-25M user rated at least 20 films."""
RANK, NOISE = 8, 0.8
"""The planted model's rank and the noise (standard deviation, stars) on each rating."""
MEASURED = """
import resource, runpy, sys
sys.argv[0] = "python -m recsys.mf"
try:
    runpy.run_module("recsys.mf", run_name="__main__")
finally:
    print("peak_rss_kib", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""
"""`python -m recsys.mf ...` that says its own peak resident memory last."""


def ratings_table(users: int, items: int, rows: int, seed: int = 0) -> dict[str, np.ndarray]:
    """userId, movieId, rating, timestamp columns with the shape described above."""
    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(1, items + 1) ** 0.8  # film ranks: a power law
    activity = 1.0 / np.arange(1, users + 1) ** 0.5  # user ranks: another
    drawn = int(rows * 1.1)  # a tenth more: a pair drawn twice is kept once
    extra = rng.multinomial(drawn - LEAST * users, activity / activity.sum())
    counts = np.minimum(LEAST + extra, items // 2)
    user = np.repeat(rng.permutation(users), counts)
    item = rng.choice(items, size=len(user), p=popularity / popularity.sum())
    key = np.unique(user.astype(np.int64) * items + item)  # each (user, film) pair once
    key = key[rng.permutation(len(key))[:rows]]
    user, item = (key // items).astype(np.int32), (key % items).astype(np.int32)
    p = rng.normal(0, 1, (users, RANK)).astype(np.float32) / RANK**0.25
    q = rng.normal(0, 1, (items, RANK)).astype(np.float32) / RANK**0.25
    bias_u = rng.normal(0, 0.4, users).astype(np.float32)
    bias_i = rng.normal(0, 0.5, items).astype(np.float32)
    rating = np.empty(len(user), dtype=np.float32)
    for s in range(0, len(user), 1 << 22):  # in chunks: (chunk, RANK) at a time
        u, i = user[s : s + (1 << 22)], item[s : s + (1 << 22)]
        mean = 3.5 + bias_u[u] + bias_i[i] + (p[u] * q[i]).sum(1)
        noisy = mean + rng.normal(0, NOISE, len(u)).astype(np.float32)
        rating[s : s + len(u)] = np.clip(np.round(noisy * 2) / 2, 1.0, 5.0)
    stamp = rng.integers(789_652_009, 1_574_327_703, len(user))  # ML-25M's first and last
    return {"userId": user + 1, "movieId": item + 1, "rating": rating, "timestamp": stamp}


def train_child(path: Path, out: Path, cache: Path, args) -> dict:
    """Wall seconds and peak resident MiB of one `python -m recsys.mf train` in a child."""
    command = [sys.executable, "-c", MEASURED, "train", "--hf-dataset", str(path)]
    command += ["--hf-columns", "user=userId", "item=movieId", "--out-dir", str(out)]
    command += ["--device", args.device] + (["--max-steps", "2"] if args.quick else [])
    env = {**os.environ, "HF_DATASETS_CACHE": str(cache)}
    t0 = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    peak = int(done.stderr.split("peak_rss_kib")[-1])  # KiB on Linux
    if done.returncode:  # what a user gets: recorded, not hidden
        said = done.stderr.split("peak_rss_kib")[0].strip().splitlines()[-1]
        return {"seconds": round(seconds, 1), "peak_rss_mib": round(peak / 1024), "failed": said}
    rmse = next(line for line in done.stdout.splitlines() if "test_rmse" in line)
    return {"seconds": round(seconds, 1), "peak_rss_mib": round(peak / 1024), "line": rmse.strip()}


def run(args) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq

    scale = 100 if args.quick else 1
    shape = (USERS // scale, ITEMS // scale, RATINGS // scale)
    folder = Path(tempfile.mkdtemp(prefix="recsys-scale-"))
    t0 = time.perf_counter()
    table = ratings_table(*shape)
    path = folder / "ratings.parquet"
    pq.write_table(pa.table(table), path)
    row = {
        "ratings": len(table["rating"]),
        "users": int(len(np.unique(table["userId"]))),
        "items": int(len(np.unique(table["movieId"]))),
        "parquet_mib": round(path.stat().st_size / 2**20),
        "generate_seconds": round(time.perf_counter() - t0, 1),
    }
    del table
    cache = folder / "hf-cache"
    row["first"] = train_child(path, folder / "run-1", cache, args)
    row["second"] = train_child(path, folder / "run-2", cache, args)
    return row
