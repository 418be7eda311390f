"""From whatever a reader found to the standard :class:`Ecg` (12 leads by name, 500 Hz, 10 s).

All the checks that make an upload unusable live here, so every format fails the same way with the same
clinician-readable :class:`EcgError`, and every accepted file records what was done to it (derived leads,
resampling, crop or padding) in ``metadata``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np
from scipy.signal import resample_poly

from .leads import derive_limb_leads, standard_lead_name
from .types import DURATION_S, FS, LEADS, N_SAMPLES, Ecg, EcgError

MIN_DURATION_S = 2.0
MIN_FS, MAX_FS = 100.0, 20_000.0
#: Peak-to-peak below this (in the file's units, mV when calibrated) counts as "no signal" in a lead.
FLAT_PTP = 1e-3
#: Calibrated leads spanning more than this many mV peak to peak get a warning: the tallest QRS complexes
#: (marked hypertrophy, in the chest leads) reach about 5-7 mV, so 10 mV is an artefact (electrode pop,
#: movement) or a wrong calibration. It was 20 mV, and an 18 mV artefact passed silently.
MAX_PLAUSIBLE_MV = 10.0
#: Calibrated values beyond this many mV (1000 V) are no recording but a wrong scale or damage: refused before
#: any arithmetic on them can overflow. Uncalibrated counts get room for nV integers.
MAX_VALUE_MV, MAX_VALUE_UNCALIBRATED = 1e6, 1e15
CROP_MODES = ("start", "centre")


@dataclass
class Recording:
    """What a reader found, before standardisation: channels as the file labels them.

    ``signal`` is (channels, samples) in mV when ``calibrated`` (readers convert units), else in the
    file's own units.
    """

    labels: list[str]
    signal: np.ndarray
    fs: float | None
    source_format: str
    calibrated: bool = True
    metadata: dict[str, Any] = field(default_factory=dict)


def _check_fs(fs: float | None) -> float:
    if fs is None:
        raise EcgError(
            "The sampling rate of this recording is not stated: please give it explicitly "
            "(for example 500 Hz), or include a time column."
        )
    try:
        fs = float(fs)
    except (TypeError, ValueError):
        raise EcgError(f"The sampling rate {fs!r} is not a number.") from None
    if not np.isfinite(fs) or fs <= 0:
        raise EcgError(f"The sampling rate {fs} Hz is not valid; it must be a positive number of Hz.")
    if fs < MIN_FS:
        raise EcgError(
            f"The sampling rate {fs:g} Hz is too low for a diagnostic ECG (at least {MIN_FS:g} Hz is needed; "
            "500 Hz is standard): please check the sampling rate."
        )
    if fs > MAX_FS:
        raise EcgError(f"The sampling rate {fs:g} Hz is implausibly high for an ECG; please check it.")
    return fs


def _select_leads(rec: Recording, signal: np.ndarray) -> tuple[dict[str, np.ndarray], list[str]]:
    """Map labels to standard names; returns {name: samples} and the labels that were not ECG leads."""
    if len(rec.labels) != signal.shape[0]:
        raise EcgError(
            f"The file describes {len(rec.labels)} leads but contains data for {signal.shape[0]}; "
            "it may be damaged."
        )
    chosen: dict[str, np.ndarray] = {}
    dropped: list[str] = []
    for label, samples in zip(rec.labels, signal):
        name = standard_lead_name(label)
        if name is None:
            dropped.append(str(label))
        elif name in chosen:
            raise EcgError(f"Lead {name} appears twice in this recording; cannot tell which one to use.")
        else:
            chosen[name] = samples
    return chosen, dropped


def _check_leads(chosen: dict[str, np.ndarray], n_channels: int, dropped: list[str]) -> None:
    if n_channels == 1:
        raise EcgError(
            "This recording has only 1 lead, and a 12-lead ECG is needed (at least two limb leads, "
            "e.g. I and II, and the chest leads V1-V6)."
        )
    limb = [n for n in ("I", "II", "III") if n in chosen]
    missing = [n for n in LEADS[6:] if n not in chosen]
    if len(limb) < 2:
        missing = [n for n in ("I", "II") if n not in chosen] + missing
    if missing:
        found = ", ".join(chosen) or "none"
        hint = f" Channels not recognised as ECG leads: {', '.join(dropped[:8])}." if dropped else ""
        raise EcgError(
            f"This is not a complete 12-lead ECG: lead(s) {', '.join(missing)} are missing "
            f"(recognised leads: {found}).{hint} Leads must be labelled I, II, III, aVR, aVL, aVF, V1-V6."
        )


def _crop_or_pad(signal: np.ndarray, fs: float, crop: str) -> tuple[np.ndarray, int, dict]:
    """Cut to 10 s (choice recorded) or pad the end with each lead's median (valid length recorded)."""
    n_target = int(round(DURATION_S * fs))
    n = signal.shape[1]
    if n > n_target:
        start = 0 if crop == "start" else (n - n_target) // 2
        info = {"mode": crop, "from_s": round(start / fs, 4), "to_s": round((start + n_target) / fs, 4)}
        return signal[:, start:start + n_target], n_target, {"crop": info}
    if n < n_target:
        fill = np.median(signal, axis=1, keepdims=True)
        padded = np.concatenate([signal, np.repeat(fill, n_target - n, axis=1)], axis=1)
        info = {"mode": "end, with each lead's median", "added_s": round((n_target - n) / fs, 4)}
        return padded, n, {"pad": info}
    return signal, n, {}


def _resample(signal: np.ndarray, fs: float) -> np.ndarray:
    """Polyphase resampling to 500 Hz; the per-lead median is removed first so edges do not ring."""
    if fs == FS:
        return signal
    ratio = Fraction(FS / fs).limit_denominator(1000)
    offset = np.median(signal, axis=1, keepdims=True)
    out = resample_poly(signal - offset, ratio.numerator, ratio.denominator, axis=1) + offset
    return out[:, :N_SAMPLES] if out.shape[1] >= N_SAMPLES else np.pad(out, ((0, 0), (0, N_SAMPLES - out.shape[1])), mode="edge")


def standardise(rec: Recording, crop: str = "start") -> Ecg:
    """Validate a reader's :class:`Recording` and return the standard 12 x 5000 :class:`Ecg`."""
    if crop not in CROP_MODES:
        raise ValueError(f"crop must be one of {CROP_MODES}, not {crop!r}")
    fs = _check_fs(rec.fs)
    try:
        signal = np.asarray(rec.signal, dtype=np.float64)
    except (TypeError, ValueError):
        raise EcgError("The recording contains values that are not numbers.") from None
    if signal.ndim != 2 or signal.size == 0:
        raise EcgError("The file contains no ECG samples.")
    chosen, dropped = _select_leads(rec, signal)
    _check_leads(chosen, signal.shape[0], dropped)

    bad = [name for name, x in chosen.items() if not np.all(np.isfinite(x))]
    if bad:
        raise EcgError(
            f"The recording has missing or invalid samples (NaN or infinity) in lead(s) {', '.join(bad)}; "
            "it may be damaged or incompletely exported."
        )
    limit = MAX_VALUE_MV if rec.calibrated else MAX_VALUE_UNCALIBRATED
    huge = [name for name, x in chosen.items() if np.max(np.abs(x)) > limit]
    if huge:
        raise EcgError(
            f"The amplitudes in lead(s) {', '.join(huge)} exceed {limit:g} {'mV' if rec.calibrated else 'units'}, "
            "beyond any ECG: the file's amplitude scale is wrong or the file is damaged."
        )
    n = signal.shape[1]
    if n / fs < MIN_DURATION_S:
        raise EcgError(
            f"The recording is only {n / fs:.2f} s long; at least {MIN_DURATION_S:g} s are needed "
            f"(a standard ECG is {DURATION_S:g} s)."
        )
    ptp = {name: float(np.ptp(x)) for name, x in chosen.items()}
    flat = [name for name, v in ptp.items() if v < FLAT_PTP]
    if len(flat) == len(chosen):
        raise EcgError("All leads are flat (no ECG signal): please check the electrodes or the export.")

    derived = derive_limb_leads(chosen)
    meta: dict[str, Any] = dict(rec.metadata)
    warnings: list[str] = list(meta.pop("warnings", []))
    calibrated = bool(rec.calibrated)
    live = [v for name, v in ptp.items() if name not in flat]
    if calibrated and len(live) >= 6 and np.allclose(live, 1.0, atol=1e-3):
        calibrated = False
        warnings.append("Every lead spans exactly 1 unit: amplitudes are normalised, not millivolts.")
    if flat:
        warnings.append(f"Lead(s) {', '.join(flat)} are flat (no signal recorded).")
    too_large = [name for name, v in ptp.items() if name not in flat and v > MAX_PLAUSIBLE_MV]
    if calibrated and too_large:
        warnings.append(
            f"Amplitudes reach {max(live):.0f} mV peak to peak in lead(s) {', '.join(too_large)}, more than a "
            f"heart produces (at most about {MAX_PLAUSIBLE_MV:g} mV): an artefact, or a wrong amplitude "
            "calibration in the file."
        )
    stacked = np.stack([chosen[name] for name in LEADS])
    cropped, n_valid, crop_info = _crop_or_pad(stacked, fs, crop)
    out = _resample(cropped, fs)
    valid = min(N_SAMPLES, int(round(n_valid * FS / fs)))
    meta.update(
        original_fs=fs,
        original_samples=int(n),
        original_duration_s=round(n / fs, 4),
        original_leads=[str(label) for label in rec.labels],
        derived_leads=derived,
        dropped_channels=dropped,
        flat_leads=flat,
        resampled=fs != FS,
        **crop_info,
    )
    meta["warnings"] = warnings
    return Ecg(
        signal=out.astype(np.float32),
        source_format=rec.source_format,
        calibrated=calibrated,
        valid_samples=valid,
        metadata=meta,
    )
