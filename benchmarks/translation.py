"""translation: on Multi30k de->en, our Transformer (the default config), the attention GRU and the
recipe of PyTorch's tutorial "Language Translation with nn.Transformer" (with our tokenizer and
loader; greedy decoding, as the tutorial does), the peers under the wall-clock budget ours took.

Each peer's step count comes from its training pace in a 40-step probe (the seconds between the
log lines of steps 10 and 40: no setup, tokenizer or evaluation counted), so that its schedule ends
near the budget; `--max-seconds` stops it at the budget in any case. Peers evaluate on the
validation set four times, as ours does. With `--keep-runs DIR`, a finished default run already in
`DIR/default` (same config) is reused rather than trained again; the row says so. Reported: training seconds and
steps, val/test sacreBLEU and chrF (cased, detokenized), and decoding time of the 1,000 test
sentences, greedy and beam-5."""

import json
import time
from pathlib import Path

from benchmarks.runs import train_ours
from core.config import to_dict
from core.parse import build
from translation.seq2seq.data import load_multi30k
from translation.seq2seq.predict import load_translator
from translation.seq2seq.scoring import bleu_chrf
from translation.seq2seq.train import TranslationConfig, main


def train(args, name: str, **fields) -> dict:
    quick = {"max_steps": 20, "eval_every": 0} if args.quick else {}
    return train_ours(args, main, name, **{**fields, **quick})


def pace(run_dir: str) -> float:
    """Seconds per training step between the log lines of steps 10 and 40 of a probe run."""
    times = {}
    for line in (Path(run_dir) / "log.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record["kind"] == "train":
            times[record["step"]] = record["time"]
    return (times[40] - times[10]) / 30


def peer(args, model: str, budget: float) -> dict:
    """A peer trained for `budget` seconds, its steps set from its pace in a 40-step probe."""
    probe = train(args, f"{model}-probe", model=model, max_steps=40, eval_every=0, log_every=10)
    steps = 20 if args.quick else max(1, int(budget / pace(probe["config"]["out_dir"])))
    return train(
        args, model, model=model, max_steps=steps, max_seconds=budget, eval_every=max(1, steps // 4)
    )


def ours_run(args) -> tuple[dict, bool]:
    """Our Transformer with the default config, or the finished one already in --keep-runs."""
    if args.keep_runs and not args.quick:
        done = Path(args.keep_runs) / "default" / "metrics.json"
        wanted = build(
            TranslationConfig, out_dir=str(done.parent), data_dir=args.data_dir, device=args.device
        )
        if done.exists():
            report = json.loads(done.read_text())
            if report["config"] == json.loads(json.dumps(to_dict(wanted))):
                print(f"reusing the finished default run in {done.parent}")
                return report, True
    return train(args, "default"), False


def decode_times(run_dir: str, device: str, sentences: list[str], refs: list[str]) -> dict:
    """Test BLEU and seconds for the 1,000 test sentences, greedy and beam-5 (model loaded once)."""
    translator, _ = load_translator(run_dir, None, device)
    out = {}
    for name, beam in (("greedy", 1), ("beam", 5)):
        t0 = time.perf_counter()
        hyps = translator.translate(sentences, beam=beam)
        out[f"{name}_seconds_1000"] = round((time.perf_counter() - t0) * 1000 / len(sentences), 1)
        out[f"{name}_test_bleu"] = round(bleu_chrf(hyps, refs)["bleu"], 2)
    return out


def run(args) -> dict:
    ours, reused = ours_run(args)
    budget = ours["wall_seconds"]
    gru = peer(args, "gru", budget)
    tutorial = peer(args, "tutorial", budget)
    src, refs = load_multi30k(args.data_dir)["test"]
    row = {
        "device": ours["device"],
        "train_seconds": round(budget, 1),
        "steps": ours["steps"],
        "ours_reused": reused,
    }
    for name, report in (("transformer", ours), ("gru", gru), ("tutorial", tutorial)):
        m = report["metrics"]
        row |= {
            f"{name}_val_bleu": round(m.get("val_bleu", float("nan")), 2),
            f"{name}_test_bleu": round(m["test_bleu"], 2),
            f"{name}_test_chrf": round(m["test_chrf"], 2),
            f"{name}_beam": m["beam"],
            f"{name}_steps": report["steps"],
            f"{name}_train_seconds": round(report["wall_seconds"], 1),
        }
    times = decode_times(ours["config"]["out_dir"], args.device, src, refs)
    row |= {
        "greedy_seconds_1000": times["greedy_seconds_1000"],
        "beam_seconds_1000": times["beam_seconds_1000"],
        "transformer_greedy_test_bleu": times["greedy_test_bleu"],
        "bleu_signature": ours["metrics"]["bleu_signature"],
    }
    return row
