"""The device plumbing, on the CPU: ``auto`` falls back to the CPU, a missing GPU is one clear error, and the
pipelines' outputs land on the CPU whatever device they ran on."""

import pytest
import torch

from cardiosynth.device import autocast, resolve_device


def test_auto_is_the_cpu_here_and_cpu_is_cpu():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu") == resolve_device(torch.device("cpu"))


def test_cuda_is_the_gpu_or_a_clear_error_without_one():
    if torch.cuda.is_available():
        assert resolve_device("cuda").type == "cuda"
    else:
        with pytest.raises(ValueError, match="no CUDA GPU"):
            resolve_device("cuda")


@pytest.mark.parametrize("name", ["tpu", "gpu please", "mps"])
def test_unknown_devices_are_clear_errors(name):
    with pytest.raises(ValueError, match="use auto, cpu or cuda"):
        resolve_device(name)


def test_autocast_is_a_no_op_on_the_cpu():
    x = torch.randn(4, 4)
    with autocast(torch.device("cpu")):
        y = x @ x
    assert y.dtype == torch.float32 and torch.equal(y, x @ x)
