"""Where the models run: ``auto`` = the CUDA GPU when there is one, else the CPU; bf16 autocast on CUDA.

    device = resolve_device("auto")            # torch.device("cuda") on a GPU machine, "cpu" here
    with autocast(device):                     # bf16 matmuls on CUDA; a no-op on the CPU (fp32, deterministic)
        ...

Random numbers are always drawn on the CPU from the request's seed and moved to the device, so a seed gives
the same draws everywhere; on the CPU the outputs are bit-identical run to run.
"""

from __future__ import annotations

import contextlib

import torch


def resolve_device(requested: str | torch.device = "auto") -> torch.device:
    """``auto`` / ``cpu`` / ``cuda`` / ``cuda:N`` -> a torch.device; asking for CUDA without one is a clear error."""
    if isinstance(requested, torch.device):
        requested = str(requested)
    name = str(requested).strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"Unknown device {requested!r}: use auto, cpu or cuda (cuda:N for one of several GPUs)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"Device {requested!r} was asked for, but this machine has no CUDA GPU: use auto or cpu")
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"Device {requested!r} is not supported: use auto, cpu or cuda")
    return device


def autocast(device: torch.device):
    """bf16 autocast on CUDA (the H100/H200 class runs it at full speed), nothing on the CPU."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
