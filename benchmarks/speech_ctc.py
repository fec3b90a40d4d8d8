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
from torch import nn

from core.data import data_root
from core.device import pick_device
from core.parse import build
from core.seed import seed_everything
from core.shift import shift_rows
from speech.ctc.data import SAMPLE_RATE, load_fsdd
from speech.ctc.decode import LexiconDecoder
from speech.ctc.features import Features
from speech.ctc.predict import load_trained, recognize_wave
from speech.ctc.train import SpeechConfig, SpeechEvalConfig, evaluate, main
from speech.ctc.utterances import make_split

SPEAKERS = ["george", "jackson", "lucas", "nicolas", "theo", "yweweler"]


def out_dir(args, name: str) -> str:
    if args.keep_runs:
        return str(Path(args.keep_runs) / name)
    return tempfile.mkdtemp()


def train(args, name: str, **overrides) -> dict:
    quick = {"max_steps": 20, "train_utterances": 500, "test_utterances": 50, "val_utterances": 20}
    fields = {"log_every": 250, **(quick if args.quick else {}), **overrides}
    cfg = build(
        SpeechConfig,
        out_dir=out_dir(args, name),
        data_dir=args.data_dir,
        device=args.device,
        **fields,
    )
    return main(cfg)


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


class DigitCNN(nn.Module):
    """The peer for single clips: temporal convolutions over the log-mel bands (as keyword
    spotters such as TC-ResNet use them), three conv-BN-ReLU blocks, global average pooling over
    time, one linear layer over the ten digits."""

    def __init__(self, n_mels: int = 40, width: int = 128, dropout: float = 0.3) -> None:
        super().__init__()

        def block(c_in: int, c_out: int, k: int) -> list[nn.Module]:
            return [nn.Conv1d(c_in, c_out, k, padding=k // 2), nn.BatchNorm1d(c_out), nn.ReLU()]

        self.body = nn.Sequential(
            *block(n_mels, width // 2, 5),
            nn.MaxPool1d(2),
            *block(width // 2, width, 5),
            nn.MaxPool1d(2),
            *block(width, width, 3),
        )
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(width, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x).mean(-1))  # (B, F, T) -> (B, C, T') -> (B, 10) logits


def clip_windows(clips, ids: torch.Tensor, features: Features, seconds: float) -> torch.Tensor:
    """(N, F, T) log-mel windows of `seconds`: each recording from its start, zero-padded (the
    few longer ones cut around their middle)."""
    width = int(seconds * SAMPLE_RATE)
    waves, samples = torch.zeros(len(ids), width), torch.zeros(len(ids), dtype=torch.long)
    for row, k in enumerate(ids.tolist()):
        start, n = int(clips.starts[k]), int(clips.lengths[k])
        skip = max(0, (n - width) // 2)
        piece = clips.audio[start + skip : start + min(n, skip + width)]
        waves[row, : len(piece)], samples[row] = piece, len(piece)
    return torch.cat(
        [features(w, s)[0] for w, s in zip(waves.split(256), samples.split(256), strict=True)]
    )


def shifted(x: torch.Tensor, most: int = 20) -> torch.Tensor:
    """Each (F, T) window moved later by its own 0 to `most` frames (the zero padding at its end
    wraps round to its start)."""
    t = x.shape[-1]
    shift = torch.randint(0, most + 1, (len(x), 1), device=x.device)  # (B, 1)
    index = (torch.arange(t, device=x.device)[None, :] - shift) % t  # (B, T)
    return x.gather(2, index[:, None, :].expand_as(x))


def cnn_peer(
    cfg: SpeechConfig,
    epochs: int = 25,
    seconds: float = 1.0,
    batch_size: int = 64,
    lr: float = 3e-3,
) -> dict:
    """Train DigitCNN on the split's training recordings (each alone, shifted in time at random),
    keep the epoch with the best validation accuracy, score the single test recordings."""
    device = pick_device(cfg.device)
    seed_everything(cfg.seed)
    split = make_split(cfg)
    clips = split.clips
    test_ids, val_ids = split.test_clips.clips[:, 0], split.val_clips.clips[:, 0]
    train_ids = torch.tensor(
        sorted(set(range(len(clips.lengths))) - set(test_ids.tolist()) - set(val_ids.tolist()))
    )
    features = Features(cfg.n_mels)
    with torch.no_grad():
        x = {
            k: clip_windows(clips, ids, features, seconds).to(device)
            for k, ids in (("train", train_ids), ("val", val_ids), ("test", test_ids))
        }
    y = {
        k: clips.digits[ids].to(device)
        for k, ids in (("train", train_ids), ("val", val_ids), ("test", test_ids))
    }
    model = DigitCNN(cfg.n_mels).to(device)
    steps = epochs * -(-len(train_ids) // batch_size)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-2)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps)

    @torch.no_grad()
    def accuracy(name: str) -> float:
        model.eval()
        pred = torch.cat([model(b).argmax(-1) for b in x[name].split(256)])
        return (pred == y[name]).float().mean().item()

    t0, best, best_state, best_epoch = time.perf_counter(), -1.0, None, 0
    for epoch in range(epochs):
        model.train()
        for rows in torch.randperm(len(train_ids), device=device).split(batch_size):
            loss = nn.functional.cross_entropy(model(shifted(x["train"][rows])), y["train"][rows])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        acc = accuracy("val")
        if acc > best:
            best, best_epoch = acc, epoch + 1
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
    train_seconds = time.perf_counter() - t0
    model.load_state_dict(best_state)
    return {
        "clip_acc": accuracy("test"),
        "val_acc": best,
        "epoch": best_epoch,
        "epochs": epochs,
        "train_seconds": train_seconds,
        "train_clips": len(train_ids),
        "test_clips": len(test_ids),
    }


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
