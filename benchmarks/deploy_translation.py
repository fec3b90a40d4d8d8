"""deploy, the translator: its encoder and decoder-step files driven by a greedy loop, timed as a
user runs them (every test sentence in batches of 128, and one sentence alone), beside the eager
model's own greedy decoding."""

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime
import torch

from benchmarks.deploy import trained
from core.parse import build, from_run
from core.run import WEIGHTS


def pt2_calls(encoder_file: Path, step_file: Path) -> tuple:
    """The translator's greedy encode and step through two torch.export programs."""
    encoder, step = (torch.export.load(str(f)).module() for f in (encoder_file, step_file))

    def encode(src: np.ndarray) -> list[np.ndarray]:
        return [t.numpy() for t in encoder(torch.from_numpy(src))]

    def step_call(inputs: list[np.ndarray]) -> list[np.ndarray]:
        return [t.numpy() for t in step(*(torch.from_numpy(a) for a in inputs))]

    return encode, step_call


@torch.no_grad()
def timed_greedy(decode, singles: list, batches: list, order: list[int]) -> tuple[list, dict]:
    """Every test sentence's greedy output (in test order), the batches' total seconds and the
    median milliseconds of one sentence alone (after 5 of warm-up)."""
    for src in singles[:5]:
        decode(src)
    ms = []
    for src in singles:
        t0 = time.perf_counter()
        decode(src)
        ms.append((time.perf_counter() - t0) * 1000)
    t0 = time.perf_counter()
    outputs = [out for src in batches for out in decode(src)]
    seconds = time.perf_counter() - t0
    hyps = [None] * len(order)
    for k, out in zip(order, outputs, strict=True):
        hyps[k] = out
    return hyps, {"sentence_ms": round(statistics.median(ms), 2), "test_seconds": round(seconds, 2)}


def translation(args, folder: Path) -> dict:
    """The encoder and step files, decoded greedily: the 1,000 test sentences in batches of 128
    (sorted by length, as `translate` does) and single sentences for latency."""
    from core.export import ExportConfig, export
    from translation.seq2seq.data import load_texts, pad_rows
    from translation.seq2seq.decode import greedy as torch_greedy
    from translation.seq2seq.export import (
        TranslationExportConfig,
        cache_shape,
        greedy,
        onnx_calls,
        specs_for,
    )
    from translation.seq2seq.predict import load_translator
    from translation.seq2seq.scoring import bleu_chrf
    from translation.seq2seq.train import TranslationConfig

    run_dir = trained("translation seq2seq", args, folder)
    cfg = build(TranslationExportConfig, out_dir=str(run_dir), data_dir=args.data_dir)
    enc, step, _ = specs_for(cfg)
    translator, train_cfg = load_translator(str(run_dir), None, "cpu")
    run_cfg = from_run(TranslationConfig, train_cfg, data_dir=args.data_dir)
    src_texts, refs = load_texts(run_cfg)["test"]
    ids = translator.ids(src_texts)
    order = sorted(range(len(ids)), key=lambda k: len(ids[k]))
    batches = []
    for start in range(0, len(order), 128):
        rows = [torch.tensor(ids[k]) for k in order[start : start + 128]]
        lengths = torch.tensor([len(r) for r in rows])
        batches.append(pad_rows(torch.cat(rows), lengths.cumsum(0) - lengths, lengths).numpy())
    singles = [np.array([ids[k]]) for k in range(50)]
    max_len, shape = train_cfg["max_len"], cache_shape(enc)

    def eager(src: np.ndarray) -> list[list[int]]:
        return torch_greedy(translator.model, torch.from_numpy(src), max_len)

    forms = {"eager": (eager, (run_dir / WEIGHTS).stat().st_size)}
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = torch.get_num_threads(), 1
    scratch = tempfile.TemporaryDirectory()
    for form, fields in [
        ("onnx", {}),
        ("onnx_int8", {"quantize": "int8"}),
        ("pt2", {"format": "pt2"}),
    ]:
        out = build(ExportConfig, out=scratch.name, **fields)
        files = [Path(export(spec, out)["file"]) for spec in (enc, step)]
        if form == "pt2":
            encode, step_call = pt2_calls(*files)
        else:
            encode, step_call = onnx_calls(*files, options)

        def decode(src, encode=encode, step_call=step_call):
            return greedy(encode, step_call, src, max_len, shape)

        forms[form] = (decode, sum(f.stat().st_size for f in files))
    row = {}
    for form, (decode, size) in forms.items():
        hyps, timings = timed_greedy(decode, singles, batches, order)
        bleu = bleu_chrf([translator.text(h) for h in hyps], refs)["bleu"]
        row[form] = {"bytes": size, **timings, "test_bleu": round(bleu, 2)}
    scratch.cleanup()
    return {"translation_seq2seq": row}
