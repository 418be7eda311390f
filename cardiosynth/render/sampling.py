"""Resample one real frame at given positions: the only place a default-path cine's pixels are made.

Every frame of a rendered cine is its source frame (a real ED frame) read at per-frame positions, so no
pixel is decoded from a latent. Two things make a resampled frame look different from a real one, and
both are handled here:

- **Interpolation softens.** Bilinear sampling is a low-pass filter; the project's classifier told a
  half-pixel bilinear shift of real cines from real ones. The default kernel is the cubic B-spline on
  prefiltered coefficients (interpolating, and the sharpest of the cubic kernels); ``keys`` (Catmull-Rom)
  and ``bilinear`` stay for the measurements that chose it (``reports/renderer/README.md``).
- **Interpolation averages the noise away.** A real frame carries noise of one level everywhere; an
  interpolated pixel is a weighted sum of source pixels, so its noise variance is sigma^2 x sum(w^2), lower
  between pixels than on them (a texture a classifier sees). The missing variance, sigma^2 (1 - sum(w^2)),
  is added back as seeded Gaussian noise at the source's own level (:func:`noise_sigma`).

Outputs are quantised to the 8-bit levels of the source (ACDC cines are uint8), so a zero displacement
returns the source bit for bit, and padding outside the field of view is zero, as in real cines.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from scipy import ndimage

KERNELS = ("bspline", "keys", "bilinear")
LEVELS = 255.0  # the 8-bit intensity levels of the source frames
_TABLE_BINS = 1024
_MARGIN = 8  # mirrored pixels around the source while prefiltering and gathering


def noise_sigma(frame: np.ndarray, valid: np.ndarray | None = None) -> float:
    """Noise SD of a frame (values in [0, 1]) by Immerkaer's Laplacian-difference estimator made robust with
    the median: the 3 x 3 kernel [[1,-2,1],[-2,4,-2],[1,-2,1]] cancels smooth signal and has response SD 6
    sigma on white noise; the median of |response| / 0.6745 ignores edges. Only pixels whose whole
    neighbourhood is inside ``valid`` count (padding has no noise)."""
    frame = np.asarray(frame, dtype=np.float64)
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float64)
    response = ndimage.convolve(frame, kernel, mode="reflect")[1:-1, 1:-1]
    inside = np.ones_like(frame, bool) if valid is None else ndimage.binary_erosion(valid, np.ones((3, 3)))
    values = np.abs(response[inside[1:-1, 1:-1]])
    return float(np.median(values) / 0.6745 / 6.0) if values.size else 0.0


def fill_padding(frame: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Padding pixels take the value of the nearest valid pixel, so sampling near the edge of the field of
    view never pulls the black padding into the image (the output is masked by ``valid`` again)."""
    if valid.all() or not valid.any():
        return frame
    _, (rows, cols) = ndimage.distance_transform_edt(~valid, return_indices=True)
    return frame[rows, cols]


def _bspline_weights(f: torch.Tensor) -> torch.Tensor:
    """Cubic B-spline weights of the 4 neighbours (offsets -1, 0, 1, 2) at fraction f in [0, 1)."""
    g = 1 - f
    return torch.stack([g ** 3 / 6, (3 * f ** 3 - 6 * f ** 2 + 4) / 6, (3 * g ** 3 - 6 * g ** 2 + 4) / 6, f ** 3 / 6], -1)


def _keys_weights(f: torch.Tensor, a: float = -0.5) -> torch.Tensor:
    """Keys' cubic convolution (a = -0.5, Catmull-Rom) weights of the 4 neighbours at fraction f."""
    def near(d):
        return (a + 2) * d ** 3 - (a + 3) * d ** 2 + 1

    def far(d):
        return a * d ** 3 - 5 * a * d ** 2 + 8 * a * d - 4 * a

    return torch.stack([far(1 + f), near(f), near(1 - f), far(2 - f)], -1)


def _bilinear_weights(f: torch.Tensor) -> torch.Tensor:
    zero = torch.zeros_like(f)
    return torch.stack([zero, 1 - f, f, zero], -1)


WEIGHTS = {"bspline": _bspline_weights, "keys": _keys_weights, "bilinear": _bilinear_weights}


@lru_cache(maxsize=4)
def _sum_squared_weights_table(kernel: str) -> torch.Tensor:
    """sum over source samples of the squared effective weight, per fraction (1-D; the 2-D value is the
    product of the two axes'). For the B-spline the effective weights on the raw samples include the
    prefilter (infinite support): found numerically by interpolating unit impulses."""
    fractions = torch.linspace(0, 1, _TABLE_BINS + 1, dtype=torch.float64)
    if kernel != "bspline":
        return WEIGHTS[kernel](fractions).pow(2).sum(-1)
    half = 16
    impulses = np.eye(2 * half + 1)
    coefficients = np.stack([ndimage.spline_filter1d(i, order=3, mode="mirror") for i in impulses])  # (K, 2h+1)
    weights = _bspline_weights(fractions)  # (B, 4): neighbours half-1 .. half+2
    effective = torch.einsum("bj,kj->bk", weights, torch.from_numpy(coefficients[:, half - 1:half + 3]))
    return effective.pow(2).sum(-1)


def _sum_squared(kernel: str, f: torch.Tensor) -> torch.Tensor:
    table = _sum_squared_weights_table(kernel).to(f.dtype)
    return table[(f * _TABLE_BINS).round().long().clamp(0, _TABLE_BINS)]


def resample(source: np.ndarray, positions: torch.Tensor, valid: np.ndarray | None = None, kernel: str = "bspline",
             restore_noise: bool = True, generator: torch.Generator | None = None,
             sigma: float | None = None) -> np.ndarray:
    """``source`` (H, W) in [0, 1] read at ``positions`` (..., H, W, 2) in pixel coordinates (row, col) ->
    frames (..., H, W) float32 in [0, 1] on the source's 8-bit levels, zero outside ``valid``.

    ``restore_noise`` adds back the noise interpolation averaged away (seeded by ``generator``) at the
    source's level (``sigma``, default :func:`noise_sigma`). Positions outside the image repeat its border."""
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {', '.join(KERNELS)}; got {kernel!r}")
    source = np.asarray(source, dtype=np.float64)
    if source.ndim != 2 or not np.isfinite(source).all():
        raise ValueError(f"the source must be one finite (H, W) frame; got shape {source.shape}")
    height, width = source.shape
    positions = torch.as_tensor(positions, dtype=torch.float64)
    if positions.shape[-3:] != (height, width, 2):
        raise ValueError(f"positions must be (..., {height}, {width}, 2) for a {height} x {width} source; "
                         f"got {tuple(positions.shape)}")
    if not torch.isfinite(positions).all():
        raise ValueError("the displacement fields contain NaN or infinite values")
    valid = np.ones(source.shape, bool) if valid is None else np.asarray(valid, bool)
    filled = fill_padding(source, valid)
    # prefiltered on a mirrored margin, so the coefficients near the border are those of the whole plane
    padded = np.pad(filled, _MARGIN, mode="symmetric")
    if kernel == "bspline":
        padded = ndimage.spline_filter(padded, order=3, mode="mirror")
    coefficients = torch.from_numpy(np.ascontiguousarray(padded, np.float32)).reshape(-1)
    stride = width + 2 * _MARGIN

    row, col = positions[..., 0].clamp(0, height - 1), positions[..., 1].clamp(0, width - 1)
    r0, c0 = row.floor(), col.floor()
    fr, fc = (row - r0).float(), (col - c0).float()
    wr, wc = WEIGHTS[kernel](fr), WEIGHTS[kernel](fc)  # (..., 4) each
    offsets = torch.arange(-1, 3) + _MARGIN
    rows = (r0.long()[..., None] + offsets) * stride  # (..., 4)
    cols = c0.long()[..., None] + offsets
    values = coefficients[rows[..., :, None] + cols[..., None, :]]  # (..., 4, 4): the 16 neighbours, one gather
    out = torch.einsum("...i,...ij,...j->...", wr, values, wc).double()
    if restore_noise:
        level = noise_sigma(source, valid) if sigma is None else float(sigma)
        missing = (1 - _sum_squared(kernel, fr.double()) * _sum_squared(kernel, fc.double())).clamp_min(0)
        noise = torch.randn(out.shape, generator=generator, dtype=torch.float32).double()
        out = out + level * missing.sqrt() * noise
    out = (out.clamp(0, 1) * LEVELS).round() / LEVELS
    frames = out.float().numpy()
    frames[..., ~valid] = 0.0
    return frames


def identity_positions(height: int, width: int | None = None) -> torch.Tensor:
    """(H, W, 2) pixel coordinates (row, col) of every pixel: the positions of a zero displacement."""
    rows, cols = torch.meshgrid(torch.arange(height, dtype=torch.float64),
                                torch.arange(width or height, dtype=torch.float64), indexing="ij")
    return torch.stack([rows, cols], -1)
