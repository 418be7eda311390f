"""Label maps of a cine -> area curves and what a reader takes from them (ED, ES, FAC, myocardial area).

ED and ES are detected from the LV area curve (largest and smallest); the ES time is refined to sub-frame
resolution by a parabola through the minimum and its neighbours on the periodic curve.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cardiosynth.data.acdc import LABEL_LV, LABEL_MYO, LABEL_RV


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
    lv, myo, rv = ((labels == label).sum(axis=(1, 2)) * pixel_mm2 for label in (LABEL_LV, LABEL_MYO, LABEL_RV))
    ed = int(np.argmax(lv))
    es = int(np.argmin(lv))
    return CineMeasurements(
        lv_area_mm2=lv.astype(float), myo_area_mm2=myo.astype(float), rv_area_mm2=rv.astype(float),
        ed_frame=ed, es_frame=es, es_frame_subframe=parabolic_minimum(lv.astype(float), es),
        lv_fac=_fac(lv, ed, es), rv_fac=_fac(rv, int(np.argmax(rv)), int(np.argmin(rv))),
        myo_area_ed_mm2=float(myo[ed]),
    )
