"""The ``Cine`` contract shared by data, models, measurement, rendering and review.

A cine is float32 (T, H, W) in [0, 1] with frame 0 = end-diastole; pixel spacing travels with it, the
slice position says where it sits between base (0) and apex (1), ``valid`` marks real (non-padded)
pixels, and ``source`` says where it came from ("real:<id>" or "synthetic:<model>@<sha>").
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


class CineError(ValueError):
    """A cine does not meet the contract; the message says how."""


@dataclass
class Cine:
    frames: np.ndarray
    spacing_mm: tuple[float, float]
    slice_position: float = 0.5
    valid: np.ndarray | None = None
    source: str = "unknown"
    metadata: dict = field(default_factory=dict)

    def __post_init__(self):
        frames = np.asarray(self.frames)
        if frames.ndim != 3:
            raise CineError(f"A cine must be (T, H, W); got shape {frames.shape}")
        if not np.issubdtype(frames.dtype, np.floating):
            raise CineError(f"A cine must hold floats in [0, 1]; got dtype {frames.dtype}")
        if not np.isfinite(frames).all():
            raise CineError("The cine contains NaN or infinite values")
        if frames.size and (frames.min() < -1e-6 or frames.max() > 1 + 1e-6):
            raise CineError(f"Cine intensities must lie in [0, 1]; got {frames.min():.3g}..{frames.max():.3g}")
        self.frames = frames.astype(np.float32, copy=False)
        if not 0.0 <= float(self.slice_position) <= 1.0:
            raise CineError(f"slice_position must be in [0, 1] (0 base, 1 apex); got {self.slice_position}")
        self.spacing_mm = (float(self.spacing_mm[0]), float(self.spacing_mm[1]))
        if min(self.spacing_mm) <= 0:
            raise CineError(f"Pixel spacing must be positive; got {self.spacing_mm}")
        if self.valid is None:
            self.valid = np.ones(frames.shape[1:], dtype=bool)
        elif self.valid.shape != frames.shape[1:]:
            raise CineError(f"valid mask shape {self.valid.shape} does not match frames {frames.shape[1:]}")

    @property
    def n_frames(self) -> int:
        return self.frames.shape[0]

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.frames.shape)
