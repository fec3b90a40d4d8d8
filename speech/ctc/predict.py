"""Transcribe audio files of any sample rate and channel count; WER/CER; the alignment picture."""

import dataclasses
import json
from pathlib import Path
from typing import NamedTuple

import torch
from tyro.conf import Positional

from core.config import InferenceConfig
from core.demo import Tab, Widget
from core.device import pick_device
from core.errors import DataError, ShowcaseError, positive, refuse_failed
from core.files import write_text
from core.run import load_run_weights, run_config
from speech import CTC
from speech.ctc.data import SAMPLE_RATE, VOCAB, WORDS, read_audio, to_8k
from speech.ctc.decode import LexiconDecoder, greedy, word_times
from speech.ctc.features import Features
from speech.ctc.model import CTCConfig, build_model
from speech.ctc.utterances import EDGE_SILENCE, pad_silence

LEXICON = "lexicon.txt"
"""The run's beam-search words (its training transcripts' words, or --lexicon FILE's)."""


def lexicon_words(path: str | None, texts: list[str] | None = None) -> list[str]:
    """The beam search's words: a file's (one or more a line), else the words of `texts` (sorted,
    each once), else the ten digit words."""
    if path:
        p = Path(path)
        if not p.is_file():
            raise ShowcaseError(f"lexicon file {path} does not exist")
        words = [w for line in p.read_text().splitlines() for w in line.split()]
        if not words:
            raise ShowcaseError(f"lexicon file {path} holds no words")
        bad = [w for w in words if not set(w.lower()) <= set(VOCAB[2:])]
        if bad:
            raise ShowcaseError(f"lexicon file {path}: words must use a-z and ' only: {bad[:3]}")
        return words
    if texts is None:
        return list(WORDS)
    # the words as the model learns to spell them (characters outside its vocabulary dropped)
    spelled = ("".join(c for c in w if c in VOCAB[2:]) for t in texts for w in t.lower().split())
    return sorted({w for w in spelled if w})


def save_lexicon(out_dir: str, words: list[str]) -> None:
    """Keep the run's beam-search words in `<out_dir>/lexicon.txt`, one a line."""
    write_text(
        Path(out_dir) / LEXICON, "".join(f"{w}\n" for w in sorted({w.lower() for w in words}))
    )


class Trained(NamedTuple):
    """A finished run, loaded for recognition."""

    model: torch.nn.Module
    features: Features
    config: dict
    """The training config."""
    step: int
    """The training step the weights come from."""
    words: list[str] | None
    """The beam search's words stored with the run (None: trained before runs stored them)."""

    def lexicon(self, override: str | None = None) -> list[str]:
        """`override` (a word-list file), else the run's words; a run from before they were
        stored falls back to its --lexicon file or the ten digit words."""
        if override or self.words is None:
            return lexicon_words(override or self.config.get("lexicon"))
        return self.words


def load_trained(out_dir: str, device: torch.device) -> Trained:
    """A finished run's model (eval mode), its features module, training config, weights step
    and word list."""
    cfg = run_config(out_dir)
    model = build_model(
        cfg["model"],
        CTCConfig(
            cfg["n_mels"],
            cfg["channels"],
            cfg["hidden"],
            cfg["layers"],
            cfg["dropout"],
            stride=cfg.get("stride", 2),
        ),
    )
    meta = load_run_weights(model, out_dir)
    stored = Path(out_dir) / LEXICON
    words = stored.read_text().split() if stored.is_file() else None
    return Trained(
        model.to(device).eval(),
        Features(cfg["n_mels"]).to(device),
        cfg,
        int(meta.get("step", 0)),
        words,
    )


@dataclasses.dataclass
class TranscribeConfig(InferenceConfig):
    """Print the text of each audio file (--json: one object per file: {file, text, words:
    [{word, start, end}]})."""

    DEMO = CTC

    paths: Positional[list[str]]
    """Audio files (wav, flac, ...; any sample rate and channel count)."""
    lexicon: str | None = None
    """Word list for the beam search (default: the run's, kept in its lexicon.txt)."""
    greedy: bool = False
    """Best-path decoding instead of the lexicon beam search."""
    chunk_seconds: float = 20.0
    """Long files are recognised in chunks of about this length, cut at the quietest moment."""

    def __post_init__(self) -> None:
        positive(self, "chunk_seconds")


def chunks(wave: torch.Tensor, seconds: float) -> list[tuple[int, torch.Tensor]]:
    """(offset, piece) pieces of about `seconds`, each cut at the quietest 10 ms of its last 2 s."""
    size, hop = int(seconds * SAMPLE_RATE), SAMPLE_RATE // 100
    pieces, start = [], 0
    while len(wave) - start > size:
        window = wave[start + max(0, size - 2 * SAMPLE_RATE) : start + size]
        energy = window[: len(window) // hop * hop].view(-1, hop).pow(2).sum(1)
        cut = start + max(0, size - 2 * SAMPLE_RATE) + int(energy.argmin()) * hop + hop // 2
        pieces.append((start, wave[start:cut]))
        start = cut
    pieces.append((start, wave[start:]))
    return pieces


@torch.no_grad()
def recognize_wave(
    model, features: Features, wave: torch.Tensor, decoder, chunk_seconds: float, device
) -> tuple[str, list[dict]]:
    """Text and timed words of one 8 kHz waveform; silence or a too-short clip gives ''."""
    words, timed = [], []
    for offset, piece in chunks(wave, chunk_seconds):
        if len(piece) < SAMPLE_RATE // 20 or piece.abs().max() < 1e-3:  # < 50 ms, or silence
            continue
        waves, samples = pad_silence(
            piece[None].to(device), torch.tensor([len(piece)], device=device)
        )
        emissions, lengths = model(*features(waves, samples))
        text = decoder(emissions, lengths)[0] if decoder else greedy(emissions, lengths)[0]
        seconds_per_frame = model.stride / 100
        shift, last = (offset - EDGE_SILENCE) / SAMPLE_RATE, (offset + len(piece)) / SAMPLE_RATE
        for w in word_times(emissions[0, : lengths[0]], text, seconds_per_frame):
            start, end = (
                min(max(w[k] + shift, offset / SAMPLE_RATE), last) for k in ("start", "end")
            )
            timed.append({**w, "start": round(start, 3), "end": round(end, 3)})
        words += text.split()
    return " ".join(words), timed


def transcribe(cfg: TranscribeConfig) -> dict:
    """Print the text of every file (with --json, the words with start and end seconds); bad
    files are reported on stderr and the good ones still transcribed (exit 1 if any was bad)."""
    device = pick_device(cfg.device)
    run = load_trained(cfg.out_dir, device)
    model, features = run.model, run.features
    decoder = (
        None if cfg.greedy else LexiconDecoder(run.lexicon(cfg.lexicon), run.config.get("beam", 16))
    )
    results, errors = [], []
    for path in cfg.paths:
        try:
            if not Path(path).is_file():
                raise DataError(f"{path}: no such file")
            audio, rate = read_audio(Path(path))
            if len(audio) == 0:
                raise DataError(f"{path}: holds no audio samples")
        except DataError as exc:
            errors.append(str(exc))
            continue
        text, words = recognize_wave(
            model, features, to_8k(audio, rate), decoder, cfg.chunk_seconds, device
        )
        result = {"file": str(path), "text": text, "words": words}
        results.append(result)
        print(json.dumps(result) if cfg.json else f"{path}: {text}")
    refuse_failed(errors, len(results), "file(s) could not be transcribed")
    return {"transcripts": results}


def app_tab():
    """`showcase app`: upload or record audio -> the transcript and each word's start and end."""

    def load(run_dir: str, device: torch.device):
        run = load_trained(run_dir, device)
        decoder = LexiconDecoder(run.lexicon(), run.config.get("beam", 16))
        return run.model, run.features, decoder, device

    def infer(session, audio) -> tuple:
        model, features, decoder, device = session
        if not audio:
            raise ShowcaseError("upload or record some audio first")
        samples, rate = read_audio(Path(audio))
        if len(samples) == 0:
            raise DataError(f"{Path(audio).name}: holds no audio samples")
        text, words = recognize_wave(model, features, to_8k(samples, rate), decoder, 20.0, device)
        rows = [[w["word"], w["start"], w["end"]] for w in words]
        return text or "(no speech found)", rows

    def examples(data_dir: str | None) -> list[list]:
        from speech.ctc.data import fsdd_dir

        try:
            folder = fsdd_dir(data_dir)
        except ShowcaseError:
            return []
        return [
            [str(folder / name)] for name in ("3_theo_0.wav", "7_jackson_1.wav", "0_george_2.wav")
        ]

    return Tab(
        inputs=[Widget("audio", "audio (any rate, any channels)")],
        outputs=[
            Widget("text", "transcript", {"lines": 1}),
            Widget("table", "words", {"headers": ["word", "start (s)", "end (s)"]}),
        ],
        load=load,
        infer=infer,
        examples=examples,
        button="Transcribe",
        about="Trained on spoken digits: say numbers, one word at a time.",
    )
