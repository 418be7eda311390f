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
MAX_SKEW = 10_000  # samples a signal lags the others by; real records use 0 to a few
MAX_SAMPLES_PER_FRAME = 1_000  # oversampled signals in a frame; real records use 1 to a few dozen
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
    # found by the fuzzer: a skew of 70 million samples made wfdb allocate and read that many (> 2 s)
    for what, values, limit in (("skew", header.skew, MAX_SKEW), ("samples per frame", header.samps_per_frame,
                                                                    MAX_SAMPLES_PER_FRAME)):
        worst = max((int(v) for v in values or [] if v is not None), default=0)
        if worst > limit:
            raise EcgError(f"This WFDB header declares a signal {what} of {worst:,}; real records use at most a few "
                           f"(up to {limit:,} are read), so the header may be damaged.")


def record_base(path: Path) -> Path:
    """The record path without extension, given the header or the signal file."""
    return path.with_suffix("") if path.suffix.lower() in (".hea", *SIGNAL_SUFFIXES) else path


def signal_file_names(header_text: str) -> list[str]:
    """The signal files a WFDB header names (first field of each signal line), in order, each once, as
    written (relative to the header's folder, as wfdb reads them)."""
    lines = [ln for ln in header_text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    names = list(dict.fromkeys(ln.split()[0] for ln in lines[1:] if ln.split()[0] != "~"))  # "~": no file
    outside = [n for n in names if not _side_by_side(n)]
    if outside:  # wfdb would open any path a header names: a crafted header could read a server's files
        raise EcgError(f"This WFDB header names its signal file as {_shown(outside[0])!r} in another folder "
                       f"({outside[0][:60]!r}); a record's files must sit side by side, named like "
                       "2.dat next to 2.hea.")
    return names


def _side_by_side(name: str) -> bool:
    """A signal file name that stays in the header's folder: no folder part, not a parent or absolute path."""
    return name not in (".", "..") and "/" not in name and "\\" not in name and ":" not in name


def missing_signal_files(header: Path) -> list[str]:
    """The signal files ``header`` names that are not next to it (why a lone .hea cannot be read)."""
    with damaged("WFDB header"):
        return [n for n in signal_file_names(header.read_text(errors="replace")) if not (header.parent / n).is_file()]


def _shown(name: str) -> str:
    """A file name from a header as a message may show it: no folders, no control characters, not too long."""
    return "".join(c for c in Path(name).name if c.isprintable())[:80]


def lone_header_error(header_name: str, missing: list[str]) -> EcgError:
    """One message for a header whose signal file did not come with it: name the files to add, no paths."""
    files = ", ".join(_shown(n) for n in missing[:3]) or f"{_shown(Path(header_name).stem)}.dat"
    return EcgError(f"This is a WFDB header ({_shown(header_name)}); upload its signal file ({files}) "
                    "together with it (on disk, both files must be in the same folder).")


def wfdb_files(path: Path) -> list[Path]:
    """The files a WFDB record consists of (header plus the signal files it names), for size checks."""
    base = record_base(path)
    header = base.with_suffix(".hea")
    files = [header]
    if header.is_file():
        with damaged("WFDB header"):
            names = signal_file_names(header.read_text(errors="replace"))
        files += [header.parent / n for n in names if (header.parent / n).is_file()]
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
    missing = missing_signal_files(base.with_suffix(".hea"))
    if missing:  # wfdb would fail with the server path of the file it looked for
        raise lone_header_error(base.name + ".hea", missing)
    with damaged("WFDB"):
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
