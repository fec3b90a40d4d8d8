"""`export`: the Transformer translator as two files (`core.export`), an encoder and one cached
decoder step, so that greedy and beam search run outside PyTorch.

    showcase translation seq2seq export --out exported/ [--format pt2] [--quantize int8]

The encoder takes source ids (batch, source) int64, padded with 0, and returns the decoder's
starting state: `mask` (batch, 1, 1, source), True at real tokens, and each decoder layer's
cross-attention keys and values `ck<i>`, `cv<i>` (batch, heads, source, head_dim). The step takes
the previous tokens (batch,) (first `<s>`), that state and the layer caches `k<i>`, `v<i>` (batch,
heads, past, head_dim; past = 0 at the first step) and returns the next token's `logits` (batch,
vocabulary) and the caches one step longer. `greedy` below is the whole decoding loop in numpy;
the sidecar names the tokenizer file written beside the graphs.
"""

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import torch
from torch import nn

from core.errors import ShowcaseError, UsageError
from core.export import ExportConfig, ExportSpec, export
from core.parse import from_run
from core.run import check_task
from translation import SEQ2SEQ
from translation.seq2seq.data import load_texts, pad_rows
from translation.seq2seq.decode import greedy as torch_greedy
from translation.seq2seq.decode import strip
from translation.seq2seq.predict import load_translator
from translation.seq2seq.tokenizer import BOS, EOS, PAD

TASK = "translation.seq2seq"
CHECK_SENTENCES = 32
"""Test sentences translated greedily through the exported files and by the eager model."""


class Encoder(nn.Module):
    """Source ids -> the decoder's starting state, as a tuple in `names` order."""

    def __init__(self, model: nn.Module, names: list[str]) -> None:
        super().__init__()
        self.model, self.names = model, names

    def forward(self, src: torch.Tensor) -> tuple[torch.Tensor, ...]:  # src: (B, S) int64
        state = self.model.start(*self.model.encode(src))
        return tuple(state[n] for n in self.names)


class Step(nn.Module):
    """(tokens, the fixed state, the caches) -> (logits, the caches one step longer)."""

    def __init__(self, model: nn.Module, fixed: list[str], caches: list[str]) -> None:
        super().__init__()
        self.model, self.fixed, self.caches = model, fixed, caches

    def forward(self, tokens: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        logits, new = self.model.step(
            tokens, dict(zip(self.fixed + self.caches, state, strict=True))
        )
        return (logits, *(new[n] for n in self.caches))  # (B, V), each (B, H, past + 1, D)


@dataclasses.dataclass
class TranslationExportConfig(ExportConfig):
    DEMO = SEQ2SEQ


def state_names(layers: int) -> tuple[list[str], list[str]]:
    """The Transformer's step state: what stays fixed (mask, cross keys/values), what grows."""
    fixed = ["mask", *(f"c{kv}{i}" for i in range(layers) for kv in "kv")]
    return fixed, [f"{kv}{i}" for i in range(layers) for kv in "kv"]


def dims(name: str) -> dict[int, str]:
    if name == "mask":
        return {0: "batch", 3: "source"}
    return {0: "batch", 2: "source" if name.startswith("c") else "past"}


def specs_for(cfg: TranslationExportConfig) -> tuple[ExportSpec, ExportSpec, dict]:
    """The encoder's and the step's specs, checked on real test sentences, and what greedy
    decoding needs: the check sentences' ids and the eager model's greedy outputs."""
    check_task(cfg.out_dir, TASK)
    translator, train_cfg = load_translator(cfg.out_dir, None, "cpu")
    if train_cfg["model"] != "transformer":
        raise UsageError(
            f"{cfg.DEMO} exports the transformer; this run trained {train_cfg['model']}"
        )
    from translation.seq2seq.train import TranslationConfig  # train.py lists this command

    run_cfg = from_run(
        TranslationConfig, train_cfg, data_dir=cfg.data_dir or train_cfg.get("data_dir")
    )
    sentences = load_texts(run_cfg)["test"][0][:CHECK_SENTENCES]
    rows = [torch.tensor(ids) for ids in translator.ids(sentences)]
    lengths = torch.tensor([len(r) for r in rows])
    src = pad_rows(torch.cat(rows), lengths.cumsum(0) - lengths, lengths)  # (N, S)
    model, max_len = translator.model, train_cfg["max_len"]
    fixed, caches = state_names(len(model.decoder))
    encoder = Encoder(model, fixed).eval()
    with torch.no_grad():
        start = dict(zip(fixed, encoder(src), strict=True))
        _, grown = model.step(torch.full((len(src),), BOS), {**start, **empty_caches(model, src)})
        two = {n: torch.cat([grown[n]] * 2, 2) for n in caches}  # a cache of two steps
    tokens = torch.full((len(src),), BOS)
    shared = {
        "vocabulary_size": len(translator.tokenizer),
        "tokenizer": "tokenizer.json",
        "bos": BOS,
        "eos": EOS,
        "pad": PAD,
        "max_len": max_len,
    }
    bounds = {"source": (1, max_len), "past": (0, max_len - 1)}
    enc = ExportSpec(
        name="translation-seq2seq-encoder",
        module=encoder,
        inputs=(src,),
        input_names=["src"],
        output_names=fixed,
        dynamic={"src": {0: "batch", 1: "source"}, **{n: dims(n) for n in fixed}},
        sidecar={**shared, "src": "token ids of the tokenizer, padded with pad; no <s> or </s>"},
        int8="dynamic",
        answer=lambda outs: np.sign(outs[1]),  # the first cross keys' signs, per element
        bounds=bounds,
        more_inputs=[(src[:5, : int(lengths[:5].max())],)],
    )
    step = ExportSpec(
        name="translation-seq2seq-step",
        module=Step(model, fixed, caches).eval(),
        inputs=(tokens, *(start[n] for n in fixed), *(two[n] for n in caches)),
        input_names=["tokens", *fixed, *caches],
        output_names=["logits", *(f"next_{n}" for n in caches)],
        dynamic={
            "tokens": {0: "batch"},
            **{n: dims(n) for n in fixed + caches},
            **{f"next_{n}": {0: "batch", 2: "past + 1"} for n in caches},
        },
        sidecar={**shared, "tokens": "the previous token of each row; <s> at the first step"},
        int8="dynamic",
        bounds=bounds,
        more_inputs=[(tokens, *(start[n] for n in fixed), *(grown[n] for n in caches))],
    )
    with torch.no_grad():
        expected = torch_greedy(model, src, max_len)
    return enc, step, {"src": src.numpy(), "expected": expected, "max_len": max_len}


def empty_caches(model: nn.Module, src: torch.Tensor) -> dict[str, torch.Tensor]:
    """The step caches before the first token: (batch, heads, 0, head_dim) each."""
    heads = model.cfg.heads
    empty = torch.zeros(len(src), heads, 0, model.cfg.d_model // heads)
    return {n: empty for n in state_names(len(model.decoder))[1]}


def greedy(encode, step, src: np.ndarray, max_len: int, cache: tuple[int, int]) -> list[list[int]]:
    """Greedy decoding through exported files, in numpy: `encode(src)` gives the fixed state,
    `step([tokens, *fixed, *caches])` the logits and the longer caches; `cache` is (heads,
    head_dim). The most likely next token at every step, for source ids (N, S)."""
    fixed = encode(src)
    layers = len(fixed) // 2  # the mask, then a key and a value per layer
    caches = [np.zeros((len(src), cache[0], 0, cache[1]), np.float32)] * (2 * layers)
    tokens = np.full(len(src), BOS, dtype=np.int64)
    done = np.zeros(len(src), dtype=bool)
    out = []
    for _ in range(max_len):
        logits, *caches = step([tokens, *fixed, *caches])
        tokens = np.where(done, PAD, logits.argmax(-1))
        out.append(tokens)
        done |= tokens == EOS
        if done.all():
            break
    return strip(torch.from_numpy(np.stack(out, 1)))


def onnx_calls(encoder_file: Path, step_file: Path, options=None) -> tuple:
    """`greedy`'s encode and step through two ONNX Runtime sessions."""
    import onnxruntime

    providers = ["CPUExecutionProvider"]
    enc = onnxruntime.InferenceSession(str(encoder_file), options, providers=providers)
    step = onnxruntime.InferenceSession(str(step_file), options, providers=providers)
    names = [i.name for i in step.get_inputs()]
    return (
        lambda src: enc.run(None, {"src": src}),
        lambda inputs: step.run(None, dict(zip(names, inputs, strict=True))),
    )


def cache_shape(spec: ExportSpec) -> tuple[int, int]:
    """(heads, head_dim) of the model's step caches."""
    cfg = spec.module.model.cfg
    return cfg.heads, cfg.d_model // cfg.heads


def export_model(cfg: TranslationExportConfig) -> dict:
    """Write the run's encoder and decoder step in --format (int8 with --quantize) to --out,
    each checked, then check that greedy translation through them gives the eager model's."""
    enc, step, check = specs_for(cfg)
    written = {"encoder": export(enc, cfg), "step": export(step, cfg)}
    shutil.copyfile(Path(cfg.out_dir) / "tokenizer.json", Path(cfg.out) / "tokenizer.json")
    if cfg.format == "onnx":
        files = [Path(written[k]["file"]) for k in ("encoder", "step")]
        got = greedy(*onnx_calls(*files), check["src"], check["max_len"], cache_shape(enc))
        same = float(np.mean([a == b for a, b in zip(got, check["expected"], strict=True)]))
        if same < (0.8 if cfg.quantize == "int8" else 1.0):
            for path in files:
                path.unlink()
                path.with_suffix(path.suffix + ".json").unlink()
            share = f"{same:.0%} of {len(got)} test sentences"
            raise ShowcaseError(
                f"greedy translation through the exported files matches the eager model on "
                f"{share}: not written"
            )
        written["greedy_agreement"] = same
        share = f"{same:.0%} of {len(got)} test sentences"
        print(f"greedy translations through the two files match the eager model's on {share}")
    return written
