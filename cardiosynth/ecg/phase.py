"""Cardiac phase (what the ECG MAE learns to predict) and neurokit2's typical beat.

The phase phi(t) rises linearly from 0 at one R peak to 2*pi at the next (ECGFlowCMR's definition).
Before the first and after the last detected R peak it is extrapolated with the neighbouring RR interval
and flagged as not valid, so the model always gets 5000 values but can tell measured from guessed.
"""

from __future__ import annotations

import numpy as np

TWO_PI = 2 * np.pi


def cardiac_phase(r_peaks: np.ndarray, n_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """phi(t) in [0, 2*pi) for every sample and a mask of samples between the first and last R peak."""
    phase = np.full(n_samples, np.nan)
    valid = np.zeros(n_samples, dtype=bool)
    r = np.asarray(r_peaks, dtype=int)
    if r.size < 2:
        return phase, valid
    t = np.arange(n_samples)
    k = np.clip(np.searchsorted(r, t, side="right") - 1, 0, r.size - 2)  # cycle index of each sample
    start, length = r[k], (r[k + 1] - r[k]).astype(float)
    phase = np.mod(TWO_PI * (t - start) / length, TWO_PI)  # extrapolates outside [r0, r_last)
    valid[r[0]:r[-1]] = True
    return phase, valid


def typical_beat(r_peaks: np.ndarray, quality: np.ndarray | None, t_offsets: np.ndarray | None,
                 n_valid: int) -> tuple[int, int] | None:
    """neurokit2's typical beat: one clean, complete R-R cycle as (start, end) samples, end exclusive (the next R
    peak). Not the cycle a cine is generated from: the ECG MAE chooses that one in its own predicted phase
    (:func:`cardiosynth.models.ecg_mae.select_cycle`; :class:`cardiosynth.pipelines.ecg_to_cine.AnalysedEcg`).

    Prefers cycles whose length is close to the median RR (typical beat, not an ectopic or a pause),
    whose samples have high neurokit2 quality, and whose T wave end was delineated.
    """
    r = np.asarray(r_peaks, dtype=int)
    r = r[r < n_valid]
    if r.size < 2:
        return None
    rr = np.diff(r).astype(float)
    median = float(np.median(rr))
    best, best_score = None, -np.inf
    for k in range(rr.size):
        start, end = int(r[k]), int(r[k + 1])
        score = -2.0 * abs(rr[k] - median) / median
        if quality is not None:
            score += float(np.nanmean(quality[start:end]))
        if t_offsets is not None and not np.any((t_offsets > start) & (t_offsets < end)):
            score -= 0.2
        if score > best_score:
            best, best_score = (start, end), score
    return best
