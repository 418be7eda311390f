"""What a clinician checks first about one ECG, as one dict shared by the CLI and the app."""

from __future__ import annotations

from .process import EcgAnalysis
from .types import Ecg


def ecg_report(ecg: Ecg, analysis: EcgAnalysis) -> dict:
    """Format, leads, rates, duration (with crop/pad), amplitudes, HR, quality, QT/RR, cycle and warnings."""
    meta = ecg.metadata
    summary = analysis.summary(ecg.fs)
    summary.pop("r_peaks")
    return {
        "format": ecg.source_format,
        "leads": list(ecg.leads),
        "derived_leads": meta.get("derived_leads", []),
        "flat_leads": meta.get("flat_leads", []),
        "original_rate_hz": meta.get("original_fs"),
        "original_duration_s": meta.get("original_duration_s"),
        "rate_hz": ecg.fs,
        "duration_s": ecg.duration_s,
        "crop": meta.get("crop"),
        "pad": meta.get("pad"),
        "amplitudes": "mV" if ecg.calibrated else "not calibrated",
        **summary,
        "warnings": list(meta.get("warnings", [])) + list(analysis.warnings),
    }


def fmt(value, unit: str = "", scale: float = 1.0, nd: int = 0) -> str:
    """A number for people: ``not available`` for None, else scaled, rounded and with its unit."""
    return "not available" if value is None else f"{value * scale:.{nd}f}{unit}"


def quality_text(report: dict) -> str:
    """The quality class with what it is based on, e.g. "Excellent: neurokit2 zhao2018 class of lead II (...)".

    The class stands alone: the mean "averageQRS" index (``averageqrs_mean``) is scaled within each recording,
    so printed beside the class as its "score" it read as a contradiction ("Unacceptable (score 0.77)")."""
    return f"{report['quality']}: {report['quality_method']}"
