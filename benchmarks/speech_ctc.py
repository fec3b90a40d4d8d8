"""speech-ctc: our conv + BiGRU CTC model on composed FSDD utterances (official split): training
seconds, composed-test WER/CER (lexicon beam search), single-clip accuracy, and the shift suite
(`eval --shift`: single test recordings under noise, clipping, speed, pitch and reverberation) of
the default (robust) model and of the same config with `--no-robust`; the six
leave-one-speaker-out runs. Two peers: torchaudio's Wav2Letter (the model of torchaudio's CTC
example), on the same features, data and wall-clock budget, decoded the same way; and what a user
would pick for single digits, a small log-mel CNN classifier (published FSDD results on the
official split: about 98%), trained on the same training recordings, selected on the same
validation takes and scored on the same single test recordings as our clip accuracy. Also the
time to transcribe a 10-second file, model load excluded."""

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile
import torch

from benchmarks.runs import train_ours
from benchmarks.speech_cnn import cnn_peer
from core.data import data_root
from core.parse import build
from core.shift import shift_rows
from speech.ctc.data import SAMPLE_RATE, load_fsdd
from speech.ctc.decode import LexiconDecoder
from speech.ctc.predict import load_trained, recognize_wave
from speech.ctc.train import SpeechConfig, SpeechEvalConfig, evaluate, main

SPEAKERS = ["george", "jackson", "lucas", "nicolas", "theo", "yweweler"]


def train(args, name: str, **overrides) -> dict:
    quick = {"max_steps": 20, "train_utterances": 500, "test_utterances": 50, "val_utterances": 20}
    fields = {"log_every": 250, **(quick if args.quick else {}), **overrides}
    return train_ours(args, main, name, **fields)


def peer_steps(args, budget: float) -> int:
    """Wav2Letter's step count for `budget` seconds, from its pace over a 30-step probe. The probe's
    pace includes its start-up, so it is scaled by 1.15 (the 2026-11-30 row's peer, without it, used
    258 of its 307 s); --max-seconds stops the peer at the budget in any case."""
    probe = train(
        args,
        "wav2letter-probe",
        model="wav2letter",
        max_steps=30,
        warmup_steps=0,
        val_utterances=0,
        test_utterances=10,
    )
    return max(1, int(1.15 * budget / (probe["wall_seconds"] / probe["steps"])))


def transcribe_seconds(run_dir: str, device: torch.device, data_dir) -> float:
    """Seconds to transcribe a 10-second file of test digits (median of 5, model loaded once)."""
    clips = load_fsdd(data_dir)
    pieces, rng = [], np.random.default_rng(0)
    while sum(len(p) for p in pieces) < 10 * SAMPLE_RATE:
        k = int(rng.choice((clips.index < 5).nonzero().flatten().numpy()))
        start, n = int(clips.starts[k]), int(clips.lengths[k])
        pieces += [clips.audio[start : start + n].numpy(), np.zeros(1600, dtype=np.float32)]
    path = Path(tempfile.mkdtemp()) / "ten_seconds.wav"
    soundfile.write(path, np.concatenate(pieces)[: 10 * SAMPLE_RATE], SAMPLE_RATE)
    run = load_trained(run_dir, device)
    decoder = LexiconDecoder(run.lexicon(), run.config["beam"])
    wave = torch.from_numpy(soundfile.read(path, dtype="float32")[0])
    times = []
    for _ in range(6):
        t0 = time.perf_counter()
        recognize_wave(run.model, run.features, wave, decoder, 20.0, device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times[1:])


def shift_table(args, report: dict) -> dict:
    """The shift suite's clip accuracies of a finished run on the single test recordings: clean,
    and per condition mild to strong."""
    out = report["config"]["out_dir"]
    cfg = build(
        SpeechEvalConfig, out_dir=out, data_dir=args.data_dir, device=args.device, shift=True
    )
    return shift_rows(evaluate(cfg)["metrics"]["shift"])


def loso_wers(args) -> dict:
    """Leave one speaker out: for each speaker, train without any of their takes (validation from
    the other speakers) and score composed utterances of that speaker alone."""
    wers = {}
    for speaker in SPEAKERS[: 1 if args.quick else None]:
        report = train(args, f"loso-{speaker}", holdout_speaker=speaker)
        wers[speaker] = round(report["metrics"]["test_wer"], 4)
    return wers


def run(args) -> dict:
    ours = train(args, "default")
    plain = train(args, "plain", robust=False)
    budget = ours["wall_seconds"]
    steps = peer_steps(args, budget)
    peer = train(args, "wav2letter", model="wav2letter", max_steps=steps, max_seconds=budget)
    loso = loso_wers(args) if args.loso else {}
    cnn = cnn_peer(
        build(SpeechConfig, data_dir=args.data_dir, device=args.device),
        epochs=1 if args.quick else 25,
    )
    m, p = ours["metrics"], peer["metrics"]
    row = {
        "device": ours["device"],
        "train_seconds": round(budget, 1),
        "steps": ours["steps"],
        "test_wer": round(m["test_wer"], 4),
        "test_cer": round(m["test_cer"], 4),
        "test_wer_greedy": round(m["test_wer_greedy"], 4),
        "clip_acc": round(m["clip_acc"], 4),
        "plain_test_wer": round(plain["metrics"]["test_wer"], 4),
        "plain_clip_acc": round(plain["metrics"]["clip_acc"], 4),
        "plain_train_seconds": round(plain["wall_seconds"], 1),
        "wav2letter_test_wer": round(p["test_wer"], 4),
        "wav2letter_clip_acc": round(p["clip_acc"], 4),
        "wav2letter_steps": peer["steps"],
        "wav2letter_train_seconds": round(peer["wall_seconds"], 1),
        "cnn_clip_acc": round(cnn["clip_acc"], 4),
        "cnn_val_acc": round(cnn["val_acc"], 4),
        "cnn_epochs": f"{cnn['epoch']} of {cnn['epochs']}",
        "cnn_train_seconds": round(cnn["train_seconds"], 1),
        "transcribe_10s_seconds": round(
            transcribe_seconds(
                ours["config"]["out_dir"],
                torch.device(ours["device"]),
                str(data_root(args.data_dir)),
            ),
            3,
        ),
    }
    row["shift_default"] = shift_table(args, ours)
    row["shift_plain"] = shift_table(args, plain)
    if loso:
        row |= {"loso_wer_mean": round(statistics.mean(loso.values()), 4), "loso_wer": loso}
    return row
