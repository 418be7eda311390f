"""ECG processing with neurokit2: cleaning, R-peaks, heart rate, quality, QT, phase and one clean cycle.

Odd recordings (pacemaker, atrial fibrillation, no detectable beats, flat leads) never raise: the result
holds what could be computed and ``warnings`` says, in plain words, what could not and why.
"""

from __future__ import annotations

import warnings as _warnings
from dataclasses import dataclass, field
from typing import Any

import neurokit2 as nk
import numpy as np

from .pacing import blank_spikes, paces, spike_samples
from .phase import cardiac_phase, typical_beat
from .rpeaks import clean, detect_r_peaks, lead_peaks, lead_quality
from .types import Ecg

HR_RANGE_BPM = (25.0, 250.0)
IRREGULAR_RR_CV = 0.15
QT_RANGE_S = (0.20, 0.70)
#: QRS onset to R peak, physiologically: narrow complexes 20-60 ms, bundle branch blocks up to ~120 ms.
QRS_ONSET_BEFORE_R_S = (0.01, 0.15)
#: Doubts about a QT (see ``measure_qt``): Fridericia-corrected range, spread between beats, device disagreement.
QTC_RANGE_S = (0.30, 0.56)
QT_SPREAD_S = 0.06
DEVICE_QT_TOLERANCE_S = 0.04


@dataclass
class EcgAnalysis:
    """What processing found. Sample indices refer to the standard 500 Hz :class:`Ecg`.

    ``quality`` is neurokit2's Zhao (2018) class of the R-peak lead (``quality_method`` says so in words);
    ``quality_score`` is the mean of neurokit2's "averageQRS" index, which is scaled within the recording
    (per beat, 1 = the beat closest to the average beat, 0 = the farthest), so it ranks beats against each other
    and does not grade the recording: it is reported as ``averageqrs_mean``, never as the class's score.
    ``lead_agreement`` is the share of beats each lead's detector found
    (None for flat leads). ``q_peaks``/``t_offsets`` are per-beat samples (NaN where delineation failed) of
    the QRS onset (the name is kept from when the Q peak stood for it) and the T-wave end; QT runs from one to
    the other, over the beats :func:`plausible_beats` accepts. ``qt_doubts`` (also in ``warnings``) says in
    words why the QT may be wrong; empty when nothing casts doubt on it. ``phase`` (5000 values, radians) is
    valid where ``phase_valid``; ``cycle`` is (start, end) samples of neurokit2's typical beat
    (:func:`.phase.typical_beat`), end exclusive: not the cycle a cine is generated from (the ECG MAE's).
    """

    r_peaks: np.ndarray
    r_peak_lead: str | None
    heart_rate_bpm: float | None
    rr_s: np.ndarray
    qt_s: float | None
    q_peaks: np.ndarray
    t_offsets: np.ndarray
    phase: np.ndarray
    phase_valid: np.ndarray
    cycle: tuple[int, int] | None
    quality: str
    quality_score: float | None
    lead_agreement: dict[str, float | None]
    cleaned: np.ndarray
    rr_cv: float | None = None
    pacing_suspected: bool = False
    warnings: list[str] = field(default_factory=list)
    qt_doubts: list[str] = field(default_factory=list)

    @property
    def rr_median_s(self) -> float | None:
        return float(np.median(self.rr_s)) if self.rr_s.size else None

    @property
    def quality_method(self) -> str:
        """What ``quality`` rests on, for people: the method, the lead and the scale of the class."""
        if self.r_peaks.size < 2 or self.r_peak_lead is None:
            return "no heartbeats detected"
        return (f"neurokit2 zhao2018 class of lead {self.r_peak_lead}, one of Excellent / Barely acceptable / "
                "Unacceptable (Zhao & Zhang 2018: QRS power spectrum, kurtosis, baseline power)")

    @property
    def qt_rr(self) -> float | None:
        """QT/RR, the systolic fraction of the cycle used to pair ECGs with cines."""
        rr = self.rr_median_s
        return None if self.qt_s is None or not rr else self.qt_s / rr

    @property
    def qtc_bazett_s(self) -> float | None:
        rr = self.rr_median_s
        return None if self.qt_s is None or not rr else self.qt_s / np.sqrt(rr)

    def summary(self, fs: int = 500) -> dict[str, Any]:
        """JSON-friendly numbers (no arrays except R-peaks), e.g. for the CLI and the app."""
        def rounded(x, nd=3):
            return None if x is None else round(float(x), nd)
        return {
            "heart_rate_bpm": rounded(self.heart_rate_bpm, 1),
            "rr_median_s": rounded(self.rr_median_s),
            "rr_cv": rounded(self.rr_cv),
            "qt_s": rounded(self.qt_s),
            "qt_rr": rounded(self.qt_rr),
            "qtc_bazett_s": rounded(self.qtc_bazett_s),
            "quality": self.quality,
            "quality_method": self.quality_method,
            "averageqrs_mean": rounded(self.quality_score),
            "r_peak_lead": self.r_peak_lead,
            "n_beats": int(self.r_peaks.size),
            "r_peaks": [int(r) for r in self.r_peaks],
            "cycle_samples": list(self.cycle) if self.cycle else None,
            "cycle_s": [round(c / fs, 3) for c in self.cycle] if self.cycle else None,
            "pacing_suspected": self.pacing_suspected,
            "qt_doubts": self.qt_doubts,
            "lead_agreement": self.lead_agreement,
            "warnings": self.warnings,
        }


def _delineate(cleaned: np.ndarray, r_peaks: np.ndarray, fs: int) -> tuple[np.ndarray, np.ndarray]:
    """QRS onsets and T-wave ends per beat, NaN where not found.

    neurokit2's "prominence" delineator (Emrich et al. 2024). Chosen on LUDB's train and validation records
    (137 non-paced, lead ii, record median QT against the cardiologists' QRS onset to T end): median absolute
    error 16 ms, 98 % within 40 ms, none off by more than 100 ms; the "peak" method used before read 23 ms,
    81 %, 11, its T ends often a wave late and its Q peaks, taken as the QRS start, sometimes on the P wave
    (a GE MUSE export: 120-250 ms before R); "dwt" read 48 ms, 46 %, 19 (``evaluation.ecg_qt``). Where the
    prominence method finds no edge (its T-wave search ends early at fast rates: ECGSYN at 110 bpm got none),
    the "peak" method's Q peak and T end fill in, for :func:`plausible_beats` to judge like the others.
    """
    nan = np.full(r_peaks.size, np.nan)
    if r_peaks.size < 3:
        return nan, nan.copy()
    on, off = _waves(cleaned, r_peaks, fs, "prominence", "ECG_R_Onsets")
    if np.isnan(on).any() or np.isnan(off).any():
        on_peak, off_peak = _waves(cleaned, r_peaks, fs, "peak", "ECG_Q_Peaks")
        on, off = np.where(np.isnan(on), on_peak, on), np.where(np.isnan(off), off_peak, off)
    return on, off


def _waves(cleaned: np.ndarray, r_peaks: np.ndarray, fs: int, method: str, onset: str):
    """One neurokit2 delineator's QRS onsets (its ``onset`` wave) and T-wave ends; NaN where it failed."""
    nan = np.full(r_peaks.size, np.nan)
    try:
        with _warnings.catch_warnings():
            _warnings.simplefilter("ignore")
            _, waves = nk.ecg_delineate(cleaned, r_peaks, sampling_rate=fs, method=method)
    except Exception:  # noqa: BLE001 - delineation fails on odd morphologies
        return nan, nan.copy()
    on = np.asarray(waves.get(onset, nan), dtype=float)
    off = np.asarray(waves.get("ECG_T_Offsets", nan), dtype=float)
    if on.size != r_peaks.size or off.size != r_peaks.size:
        return nan, nan.copy()
    return on, off


def plausible_beats(r_peaks: np.ndarray, on: np.ndarray, off: np.ndarray, fs: int) -> np.ndarray:
    """Beats whose delineation a cardiologist could accept: the QRS onset 10-150 ms before the R peak (farther
    back it is the P wave), the T wave ending before the next QRS, and QT within :data:`QT_RANGE_S`."""
    nxt = np.append(r_peaks[1:], np.iinfo(int).max)
    lead_in = (r_peaks - on) / fs
    qt = (off - on) / fs
    with np.errstate(invalid="ignore"):
        return (np.isfinite(qt) & (lead_in >= QRS_ONSET_BEFORE_R_S[0]) & (lead_in <= QRS_ONSET_BEFORE_R_S[1])
                & (qt >= QT_RANGE_S[0]) & (qt <= QT_RANGE_S[1]) & (off < nxt))


def measure_qt(r_peaks: np.ndarray, on: np.ndarray, off: np.ndarray, fs: int) -> tuple[float | None, list[str]]:
    """The median QT of the plausible beats, and in words every doubt about it (empty when none).

    Doubts: too few beats delineated plausibly (the QT is then not given), QT varying between beats by more
    than :data:`QT_SPREAD_S`, and a rate-corrected QT (Fridericia, QT / RR^(1/3)) outside :data:`QTC_RANGE_S`,
    which a misplaced T-wave end gives far more often than a patient does.
    """
    ok = plausible_beats(r_peaks, on, off, fs)
    if ok.sum() < 2:
        return None, [("The QT interval could not be measured reliably (QRS onset or T-wave end not found in "
                       "at least two beats).")]
    qts = (off[ok] - on[ok]) / fs
    qt = float(np.median(qts))
    doubts = []
    if ok.sum() < 0.5 * r_peaks.size:
        doubts.append(f"QT was measurable in only {ok.sum()} of {r_peaks.size} beats; check it by eye.")
    spread = float(np.percentile(qts, 75) - np.percentile(qts, 25))
    if spread > QT_SPREAD_S:
        doubts.append(f"QT varies between beats (interquartile range {1000 * spread:.0f} ms); the median "
                      f"{1000 * qt:.0f} ms may be off: check the T-wave end by eye.")
    rr = float(np.median(np.diff(r_peaks))) / fs
    qtc = qt / rr ** (1 / 3)
    if not QTC_RANGE_S[0] <= qtc <= QTC_RANGE_S[1]:
        doubts.append(f"QT {1000 * qt:.0f} ms at RR {1000 * rr:.0f} ms gives a corrected QT (Fridericia) of "
                      f"{1000 * qtc:.0f} ms, outside the usual {1000 * QTC_RANGE_S[0]:.0f}-"
                      f"{1000 * QTC_RANGE_S[1]:.0f} ms: the T-wave end may be misplaced; check it by eye.")
    return qt, doubts


def device_qt_doubt(qt: float | None, device_qt_ms: float | None) -> list[str]:
    """A doubt when the QT the recording device measured (stored in the file) differs from ours by more than
    :data:`DEVICE_QT_TOLERANCE_S`."""
    if qt is None or device_qt_ms is None or abs(qt - device_qt_ms / 1000) <= DEVICE_QT_TOLERANCE_S:
        return []
    return [(f"QT {1000 * qt:.0f} ms measured here differs from the device's own {device_qt_ms:.0f} ms "
             "(stored in the file); check the QRS onset and T-wave end by eye.")]


def _r_peaks(signal: np.ndarray, live: list[int], leads, n: int, fs: int):
    """Cleaned leads, consensus R-peaks, the lead they were placed on and each lead's agreement."""
    cleaned = np.zeros_like(signal)
    peaks = {}
    for k in live:
        cleaned[k, :n] = clean(signal[k, :n], fs)
        peaks[leads[k]] = lead_peaks(cleaned[k, :n], fs)
    return (cleaned, *detect_r_peaks(peaks, fs))


def process_ecg(ecg: Ecg) -> EcgAnalysis:
    """Analyse a standard :class:`Ecg`; never raises for difficult rhythms (see ``warnings``)."""
    fs, n = ecg.fs, ecg.valid_samples
    notes: list[str] = []
    signal = np.asarray(ecg.signal, dtype=np.float64)
    live = [k for k in range(len(ecg.leads)) if np.ptp(signal[k, :n]) > 1e-6]
    cleaned, r_peaks, lead, share = _r_peaks(signal, live, ecg.leads, n, fs)
    spikes = spike_samples(signal[live, :n]) if len(live) >= 4 else np.array([], dtype=int)
    pacing = paces(spikes, r_peaks, fs)
    if pacing:  # the detector may have taken the spikes for beats: again, on the ECG without them
        blanked = blank_spikes(signal, spikes, fs)
        again = _r_peaks(blanked, live, ecg.leads, n, fs)
        if again[1].size >= r_peaks.size:  # kept only if no beat was lost with the spikes (LUDB 45 lost 7 of 8)
            signal, (cleaned, r_peaks, lead, share) = blanked, again
    lead_agreement = {name: share.get(name) for name in ecg.leads}  # None: flat lead
    if lead is not None and lead != "II":
        notes.append(f"Lead II is not usable; R-peaks were placed on lead {lead}.")

    n_phase = signal.shape[1]
    empty = np.array([])
    if r_peaks.size < 2:
        notes.append("No regular heartbeats could be detected, so heart rate, QT, cardiac phase and the "
                     "cycle could not be computed. Check that this is a 12-lead ECG with a visible QRS.")
        phase, valid = cardiac_phase(r_peaks, n_phase)
        return EcgAnalysis(r_peaks, lead, None, empty, None, empty, empty, phase, valid, None,
                           "Unacceptable", None, lead_agreement, cleaned.astype(np.float32), warnings=notes)

    rr = np.diff(r_peaks) / fs
    hr = 60.0 / float(np.median(rr))
    rr_cv = float(np.std(rr) / np.mean(rr)) if rr.size >= 2 else None
    if not HR_RANGE_BPM[0] <= hr <= HR_RANGE_BPM[1]:
        notes.append(f"The heart rate of {hr:.0f} bpm is outside the expected range; "
                     "beat detection may be wrong.")
    if rr_cv is not None and rr_cv > IRREGULAR_RR_CV:
        notes.append("The rhythm is irregular (e.g. atrial fibrillation or ectopic beats); heart rate is the "
                     "median and the selected cycle may not represent every beat.")
    pacing_note = ("Possible pacemaker spikes: they were blanked before R-peaks were placed, but R-peaks and QT "
                   "may be less reliable.")
    if pacing:
        notes.append(pacing_note)

    k_lead = ecg.leads.index(lead)
    quality = lead_quality(cleaned[k_lead, :n], r_peaks, fs)
    on, off = _delineate(cleaned[k_lead, :n], r_peaks, fs)
    qt, qt_doubts = measure_qt(r_peaks, on, off, fs)
    qt_doubts += device_qt_doubt(qt, ecg.metadata.get("device_qt_ms"))
    notes += qt_doubts
    qt_doubts += [pacing_note] if pacing else []
    try:
        with _warnings.catch_warnings():
            _warnings.simplefilter("ignore")
            per_sample = np.asarray(nk.ecg_quality(cleaned[k_lead, :n], rpeaks=r_peaks, sampling_rate=fs,
                                                   method="averageQRS"), dtype=float)
        score = float(np.nanmean(per_sample))
    except Exception:  # noqa: BLE001
        per_sample, score = None, None
    phase, valid = cardiac_phase(r_peaks, n_phase)
    cycle = typical_beat(r_peaks, per_sample, off[np.isfinite(off)] if off.size else None, n)
    return EcgAnalysis(
        r_peaks=r_peaks, r_peak_lead=lead, heart_rate_bpm=hr, rr_s=rr, qt_s=qt, q_peaks=on,
        t_offsets=off, phase=phase, phase_valid=valid, cycle=cycle, quality=quality,
        quality_score=score, lead_agreement=lead_agreement, cleaned=cleaned.astype(np.float32), rr_cv=rr_cv,
        pacing_suspected=pacing, warnings=notes, qt_doubts=qt_doubts,
    )
