"""The speech-ctc benchmark's second peer, what a user would pick for single spoken digits: a small
log-mel CNN classifier (published FSDD results on the official split: about 98%), trained on the
same training recordings, selected on the same validation takes and scored on the same single test
recordings as our clip accuracy."""

import time

import torch
from torch import nn

from core.device import pick_device
from core.seed import seed_everything
from speech.ctc.data import SAMPLE_RATE
from speech.ctc.features import Features
from speech.ctc.train import SpeechConfig
from speech.ctc.utterances import make_split


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
