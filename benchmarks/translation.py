"""translation: on Multi30k de->en, our Transformer (the default config), the attention GRU and the
recipe of PyTorch's tutorial "Language Translation with nn.Transformer" (with our tokenizer and
loader; greedy decoding, as the tutorial does), the peers under the wall-clock budget ours took.

Each peer's step count comes from its pace over a 40-step probe, so that its schedule ends inside
the budget; `--max-seconds` stops it at the budget in any case. Reported: training seconds and
steps, val/test sacreBLEU and chrF (cased, detokenized), and decoding time of the 1,000 test
sentences, greedy and beam-5."""

import tempfile
import time
from pathlib import Path

from core.config import build
from translation.seq2seq.data import load_multi30k
from translation.seq2seq.predict import bleu_chrf, load_translator
from translation.seq2seq.train import TranslationConfig, main


def out_dir(args, name: str) -> str:
    return str(Path(args.keep_runs) / name) if args.keep_runs else tempfile.mkdtemp()


def train(args, name: str, **fields) -> dict:
    quick = {"max_steps": 20, "eval_every": 0} if args.quick else {}
    cfg = build(TranslationConfig, out_dir=out_dir(args, name), data_dir=args.data_dir, device=args.device,
                **{**fields, **quick})  # fmt: skip
    return main(cfg)


def peer(args, model: str, budget: float) -> dict:
    """A peer trained for `budget` seconds, its steps set from a 40-step probe of its pace."""
    probe = train(args, f"{model}-probe", model=model, max_steps=40, eval_every=0)
    steps = max(1, int(1.15 * budget / (probe["wall_seconds"] / probe["steps"])))
    return train(
        args, model, model=model, max_steps=steps, max_seconds=budget, eval_every=max(1, steps // 4)
    )


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
    ours = train(args, "default")
    budget = ours["wall_seconds"]
    gru = peer(args, "gru", budget)
    tutorial = peer(args, "tutorial", budget)
    src, refs = load_multi30k(args.data_dir)["test"]
    row = {"device": ours["device"], "train_seconds": round(budget, 1), "steps": ours["steps"]}
    for name, report in (("transformer", ours), ("gru", gru), ("tutorial", tutorial)):
        m = report["metrics"]
        row |= {f"{name}_val_bleu": round(m.get("val_bleu", float("nan")), 2),
                f"{name}_test_bleu": round(m["test_bleu"], 2), f"{name}_test_chrf": round(m["test_chrf"], 2),
                f"{name}_beam": m["beam"], f"{name}_steps": report["steps"],
                f"{name}_train_seconds": round(report["wall_seconds"], 1)}  # fmt: skip
    times = decode_times(ours["config"]["out_dir"], args.device, src, refs)
    row |= {"greedy_seconds_1000": times["greedy_seconds_1000"], "beam_seconds_1000": times["beam_seconds_1000"],
            "transformer_greedy_test_bleu": times["greedy_test_bleu"],
            "bleu_signature": ours["metrics"]["bleu_signature"]}  # fmt: skip
    return row
