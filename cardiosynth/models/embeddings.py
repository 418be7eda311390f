"""The sinusoidal timestep embedding the diffusion heads share (MAR's per-token denoiser, the ECG -> cine flow).

Kept apart on purpose, each with its own convention and trained weights that depend on it bit for bit:
``cine_vit.sincos_positions`` (MAE's 2D grid: sin then cos per axis, frequencies as ``1 / 10000 ** (k / q)``,
which round differently from the ``exp`` form here) and ``ecg_mae.sinusoidal_positions`` (token positions,
the same frequencies as here but sin and cos interleaved).
"""

from __future__ import annotations

import math

import torch


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0, scale: float = 1.0) -> torch.Tensor:
    """Sinusoidal embedding of (N,) timesteps -> (N, dim): ``[cos(s t f_k) | sin(s t f_k)]``, ``f_k`` falling
    geometrically from 1 to ``1 / max_period`` over ``dim // 2`` frequencies; ``s = scale`` (1000 reads times in
    [0, 1] as DiT's 0-1000 timesteps)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = scale * t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
