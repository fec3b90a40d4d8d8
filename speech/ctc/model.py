"""A CTC acoustic model: conv subsampling, a bidirectional GRU, per-frame character log-probs.

emissions, lengths = model(features, frames)    # (B, F, T) log-mel -> (B, T / stride, V)
loss = ctc_loss(emissions, lengths, targets, target_lengths)
"""

import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

# On CPU, oneDNN compiles and caches a kernel for every input shape it meets (up to 1,024 of
# them), and every batch of utterances has new lengths: the cache alone held about 2 GB after
# a hundred training steps. 64 keeps memory flat at the same speed; read at the first kernel,
# so setting it here is in time. A value in the environment wins.
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "64")


@dataclass
class CTCConfig:
    n_mels: int = 40
    channels: int = 32
    """Channels of the two subsampling convolutions."""
    hidden: int = 128
    """GRU width per direction."""
    layers: int = 2
    dropout: float = 0.1
    vocab_size: int = 29
    stride: int = 2
    """Input frames (10 ms) per output frame: 2, or 4 (half the GRU's work)."""


class CTCModel(nn.Module):
    """Conv2d x2 (frequency halved, time / stride) -> BiGRU -> linear: log-probs over the vocabulary.
    Batch norm in the convolutions and layer norm before the GRU shorten CTC's early plateau
    (all-blank output) several times over."""

    def __init__(self, cfg: CTCConfig) -> None:
        super().__init__()
        if cfg.stride not in (2, 4):
            raise ValueError(
                f"stride must be 2 or 4 (one or two stride-2 convolutions), got {cfg.stride}"
            )
        c, self.stride = cfg.channels, cfg.stride  # input frames per output frame
        self.conv = nn.Sequential(
            nn.Conv2d(1, c, 3, stride=2, padding=1),
            nn.BatchNorm2d(c),
            nn.GELU(),
            nn.Conv2d(c, c, 3, stride=(1, cfg.stride // 2), padding=1),
            nn.BatchNorm2d(c),
            nn.GELU(),
        )
        self.proj = nn.Linear(c * ((cfg.n_mels + 1) // 2), cfg.hidden)
        self.norm = nn.LayerNorm(cfg.hidden)
        self.rnn = nn.GRU(
            cfg.hidden,
            cfg.hidden,
            cfg.layers,
            batch_first=True,
            bidirectional=True,
            dropout=cfg.dropout if cfg.layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(2 * cfg.hidden, cfg.vocab_size)

    def output_lengths(self, frames: torch.Tensor) -> torch.Tensor:
        for _ in range(self.stride // 2):  # each stride-2 convolution: ceil(t / 2)
            frames = (frames - 1) // 2 + 1
        return frames

    def forward(self, x: torch.Tensor, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.conv(x.unsqueeze(1))  # (B, 1, F, T) -> (B, C, F/2, T/s), s = stride
        x = x.flatten(1, 2).transpose(1, 2)  # (B, T/s, C * F/2)
        x = self.dropout(self.norm(self.proj(x)))  # (B, T/s, H)
        lengths = self.output_lengths(frames).clamp(max=x.shape[1])
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        x, _ = pad_packed_sequence(self.rnn(packed)[0], batch_first=True, total_length=x.shape[1])
        return self.head(self.dropout(x)).log_softmax(-1), lengths  # (B, T/s, V), (B,)


class Wav2LetterPeer(nn.Module):
    """torchaudio's Wav2Letter (the model of torchaudio's own CTC example) on the same log-mel
    features; its convolutions keep the frame count except a stride of 2 in the first."""

    stride = 2

    def __init__(self, cfg: CTCConfig) -> None:
        super().__init__()
        from torchaudio.models import Wav2Letter

        self.net = Wav2Letter(
            num_classes=cfg.vocab_size, input_type="mfcc", num_features=cfg.n_mels
        )

    def output_lengths(self, frames: torch.Tensor) -> torch.Tensor:
        return (frames - 1) // self.stride + 1

    def forward(self, x: torch.Tensor, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.net(x).transpose(1, 2)  # (B, F, T) -> (B, T', V) log-probs
        return x, self.output_lengths(frames).clamp(max=x.shape[1])


def build_model(name: str, cfg: CTCConfig) -> nn.Module:
    return Wav2LetterPeer(cfg) if name == "wav2letter" else CTCModel(cfg)


def ctc_loss(emissions, lengths, targets, target_lengths) -> torch.Tensor:
    """CTC loss averaged over the batch (each utterance's loss divided by its target length)."""
    return F.ctc_loss(
        emissions.transpose(0, 1).float(),
        targets,
        lengths,
        target_lengths,
        blank=0,
        zero_infinity=True,
    )
