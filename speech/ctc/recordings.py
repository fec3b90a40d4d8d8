"""Your own recordings as `Clips` at 8 kHz, one clip each: a LibriSpeech-layout folder
(--librispeech), or transcribed audio through Hugging Face `datasets` (--hf-dataset)."""

import io
import sys
from pathlib import Path

import torch

from core.errors import DataError
from core.hf_data import column_names, open_source, train_test
from speech.ctc.data import VOCAB, Clips, read_audio, to_8k

COLUMNS = {"audio": "file_name", "text": "transcription", "speaker": "speaker"}
"""--hf-dataset's columns by role (rename with --hf-columns, e.g. text=sentence): the audio column
holds file paths (relative to the table's folder) or a Hub dataset's audio; a source without a
speaker column is one speaker."""


def as_clips(waves: list, texts: list[str], speakers: list[str], index: list[int]) -> Clips:
    """Clips of recordings (8 kHz waves) with their transcripts, speakers and split `index`."""
    names = sorted(set(speakers))
    lengths = torch.tensor([len(w) for w in waves])
    return Clips(
        torch.cat(waves),
        lengths.cumsum(0) - lengths,
        lengths,
        torch.full_like(lengths, -1),
        torch.tensor([names.index(s) for s in speakers]),
        torch.tensor(index),
        names,
        texts,
    )


def load_librispeech(folder: str | Path) -> Clips:
    """A LibriSpeech-layout folder (`<speaker>/<chapter>/*.trans.txt` beside the flac files, as
    torchaudio.datasets.LIBRISPEECH reads it; your own recordings may be .wav files instead):
    `index` counts the utterances modulo 10 (0: test, 1: validation)."""
    folder = Path(folder)
    waves, texts, speakers = [], [], []
    for trans in sorted(folder.rglob("*.trans.txt")):
        for line in trans.read_text().splitlines():
            if line.strip():
                utt, text = line.split(" ", 1)
                audio = trans.parent / f"{utt}.flac"
                audio = audio if audio.is_file() else audio.with_suffix(".wav")
                if not audio.is_file():
                    raise DataError(
                        f"{trans} names {utt}, but neither {utt}.flac nor {utt}.wav exists"
                    )
                waves.append(to_8k(*read_audio(audio)))
                texts.append(text.lower())
                speakers.append(trans.parent.parent.name)
    if not waves:
        raise DataError(
            f"{folder} holds no LibriSpeech transcripts (<speaker>/<chapter>/*.trans.txt)"
        )
    return as_clips(waves, texts, speakers, [k % 10 for k in range(len(waves))])


def load_hf_audio(
    source: str, pairs: list[str], seed: int, test: str = "test"
) -> tuple[Clips, str]:
    """(clips, where the test recordings come from) of transcribed audio through `datasets`: an
    audio folder with a metadata.csv naming each file and its transcript, a table of paths and
    transcripts, or a Hub dataset. `index` is 0 for the test recordings (the source's test split,
    or a seeded fifth held out), 1 for a tenth of the others (validation)."""
    names = column_names(pairs, COLUMNS)
    splits = open_source(source)
    if names["audio"] not in splits.get("train", {"": 0}) and "audio" in splits["train"].features:
        names["audio"] = "audio"  # a Hub dataset's audio column
    origin = {"train": "train", "test": test if test in splits else "train"}  # the test's split
    train, test, note = train_test(splits, seed, test)
    folder = Path(source) if Path(source).is_dir() else Path(source).parent
    waves, texts, speakers, index = [], [], [], []
    for split, table in (("train", train), ("test", test)):
        where = folder / origin[split] if (folder / origin[split]).is_dir() else folder
        found = read_split(table, names, source, split, where)
        for row, (wave, text, speaker) in enumerate(found):
            waves.append(wave)
            texts.append(text)
            speakers.append(speaker)
            index.append(0 if split == "test" else 1 + row % 10)
    odd = [t for t in texts if any(c not in VOCAB for c in t)]
    if odd:
        print(
            f"showcase: warning: {source}: {len(odd)} transcript(s) hold characters the model "
            f"does not spell (only a-z, space and '), left out, e.g. {odd[0]!r}",
            file=sys.stderr,
        )
    return as_clips(waves, texts, speakers, index), note


def read_split(table, names: dict, source: str, split: str, folder: Path) -> list[tuple]:
    """(8 kHz wave, transcript, speaker) of each readable recording of one split (soundfile reads
    it: a path relative to `folder`, or a Hub dataset's bytes); an unreadable one is skipped and
    counted, the first named."""
    import datasets

    for key in ("audio", "text"):
        if names[key] not in table.column_names:
            have = ", ".join(table.column_names)
            raise DataError(f"--hf-dataset {source}: no column {names[key]!r} (it has: {have})")
    if isinstance(table.features[names["audio"]], datasets.Audio):
        table = table.cast_column(names["audio"], datasets.Audio(decode=False))
    who = table[names["speaker"]] if names["speaker"] in table.column_names else None
    who = who or ["all"] * len(table)  # no speaker column: one speaker
    found, bad = [], []
    for row, (audio, text) in enumerate(
        zip(table[names["audio"]], table[names["text"]], strict=True)
    ):
        if isinstance(audio, dict):  # a Hub dataset's audio: its bytes, or a path
            where, name = (
                io.BytesIO(audio["bytes"]) if audio["bytes"] else audio["path"],
                audio["path"],
            )
        else:
            where = name = folder / str(audio)
        try:
            wave = to_8k(*read_audio(where))
        except DataError:
            bad.append(str(name or f"data row {row + 1}"))
            continue
        found.append((wave, str(text or "").lower(), str(who[row])))
    if bad:
        print(
            f"showcase: warning: {source} ({split} split): skipped {len(bad)} unreadable "
            f"recording(s), the first {bad[0]}",
            file=sys.stderr,
        )
    if not found:
        raise DataError(f"--hf-dataset {source}: no readable recordings in its {split} split")
    return found
