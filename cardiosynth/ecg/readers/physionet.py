"""WFDB records (PhysioNet: .hea header + .dat or .mat signal file), read with the ``wfdb`` package."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import wfdb

from ..standardise import Recording
from ..types import EcgError
from ._common import damaged, mv_per_unit

SIGNAL_SUFFIXES = (".dat", ".mat")


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
