"""Philips Sierra / PhilipsECG XML (v1.03, v1.04): the waveforms decoded here, following the format's
reference implementation (sierra-ecg-tools, whose Python port ``sierraecg`` the tests compare against).

``<parsedwaveforms>`` holds the leads as Base64 (or "Plain" whitespace-separated) 16-bit samples, either as
they are or XLI-compressed: per lead, an 8-byte header and a 10-bit LZW stream of the high bytes then the low
bytes of second differences. In XLI data the limb leads III, aVR, aVL and aVF are stored as residuals and
reconstituted from I and II. The ``sierraecg`` package is not used for reading because it refuses every
uncompressed file (it writes into a read-only buffer), would apply the limb-lead reconstruction to them too
(the reference implementation applies it to XLI data only), reads no "Plain" data, and spends ~0.3 s per
10-s file in per-sample Python loops (this decoder: a few ms).
"""

from __future__ import annotations

import base64
import binascii
from xml.etree.ElementTree import Element

import numpy as np

from ..standardise import Recording
from ..types import EcgError
from ._common import child, child_text, device_qt_ms, find_first

DEFAULT_UV_PER_LSB = 5.0
DOCUMENT_TYPES = ("SierraECG", "PhilipsECG")
VERSIONS = ("1.03", "1.04", "1.04.01", "1.04.02")
STD_12 = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
MAX_LEADS = 16  # the DXL algorithm stores 16 channels; the last four are unused
MAX_SAMPLES_PER_LEAD = 2_000_000  # a resting ECG is 10 s (5,000 samples); Philips writes no Holters
DIFFERENT_LENGTHS = "The leads in this Philips ECG XML have different lengths; the file may be damaged."
_LZW_BITS = 10
_LZW_END = (1 << _LZW_BITS) - 1  # the all-ones code ends a stream; codes up to _LZW_END - 1 name strings


def _text(root: Element, *path: str) -> str | None:
    el = root
    for name in path[:-1]:
        el = child(el, name) if el is not None else None
    return child_text(el, path[-1]) if el is not None else None


def _version(root: Element) -> str:
    doc_type, doc_version = _text(root, "documentinfo", "documenttype"), _text(root, "documentinfo", "documentversion")
    if doc_type not in DOCUMENT_TYPES or doc_version not in VERSIONS:
        raise EcgError(f"This Philips ECG XML ({doc_type or 'no document type'} {doc_version or 'no version'}) is "
                       f"not supported; versions {', '.join(VERSIONS)} of SierraECG / PhilipsECG are read.")
    return f"{doc_type} {doc_version}"


def _int(value: str | None, what: str) -> int:
    try:
        return int(str(value).strip())
    except ValueError:
        raise EcgError(f"This Philips ECG XML has no readable {what} ({str(value)[:40]!r}).") from None


def _resolution_uv(signal: Element | None) -> float:
    """Amplitude resolution in uV per LSB (``signalresolution`` in v1.03, ``resolution`` in v1.04)."""
    for name in ("signalresolution", "resolution"):
        text = child_text(signal, name) if signal is not None else None
        if text:
            try:
                value = float(text)
            except ValueError:
                break
            if np.isfinite(value) and value > 0:
                return value
    return DEFAULT_UV_PER_LSB


def _labels(waveforms: Element, signal: Element | None) -> list[str]:
    """Lead names: ``leadlabels`` (v1.04), else the standard 12-lead order for as many channels as allocated."""
    if waveforms.get("leadlabels"):
        count = _int(waveforms.get("numberofleads", len(waveforms.get("leadlabels").split())), "lead count")
        labels = waveforms.get("leadlabels").split()[:count]
    else:
        count = _int(child_text(signal, "numberchannelsallocated") if signal is not None else None, "channel count")
        acquisition = child_text(signal, "acquisitiontype") if signal is not None else None
        if acquisition not in (None, "STD-12"):
            raise EcgError(f"This Philips ECG XML uses the lead set {acquisition!r}; only the standard 12 leads "
                           "are read.")
        labels = list(STD_12[:count])
    if not 1 <= len(labels) <= MAX_LEADS:
        raise EcgError(f"This Philips ECG XML declares {len(labels)} leads; 1 to {MAX_LEADS} are read.")
    return labels


def lzw_decode(data: bytes, limit: int) -> bytes:
    """The bytes of one XLI chunk's 10-bit LZW stream (codes most significant bit first, no dictionary reset,
    the dictionary full at code 1022); more than ``limit`` bytes means a damaged chunk."""
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8))
    n_codes = bits.size // _LZW_BITS
    codes = bits[: n_codes * _LZW_BITS].reshape(n_codes, _LZW_BITS) @ (1 << np.arange(_LZW_BITS - 1, -1, -1))
    table = [bytes([k]) for k in range(256)]
    out, previous, size = [], b"", 0
    for code in codes.tolist():
        if code >= _LZW_END:
            break
        if code < len(table):
            word = table[code]
        elif code == len(table) and previous:  # the one string the decoder has not built yet
            word = previous + previous[:1]
        else:
            raise EcgError("This Philips ECG XML's compressed waveform is damaged (an LZW code that names nothing).")
        if previous and len(table) < _LZW_END:
            table.append(previous + word[:1])
        out.append(word)
        size += len(word)
        if size > limit:
            raise EcgError("This Philips ECG XML's compressed waveform decodes to more samples than it declares.")
        previous = word
    return b"".join(out)


def xli_decode(data: bytes, n_leads: int, samples_per_lead: int) -> list[np.ndarray]:
    """Up to ``n_leads`` XLI chunks as int64 samples: header (payload size, 2 unused bytes, signed first
    residual), then LZW bytes = high bytes, low bytes of 16-bit values: the first two samples, then second
    differences ``x[i+1] = 2 x[i] - x[i-1] - (v[i] - 64)`` (the first residual taken from the header)."""
    leads, offset = [], 0
    while offset + 8 <= len(data) and len(leads) < n_leads:
        size = int.from_bytes(data[offset:offset + 4], "little", signed=True)
        first = int.from_bytes(data[offset + 6:offset + 8], "little", signed=True)
        offset += 8
        if size < 0 or offset + size > len(data):
            raise EcgError("This Philips ECG XML's compressed waveform is truncated (a lead's data ends early).")
        raw = lzw_decode(data[offset:offset + size], limit=2 * samples_per_lead + 1)
        offset += size
        raw += b"\x00" * (len(raw) % 2)
        half = len(raw) // 2
        values = ((np.frombuffer(raw[:half], np.uint8).astype(np.uint16) << 8)
                  | np.frombuffer(raw[half:], np.uint8)).view(np.int16).astype(np.int64)
        if values.size >= 3:
            residuals = np.concatenate([[first], values[2:-1] - 64])
            second = -residuals  # x[i] - 2 x[i-1] + x[i-2] for i >= 2
            first_difference = (values[1] - values[0]) + np.cumsum(second)
            values = np.concatenate([values[:2], values[1] + np.cumsum(first_difference)])
        leads.append(values)
    return leads


def reconstitute_limb_leads(leads: list[np.ndarray]) -> None:
    """XLI stores III, aVR, aVL, aVF as residuals of I and II (integer halves rounded down, as sierraecg)."""
    lead_i, lead_ii = leads[0], leads[1]
    leads[2] = lead_ii - lead_i - leads[2]
    leads[3] = -leads[3] - np.floor_divide(lead_i + lead_ii, 2)
    leads[4] = np.floor_divide(lead_i - leads[2], 2) - leads[4]
    leads[5] = np.floor_divide(lead_ii + leads[2], 2) - leads[5]


def _samples(waveforms: Element, labels: list[str], samples_per_lead: int) -> tuple[list[np.ndarray], str]:
    """The stored leads and how they were stored ("XLI", "none")."""
    encoding = waveforms.get("dataencoding", "Base64")
    text = waveforms.text or ""
    if encoding == "Plain":
        try:
            flat = np.array(text.split(), dtype=np.int64)
        except (ValueError, OverflowError):
            raise EcgError("This Philips ECG XML's plain waveform holds values that are not whole numbers.") from None
        return [flat[k * samples_per_lead:(k + 1) * samples_per_lead] for k in range(len(labels))], "none"
    if encoding != "Base64":
        raise EcgError(f"This Philips ECG XML's waveform encoding {encoding!r} is not supported (Base64 and Plain "
                       "are read).")
    try:
        data = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise EcgError("This Philips ECG XML's waveform is not valid Base64; the file may be damaged.") from None
    method = waveforms.get("compression") or (
        waveforms.get("compressmethod", "XLI") if waveforms.get("compressflag", "False").lower() == "true"
        else "Uncompressed")
    if method == "XLI":
        leads = xli_decode(data, len(labels), samples_per_lead)
        if len({lead.size for lead in leads}) > 1:
            raise EcgError(DIFFERENT_LENGTHS)
        if len(leads) >= 6 and labels[:6] == list(STD_12[:6]):
            reconstitute_limb_leads(leads)
        return leads, "XLI"
    if method != "Uncompressed":
        raise EcgError(f"This Philips ECG XML's compression {method!r} is not supported (XLI and none are read).")
    flat = np.frombuffer(data[: len(data) // 2 * 2], dtype="<i2").astype(np.int64)
    return [flat[k * samples_per_lead:(k + 1) * samples_per_lead] for k in range(len(labels))], "none"


def read_philips(content: bytes, root: Element) -> Recording:
    """A Philips XML (already parsed safely into ``root``) as a recording in mV."""
    document = _version(root)
    waveforms = find_first(root, "parsedwaveforms")
    if waveforms is None:
        raise EcgError("This Philips ECG XML contains no waveform (<parsedwaveforms> is missing).")
    signal_info = find_first(root, "signalcharacteristics")
    fs = _int(child_text(signal_info, "samplingrate") if signal_info is not None else None, "sampling rate")
    duration_ms = _int(waveforms.get("durationperchannel"), "duration per channel")
    if fs <= 0 or duration_ms <= 0:
        raise EcgError(f"This Philips ECG XML declares a sampling rate of {fs} Hz and a duration of {duration_ms} "
                       "ms; both must be positive.")
    samples_per_lead = duration_ms * fs // 1000
    if samples_per_lead > MAX_SAMPLES_PER_LEAD:
        raise EcgError(f"This Philips ECG XML declares {samples_per_lead:,} samples per lead; a resting ECG has "
                       f"thousands (at most {MAX_SAMPLES_PER_LEAD:,} are read).")
    labels = _labels(waveforms, signal_info)
    leads, compression = _samples(waveforms, labels, samples_per_lead)
    pairs = [(label, lead) for label, lead in zip(labels, leads) if lead.size]
    if not pairs:
        raise EcgError("This Philips ECG XML contains no waveform samples.")
    if len({lead.size for _, lead in pairs}) > 1:
        raise EcgError(DIFFERENT_LENGTHS)
    uv = _resolution_uv(signal_info)
    measured = find_first(root, "globalmeasurements")
    device_qt = device_qt_ms(child_text(measured, "meanqtint")) if measured is not None else {}
    return Recording(
        labels=[label for label, _ in pairs],
        signal=np.stack([lead for _, lead in pairs]).astype(np.float64) * uv * 1e-3,
        fs=float(fs),
        source_format="philips_xml",
        metadata={"document": document, "uv_per_lsb": uv, "compression": compression, **device_qt},
    )
