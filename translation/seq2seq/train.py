"""German-to-English translation on Multi30k: a Transformer, an attention GRU, the tutorial's recipe.

    showcase translation seq2seq train                          # pre-norm Transformer, tied embeddings
    showcase translation seq2seq train --model gru              # GRU encoder-decoder, Bahdanau attention
    showcase translation seq2seq train --model tutorial         # PyTorch's nn.Transformer tutorial recipe
    showcase translation seq2seq train --train-files a.de a.en --val-files v.de v.en --test-files t.de t.en
    showcase translation seq2seq eval --out-dir runs/translation   # sacreBLEU, chrF, attention.png
    echo "Ein Hund läuft." | showcase translation seq2seq translate --beam 5 --json
    showcase translation seq2seq translate "Zwei Männer." --model hf:Helsinki-NLP/opus-mt-de-en

A joint byte-level BPE vocabulary is trained on the training pairs and saved in the run
directory; the kept weights are those of the best validation BLEU (greedy); the test set is
decoded with beam search once, at the end.
"""

import dataclasses
import time
from pathlib import Path
from typing import ClassVar, Literal

import torch

from core import distributed
from core.config import EvalConfig, TrainConfig
from core.errors import UsageError, fraction, non_negative, positive, within
from core.hf_data import scored_source
from core.loop import fit, setup
from core.parse import from_run
from core.report import report_eval, report_train
from core.run import run_step
from core.seq_data import LengthLoader
from core.share import push_command
from translation import SEQ2SEQ
from translation.seq2seq.baselines import TUTORIAL_RECIPE
from translation.seq2seq.data import Pairs, collate, load_texts, refuse_trained_slice, split_sources
from translation.seq2seq.export import export_model
from translation.seq2seq.model import build_model, seq2seq_loss
from translation.seq2seq.predict import Translator, load_translator, translate
from translation.seq2seq.scoring import bleu_chrf, plot_attention
from translation.seq2seq.tokenizer import PAD, encode, load_tokenizer, train_tokenizer

TASK = "translation.seq2seq"


@dataclasses.dataclass
class TranslationConfig(TrainConfig):
    DEMO = SEQ2SEQ
    PRESET_FIELD: ClassVar[str] = "model"
    PRESETS: ClassVar[dict] = {
        "transformer": {},
        "gru": {"lr": 2e-3, "dropout": 0.2, "label_smoothing": 0.1},
        "tutorial": TUTORIAL_RECIPE,
    }
    DEFAULTS: ClassVar[dict] = {
        "max_steps": 2400,
        "batch_size": 128,
        "weight_decay": 0.01,
        "schedule": "cosine",
        "warmup_steps": 400,
        "grad_clip": 1.0,
        "eval_every": 600,
    }

    model: Literal["transformer", "gru", "tutorial"] = "transformer"
    """transformer: ours (pre-norm, tied embeddings); gru: attention GRU; tutorial: the peer recipe."""
    d_model: int = 256
    """Transformer width."""
    heads: int = 4
    """Attention heads."""
    layers: int = 3
    """Encoder and decoder layers (each)."""
    d_ff: int = 1024
    """Transformer feed-forward width."""
    emb: int = 256
    """GRU embedding size."""
    hidden: int = 256
    """GRU encoder width per direction (the decoder has twice this)."""
    dropout: float = 0.1
    vocab_size: int = 8000
    """Joint source-target BPE vocabulary."""
    max_len: int = 128
    """Longest sentence in tokens (longer ones are truncated with a warning)."""
    max_tokens: int = 6000
    """Most padded tokens per optimizer step, counted on the longer side of each pair (0: only
    --batch-size sentences)."""
    label_smoothing: float = 0.1
    beam: int = 5
    """Beam size for the test set, eval and translate (1: greedy)."""
    alpha: float = 0.6
    """Length penalty exponent of the beam search."""
    train_files: tuple[str, str] | None = None
    """Your own parallel text: SOURCE TARGET, one sentence a line, UTF-8."""
    val_files: tuple[str, str] | None = None
    """Validation pair (default with --train-files: a seeded slice of up to 1,000 training pairs)."""
    test_files: tuple[str, str] | None = None
    """Test pair (default with --train-files: another seeded slice of up to 1,000 training pairs,
    apart from the validation pairs)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        positive(self, "d_model", "heads", "layers", "d_ff", "emb", "hidden", "beam")
        non_negative(self, "max_tokens", "alpha")
        fraction(self, "dropout", "label_smoothing")
        if self.d_model % self.heads:
            raise UsageError(f"--d-model {self.d_model} must be divisible by --heads {self.heads}")
        within(self, "[300, 100000]", "vocab_size")
        if self.hf_dataset and self.train_files:
            raise UsageError("choose one of --hf-dataset and --train-files")
        within(self, "[8, 1024]", "max_len")

    def shape(self) -> dict:
        return {
            k: getattr(self, k)
            for k in ("d_model", "heads", "layers", "d_ff", "dropout", "emb", "hidden", "max_len")
        }


def make_step(smoothing: float):
    """The training step: teacher forcing, label-smoothed cross-entropy, token accuracy."""

    def step(model, batch):
        src, tgt = batch  # (B, S), (B, T + 1) starting with <s>
        logits = model(src, tgt[:, :-1])  # (B, T, V)
        targets = tgt[:, 1:]
        loss = seq2seq_loss(logits, targets, smoothing)
        real = targets != PAD
        acc = ((logits.argmax(-1) == targets) & real).sum() / real.sum()
        return loss, {"acc": acc.detach()}

    return step


def main(cfg: TranslationConfig) -> dict:
    """Train, keep the best validation BLEU, report test BLEU and chrF (beam search)."""
    device = setup(cfg)
    texts = load_texts(cfg)
    tok_file = Path(cfg.out_dir) / "tokenizer.json"
    if cfg.resume and tok_file.exists():
        tokenizer = load_tokenizer(cfg.out_dir)
    else:  # every rank trains the same tokenizer from the same text; rank 0 saves it
        tokenizer = train_tokenizer(texts["train"][0] + texts["train"][1], cfg.vocab_size)
        if distributed.is_main():
            tokenizer.backend_tokenizer.save(str(tok_file))
    train = Pairs.build(
        *(encode(tokenizer, side, cfg.max_len, "training") for side in texts["train"])
    )
    train = train.to(device)
    model = build_model(cfg.model, len(tokenizer), cfg.shape())
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=cfg.lr, betas=(0.9, 0.98), eps=1e-9, weight_decay=cfg.weight_decay
    )
    loader = LengthLoader.for_config(
        train.lengths(), lambda rows: collate(train, rows), cfg, max_tokens=cfg.max_tokens
    )

    @distributed.on_main  # rank 0 decodes alone; every rank gets its numbers
    def validate(m):
        hyps = Translator(m, tokenizer, device, cfg.max_len).translate(texts["val"][0], beam=1)
        return {"val_bleu": bleu_chrf(hyps, texts["val"][1])["bleu"]}

    result = fit(
        model,
        make_step(cfg.label_smoothing),
        loader,
        cfg,
        device=device,
        optimizer=optimizer,
        evaluate=validate,
        monitor="val_bleu",
    )
    translator = Translator(model, tokenizer, device, cfg.max_len, cfg.alpha)
    t0 = time.perf_counter()
    hyps = distributed.on_main(translator.translate)(texts["test"][0], beam=cfg.beam)
    scores = bleu_chrf(hyps, texts["test"][1])
    metrics = {
        **result.best,
        "test_bleu": scores["bleu"],
        "test_chrf": scores["chrf"],
        "beam": cfg.beam,
        "test_decode_seconds": round(time.perf_counter() - t0, 2),
        "bleu_signature": scores["signature"],
    }
    sources = split_sources(cfg, texts)
    metrics |= {"val_pairs": sources["val"], "test_pairs": sources["test"]}
    notes = (
        f"beam {cfg.beam}; {scores['signature']}",
        f"val: {sources['val']}; test: {sources['test']}",
    )
    shown = ["test_bleu", "test_chrf"]
    return report_train(cfg, TASK, metrics, result, device, shown=shown, notes=notes)


@dataclasses.dataclass
class TranslationEvalConfig(EvalConfig):
    DEMO = SEQ2SEQ
    DEFAULTS: ClassVar[dict] = {"batch_size": 128}
    model: str | None = None
    """hf:<name or folder>: a MarianMT model from the local Hugging Face cache instead of the run."""
    beam: int = 0
    """Beam size (0: the run's)."""
    split: Literal["val", "test"] = "test"
    """Which split to score: Multi30k's, the run's --val-files/--test-files, or its held-out slices."""

    def __post_init__(self) -> None:
        super().__post_init__()
        non_negative(self, "beam")


def evaluate(cfg: TranslationEvalConfig) -> dict:
    """sacreBLEU and chrF on the test (or val) split; saves attention.png for one test sentence."""
    t0 = time.perf_counter()
    translator, train_cfg = load_translator(cfg.out_dir, cfg.model, cfg.device, cfg.batch_size)
    files = dict(train_files=None, val_files=None, test_files=None)  # another source's pairs
    run_cfg = from_run(
        TranslationConfig,
        scored_source(cfg, train_cfg, **files),
        data_dir=cfg.data_dir or train_cfg.get("data_dir"),
    )
    refuse_trained_slice(cfg, run_cfg)
    texts = load_texts(run_cfg)
    src, refs = texts[cfg.split]
    source = split_sources(run_cfg, texts)[cfg.split]
    beam = cfg.beam or run_cfg.beam
    t1 = time.perf_counter()
    hyps = translator.translate(src, beam=beam)
    seconds = time.perf_counter() - t1
    scores = bleu_chrf(hyps, refs)
    metrics = {
        f"{cfg.split}_bleu": scores["bleu"],
        f"{cfg.split}_chrf": scores["chrf"],
        "beam": beam,
        "sentences": len(src),
        "decode_seconds": round(seconds, 2),
        "bleu_signature": scores["signature"],
        f"{cfg.split}_pairs": source,
    }
    picture = Path(cfg.out_dir) / "attention.png"
    shown = plot_attention(translator, src[0], picture)
    lines = [
        f"{cfg.split}_bleu {scores['bleu']:.2f}  {cfg.split}_chrf {scores['chrf']:.2f}  (beam {beam}, "
        f"{len(src)} sentences in {seconds:.1f}s)",
        f"{cfg.split}: {source}",
        scores["signature"],
    ]
    lines += [f"wrote {picture}"] if shown else []
    summary, eval_seconds = "\n".join(lines), time.perf_counter() - t0
    return report_eval(
        cfg, TASK, metrics, run_step(cfg.out_dir), eval_seconds, translator.device, summary
    )


COMMANDS = {
    "train": main,
    "eval": evaluate,
    "translate": translate,
    "export": export_model,
    "push": push_command(SEQ2SEQ),
}
