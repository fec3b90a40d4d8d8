"""Spoken digits: FSDD's recordings (downloaded and verified, or read from the data root) held in
one tensor as `Clips`, and tiny tone clips for smoke tests. Your own recordings are read in
`recordings.py`; utterances composed from the clips live in `utterances.py`, features in `features.py`."""

import hashlib
import os
import re
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core.data import data_root
from core.errors import DataError, MissingData, UsageError, within

SAMPLE_RATE = 8000
GAIN_SPREAD = 0.7
"""Each recording of a composed training utterance is scaled by e^u, u uniform in [-0.7, 0.7]."""
WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
VOCAB = ["<blank>", " ", "'", *"abcdefghijklmnopqrstuvwxyz"]  # index 0 is the CTC blank
FSDD_URL = (
    "https://github.com/Jakobovski/free-spoken-digit-dataset/archive/refs/tags/v1.0.10.tar.gz"
)
FSDD_SUMS = "1801eae019c063377d98f831d3f93574f259475df7332bb0e3d1b080fb5e6959"  # of SHA256SUMS
NAME = re.compile(r"^(\d)_([a-z]+)_(\d+)\.wav$")


def encode(text: str) -> torch.Tensor:
    """Characters -> vocabulary ids (lower-cased; characters outside the vocabulary dropped)."""
    return torch.tensor([VOCAB.index(c) for c in text.lower() if c in VOCAB[1:]], dtype=torch.long)


def targets(texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Padded character ids (B, S) and lengths (B,) of transcripts."""
    encoded = [encode(t) for t in texts]
    lengths = torch.tensor([len(e) for e in encoded])
    padded = torch.zeros(len(encoded), max([1, *lengths.tolist()]), dtype=torch.long)
    for i, e in enumerate(encoded):
        padded[i, : len(e)] = e
    return padded, lengths


def decode_ids(ids: list[int]) -> str:
    return "".join(VOCAB[i] for i in ids if i > 0)


@dataclass
class Clips:
    """Every recording, concatenated: clip k is audio[starts[k] : starts[k] + lengths[k]]."""

    audio: torch.Tensor  # (total,) float32 in [-1, 1]
    starts: torch.Tensor  # (N,)
    lengths: torch.Tensor  # (N,)
    digits: torch.Tensor  # (N,)
    speakers: torch.Tensor  # (N,) index into speaker_names
    index: torch.Tensor  # (N,) recording number: 0-4 are FSDD's official test set
    speaker_names: list[str]
    texts: list[str]  # (N,) what each clip says

    def to(self, device) -> "Clips":
        """Every tensor on `device`."""
        return Clips(
            self.audio.to(device),
            self.starts.to(device),
            self.lengths.to(device),
            self.digits.to(device),
            self.speakers.to(device),
            self.index.to(device),
            self.speaker_names,
            self.texts,
        )


def read_sums(text: str) -> dict[str, str]:
    return {name: digest for digest, name in (line.split() for line in text.splitlines() if line)}


def fsdd_dir(data_dir: str | None) -> Path:
    """`<root>/fsdd/recordings`, every file verified against SHA256SUMS (itself pinned);
    downloaded and verified when missing and possible."""
    folder = data_root(data_dir) / "fsdd"
    sums_path = folder / "SHA256SUMS"
    if not (folder / "recordings").is_dir():
        download_fsdd(folder)
    if not sums_path.is_file():
        raise DataError(f"{sums_path} is missing: FSDD's checksums must sit beside recordings/")
    text = sums_path.read_text()
    if hashlib.sha256(text.encode()).hexdigest() != FSDD_SUMS:
        raise DataError(f"{sums_path} is damaged or not FSDD's (sha256 mismatch)")
    sums = read_sums(text)
    recordings = folder / "recordings"
    missing = [n for n in sums if not (recordings / n).is_file()]
    if missing:
        raise MissingData(
            f"FSDD is missing {len(missing)} recording(s) in {recordings}, e.g. {missing[0]}"
        )
    for name, digest in sums.items():
        if hashlib.sha256((recordings / name).read_bytes()).hexdigest() != digest:
            raise DataError(
                f"{recordings / name} is damaged (sha256 mismatch): delete it or replace it"
            )
    return recordings


def download_fsdd(folder: Path) -> None:
    """Fetch FSDD's v1.0.10 archive, keep recordings/, verify every file through the pinned
    SHA256SUMS, then move it into place (nothing is left behind on failure)."""
    try:
        with urllib.request.urlopen(FSDD_URL, timeout=60) as response:
            payload = response.read()
    except OSError as exc:
        raise MissingData(
            f"FSDD is missing in {folder} and cannot be downloaded ({exc}); put its "
            f"recordings/*.wav and SHA256SUMS there"
        ) from exc
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        archive = Path(tmp) / "fsdd.tar.gz"
        archive.write_bytes(payload)
        recordings = Path(tmp) / "recordings"
        recordings.mkdir()
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                name = Path(member.name).name
                if "/recordings/" in member.name and NAME.match(name) and member.isfile():
                    (recordings / name).write_bytes(tar.extractfile(member).read())
        lines = [
            f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}\n"
            for p in sorted(recordings.iterdir(), key=lambda p: p.name)
        ]
        text = "".join(lines)
        if hashlib.sha256(text.encode()).hexdigest() != FSDD_SUMS:
            raise DataError(f"the archive at {FSDD_URL} does not hold FSDD v1.0.10's recordings")
        (Path(tmp) / "SHA256SUMS").write_text(text)
        os.replace(Path(tmp) / "SHA256SUMS", folder / "SHA256SUMS")
        os.replace(recordings, folder / "recordings")


def read_audio(path) -> tuple[np.ndarray, int]:
    """(samples,) float32 mono in [-1, 1] and the sample rate of a file (a path, or an open
    binary file); a bad file is a one-line error."""
    import soundfile

    try:
        where = path if hasattr(path, "read") else str(path)
        audio, rate = soundfile.read(where, dtype="float32", always_2d=True)
    except (RuntimeError, OSError, soundfile.LibsndfileError) as exc:
        raise DataError(f"{path}: not readable audio ({' '.join(str(exc).split())[:80]})") from exc
    return audio.mean(1), rate


def load_fsdd(data_dir: str | None) -> Clips:
    """All 3,000 FSDD recordings in one tensor, with digit, speaker and recording number."""
    recordings = fsdd_dir(data_dir)
    names = sorted(p.name for p in recordings.iterdir() if NAME.match(p.name))
    meta = [NAME.match(n).groups() for n in names]
    speakers = sorted({s for _, s, _ in meta})
    waves = [read_audio(recordings / n)[0] for n in names]
    lengths = torch.tensor([len(w) for w in waves])
    starts = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)[:-1]])
    return Clips(
        torch.from_numpy(np.concatenate(waves)),
        starts,
        lengths,
        torch.tensor([int(d) for d, _, _ in meta]),
        torch.tensor([speakers.index(s) for _, s, _ in meta]),
        torch.tensor([int(i) for _, _, i in meta]),
        speakers,
        [WORDS[int(d)] for d, _, _ in meta],
    )


def synthetic_clips(seed: int = 0) -> Clips:
    """Tiny tone 'digits' for smoke tests: digit d is a 0.2 s tone at 300 + 150 d Hz."""
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(1600) / SAMPLE_RATE
    waves, digits, speakers, index = [], [], [], []
    for spk in range(2):
        for d in range(10):
            for i in range(12):
                tone = torch.sin(2 * torch.pi * (300 + 150 * d) * t) * 0.5
                waves.append(tone + 0.01 * torch.randn(len(t), generator=gen))
                digits.append(d), speakers.append(spk), index.append(i)
    lengths = torch.full((len(waves),), len(t))
    starts = torch.arange(len(waves)) * len(t)
    return Clips(
        torch.cat(waves),
        starts,
        lengths,
        torch.tensor(digits),
        torch.tensor(speakers),
        torch.tensor(index),
        ["a", "b"],
        [WORDS[d] for d in digits],
    )


def to_8k(audio: np.ndarray, rate: int) -> torch.Tensor:
    """Mono samples at any rate -> float32 at 8 kHz."""
    import torchaudio.functional as AF

    wave = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))
    return wave if rate == SAMPLE_RATE else AF.resample(wave, rate, SAMPLE_RATE)


def check_split(cfg) -> None:
    """Refuse, with one line, the data flags of a `SpeechConfig` that do not go together."""
    if cfg.leave_out and cfg.holdout_speaker in (None, cfg.leave_out):
        raise UsageError("--leave-out needs --holdout-speaker naming another speaker")
    if cfg.hf_dataset and (cfg.librispeech or cfg.holdout_speaker or cfg.leave_out):
        raise UsageError("--hf-dataset brings its own split: no --librispeech or speakers")
    if (cfg.librispeech or cfg.hf_dataset) and cfg.gain_spread != GAIN_SPREAD:
        raise UsageError("--gain-spread composes FSDD utterances: not with your own recordings")
    if cfg.adapt_val_takes and not cfg.adapt_takes:
        raise UsageError("--adapt-val-takes goes with --adapt-takes")
    if cfg.adapt_takes and (not cfg.holdout_speaker or cfg.leave_out or cfg.librispeech):
        raise UsageError("--adapt-takes needs --holdout-speaker (no --leave-out/--librispeech)")
    within(cfg, "[0, 50)", "adapt_takes")  # FSDD has 50 takes of each digit
    within(cfg, f"[0, {50 - cfg.adapt_takes})", "adapt_val_takes")  # some takes test
    if cfg.adapt_val_takes and not cfg.val_utterances:
        raise UsageError("--adapt-val-takes needs --val-utterances > 0 (else they would train)")
    validates = cfg.val_utterances > 0 and (cfg.adapt_val_takes > 0 or not cfg.adapt_takes)
    if not cfg.test_utterances and not validates:  # adaptation validates on its own takes alone
        raise UsageError("--test-utterances 0 (a tuning run) needs validation to report")
    within(cfg, "[0, 5]", "gain_spread")  # e^5: words up to 43 dB louder or quieter
