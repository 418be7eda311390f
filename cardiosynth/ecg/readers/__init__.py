"""``read_ecg``: one entry point for every supported ECG format, chosen by content sniffing.

One small module per format; this dispatcher only finds the bytes, checks the size, sniffs the format,
calls the reader and standardises the result (see :mod:`cardiosynth.ecg.standardise`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..standardise import Recording, standardise
from ..types import Ecg, EcgError
from ._common import parse_xml
from .cardiosoft import read_cardiosoft
from .dicom import read_dicom
from .edf import read_edf
from .hl7 import read_hl7
from .muse import read_muse
from .philips import read_philips
from .physionet import SIGNAL_SUFFIXES, lone_header_error, read_wfdb, signal_file_names, wfdb_files
from .scp import read_scp
from .sniff import SUPPORTED_FORMATS, sniff
from .table import load_npy, read_array, read_csv, read_frame

#: Default upload limit; override per call (``max_bytes``) or with CARDIOSYNTH_ECG_MAX_BYTES.
DEFAULT_MAX_BYTES = 20_000_000

__all__ = ["read_ecg", "read_recording", "sniff", "DEFAULT_MAX_BYTES", "SUPPORTED_FORMATS"]


def _max_bytes(max_bytes: int | None) -> int:
    if max_bytes is not None:
        return int(max_bytes)
    return int(os.environ.get("CARDIOSYNTH_ECG_MAX_BYTES", DEFAULT_MAX_BYTES))


def _check_size(n_bytes: int, limit: int) -> None:
    if n_bytes > limit:
        raise EcgError(
            f"The file is {n_bytes / 1e6:.1f} MB, larger than the {limit / 1e6:g} MB limit for an ECG upload "
            "(a 10-second 12-lead ECG is usually well under 1 MB; long (Holter) recordings are not supported)."
        )


def _from_bytes(content: bytes, fs, leads, units) -> Recording:
    fmt = sniff(content)
    if fmt == "dicom":
        return read_dicom(content)
    if fmt == "edf":
        return read_edf(content=content)
    if fmt in ("ge_muse_xml", "philips_xml", "hl7_aecg", "cardiosoft_xml"):
        root = parse_xml(content)
        if fmt == "philips_xml":
            return read_philips(content, root)
        return {"ge_muse_xml": read_muse, "hl7_aecg": read_hl7, "cardiosoft_xml": read_cardiosoft}[fmt](root)
    if fmt == "npy":
        return read_array(load_npy(content), fs, leads, units or "mV")
    if fmt == "text":
        return read_csv(content, fs, units, leads)
    if fmt == "wfdb_header":  # bytes alone never hold the signal file next to them
        text = content.decode("latin-1")
        record = text.lstrip().split(None, 1)[0].split("/")[0]
        raise lone_header_error(f"{record}.hea", signal_file_names(text))
    if fmt == "scp_ecg":
        return read_scp(content)
    raise EcgError(f"Unsupported ECG format {fmt!r}.")  # pragma: no cover


def _from_path(path: Path, fs, leads, units, limit: int) -> Recording:
    if not path.exists():
        raise EcgError(f"The file {path.name} was not found.")
    if not path.is_file():
        raise EcgError(f"The path {str(path)!r} is a folder, not an ECG file.")
    sibling_header = path.suffix.lower() in (".hea", *SIGNAL_SUFFIXES) and path.with_suffix(".hea").is_file()
    if sibling_header and path.suffix.lower() != ".hea" or path.suffix.lower() == ".hea":
        files = wfdb_files(path) if sibling_header else [path]
        _check_size(sum(f.stat().st_size for f in files), limit)
        head = path.with_suffix(".hea").read_bytes() if sibling_header else path.read_bytes()
        if sniff(head) == "wfdb_header":
            return read_wfdb(path)
    _check_size(path.stat().st_size, limit)
    return _from_bytes(path.read_bytes(), fs, leads, units)


def read_recording(source, *, fs: float | None = None, leads: list[str] | None = None,
                   units: str | None = None, max_bytes: int | None = None) -> Recording:
    """What the file holds, before standardisation (labels as in the file, mV where calibrated)."""
    limit = _max_bytes(max_bytes)
    if isinstance(source, np.ndarray):
        _check_size(source.nbytes, limit)
        return read_array(source, fs, leads, units or "mV")
    if isinstance(source, pd.DataFrame):
        return read_frame(source, fs, units)
    if isinstance(source, (bytes, bytearray, memoryview)):
        content = bytes(source)
        _check_size(len(content), limit)
        return _from_bytes(content, fs, leads, units)
    if isinstance(source, (str, os.PathLike)):
        return _from_path(Path(source).expanduser(), fs, leads, units, limit)
    raise TypeError(f"read_ecg expects a path, bytes, a NumPy array or a DataFrame, not {type(source).__name__}")


def read_ecg(source, *, fs: float | None = None, leads: list[str] | None = None, units: str | None = None,
             calibrated: bool | None = None, crop: str = "start", max_bytes: int | None = None) -> Ecg:
    """Read any supported ECG into the standard 12 x 5000 :class:`Ecg` (500 Hz, 10 s, leads by name).

    ``source`` is a path, the file's bytes, a NumPy array (``fs`` required; ``leads`` unless 12 standard
    leads) or a DataFrame with lead-name columns. ``fs`` is needed only where the file does not state it.
    ``units`` overrides the amplitude unit of tables and arrays; ``calibrated`` overrides the amplitude
    calibration flag; ``crop`` picks which 10 s of a longer recording to keep ("start" or "centre").
    Every problem with the input raises :class:`EcgError` with a message meant for the uploader.
    """
    rec = read_recording(source, fs=fs, leads=leads, units=units, max_bytes=max_bytes)
    if calibrated is not None:
        rec.calibrated = calibrated
    return standardise(rec, crop=crop)
