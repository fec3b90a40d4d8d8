"""speech-ctc: our conv + BiGRU CTC model on composed FSDD utterances (official split): training
seconds, composed-test WER/CER (lexicon beam search), single-clip accuracy; the six
leave-one-speaker-out runs; and the peer, torchaudio's Wav2Letter (the model of torchaudio's CTC
example), on the same features, data and wall-clock budget, decoded the same way. Also the time
to transcribe a 10-second file, model load excluded."""

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile
import torch

from core.config import build
from core.data import data_root
from speech.ctc.data import SAMPLE_RATE, load_fsdd
from speech.ctc.decode import LexiconDecoder
from speech.ctc.predict import load_trained, recognize_wave
from speech.ctc.train import SpeechConfig, main

SPEAKERS = ["george", "jackson", "lucas", "nicolas", "theo", "yweweler"]


def out_dir(args, name: str) -> str:
    if args.keep_runs:
        return str(Path(args.keep_runs) / name)
    return tempfile.mkdtemp()


def train(args, name: str, **overrides) -> dict:
    quick = {"max_steps": 20, "train_utterances": 500, "test_utterances": 50, "val_utterances": 20}
    fields = {"log_every": 250, **(quick if args.quick else {}), **overrides}
    cfg = build(SpeechConfig, out_dir=out_dir(args, name), data_dir=args.data_dir,
                device=args.device, **fields)  # fmt: skip
    return main(cfg)


def peer_steps(args, budget: float) -> int:
    """Wav2Letter's step count for `budget` seconds, from its pace over a 30-step probe. The probe's
    pace includes its start-up, so it is scaled by 1.15 (the 2026-11-30 row's peer, without it, used
    258 of its 307 s); --max-seconds stops the peer at the budget in any case."""
    probe = train(args, "wav2letter-probe", model="wav2letter", max_steps=30, warmup_steps=0,
                  val_utterances=0, test_utterances=10)  # fmt: skip
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


def run(args) -> dict:
    ours = train(args, "default")
    budget = ours["wall_seconds"]
    steps = peer_steps(args, budget)
    peer = train(args, "wav2letter", model="wav2letter", max_steps=steps, max_seconds=budget)
    loso = {}
    for speaker in SPEAKERS[: 1 if args.quick else None]:
        loso[speaker] = round(
            train(args, f"loso-{speaker}", holdout_speaker=speaker)["metrics"]["test_wer"], 4
        )
    m, p = ours["metrics"], peer["metrics"]
    return {
        "device": ours["device"],
        "train_seconds": round(budget, 1),
        "steps": ours["steps"],
        "test_wer": round(m["test_wer"], 4),
        "test_cer": round(m["test_cer"], 4),
        "test_wer_greedy": round(m["test_wer_greedy"], 4),
        "clip_acc": round(m["clip_acc"], 4),
        "loso_wer_mean": round(statistics.mean(loso.values()), 4),
        "loso_wer": loso,
        "wav2letter_test_wer": round(p["test_wer"], 4),
        "wav2letter_clip_acc": round(p["clip_acc"], 4),
        "wav2letter_steps": peer["steps"],
        "wav2letter_train_seconds": round(peer["wall_seconds"], 1),
        "transcribe_10s_seconds": round(transcribe_seconds(
            ours["config"]["out_dir"], torch.device(ours["device"]), str(data_root(args.data_dir))), 3),
    }  # fmt: skip
