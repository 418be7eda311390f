"""WFDB records (PhysioNet: .hea header + .dat or .mat signal file), read with the ``wfdb`` package."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import wfdb

from ..standardise import Recording
from ..types import EcgError
from ._common import damaged, mv_per_unit

SIGNAL_SUFFIXES = (".dat", ".mat")
MAX_SIGNALS = 64  # 12 leads and any extra channels, many times over
MAX_VALUES = 50_000_000  # signals x samples: a 10-s ECG is 60 000; 50 M is a 24-h Holter's order


def _too_many_signals(n: int) -> EcgError:
    return EcgError(f"This WFDB header declares {n:,} signals; an ECG has 12 leads (at most {MAX_SIGNALS} channels "
                    "are accepted).")


def _bad_rate(rate) -> EcgError:
    return EcgError(f"This WFDB header states a sampling rate of {rate} Hz; it must be a positive number.")


def check_record_line(header_text: str) -> None:
    """What must be refused before wfdb parses the record line: a multi-segment record (wfdb follows its
    segments, without end when they name the record itself), millions of signals (it builds per-signal
    lists first) and a zero or negative sampling rate (its parser does not take the sign and falls back to
    250 Hz). The rest is checked on wfdb's own reading of the header (:func:`check_header`)."""
    line = next((ln for ln in header_text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")), "")
    fields = line.split()
    if fields and "/" in fields[0]:  # found by the fuzzer: segments naming the record itself recurse for ever
        raise EcgError("This is a multi-segment WFDB record (a long recording stored in segments), which is not "
                       "supported; export the 10-second ECG as a single-segment record.")
    if len(fields) >= 2 and fields[1].isdigit() and int(fields[1]) > MAX_SIGNALS:
        raise _too_many_signals(int(fields[1]))
    rate = re.match(r"[+-]?[\d.]+", fields[2]) if len(fields) >= 3 else None
    if rate and float(rate.group().rstrip(".") or 0) <= 0:
        raise _bad_rate(fields[2])


def check_header(header) -> None:
    """Refuse what wfdb would act on blindly, as wfdb read it: too many signals, a zero, negative or
    unreadable sampling rate (it would fall back to 250 Hz and silently mistime the ECG), or a length far
    beyond any ECG (reading it takes seconds before anything fails)."""
    n_signals, fs, length = header.n_sig or 0, header.fs, header.sig_len
    if not 1 <= n_signals <= MAX_SIGNALS:
        raise _too_many_signals(n_signals)
    if fs is None or not np.isfinite(float(fs)) or float(fs) <= 0:
        raise _bad_rate(fs)
    if length is not None and n_signals * int(length) > MAX_VALUES:
        raise EcgError(f"This WFDB record declares {int(length):,} samples per signal, far more than a resting "
                       "ECG holds; long-term (Holter) recordings are not supported.")


def record_base(path: Path) -> Path:
    """The record path without extension, given the header or the signal file."""
    return path.with_suffix("") if path.suffix.lower() in (".hea", *SIGNAL_SUFFIXES) else path


def wfdb_files(path: Path) -> list[Path]:
    """The files a WFDB record consists of (header plus the signal files it names), for size checks."""
    base = record_base(path)
    header = base.with_suffix(".hea")
    files = [header]
    if header.is_file():
        with damaged("WFDB header"):
            names = {line.split()[0] for line in header.read_text(errors="replace").splitlines()[1:]
                     if line.strip() and not line.startswith("#")}
        files += [header.parent / n for n in sorted(names) if (header.parent / n).is_file()]
    return files


def read_wfdb(path: Path) -> Recording:
    """Read a WFDB record from disk (it needs the header and the signal file side by side)."""
    base = record_base(path)
    if not base.with_suffix(".hea").is_file():
        raise EcgError(
            f"The WFDB header {base.name}.hea was not found next to the signal file; "
            "WFDB recordings need both the .hea and the .dat/.mat file."
        )
    with damaged("WFDB"):
        check_record_line(base.with_suffix(".hea").read_text(errors="replace"))
        check_header(wfdb.rdheader(str(base)))
        rec = wfdb.rdrecord(str(base))
    if rec.p_signal is None or rec.p_signal.size == 0:
        raise EcgError("This WFDB record contains no samples.")
    factors = [mv_per_unit(u) for u in rec.units]
    calibrated = all(f is not None for f in factors)
    scale = np.array([f if f is not None else 1.0 for f in factors])
    signal = rec.p_signal.T * scale[:, None]
    return Recording(
        labels=list(rec.sig_name),
        signal=signal,
        fs=float(rec.fs),
        source_format="wfdb",
        calibrated=calibrated,
        metadata={"units_in_file": list(rec.units)},
    )
