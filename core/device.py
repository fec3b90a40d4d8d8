"""Pick the device once, from one string: auto | cpu | cuda | cuda:N | mps."""

import re

import torch

from core.errors import ShowcaseError, UsageError

_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def pick_device(name: str = "auto") -> torch.device:
    """Return the requested device; `auto` prefers CUDA, then MPS, then CPU."""
    if not _PATTERN.match(name):
        raise UsageError(f"unknown device {name!r}: use auto, cpu, cuda, cuda:N or mps")
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ShowcaseError(
                f"device {name!r} is not available: this machine has no CUDA device"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ShowcaseError(
                f"device {name!r} is not available: only {torch.cuda.device_count()} CUDA device(s)"
            )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ShowcaseError(f"device {name!r} is not available: MPS is not supported here")
    return device


def amp_dtype(device: torch.device, requested: str) -> torch.dtype:
    """The autocast dtype for `--amp`: bf16 where the device supports it, fp16 only on CUDA."""
    if requested == "fp16":
        if device.type != "cuda":
            raise ShowcaseError(f"--amp-dtype fp16 needs a CUDA device, not {device.type}")
        return torch.float16
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ShowcaseError("this CUDA device has no bf16 support: pass --amp-dtype fp16")
    return torch.bfloat16
