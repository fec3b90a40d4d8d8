"""vision-detect-transfer: the detector's backbone started from the digit classifier. Two runs of
the detector with the classifier's feature stack (`--backbone digits`), the default recipe
otherwise (the same seed, fresh scenes and budget): from scratch, and with that stack loaded from
the tour's quick digit classifier (`--init-from`). Each is scored on the 1,000 test scenes at every
evaluation (every EVERY steps): a learning curve, logged, never selecting (the kept weights are
chosen on the validation scenes, as always). Reported: the curves, the first step at which each
reaches TARGET test mAP (None: not within the budget), and the kept weights' test mAP. The digit
classifier and each detector run are reused from --keep-runs DIR/<name> when finished."""

import json
from pathlib import Path

from benchmarks.runs import run_dir, train_ours
from core.parse import build
from core.run import WEIGHTS
from vision import CLASSIFY
from vision.classify.train import main as train_classifier
from vision.detect.data import make_data
from vision.detect.train import DetectConfig, main

EVERY = 250
"""Steps between evaluations: the curve's points."""
TARGET = 0.80
"""The test mAP@[.5:.95] whose first step is reported."""
QUICK = {"max_steps": 4, "eval_every": 2, "val_scenes": 8, "test_scenes": 8, "batch_size": 4}


def curve(out_dir: str) -> dict[int, float]:
    """Test mAP by step, from the run's log of its evaluations."""
    rows = [json.loads(line) for line in (Path(out_dir) / "log.jsonl").read_text().splitlines()]
    return {r["step"]: round(r["watch_map"], 4) for r in rows if "watch_map" in r}


def run(args) -> dict:
    digits = Path(args.keep_runs or "") / "digits"
    if not args.keep_runs or not (digits / WEIGHTS).is_file():
        quick = {"max_steps": 3} if args.quick else CLASSIFY.tour.quick
        digits = Path(train_ours(args, train_classifier, "digits", **quick)["config"]["out_dir"])
    recipe = {"backbone": "digits", "eval_every": EVERY, **(QUICK if args.quick else {})}
    test = make_data(build(DetectConfig, data_dir=args.data_dir, **recipe)).test
    row = {"target": TARGET, "every": recipe["eval_every"], "test_scenes": len(test)}
    for name, start in (("scratch", {}), ("from_digits", {"init_from": str(digits)})):
        cfg = build(
            DetectConfig,
            out_dir=run_dir(args, name),
            data_dir=args.data_dir,
            device=args.device,
            **recipe,
            **start,
        )
        report = Path(cfg.out_dir) / "metrics.json"
        if args.keep_runs and (Path(cfg.out_dir) / WEIGHTS).is_file() and report.is_file():
            metrics = json.loads(report.read_text())["metrics"]  # a finished run, reused
        else:
            metrics = main(cfg, watch=test)["metrics"]
        points = curve(cfg.out_dir)
        reached = [step for step, value in sorted(points.items()) if value >= TARGET]
        row[f"{name}_steps_to_target"] = reached[0] if reached else None
        row[f"{name}_map"] = round(metrics["map"], 4)
        row[f"{name}_val_map"] = round(metrics["val_map"], 4)
        row[f"{name}_curve"] = points
    row["digits_run"] = run_dir(args, "digits") if args.keep_runs else "trained here"
    return row
