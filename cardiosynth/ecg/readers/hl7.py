"""HL7 v3 annotated ECG (aECG) XML, the FDA submission format. No maintained library reads it, so this is
a small parser: the RHYTHM series (not the representative beat), one ``sequence`` per lead with
``origin``/``scale`` and the samples spelled out in ``digits``; the sample interval is the ``increment`` of
the time sequence."""

from __future__ import annotations

from xml.etree.ElementTree import Element

import numpy as np

from ..standardise import Recording
from ..types import EcgError
from ._common import child, damaged, device_qt_ms, find_all, local, mv_per_unit

_SECONDS = {"s": 1.0, "ms": 1e-3, "us": 1e-6}


def _rhythm_sequence_set(root: Element) -> Element:
    for series in find_all(root, "series"):  # derivedSeries (representative beats) have another tag
        code = child(series, "code")
        if code is not None and code.get("code", "").upper() != "RHYTHM":
            continue
        for sequence_set in find_all(series, "sequenceSet"):
            if any(local(el.tag) == "digits" for el in sequence_set.iter()):
                return sequence_set
    raise EcgError("This HL7 aECG file contains no rhythm waveform.")


def _quantity(value: Element, name: str, default: float, to_unit: dict | None = None) -> float:
    el = child(value, name)
    if el is None:
        return default
    number = float(el.get("value", default))
    unit = el.get("unit")
    if to_unit is not None:
        factor = to_unit.get(unit or "s")
    else:
        factor = mv_per_unit(unit) if unit else 1e-3
    if factor is None:
        raise EcgError(f"Unknown unit {unit!r} in this HL7 aECG file.")
    return number * factor


def read_hl7(root: Element) -> Recording:
    labels: list[str] = []
    leads: list[np.ndarray] = []
    interval_s = None
    with damaged("HL7 aECG"):
        for sequence in find_all(_rhythm_sequence_set(root), "sequence"):
            code_el, value = child(sequence, "code"), child(sequence, "value")
            if code_el is None or value is None:
                continue
            code = code_el.get("code", "")
            if code.upper().startswith("TIME"):
                interval_s = _quantity(value, "increment", float("nan"), _SECONDS)
                continue
            digits = child(value, "digits")
            if digits is None or not (digits.text or "").strip():
                continue
            origin_mv = _quantity(value, "origin", 0.0)
            scale_mv = _quantity(value, "scale", 1e-3)
            samples = np.array(digits.text.split(), dtype=np.float64)
            with np.errstate(over="ignore", invalid="ignore"):  # checked below, in words, not on stderr
                lead = origin_mv + scale_mv * samples
            if not np.all(np.isfinite(lead)):
                raise EcgError(f"Lead {code or '(unnamed)'} of this HL7 aECG file has an origin or scale "
                               f"({origin_mv:g} mV, {scale_mv:g} mV per count) that gives amplitudes beyond any "
                               "number; the file is damaged.")
            labels.append(code)
            leads.append(lead)
    if not leads:
        raise EcgError("This HL7 aECG file contains no lead data.")
    if len({len(x) for x in leads}) > 1:
        raise EcgError("The leads in this HL7 aECG file have different lengths; the file may be damaged.")
    fs = 1.0 / interval_s if interval_s and np.isfinite(interval_s) and interval_s > 0 else None
    return Recording(labels=labels, signal=np.stack(leads), fs=fs, source_format="hl7_aecg",
                     metadata=_annotated_qt(root))


def _annotated_qt(root: Element) -> dict:
    """The first QT annotation (``MDC_ECG_TIME_PD_QT``, the global one where there are several) in ms, as
    ``device_qt_ms``: the QT the file's maker measured, for checking ours against."""
    for annotation in find_all(root, "annotation"):
        code, value = child(annotation, "code"), child(annotation, "value")
        if code is not None and value is not None and code.get("code") == "MDC_ECG_TIME_PD_QT":
            scale = _SECONDS.get(value.get("unit", "ms"))
            if scale is None:
                return {}
            try:
                return device_qt_ms(str(float(value.get("value", "")) * scale * 1000))
            except ValueError:
                return {}
    return {}
