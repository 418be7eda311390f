"""Label maps of a cine -> area curves and what a reader takes from them (ED, ES, FAC, myocardial area).

ED and ES are detected from the LV area curve (largest and smallest); the ES time is refined to sub-frame
resolution by a parabola through the minimum and its neighbours on the periodic curve.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cardiosynth.data.labels import LV, MYO, RV


@dataclass
class CineMeasurements:
    lv_area_mm2: np.ndarray  # (T,)
    myo_area_mm2: np.ndarray  # (T,)
    rv_area_mm2: np.ndarray  # (T,)
    ed_frame: int
    es_frame: int
    es_frame_subframe: float  # refined ES time, in frames
    lv_fac: float  # fractional area change (EDA - ESA) / EDA, LV
    rv_fac: float
    myo_area_ed_mm2: float

    @property
    def lv_found_in_every_frame(self) -> bool:
        """False when the segmenter lost the LV in some frame: nothing estimated from this slice is readable."""
        return readable("lv_area", 1.0, self.lv_area_mm2)

    def as_row(self) -> dict[str, float]:
        """Scalar summary: the features the phenotype estimator and reports use."""
        return {
            "lv_area_ed_mm2": float(self.lv_area_mm2[self.ed_frame]),
            "lv_area_es_mm2": float(self.lv_area_mm2[self.es_frame]),
            "rv_area_ed_mm2": float(self.rv_area_mm2.max()),
            "rv_area_es_mm2": float(self.rv_area_mm2.min()),
            "myo_area_ed_mm2": self.myo_area_ed_mm2,
            "lv_fac": self.lv_fac,
            "rv_fac": self.rv_fac,
            "ed_frame": self.ed_frame,
            "es_frame": self.es_frame,
            "es_frame_subframe": self.es_frame_subframe,
        }


NOT_MEASURABLE = "not measurable on this slice"  # what every view shows in place of an unreadable value
# The physically possible range of each read-back phenotype (mL, g, %); outside it the number is an artefact.
# Keys match the end of a name (LVEDV, RVESV, ...); EDV / ESV come before SV so that ESV is not read as SV.
PHYSICAL_RANGE = {"EF": (0.0, 100.0), "EDV": (0.0, math.inf), "ESV": (0.0, math.inf), "SV": (0.0, math.inf),
                  "LVM": (0.0, math.inf)}


def unreadable_reason(name: str, value, lv_area_mm2=None) -> str | None:
    """Why the read-back ``value`` of phenotype ``name`` (``LVEF`` or ``est_LVEF``, ...) cannot be shown as a
    number, or ``None`` when it can. The one rule every view of measured values uses:

    - the segmenter lost the LV in some frame of ``lv_area_mm2`` (area 0 or not finite; this includes an
      end-diastolic area of 0): the slice's curves, and so every estimate made from them, mean nothing;
    - the value is missing or not finite;
    - the value lies outside the physical range (EF 0-100 %, volumes and mass > 0 mL / g, SV >= 0 mL).
    """
    short = name.removeprefix("est_")
    if lv_area_mm2 is not None:
        area = np.asarray(lv_area_mm2, dtype=float)
        lost = np.flatnonzero(~(np.isfinite(area) & (area > 0)))
        if area.size == 0 or lost.size:
            frames = ", ".join(str(int(f)) for f in lost[:5]) + (" ..." if lost.size > 5 else "")
            return (f"the segmenter finds no LV in frame{'s' if lost.size > 1 else ''} {frames}" if lost.size < area.size
                    else "the segmenter finds no LV in any frame")
    try:
        value = float(value)
    except (TypeError, ValueError):
        return f"{short} could not be computed"
    if not math.isfinite(value):
        return f"{short} could not be computed"
    key = next((k for k in PHYSICAL_RANGE if short.endswith(k)), None)
    if key is not None:
        low, high = PHYSICAL_RANGE[key]
        strict = key in ("EDV", "ESV", "LVM")  # a chamber or muscle of zero size is no reading
        if value > high or value < low or (strict and value <= low):
            bounds = f"{low:g}-{high:g}" if math.isfinite(high) else (f"> {low:g}" if strict else f">= {low:g}")
            return f"{short} = {value:.0f} is outside the physical range {bounds}"
    return None


def readable(name: str, value, lv_area_mm2=None) -> bool:
    """True when the read-back ``value`` may be shown as a number (see :func:`unreadable_reason`)."""
    return unreadable_reason(name, value, lv_area_mm2) is None


def parabolic_minimum(curve: np.ndarray, index: int) -> float:
    """Sub-sample position of a minimum of a periodic curve, from the parabola through three samples."""
    n = len(curve)
    left, centre, right = curve[(index - 1) % n], curve[index], curve[(index + 1) % n]
    denominator = left - 2 * centre + right
    offset = 0.5 * (left - right) / denominator if denominator > 1e-12 else 0.0
    return float((index + np.clip(offset, -0.5, 0.5)) % n)


def _fac(curve: np.ndarray, ed: int, es: int) -> float:
    return float((curve[ed] - curve[es]) / curve[ed]) if curve[ed] > 0 else float("nan")


def measure_labels(labels: np.ndarray, spacing_mm: tuple[float, float], valid: np.ndarray | None = None) -> CineMeasurements:
    """Areas per frame (mm^2) of LV cavity, myocardium and RV from (T, H, W) labels; ED/ES from the LV."""
    labels = np.asarray(labels)
    if labels.ndim != 3 or labels.shape[0] < 3:
        raise ValueError(f"Expected labels (T >= 3, H, W); got shape {labels.shape}")
    if valid is not None:
        labels = labels * np.asarray(valid, dtype=labels.dtype)[None]
    pixel_mm2 = float(spacing_mm[0]) * float(spacing_mm[1])
    lv, myo, rv = ((labels == label).sum(axis=(1, 2)) * pixel_mm2 for label in (LV, MYO, RV))
    ed = int(np.argmax(lv))
    es = int(np.argmin(lv))
    return CineMeasurements(
        lv_area_mm2=lv.astype(float), myo_area_mm2=myo.astype(float), rv_area_mm2=rv.astype(float),
        ed_frame=ed, es_frame=es, es_frame_subframe=parabolic_minimum(lv.astype(float), es),
        lv_fac=_fac(lv, ed, es), rv_fac=_fac(rv, int(np.argmax(rv)), int(np.argmin(rv))),
        myo_area_ed_mm2=float(myo[ed]),
    )
