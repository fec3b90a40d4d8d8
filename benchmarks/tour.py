"""tour: the wall time of `showcase tour --quick` (every ready demo trained and evaluated on its real
data) and each application's row: measured metric, chance level, target, training seconds, and
the peak memory of the process that ran it."""

import tempfile
from pathlib import Path

from showcase.tour import TourConfig, main


def run(args) -> dict:
    out = Path(args.keep_runs) / "tour" if args.keep_runs else Path(tempfile.mkdtemp()) / "tour"
    cfg = TourConfig(
        quick=True,
        out_dir=str(out),
        force=True,
        data_dir=args.data_dir,
        device=args.device,
        max_steps=3 if args.quick else 0,
    )
    report = main(cfg)
    row = {
        "tour_seconds": report["seconds"],
        "failed": [r["demo"] for r in report["rows"] if r["status"] == "failed"],
        "skipped": [r["demo"] for r in report["rows"] if r["status"] == "skipped"],
    }
    for r in report["rows"]:
        if r["status"] == "ok":
            key = r["name"].replace("-", "_")
            row |= {
                f"{key}_{r['metric']}": round(r["value"], 4),
                f"{key}_chance": r["chance"],
                f"{key}_target": r["target"],
                f"{key}_train_seconds": round(r["train_seconds"], 1),
                f"{key}_seconds": round(r["seconds"], 1),
                f"{key}_peak_mb": r["peak_mb"],
            }
    row["device"] = next((r["device"] for r in report["rows"] if r["status"] == "ok"), args.device)
    return row
