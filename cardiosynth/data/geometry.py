"""The sampling geometry shared by preparing the training data (:mod:`cardiosynth.data.prepare`) and preparing a
real upload at inference (:mod:`cardiosynth.pipelines.real_cine`): the preparation configs, the crop's sampling
grid, in-plane and periodic resampling, robust intensity normalisation and the NIfTI axis order. Only numpy and
scipy: no dataset reader, no training data."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage


@dataclass(frozen=True)
class PrepareConfig:
    """Everything that fixes the prepared tensors; saved beside them as ``config.json``."""

    name: str = "default"
    frames: int = 16
    size: int = 64  # H = W
    spacing_mm: float = 2.2  # output pixel size; 64 x 2.2 mm = 141 mm keeps the whole heart in view
    centre: str = "heart"  # "heart": bbox of LV+MYO+RV (ED and ES); "lv": LV+MYO centroid at ED
    intensity_percentiles: tuple[float, float] = (0.5, 99.5)

    def __post_init__(self):
        if self.centre not in ("heart", "lv"):
            raise ValueError(f"centre must be 'heart' or 'lv', not {self.centre!r}")
        if self.frames < 2 or self.size < 8 or self.spacing_mm <= 0:
            raise ValueError(f"Invalid preparation config: {self}")


CONFIGS = {
    "default": PrepareConfig(),
    "paper": PrepareConfig(name="paper", frames=50, size=96, spacing_mm=1.5),
}


def to_rows_cols(volume: np.ndarray) -> np.ndarray:
    """(X, Y, Z[, T]) -> (Z[, T], Y, X): ``frames[t] = vol[:, :, z, t].T``."""
    if volume.ndim == 3:
        return np.ascontiguousarray(volume.transpose(2, 1, 0))
    return np.ascontiguousarray(volume.transpose(2, 3, 1, 0))


def sampling_grid(centre: np.ndarray, source_spacing: tuple[float, float], config: PrepareConfig) -> np.ndarray:
    """Source (row, col) coordinates of every output pixel: a (2, H, W) array."""
    offsets_mm = (np.arange(config.size) - (config.size - 1) / 2.0) * config.spacing_mm
    rows = centre[0] + offsets_mm / source_spacing[0]
    cols = centre[1] + offsets_mm / source_spacing[1]
    return np.stack(np.meshgrid(rows, cols, indexing="ij"))


def resample_plane(image: np.ndarray, grid: np.ndarray, order: int, smooth_sigma: tuple[float, float]) -> np.ndarray:
    """Sample one 2D image on ``grid``; ``order`` 1 for intensities, 0 for label masks."""
    if order > 0 and max(smooth_sigma) > 0:
        image = ndimage.gaussian_filter(image.astype(np.float32), smooth_sigma)
    return ndimage.map_coordinates(image, grid, order=order, mode="nearest")


def resample_periodic_frames(frames: np.ndarray, n_out: int) -> np.ndarray:
    """Resample one periodic cycle of frames (T_in, H, W) to ``n_out`` frames, frame 0 kept exactly."""
    n_in = frames.shape[0]
    position = np.arange(n_out) * n_in / n_out
    lower = np.floor(position).astype(int)
    weight = (position - lower)[:, None, None]
    return (1 - weight) * frames[lower % n_in] + weight * frames[(lower + 1) % n_in]


def normalise(cine: np.ndarray, valid: np.ndarray, percentiles: tuple[float, float]) -> tuple[np.ndarray, float, float]:
    """Map the robust intensity range of the real pixels to [0, 1] (MRI intensities have no units)."""
    low, high = np.percentile(cine[:, valid], percentiles)
    scale = max(float(high - low), 1e-6)
    return np.clip((cine - low) / scale, 0.0, 1.0).astype(np.float32), float(low), float(high)
