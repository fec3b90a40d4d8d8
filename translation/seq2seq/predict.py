"""Translate sentences with a trained run (or a MarianMT model from the local Hugging Face cache).

    showcase translation seq2seq translate "Ein Mann fährt Fahrrad." --out-dir runs/translation
    cat german.txt | showcase translation seq2seq translate --beam 5 --json
    showcase translation seq2seq translate "Hallo Welt" --model hf:Helsinki-NLP/opus-mt-de-en

Input lines keep their count: an empty line gives an empty translation.
"""

import dataclasses
import json
import sys
import warnings
from pathlib import Path

import torch
from tyro.conf import Positional

from core.config import InferenceConfig
from core.demo import Tab, Widget
from core.device import pick_device
from core.errors import ShowcaseError, non_negative, positive
from core.run import load_run_weights, run_config
from translation import SEQ2SEQ
from translation.seq2seq.data import pad_rows, split_lines
from translation.seq2seq.decode import beam_search, greedy
from translation.seq2seq.model import build_model
from translation.seq2seq.scoring import plot_attention
from translation.seq2seq.tokenizer import BOS, EOS, encode, load_tokenizer


class Translator:
    """A trained model with its tokenizer: batched translation of raw sentences."""

    def __init__(
        self, model, tokenizer, device, max_len: int, alpha: float = 0.6, batch_size: int = 128
    ):
        self.model, self.tokenizer, self.device = model, tokenizer, torch.device(device)
        self.max_len, self.alpha, self.batch_size = max_len, alpha, batch_size

    def ids(self, sentences: list[str]) -> list[list[int]]:
        return encode(self.tokenizer, sentences, self.max_len, "input")

    def text(self, ids: list[int]) -> str:
        text = self.tokenizer.decode(ids, skip_special_tokens=True)
        return text[1:] if text.startswith(" ") else text  # the byte-level BPE's prefix space

    def translate(self, sentences: list[str], beam: int = 1) -> list[str]:
        """Translations in input order; empty sentences give empty strings."""
        self.model.eval()
        out = [""] * len(sentences)
        todo = [i for i, s in enumerate(sentences) if s.strip()]
        ids = self.ids([sentences[i] for i in todo])
        order = sorted(
            range(len(todo)), key=lambda k: len(ids[k])
        )  # similar lengths batch together
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            rows = [torch.tensor(ids[k]) for k in chunk]
            lengths = torch.tensor([len(r) for r in rows])
            src = pad_rows(torch.cat(rows), torch.cumsum(lengths, 0) - lengths, lengths).to(
                self.device
            )
            limit = min(self.max_len, int(lengths.max()) * 2 + 10)
            with torch.no_grad():
                found = (
                    greedy(self.model, src, limit)
                    if beam == 1
                    else beam_search(self.model, src, beam, limit, self.alpha)
                )
            for k, tokens in zip(chunk, found, strict=True):
                out[todo[k]] = self.text(tokens)
        return out

    @torch.no_grad()
    def attention(self, sentence: str):
        """(source tokens, output tokens, weights (T, S)) of the greedy translation, or None."""
        if not hasattr(self.model, "decode") or type(self.model).__name__ == "Tutorial":
            return None
        self.model.eval()
        src = torch.tensor([self.ids([sentence])[0]], device=self.device)
        (out,) = greedy(self.model, src, self.max_len - 1)  # with <s>, at most --max-len positions
        tgt = torch.tensor([[BOS] + out], device=self.device)
        _, weights = self.model.decode(tgt, *self.model.encode(src), weights=True)
        names = self.tokenizer.convert_ids_to_tokens
        return names(src[0].tolist()), names(out + [EOS]), weights[0].float().cpu()


class HFTranslator:
    """A transformers seq2seq model (MarianMT) and its tokenizer, from local files only."""

    def __init__(self, name: str, device, max_len: int = 256, batch_size: int = 64) -> None:
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        try:
            self.tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=True)
            self.model = (
                AutoModelForSeq2SeqLM.from_pretrained(name, local_files_only=True).to(device).eval()
            )
        except (OSError, ValueError) as exc:
            raise ShowcaseError(
                f"hf:{name} is not in the local Hugging Face cache or folder "
                f"({' '.join(str(exc).split())[:120]})"
            ) from exc
        positions = getattr(self.model.config, "max_position_embeddings", max_len)
        self.device, self.max_len, self.batch_size = (
            torch.device(device),
            min(max_len, positions - 2),
            batch_size,
        )

    def translate(self, sentences: list[str], beam: int = 1) -> list[str]:
        out = [""] * len(sentences)
        todo = [i for i, s in enumerate(sentences) if s.strip()]
        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start : start + self.batch_size]
            batch = self.tokenizer(
                [sentences[i] for i in chunk],
                return_tensors="pt",
                padding=True,
                truncation=True,
                max_length=self.max_len,
            ).to(self.device)
            with torch.no_grad():
                generated = self.model.generate(
                    **batch, num_beams=beam, max_new_tokens=self.max_len
                )
            for i, text in zip(
                chunk, self.tokenizer.batch_decode(generated, skip_special_tokens=True), strict=True
            ):
                out[i] = text
        return out

    @torch.no_grad()
    def attention(self, sentence: str):
        batch = self.tokenizer([sentence], return_tensors="pt").to(self.device)
        generated = self.model.generate(**batch, max_new_tokens=self.max_len)
        result = self.model(**batch, decoder_input_ids=generated, output_attentions=True)
        weights = result.cross_attentions[-1][0].mean(0).float().cpu()  # (T, S) over heads
        names = self.tokenizer.convert_ids_to_tokens
        return names(batch["input_ids"][0].tolist()), names(generated[0].tolist()), weights


def load_translator(out_dir: str, model: str | None, device: str, batch_size: int = 128):
    """The translator of a run (its weights and tokenizer) or of `hf:<name>`; and the run's config."""
    device = pick_device(device)
    if model:
        if not model.startswith("hf:"):
            raise ShowcaseError(f"--model takes hf:<name or folder>, got {model!r}")
        return HFTranslator(model[3:], device, batch_size=batch_size), {}
    cfg = run_config(out_dir)
    tokenizer = load_tokenizer(out_dir)
    net = build_model(cfg["model"], len(tokenizer), cfg)
    load_run_weights(net, out_dir)
    return Translator(
        net.to(device).eval(), tokenizer, device, cfg["max_len"], cfg["alpha"], batch_size
    ), cfg


@dataclasses.dataclass
class TranslateConfig(InferenceConfig):
    """Translate German sentences to English (--json: one object per line: {"source",
    "translation"})."""

    DEMO = SEQ2SEQ

    sentences: Positional[list[str]] = dataclasses.field(default_factory=list)
    """German sentences (default: one per line from standard input)."""
    model: str | None = None
    """hf:<name or folder>: a MarianMT model from the local Hugging Face cache instead of the run."""
    beam: int = 0
    """Beam size (0: the run's; 1: greedy)."""
    batch_size: int = 64
    """Sentences decoded together."""

    def __post_init__(self) -> None:
        positive(self, "batch_size")
        non_negative(self, "beam")


def translate(cfg: TranslateConfig) -> dict:
    """Print one translation per input sentence (or line of standard input)."""
    sentences = (
        list(cfg.sentences)
        if cfg.sentences
        else split_lines(sys.stdin.buffer.read(), "standard input")
    )
    translator, train_cfg = load_translator(cfg.out_dir, cfg.model, cfg.device, cfg.batch_size)
    beam = cfg.beam or train_cfg.get("beam", 1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = translator.translate(sentences, beam=beam)
    for w in caught:
        print(f"showcase: warning: {w.message}", file=sys.stderr)
    for source, translation in zip(sentences, out, strict=True):
        print(
            json.dumps({"source": source, "translation": translation}, ensure_ascii=False)
            if cfg.json
            else translation
        )
    return {
        "translations": [
            {"source": s, "translation": t} for s, t in zip(sentences, out, strict=True)
        ]
    }


def app_tab():
    """`showcase app`: German text -> English, a beam-size slider, the attention heat-map."""
    import tempfile

    def load(run_dir: str, device) -> tuple:
        translator, _ = load_translator(run_dir, None, str(device))
        return translator, Path(tempfile.mkdtemp(prefix="showcase-attention-"))

    def infer(session, text, beam) -> tuple:
        translator, folder = session
        lines = (text or "").splitlines()
        if not any(line.strip() for line in lines):
            raise ShowcaseError("type a German sentence first")
        hyps = translator.translate(lines, beam=int(beam))
        picture = folder / "attention.png"
        shown = plot_attention(translator, next(line for line in lines if line.strip()), picture)
        return "\n".join(hyps), str(picture) if shown else None

    def examples(data_dir: str | None) -> list[list]:
        from translation.seq2seq.data import load_multi30k

        try:
            test = load_multi30k(data_dir)["test"][0]
        except ShowcaseError:
            return []
        return [[test[i], 5] for i in (0, 1, 2)]

    return Tab(
        inputs=[
            Widget("text", "German (one sentence a line)", {"lines": 3}),
            Widget("slider", "beam size (1: greedy)", {"minimum": 1, "maximum": 10, "value": 5}),
        ],
        outputs=[
            Widget("text", "English", {"lines": 3}),
            Widget("image", "attention (first sentence)"),
        ],
        load=load,
        infer=infer,
        examples=examples,
        button="Translate",
    )
