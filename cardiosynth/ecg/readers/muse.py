"""GE MUSE RestingECG XML. No maintained library reads it, so this is a small parser: the ``Rhythm``
waveform (not ``Median``), one ``LeadData`` per stored lead with base64 little-endian int16 samples and
``LeadAmplitudeUnitsPerBit``; MUSE usually stores only I, II and V1-V6 (the others are derived later)."""

from __future__ import annotations

import base64
import binascii
from xml.etree.ElementTree import Element

import numpy as np

from ..standardise import Recording
from ..types import EcgError
from ._common import child_text, damaged, device_qt_ms, find_all, find_first, mv_per_unit


def _rhythm_waveform(root: Element) -> Element:
    waveforms = list(find_all(root, "Waveform"))
    for waveform in waveforms:
        if (child_text(waveform, "WaveformType") or "").lower() == "rhythm":
            return waveform
    if waveforms:
        raise EcgError("This GE MUSE file contains only median beats, not the 10-second rhythm strip.")
    raise EcgError("This GE MUSE file contains no waveform.")


def _lead(lead: Element) -> tuple[str, np.ndarray]:
    label = child_text(lead, "LeadID") or "?"
    try:
        raw = base64.b64decode(child_text(lead, "WaveFormData") or "")
    except (binascii.Error, ValueError):
        raise EcgError(f"The samples of lead {label} in this GE MUSE file are damaged.") from None
    size = int(child_text(lead, "LeadSampleSize") or 2)
    if size != 2 or len(raw) % 2:
        raise EcgError(f"The samples of lead {label} in this GE MUSE file are damaged or in an unknown encoding.")
    samples = np.frombuffer(raw, dtype="<i2").astype(np.float64)
    expected = child_text(lead, "LeadSampleCountTotal")
    if expected and int(expected) != samples.size:
        raise EcgError(f"Lead {label} in this GE MUSE file is truncated ({samples.size} of {expected} samples).")
    per_bit = float(child_text(lead, "LeadAmplitudeUnitsPerBit") or 1.0)
    factor = mv_per_unit(child_text(lead, "LeadAmplitudeUnits") or "MICROVOLTS")
    if factor is None:
        raise EcgError(f"Unknown amplitude unit in lead {label} of this GE MUSE file.")
    return label, samples * per_bit * factor


def read_muse(root: Element) -> Recording:
    with damaged("GE MUSE XML"):
        waveform = _rhythm_waveform(root)
        base = float(child_text(waveform, "SampleBase") or "nan")
        exponent = float(child_text(waveform, "SampleExponent") or 0)
        pairs = [_lead(lead) for lead in waveform if lead.tag.endswith("LeadData")]
    if not pairs:
        raise EcgError("The rhythm strip in this GE MUSE file contains no leads.")
    if len({len(x) for _, x in pairs}) > 1:
        raise EcgError("The leads in this GE MUSE file have different lengths; the file may be damaged.")
    version = find_first(root, "MuseVersion")
    fs = base * 10**exponent if np.isfinite(base) else None
    measurements = find_first(root, "RestingECGMeasurements")
    device_qt = device_qt_ms(child_text(measurements, "QTInterval")) if measurements is not None else {}
    return Recording(
        labels=[label for label, _ in pairs],
        signal=np.stack([x for _, x in pairs]),
        fs=fs,
        source_format="ge_muse_xml",
        metadata={**({"muse_version": version.text.strip()} if version is not None and version.text else {}),
                  **device_qt},
    )
