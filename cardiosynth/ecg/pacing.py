"""Pacemaker spikes: found, and blanked so that R-peaks and the QRS onset land on the QRS, not on the spike.

A pacing spike is a pulse of well under a millisecond: at 500 Hz it is a one- or two-sample kink, seen in many
leads at once, of several millivolts. neurokit2's R-peak detector takes it for the sharpest part of a beat, so
on a paced ECG the R-peaks sat on the spike, ~90 ms before the QRS. Blanking (each spike's samples replaced by
a straight line between its neighbours, as ECG machines do before their own analysis) leaves the QRS complex,
which the detector then finds. The R-peaks found again are kept only if no beat was lost with the spikes.

On LUDB's 8 paced records (``python -m evaluation.ecg_evaluate``), R-peaks within 4 ms of a spike went from 13
of 74 to 2; the 162 other records did not change (record 72, flagged without a pacemaker, kept its R-peaks).
LUDB's cardiologists put some paced beats' QRS mark on the spike itself: in record 95 two R-peaks now on the QRS
peak, 88 ms after the spike, no longer match their marks at +-75 ms (paced sensitivity 0.91 -> 0.88).
"""

from __future__ import annotations

import numpy as np

#: A kink counts in a lead when its second difference exceeds this share of the lead's peak-to-peak range,
#: and a spike when at least MIN_LEADS leads kink at the same sample.
KINK_SHARE = 0.25
MIN_LEADS = 4
#: Spikes are said to pace when one lies within this long before at least half of the R-peaks.
BEFORE_R_S = 0.25
#: Samples blanked on either side of a spike: the pulse, and the ringing that resampling adds around it.
BLANK_S = 0.008


def spike_samples(signal: np.ndarray) -> np.ndarray:
    """Samples (of ``signal``, leads x samples) where at least :data:`MIN_LEADS` leads kink at once."""
    if signal.shape[0] < MIN_LEADS or signal.shape[1] < 3:
        return np.array([], dtype=int)
    second = np.abs(signal[:, 2:] - 2 * signal[:, 1:-1] + signal[:, :-2])
    ptp = np.ptp(signal, axis=1, keepdims=True) + 1e-12
    return np.flatnonzero(((second / ptp) > KINK_SHARE).sum(axis=0) >= MIN_LEADS) + 1


def paces(spikes: np.ndarray, r_peaks: np.ndarray, fs: int) -> bool:
    """Whether spikes precede at least half of the beats (within :data:`BEFORE_R_S`), or sit on them: a
    heuristic (on LUDB it flags 6 of the 8 paced and 1 of the 162 other records; see
    ``evaluation.ecg_evaluate``)."""
    if spikes.size == 0 or r_peaks.size == 0:
        return False
    before = [np.any((spikes <= r) & (spikes >= r - BEFORE_R_S * fs)) for r in r_peaks]
    return bool(np.mean(before) >= 0.5)


def blank_spikes(signal: np.ndarray, spikes: np.ndarray, fs: int) -> np.ndarray:
    """A copy of ``signal`` (leads x samples) with the samples within :data:`BLANK_S` of each spike replaced
    by the straight line between the samples just outside."""
    out = np.array(signal, dtype=np.float64, copy=True)
    half = max(1, round(BLANK_S * fs))
    n = out.shape[1]
    for start, end in _runs(spikes, half):
        lo, hi = max(start - half, 0), min(end + half, n - 1)
        if hi - lo < 2:
            continue
        weight = np.linspace(0.0, 1.0, hi - lo + 1)[None, 1:-1]
        out[:, lo + 1:hi] = out[:, [lo]] * (1 - weight) + out[:, [hi]] * weight
    return out


def _runs(samples: np.ndarray, gap: int) -> list[tuple[int, int]]:
    """Spike samples grouped into (first, last) runs: samples closer than ``gap`` are one spike."""
    runs: list[tuple[int, int]] = []
    for s in np.sort(samples).tolist():
        if runs and s - runs[-1][1] <= gap:
            runs[-1] = (runs[-1][0], s)
        else:
            runs.append((s, s))
    return runs
