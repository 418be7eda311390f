"""EDF, EDF+ and BDF files, read with ``pyedflib``.

pyedflib only opens paths. For uploads given as bytes we first check the header and the file length in
memory (so truncated or fake files are rejected without touching the disk), then hand the bytes over as an
anonymous in-memory file (Linux ``memfd``); only where that is unavailable a temporary file is used.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyedflib

from ..standardise import Recording
from ..types import EcgError
from ._common import damaged, mv_per_unit


def _field(header: bytes, start: int, length: int) -> str:
    return header[start:start + length].decode("ascii", errors="replace").strip()


def check_edf_bytes(content: bytes) -> None:
    """Reject truncated or malformed EDF/BDF content before any library sees it."""
    bad = EcgError("This EDF file is truncated or damaged (its header does not match its size).")
    if len(content) < 256:
        raise bad
    try:
        header_bytes = int(_field(content, 184, 8))
        n_records = int(_field(content, 236, 8))
        n_signals = int(_field(content, 252, 4))
    except ValueError:
        raise bad from None
    if n_signals < 1 or header_bytes != 256 * (n_signals + 1) or len(content) < header_bytes:
        raise bad
    offset = 256 + n_signals * 216  # samples-per-record field of each signal
    try:
        per_record = [int(_field(content, offset + 8 * k, 8)) for k in range(n_signals)]
    except ValueError:
        raise bad from None
    width = 3 if content[:1] == b"\xff" else 2  # BDF stores 24-bit samples
    if n_records < 1 or len(content) < header_bytes + n_records * sum(per_record) * width:
        raise bad


@contextlib.contextmanager
def _as_path(content: bytes) -> Iterator[str]:
    """A filesystem path for in-memory bytes, preferring an anonymous memory file."""
    if hasattr(os, "memfd_create") and Path("/proc/self/fd").is_dir():
        fd = os.memfd_create("cardiosynth-edf")
        try:
            os.write(fd, content)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "upload.edf"
        path.write_bytes(content)
        yield str(path)


def read_edf(content: bytes | None = None, path: Path | None = None) -> Recording:
    """Read the ECG channels of an EDF/EDF+/BDF file (annotation channels are skipped)."""
    if content is not None:
        check_edf_bytes(content)
    with contextlib.ExitStack() as stack:
        file_name = str(path) if content is None else stack.enter_context(_as_path(content))
        with damaged("EDF"):
            reader = stack.enter_context(contextlib.closing(pyedflib.EdfReader(file_name)))
            labels = [label.strip() for label in reader.getSignalLabels()]
            keep = [k for k, label in enumerate(labels) if "annotation" not in label.lower()]
            if not keep:
                raise EcgError("This EDF file contains no signals, only annotations.")
            rates = {float(reader.getSampleFrequency(k)) for k in keep}
            if len(rates) > 1:
                raise EcgError(
                    "The leads in this EDF file were sampled at different rates "
                    f"({', '.join(f'{r:g}' for r in sorted(rates))} Hz); this is not supported."
                )
            units = [reader.getPhysicalDimension(k).strip() for k in keep]
            signal = np.stack([reader.readSignal(k) for k in keep])
            equipment = reader.getEquipment().strip()
    factors = [mv_per_unit(u) for u in units]
    calibrated = all(f is not None for f in factors)
    scale = np.array([f if f is not None else 1.0 for f in factors])
    return Recording(
        labels=[labels[k] for k in keep],
        signal=signal * scale[:, None],
        fs=rates.pop(),
        source_format="edf",
        calibrated=calibrated,
        metadata={"units_in_file": units, **({"device": equipment} if equipment else {})},
    )
