"""What the benchmarks share: where a run goes (with --keep-runs DIR, DIR/<name>; else a fresh
temporary folder), and a run of ours trained as the CLI would train it, on the benchmark's data
root and device."""

import tempfile
from collections.abc import Callable
from pathlib import Path

from core.command import config_class
from core.parse import build


def run_dir(args, name: str) -> str:
    """DIR/<name> with --keep-runs DIR, else a fresh temporary folder."""
    return str(Path(args.keep_runs) / name) if args.keep_runs else tempfile.mkdtemp()


def train_ours(args, train: Callable[..., dict], name: str, **fields) -> dict:
    """The report of a demo's `train` command run with `fields`, in `run_dir(args, name)`."""
    cfg = build(
        config_class(train),
        out_dir=run_dir(args, name),
        data_dir=args.data_dir,
        device=args.device,
        **fields,
    )
    return train(cfg)
