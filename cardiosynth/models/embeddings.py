"""The fixed sinusoidal embeddings, one rule: a value ``p`` (a timestep, a token's position) becomes
``sin(p f_k)`` and ``cos(p f_k)`` over frequencies ``f_k = max_period ** (-k / count)``, ``k < count``, falling
geometrically from 1 towards ``1 / max_period`` (Vaswani et al. 2017).

What differs between the users is named here, because trained weights depend on it bit for bit:

* the **layout** of the sines and cosines: ``"cos|sin"`` (DiT's timesteps: :func:`timestep_embedding`, MAR's
  per-token denoiser and the ECG -> cine flow), ``"interleaved"`` (sin, cos, sin, cos, ...: the token positions
  of the ECG MAE and the flow, :func:`position_table`) and ``"sin|cos"`` per axis (MAE's 2D grid,
  :func:`grid_position_table`, the cine ViT);
* the **rounding** of the frequencies: ``"exp"`` computes ``exp(-ln(max_period) * k / count)`` (DiT, the
  Transformer), ``"power"`` computes ``1 / max_period ** (k / count)`` as MAE's ``get_1d_sincos_pos_embed``;
  equal in exact arithmetic, they are one float32 ulp apart for some ``k`` (17 of the 32 at width 128), so the
  cine ViT keeps ``"power"``.
"""

from __future__ import annotations

import math
from typing import Literal

import torch

Layout = Literal["cos|sin", "sin|cos", "interleaved"]
Rounding = Literal["exp", "power"]


def frequencies(count: int, max_period: float = 10_000.0, rounding: Rounding = "exp",
                device: torch.device | str | None = None) -> torch.Tensor:
    """The (count,) frequencies ``f_k = max_period ** (-k / count)`` in float32, rounded as ``rounding`` says."""
    k = torch.arange(count, dtype=torch.float32, device=device)
    if rounding == "exp":
        return torch.exp(-math.log(max_period) * k / count)
    if rounding == "power":
        return 1.0 / max_period ** (k / count)
    raise ValueError(f"rounding is 'exp' or 'power', not {rounding!r}")


def sinusoids(values: torch.Tensor, freqs: torch.Tensor, layout: Layout) -> torch.Tensor:
    """(N,) values and (K,) frequencies -> (N, 2K) sines and cosines of ``value * f_k`` in ``layout``."""
    args = values.float()[:, None] * freqs[None]
    sin, cos = torch.sin(args), torch.cos(args)
    if layout == "cos|sin":
        return torch.cat([cos, sin], dim=-1)
    if layout == "sin|cos":
        return torch.cat([sin, cos], dim=-1)
    if layout == "interleaved":
        return torch.stack([sin, cos], dim=-1).flatten(1)
    raise ValueError(f"layout is 'cos|sin', 'sin|cos' or 'interleaved', not {layout!r}")


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0, scale: float = 1.0) -> torch.Tensor:
    """Sinusoidal embedding of (N,) timesteps -> (N, dim): ``[cos(s t f_k) | sin(s t f_k)]`` over ``dim // 2``
    frequencies; ``s = scale`` (1000 reads times in [0, 1] as DiT's 0-1000 timesteps)."""
    return sinusoids(scale * t.float(), frequencies(dim // 2, max_period, device=t.device), "cos|sin")


def position_table(n: int, dim: int) -> torch.Tensor:
    """Fixed positions of a token sequence, (n, dim): the Transformer's interleaved ``sin, cos`` of ``i f_k``,
    ``i < n``, over ``dim // 2`` frequencies (``dim`` even)."""
    if dim % 2:
        raise ValueError(f"position_table needs an even dim, not {dim}")
    return sinusoids(torch.arange(n, dtype=torch.float32), frequencies(dim // 2), "interleaved")


def grid_position_table(side: int, dim: int) -> torch.Tensor:
    """Fixed 2D positions of a side x side grid of patches in row-major order, (side * side, dim), as MAE's
    ``get_2d_sincos_pos_embed``: half the channels ``[sin | cos]`` of the row, half of the column, over
    ``dim // 4`` frequencies rounded as ``"power"`` (``dim`` a multiple of 4)."""
    if dim % 4:
        raise ValueError(f"grid_position_table needs dim a multiple of 4, not {dim}")
    freqs = frequencies(dim // 4, rounding="power")
    rows, cols = torch.meshgrid(torch.arange(side, dtype=torch.float32), torch.arange(side, dtype=torch.float32),
                                indexing="ij")
    return torch.cat([sinusoids(rows.reshape(-1), freqs, "sin|cos"), sinusoids(cols.reshape(-1), freqs, "sin|cos")],
                     dim=1)
