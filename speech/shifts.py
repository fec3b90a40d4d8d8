"""Audio shifts, for the shift suite of `eval --shift` and for robust training: noise at a
signal-to-noise ratio (white, colored, babble of other utterances), clipping, speed, pitch and
room reverberation.

Each works on a batch of zero-padded waveforms (B, T) with their lengths (B,), on any device, and
returns the same; samples past a length stay zero. A severity is a number (SNR in dB, a factor, a
reverberation time); `generator` makes the random parts repeatable.

    waves, samples = noise(waves, samples, snr=10.0, kind="babble", generator=gen)
    waves, samples = augment(waves, samples)        # training: a random mix of them (no pitch)
"""

import math

import torch
import torch.nn.functional as F

from speech.ctc.data import SAMPLE_RATE


def valid_mask(waves: torch.Tensor, samples: torch.Tensor) -> torch.Tensor:
    """(B, T) True on each waveform's own samples."""
    return torch.arange(waves.shape[1], device=waves.device)[None, :] < samples[:, None]


def power(waves: torch.Tensor, samples: torch.Tensor) -> torch.Tensor:
    """(B,) mean power of each waveform over its own samples."""
    return (waves * valid_mask(waves, samples)).pow(2).sum(1) / samples.clamp(min=1)


def rand(shape, generator=None, device=None) -> torch.Tensor:
    """Uniform [0, 1) drawn on the host from `generator` (repeatable on any device)."""
    return torch.rand(shape, generator=generator).to(device)


def randn(shape, generator=None, device=None) -> torch.Tensor:
    """Standard normal drawn on the host from `generator`."""
    return torch.randn(shape, generator=generator).to(device)


def colored(shape, slope: torch.Tensor, generator=None, device=None) -> torch.Tensor:
    """(B, T) noise whose power falls as 1 / f^slope (0: white, 1: pink, 2: brown), one slope a
    row, at unit power."""
    b, t = shape
    spectrum = torch.fft.rfft(randn((b, t), generator, device), dim=1)  # (B, T // 2 + 1)
    f = torch.arange(spectrum.shape[1], device=device).clamp(min=1).float()  # no infinite DC
    spectrum = spectrum * f[None, :].pow(-slope[:, None] / 2)
    out = torch.fft.irfft(spectrum, n=t, dim=1)
    return out / out.pow(2).mean(1, keepdim=True).clamp(min=1e-12).sqrt()


def others(waves: torch.Tensor, samples: torch.Tensor, generator=None) -> torch.Tensor:
    """(B, T) for each row another row's waveform (a random offset of the batch), repeated to
    cover the whole width, at unit power: one talker of babble."""
    b, t = waves.shape
    offset = 1 + int(rand((), generator) * (b - 1)) if b > 1 else 0
    source = torch.roll(torch.arange(b, device=waves.device), offset)  # (B,) whose voice
    n = samples[source].clamp(min=1)  # (B,)
    start = (rand(b, generator, waves.device) * n).long()  # begin anywhere in that utterance
    index = (torch.arange(t, device=waves.device)[None, :] + start[:, None]) % n[:, None]
    out = waves[source].gather(1, index)  # (B, T)
    return out / power(waves, samples)[source].clamp(min=1e-12).sqrt()[:, None]


def noise(waves, samples, snr, kind: str = "white", generator=None, talkers: int = 3):
    """Add noise at `snr` dB (a number, or one a row) below each waveform's own power. kind:
    white, pink, or babble (the sum of `talkers` other utterances of the batch)."""
    b, t = waves.shape
    if kind not in ("white", "pink", "babble"):
        raise ValueError(f"unknown noise kind {kind!r}: white, pink or babble")
    if kind == "babble" and b < 2:
        raise ValueError("babble needs at least two recordings: each hears the others")
    if kind == "babble":
        sound = sum(others(waves, samples, generator) for _ in range(talkers))
    else:
        slope = torch.full((b,), 1.0 if kind == "pink" else 0.0, device=waves.device)
        sound = colored((b, t), slope, generator, waves.device)
    return mix(waves, samples, sound, snr), samples


def mix(waves, samples, sound, snr) -> torch.Tensor:
    """`waves` plus `sound` scaled to `snr` dB (a number or (B,)) below each waveform's power."""
    snr = torch.as_tensor(snr, dtype=waves.dtype, device=waves.device).expand(len(waves))
    mask = valid_mask(waves, samples)
    scale = power(waves, samples) / power(sound, samples).clamp(min=1e-12) / 10 ** (snr / 10)
    return (waves + sound * scale.sqrt()[:, None]) * mask


def clipping(waves, samples, drive, generator=None):
    """Each waveform scaled to a peak of `drive` (a number or (B,)) and clipped to [-1, 1]: a
    recording made too loud."""
    drive = torch.as_tensor(drive, dtype=waves.dtype, device=waves.device).expand(len(waves))
    peak = waves.abs().amax(1).clamp(min=1e-6)
    return (waves * (drive / peak)[:, None]).clamp(-1, 1), samples


def resample_rows(waves, samples, factor):
    """Each waveform played `factor` times faster (a number or (B,)), tempo and pitch together
    (like Kaldi's speed perturbation, by linear interpolation, without its anti-alias filter);
    lengths follow."""
    factor = torch.as_tensor(factor, dtype=torch.float32, device=waves.device).expand(len(waves))
    new = (samples / factor).floor().long().clamp(min=1)  # (B,)
    width = int(new.max())
    pos = torch.arange(width, device=waves.device)[None, :] * factor[:, None]  # (B, T') source
    left = pos.floor().long()
    frac = pos - left
    last = (samples - 1).clamp(min=0)[:, None]
    a = waves.gather(1, left.clamp(max=waves.shape[1] - 1).minimum(last))
    b = waves.gather(1, (left + 1).clamp(max=waves.shape[1] - 1).minimum(last))
    out = a + (b - a) * frac
    return out * valid_mask(out, new), new


def speed(waves, samples, change: float, generator=None):
    """Each waveform sped up or slowed down (a coin each) by `change` (0.2: 1.2x or 1 / 1.2x)."""
    up = rand(len(waves), generator, waves.device) < 0.5
    factor = torch.where(up, 1 + change, 1 / (1 + change))
    return resample_rows(waves, samples, factor)


def pitch(waves, samples, semitones: float, generator=None):
    """Each waveform's pitch moved up or down (a coin each) by `semitones`, tempo kept
    (torchaudio's phase-vocoder pitch shift)."""
    import torchaudio.functional as AF

    up = rand(len(waves), generator, waves.device) < 0.5
    out = waves.clone()
    for rows, steps in ((up, semitones), (~up, -semitones)):
        if rows.any():
            shifted = AF.pitch_shift(waves[rows], SAMPLE_RATE, steps)
            out[rows] = shifted[:, : waves.shape[1]]
    return out * valid_mask(out, samples), samples


def room(rt60: torch.Tensor, generator=None, device=None) -> torch.Tensor:
    """(B, L) impulse responses of simple rooms: the direct sound, then a tail of noise decaying
    by 60 dB over `rt60` seconds (one per row)."""
    length = max(2, int(float(rt60.max()) * SAMPLE_RATE))
    t = torch.arange(length, device=device)[None, :] / SAMPLE_RATE  # (1, L) seconds
    decay = torch.exp(-math.log(1000) * t / rt60[:, None])  # (B, L) 60 dB in amplitude at rt60
    tail = randn((len(rt60), length), generator, device) * decay * 0.3
    tail[:, : SAMPLE_RATE // 1000] = 0  # the first reflection arrives after a millisecond
    tail[:, 0] = 1.0  # the direct sound
    return tail


def reverb(waves, samples, rt60, generator=None):
    """Each waveform as heard in a room with reverberation time `rt60` seconds (a number or
    (B,)), at its own power, cut to its own length."""
    rt60 = torch.as_tensor(rt60, dtype=waves.dtype, device=waves.device).expand(len(waves))
    impulse = room(rt60, generator, waves.device)
    n = waves.shape[1] + impulse.shape[1] - 1
    size = 1 << (n - 1).bit_length()
    wet = torch.fft.irfft(torch.fft.rfft(waves, size) * torch.fft.rfft(impulse, size), size)
    wet = wet[:, : waves.shape[1]] * valid_mask(waves, samples)
    gain = (power(waves, samples) / power(wet, samples).clamp(min=1e-12)).sqrt()
    return wet * gain[:, None], samples


def augment(waves: torch.Tensor, samples: torch.Tensor, p: float = 0.5, generator=None):
    """Robust training's random mix, each part on its own share of the batch: speed 0.85-1.15x
    (`p`), a room of 0.1-0.6 s (`p` / 2), clipping at a peak drive of 1-8 (`p` / 5), then noise
    (`p`): white, pink, brown or babble of 1-3 talkers, at 0-30 dB SNR, over the whole utterance
    or (half the time) only where it is not digitally silent."""
    b, device = len(waves), waves.device

    def pick(share: float) -> torch.Tensor:
        return rand(b, generator, device) < share

    rows = pick(p)
    if rows.any():
        factor = 0.85 + 0.3 * rand(b, generator, device)
        fast, new = resample_rows(waves, samples, torch.where(rows, factor, 1.0))
        width = max(waves.shape[1], fast.shape[1])
        waves, samples = F.pad(fast, (0, width - fast.shape[1])), new
    rows = pick(p / 2)
    if rows.any():
        wet, _ = reverb(waves[rows], samples[rows], 0.1 + 0.5 * rand(int(rows.sum()), generator))
        waves = waves.index_put((rows,), wet)
    rows = pick(p / 5)
    if rows.any():
        drive = 1 + 7 * rand(int(rows.sum()), generator)
        loud, _ = clipping(waves[rows], samples[rows], drive.to(device))
        waves = waves.index_put((rows,), loud)
    rows = pick(p)
    if rows.any():
        k = int(rows.sum())
        snr = 30 * rand(k, generator, device)
        sound = colored((k, waves.shape[1]), 2 * rand(k, generator, device), generator, device)
        talkers = 1 + int(rand((), generator) * 3)  # for the batch's babble
        babble = sum(others(waves, samples, generator) for _ in range(talkers))[rows]
        sound = torch.where(rand(k, generator, device)[:, None] < 1 / 3, babble, sound)
        # half of them noisy only where there is sound: a noisy recording between digital
        # silences, as recognition pads every input (and as composed words sit)
        words_only = (rand(k, generator, device) < 0.5)[:, None] & (waves[rows] == 0)
        sound = sound.masked_fill(words_only, 0.0)
        waves = waves.index_put((rows,), mix(waves[rows], samples[rows], sound, snr))
    return waves, samples
