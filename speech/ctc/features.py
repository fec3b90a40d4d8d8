"""What the model hears: log-mel features, and the augmentations of training (SpecAugment masks
and a spectrum-and-tempo warp), applied on the training device."""

import torch

from speech.ctc.data import SAMPLE_RATE


class Features(torch.nn.Module):
    """Log-mel spectrogram (25 ms windows every 10 ms), normalised per utterance by the mean and
    variance of its speech frames (those within 30 dB of its loudest): that removes level and
    channel differences, and a clip is normalised alike alone or inside a longer utterance."""

    def __init__(self, n_mels: int = 40, sample_rate: int = SAMPLE_RATE) -> None:
        super().__init__()
        import torchaudio.transforms as T

        self.hop = sample_rate // 100
        self.mel = T.MelSpectrogram(
            sample_rate, n_fft=256, win_length=sample_rate // 40, hop_length=self.hop, n_mels=n_mels
        )

    def frames(self, samples: torch.Tensor) -> torch.Tensor:
        return samples // self.hop + 1

    def forward(
        self, waves: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x = (self.mel(waves) + 1e-6).log()  # (B, F, T)
        frames = self.frames(lengths)  # (B,)
        valid = torch.arange(x.shape[-1], device=x.device)[None, :] < frames[:, None]  # (B, T)
        energy = x.mean(1).masked_fill(~valid, -float("inf"))  # (B, T) mean log-mel per frame
        speech = energy > energy.amax(1, keepdim=True) - 6.9  # within 30 dB (ln 1000)
        mask = speech[:, None, :].float()
        count = mask.sum(-1, keepdim=True).clamp(min=1)
        mean = (x * mask).sum(-1, keepdim=True) / count
        var = ((x - mean).pow(2) * mask).sum(-1, keepdim=True) / count
        return ((x - mean) * (var + 1e-5).rsqrt()) * valid[:, None, :], frames  # (B, F, T), (B,)


def spec_augment(x: torch.Tensor) -> torch.Tensor:
    """Two frequency masks (up to 8 bands) and two time masks (up to 10 frames) per utterance."""
    import torchaudio.transforms as T

    x = x.unsqueeze(1)  # (B, 1, F, T): iid masks per utterance
    for mask in (T.FrequencyMasking(8, iid_masks=True), T.TimeMasking(10, iid_masks=True)) * 2:
        x = mask(x)
    return x.squeeze(1)


def warp(x: torch.Tensor, frames: torch.Tensor, spread: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Stretch each utterance's spectrum and tempo by its own random factors in [1 - spread,
    1 + spread] (a vocal-tract-length and speed perturbation in feature space), one grid_sample."""
    import torch.nn.functional as F

    b, f, t = x.shape
    out_t = int(t * (1 + spread)) + 1
    scale = 1 + (torch.rand(b, 2, device=x.device) * 2 - 1) * spread  # (B, [freq, time])
    fy = torch.arange(f, device=x.device)[None, :] / scale[:, :1]  # (B, F) input band per band
    tx = torch.arange(out_t, device=x.device)[None, :] / scale[:, 1:]  # (B, T') input frame
    grid = torch.stack(
        [  # (B, F, T', 2): x = time, y = frequency, in [-1, 1] (align_corners)
            (2 * tx / max(t - 1, 1) - 1)[:, None, :].expand(b, f, out_t),
            (2 * fy / max(f - 1, 1) - 1)[:, :, None].expand(b, f, out_t),
        ],
        dim=-1,
    )
    x = F.grid_sample(x[:, None], grid, align_corners=True, padding_mode="zeros")[:, 0]
    frames = (frames * scale[:, 1]).long().clamp(1, out_t)
    mask = torch.arange(out_t, device=x.device)[None, :] < frames[:, None]
    return x * mask[:, None, :], frames
