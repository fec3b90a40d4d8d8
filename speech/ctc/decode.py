"""From CTC emissions to text: greedy, lexicon-constrained beam search, and word times.

greedy(emissions, lengths)                       # best path, repeats merged, blanks dropped
LexiconDecoder(WORDS)(emissions, lengths)        # only words of the lexicon (torchaudio/flashlight)
word_times(emission, text, seconds_per_frame)    # forced alignment -> [{word, start, end}]
"""

import tempfile
from pathlib import Path

import torch

from speech.ctc.data import VOCAB, encode

TOKENS = ["-", "|", *VOCAB[2:]]  # flashlight's names: "-" is the blank, "|" the word boundary


def greedy(emissions: torch.Tensor, lengths: torch.Tensor) -> list[str]:
    """Best-path decoding of (B, T, V) log-probs: merge repeats, drop blanks."""
    best = emissions.argmax(-1).cpu()  # (B, T)
    texts = []
    for path, n in zip(best.tolist(), lengths.tolist(), strict=True):
        chars, prev = [], 0
        for i in path[:n]:
            if i != prev and i != 0:
                chars.append(VOCAB[i])
            prev = i
        texts.append(" ".join("".join(chars).split()))
    return texts


class LexiconDecoder:
    """Beam search over CTC emissions that emits only words of a lexicon (no language model).

    The lexicon defaults to the ten digit words; any word list works (`--lexicon FILE`)."""

    def __init__(self, words: list[str], beam_size: int = 16) -> None:
        from torchaudio.models.decoder import ctc_decoder

        words = sorted({w.lower() for w in words if w.strip()})
        bad = [w for w in words if not set(w) <= set(VOCAB[2:])]
        if bad:
            raise ValueError(f"lexicon words must use a-z and ' only: {bad[:3]}")
        with tempfile.TemporaryDirectory() as tmp:
            lexicon = Path(tmp) / "lexicon.txt"
            lexicon.write_text("".join(f"{w} {' '.join(w)} |\n" for w in words))
            self.decoder = ctc_decoder(
                lexicon=str(lexicon),
                tokens=TOKENS,
                lm=None,
                beam_size=beam_size,
                blank_token="-",
                sil_token="|",
                unk_word="<unk>",
                word_score=0.0,
                sil_score=0.0,
            )

    def __call__(self, emissions: torch.Tensor, lengths: torch.Tensor) -> list[str]:
        hyps = self.decoder(emissions.float().cpu().contiguous(), lengths.cpu().int())
        return [" ".join(h[0].words) if h else "" for h in hyps]


def word_times(emission: torch.Tensor, text: str, seconds_per_frame: float) -> list[dict]:
    """Start and end seconds of each word of `text` in one utterance's (T, V) log-probs, from
    the CTC forced alignment (torchaudio.functional.forced_align)."""
    import torchaudio.functional as AF

    words = text.split()
    ids = encode(" ".join(words))
    if not words or len(ids) > len(emission):
        return []
    path, _ = AF.forced_align(emission[None].float().cpu(), ids[None].int(), blank=0)
    path = path[0].tolist()  # (T,) token of each frame
    # the k-th character of the text is the k-th run of frames of one token (CTC puts a blank
    # between two equal characters, so a run never spans two)
    frames, prev = [], 0
    for t, token in enumerate(path):
        if token != 0 and token != prev:
            frames.append([t])
        elif token != 0:
            frames[-1].append(t)
        prev = token
    out, k = [], 0
    for word in words:
        first, last = frames[k][0], frames[k + len(word) - 1][-1]
        out.append(
            {
                "word": word,
                "start": round(first * seconds_per_frame, 3),
                "end": round((last + 1) * seconds_per_frame, 3),
            }
        )
        k += len(word) + 1  # the space between words is a token too
    return out
