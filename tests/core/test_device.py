import pytest
import torch

from core.device import amp_dtype, pick_device
from core.errors import ShowcaseError, UsageError


def test_auto_and_cpu():
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device("auto").type in ("cpu", "cuda", "mps")


def test_unknown_device_is_usage_error():
    with pytest.raises(UsageError, match="unknown device 'tpu'"):
        pick_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_absent_cuda_is_clear():
    with pytest.raises(ShowcaseError, match="no CUDA device"):
        pick_device("cuda:0")


def test_fp16_needs_cuda():
    with pytest.raises(ShowcaseError, match="fp16 needs a CUDA device"):
        amp_dtype(torch.device("cpu"), "fp16")
    assert amp_dtype(torch.device("cpu"), "bf16") == torch.bfloat16
