"""Re-time a cine within its cycle so that end-systole falls where the ECG puts it.

The ECG -> cine flow did not learn timing from its ECG features: 47 pseudo-paired training subjects were too few
(held-out r about 0 for the flows trained without re-timing; README, ECG -> cine). Timing is therefore made
explicit, as anatomy-motion disentanglement suggests. The flow learns cines that were all re-timed to one
canonical end-systolic fraction, and its output is re-timed to the input ECG's systolic fraction, QT / RR. The T
wave ends about when the aortic valve closes, so mechanical systole lasts about as long as the QT interval.

The re-timing is piecewise linear in time. The R peak (frame 0, end-diastole) stays put; systole is stretched to the
new end-systole and diastole takes the rest of the cycle, as diastole does when the heart rate changes.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from cardiosynth.data.dataset import PreparedDataset

ES_FRACTION_RANGE = (0.2, 0.7)  # systolic fractions a cine is re-timed to (ACDC's expert ES: 0.25-0.69 of the cycle)
BAZETT_QTC_S = 0.41  # a normal corrected QT, used only when the ECG's QT cannot be measured


def retime(frames: torch.Tensor, to_fraction: float, from_fraction: float) -> torch.Tensor:
    """``frames`` (T, ...) over one cycle, re-timed so that what was at cycle fraction ``from_fraction`` is shown at
    ``to_fraction``. Frame 0 stays; linear interpolation between frames, periodic over the cycle."""
    for name, value in (("to_fraction", to_fraction), ("from_fraction", from_fraction)):
        if not 0.0 < value < 1.0:
            raise ValueError(f"{name} must be inside the cycle (0-1); got {value!r}")
    t = frames.shape[0]
    x = torch.arange(t, dtype=torch.float64) / t
    a, b = to_fraction, from_fraction
    source = torch.where(x <= a, x * b / a, b + (x - a) * (1 - b) / (1 - a)) * t
    lo = source.floor().long()
    weight = (source - lo).to(frames.dtype).view((t,) + (1,) * (frames.dim() - 1))
    return frames[lo % t] * (1 - weight) + frames[(lo + 1) % t] * weight


def systolic_fraction(qt_s: float | None, rr_s: float, doubts: list[str] | tuple = (),
                      device_qt_s: float | None = None) -> dict:
    """The share of the cycle ``rr_s`` that is systole: QT / RR, or, when the ECG's QT could not be measured,
    Bazett's QT for a normal QTc of 410 ms (QT = 0.41 s x sqrt(RR)). Limited to :data:`ES_FRACTION_RANGE`.
    A measured QT under ``doubts`` (``EcgAnalysis.qt_doubts``) gives way to the QT the recording device stored
    in the file (``device_qt_s``) where there is one; else it is used, and the source says it is doubted.
    Returns ``fraction``, ``qt_s`` (the QT used), ``source`` (plain words)."""
    if not (math.isfinite(rr_s) and rr_s > 0):
        raise ValueError(f"The cycle length must be a positive number of seconds; got {rr_s!r}")
    measured = qt_s is not None and math.isfinite(qt_s) and qt_s > 0
    device = device_qt_s is not None and math.isfinite(device_qt_s) and device_qt_s > 0
    if measured and doubts and device:
        qt = float(device_qt_s)
        source = "QT stored in the file by the recording device (the QT measured here was doubted)"
    elif measured:
        qt, source = float(qt_s), "QT measured on the ECG (neurokit2)" + (", doubted: check it" if doubts else "")
    else:
        qt = BAZETT_QTC_S * math.sqrt(rr_s)
        source = "QT not measurable: estimated from the heart rate (Bazett, QTc 410 ms)"
    low, high = ES_FRACTION_RANGE
    fraction = min(max(qt / rr_s, low), high)
    if fraction != qt / rr_s:
        source += f"; QT/RR {qt / rr_s:.2f} limited to {fraction:.2f}"
    return {"fraction": fraction, "qt_s": round(qt, 4), "source": source}


def retimed_dataset(dataset: "PreparedDataset", es_fraction: float) -> "PreparedDataset":
    """Every cine re-timed so that its expert end-systolic frame falls at ``es_fraction`` of the cycle: what the
    ECG flow trains on (one timing to learn; sampling re-times to the ECG's)."""
    frames = dataset.cines.shape[1]
    expert = dataset.table["es_frame_float"].to_numpy(float) / frames
    cines = np.stack([retime(torch.from_numpy(c.astype(np.float32)), es_fraction, float(b)).round().clamp(0, 255)
                      .to(torch.uint8).numpy() for c, b in zip(dataset.cines, expert)])
    return dataclasses.replace(dataset, cines=cines, table=dataset.table.assign(es_frame_float=es_fraction * frames))
