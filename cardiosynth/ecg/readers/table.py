"""Tables of samples: CSV/TSV text with a lead-name header, pandas DataFrames and NumPy arrays.

Columns are matched by lead name, never by position. The sampling rate comes from the ``fs`` argument, a
time column, or a free-text preface line such as ``Sampling Rate (Hz): 500``; a preface line such as
``Gain (digit/millivolt): 2048`` or a unit in the column names (``I (uV)``) gives the amplitude scale.

A table of bare numbers (no header row) says neither which column is which lead nor how fast it was sampled,
so it is refused unless the caller names both (``leads`` in column order, ``fs``): guessing a lead order
would put a plausible-looking but wrong ECG into the model.
"""

from __future__ import annotations

import io
import re

import numpy as np
import pandas as pd

from ..leads import standard_lead_name
from ..standardise import Recording
from ..types import LEADS, EcgError
from ._common import damaged, mv_per_unit

_TIME_NAMES = re.compile(r"^\s*(time|t|timestamp|seconds|secs?|s|ms|milliseconds)([\s_\-(\[]|$)", re.I)
_RATE_LINE = re.compile(r"(sampl\w*[\s_-]*(rate|freq\w*)|\bfs\b|frequency)[^0-9+-]*([+-]?[0-9]+(\.[0-9]+)?)", re.I)
_GAIN_LINE = re.compile(r"gain[^0-9]*?(digits?|counts?|units?)?\s*/\s*(milli\s*volts?|mv|micro\s*volts?|uv)[^0-9]*([0-9]+(\.[0-9]+)?)", re.I)
_UNIT_IN_NAME = re.compile(r"[\(\[]\s*(mv|uv|µv|μv|nv|v)\s*[\)\]]", re.I)
_DELIMITERS = (",", ";", "\t", "|")
MAX_COLUMNS = 64  # 12 leads, extra leads (V7-V9, V3R...), time and status columns fit many times over
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")

#: How to give a headerless table its lead order and sampling rate, in the command line and the app.
HEADERLESS_HELP = ("give the lead order and the sampling rate: on the command line `--lead-order "
                   "I,II,III,aVR,aVL,aVF,V1,V2,V3,V4,V5,V6 --fs 500` (a `time` entry marks a time column); in "
                   "the app's ECG tab, the 'Table without a header row' fields 'Lead order' and 'Sampling rate (Hz)'")


def _decode(content: bytes) -> str:
    encodings = ("utf-16",) if content[:2] in (b"\xff\xfe", b"\xfe\xff") else ("utf-8-sig", "latin-1")
    for encoding in encodings:
        try:
            return content.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise EcgError("This text file has an unreadable character encoding.")  # pragma: no cover


def _split(line: str) -> tuple[str | None, list[str]]:
    delimiter = max(_DELIMITERS, key=line.count)
    if line.count(delimiter) == 0:
        return None, line.split()
    return delimiter, [cell.strip().strip('"') for cell in line.split(delimiter)]


def _find_header(lines: list[str]) -> tuple[int, str | None]:
    for k, line in enumerate(lines[:50]):
        delimiter, cells = _split(line)
        _check_width(len(cells))
        named = [c for c in cells if standard_lead_name(c) is not None]
        # two lead names, or one lead beside time columns only (a one-lead export: refused later, in words)
        if len(named) >= 2 or named and all(c in named or _TIME_NAMES.match(c) for c in cells if c):
            return k, delimiter
    if _is_numeric_table(lines):
        raise EcgError("This table has no header row naming the leads, so its columns cannot be matched to "
                       f"leads; {HEADERLESS_HELP}.")
    raise EcgError(
        "No lead names were found in this table: the first row must name the leads "
        f"(I, II, III, aVR, aVL, aVF, V1-V6); for a table without a header row, {HEADERLESS_HELP}."
    )


def _check_width(n_columns: int) -> None:
    """Refuse a table far wider than any ECG export before parsing it: the work grows with the width."""
    if n_columns > MAX_COLUMNS:
        raise EcgError(f"This table has {n_columns:,} columns; an ECG table has one column per lead (and perhaps "
                       f"a time column), at most {MAX_COLUMNS}. It does not look like an ECG export.")


def _is_numeric_table(lines: list[str]) -> bool:
    """The first non-empty lines hold only numbers or empty cells (a device leaves the columns of leads it
    did not record empty), with the same count on each and a number on every line."""
    rows = [_split(line)[1] for line in lines[:20] if line.strip()]
    _check_width(max((len(cells) for cells in rows), default=0))
    counts = {len(cells) for cells in rows}
    return (bool(rows) and len(counts) == 1 and all(_NUMBER.match(c) or not c for cells in rows for c in cells)
            and all(any(cells) for cells in rows))


def _read_headerless(text: str, lines: list[str], leads: list[str], fs: float | None, units: str | None) -> Recording:
    """A table of bare numbers whose columns the caller has named, in order."""
    delimiter, cells = _split(next(line for line in lines if line.strip()))
    names = [str(name).strip() for name in leads]
    if len(names) != len(cells):
        raise EcgError(f"The lead order names {len(names)} columns ({', '.join(names)}), but the table has "
                       f"{len(cells)} columns per row.")
    unknown = [n for n in names if standard_lead_name(n) is None and not _TIME_NAMES.match(n)]
    if unknown:
        raise EcgError(f"The lead order contains {', '.join(repr(n) for n in unknown)}, which is not a lead name; "
                       "use I, II, III, aVR, aVL, aVF, V1-V6 (and 'time' for a time column).")
    frame = _parse_table(text, None, delimiter, names)
    rec = read_frame(frame, fs, units, "csv")
    rec.metadata["lead_order_from"] = "given by the user (the table has no header row)"
    return rec


def _parse_table(text: str, header_row: int | None, delimiter: str | None, names: list[str] | None = None):
    try:
        return pd.read_csv(io.StringIO(text), skiprows=header_row or 0, header=None if names else 0, names=names,
                           sep=delimiter if delimiter else r"\s+", engine="c" if delimiter else "python",
                           skip_blank_lines=True)
    except (pd.errors.ParserError, ValueError) as err:
        raise EcgError(f"This table could not be read; rows have different numbers of values ({err}).") from None


def _preface(lines: list[str]) -> tuple[float | None, float | None]:
    """Sampling rate (Hz) and mV per digit from free-text lines above the header, if stated."""
    fs = mv_per_digit = None
    for line in lines:
        if (m := _GAIN_LINE.search(line)) and float(m.group(3)) > 0:
            unit = m.group(2).replace(" ", "").lower()
            per = 1.0 if unit.startswith(("mv", "milli")) else 1e-3
            mv_per_digit = per / float(m.group(3))
        elif m := _RATE_LINE.search(line):
            fs = float(m.group(3))
    return fs, mv_per_digit


def _fs_from_time(time: pd.Series, name: str, warnings: list[str]) -> float:
    """Sampling rate from a time column. A clock rounded coarser than the sampling interval (240 Hz written in
    whole ms: steps of 4 and 5 ms) is accepted when every time lies within half its rounding step of an even
    grid; the rate then comes from the whole span, and a warning says so."""
    t = pd.to_numeric(time, errors="coerce").to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(t)) or t.size < 2:
        raise EcgError(f"The time column '{name}' contains missing or non-numeric values.")
    step = np.diff(t)
    median = float(np.median(step))
    if median <= 0 or np.any(step <= 0):
        raise EcgError(f"The time column '{name}' does not increase steadily; cannot work out the sampling rate.")
    scale = 1000.0 if re.search(r"(?<![a-z])ms(?![a-z])|milli", name, re.I) else 1.0
    if np.max(np.abs(step - median)) <= 0.01 * median + 1e-9:
        return scale / median
    k = np.arange(t.size, dtype=np.float64)
    mean, first = np.polyfit(k, t, 1)  # the even grid nearest the rounded times
    distinct = np.unique(step)
    resolution = float(np.min(np.diff(distinct))) if distinct.size > 1 else 0.0
    off_grid = np.abs(t - (first + mean * k))
    if 0 < resolution < mean and np.max(off_grid) <= 0.6 * resolution:
        fs = scale / mean
        fs = float(round(fs)) if abs(fs - round(fs)) <= 1e-3 * fs else fs
        warnings.append(f"The time column '{name}' is rounded to {resolution:g} {'ms' if scale > 1 else 's'}, "
                        f"coarser than the sampling interval; the rate {fs:g} Hz was taken from its whole span.")
        return fs
    raise EcgError(f"The time column '{name}' is irregular (samples are not evenly spaced).")


def _empty_leads(frame: pd.DataFrame, lead_cols: list[str], warnings: list[str]) -> pd.DataFrame:
    """Columns with no value at all (leads the device did not record) as flat zero leads, said in a warning,
    rather than as missing samples that make the whole recording unusable."""
    empty = [c for c in frame.columns if frame[c].isna().all()]
    if empty and len(empty) < frame.shape[1]:
        names = [lead_cols[list(frame.columns).index(c)] for c in empty]
        warnings.append(f"Lead(s) {', '.join(map(str, names))} hold no values in the file (empty columns); "
                        "they are treated as missing and shown flat.")
        frame = frame.copy()
        frame[empty] = 0.0
    return frame


def read_frame(frame: pd.DataFrame, fs: float | None = None, units: str | None = None,
               source_format: str = "dataframe", mv_per_digit: float | None = None) -> Recording:
    """A table whose columns are leads (and optionally a time column)."""
    names = [str(c) for c in frame.columns]
    time_cols = [c for c in names if _TIME_NAMES.match(c) and standard_lead_name(c) is None]
    meta: dict = {}
    warnings: list[str] = []
    if time_cols:
        time = frame.iloc[:, names.index(time_cols[0])]  # by position: names repeat
        from_time = _fs_from_time(time, time_cols[0], warnings)
        if fs is None:
            fs = from_time
            meta["fs_from"] = f"time column '{time_cols[0]}'"
        elif abs(from_time - float(fs)) > 0.01 * float(fs):
            warnings.append(f"The time column implies {from_time:g} Hz; the given {float(fs):g} Hz was used.")
    keep = [k for k, c in enumerate(names) if c not in time_cols]
    lead_cols = [names[k] for k in keep]
    data = frame.iloc[:, keep].apply(pd.to_numeric, errors="coerce").dropna(how="all")
    data = _empty_leads(data.set_axis(range(len(keep)), axis=1), lead_cols, warnings)
    signal = data.to_numpy(dtype=np.float64).T
    scale, calibrated = _amplitude_scale(lead_cols, signal, units, mv_per_digit, warnings)
    meta["warnings"] = warnings
    return Recording(labels=[_UNIT_IN_NAME.sub("", c).strip() for c in lead_cols], signal=signal * scale,
                     fs=fs, source_format=source_format, calibrated=calibrated, metadata=meta)


def _amplitude_scale(cols, signal, units, mv_per_digit, warnings) -> tuple[float, bool]:
    if units is not None:
        factor = mv_per_unit(units)
        if factor is None:
            raise ValueError(f"unknown amplitude unit {units!r}; use 'mV', 'uV' or 'nV'")
        return factor, True
    in_names = {m.group(1).lower() for c in cols if (m := _UNIT_IN_NAME.search(c))}
    if len(in_names) == 1:
        return mv_per_unit(in_names.pop()), True
    if mv_per_digit is not None:
        return mv_per_digit, True
    finite = signal[:, np.all(np.isfinite(signal), axis=0)] if signal.size else signal
    ptp = np.ptp(finite, axis=1) if finite.size else np.zeros(1)
    ptp = ptp[ptp > 0] if np.any(ptp > 0) else ptp  # empty (flat) leads say nothing about the unit
    if 0.1 <= float(np.median(ptp)) <= 10:
        warnings.append("Amplitude units are not stated; values were taken as millivolts.")
        return 1.0, True
    warnings.append("Amplitude units are not stated and the values do not look like millivolts; "
                    "amplitudes are treated as uncalibrated.")
    return 1.0, False


def read_csv(content: bytes, fs: float | None = None, units: str | None = None,
             leads: list[str] | None = None) -> Recording:
    """CSV/TSV text; ``leads`` (column order) is used only for a table without a header row."""
    text = _decode(content)
    lines = text.splitlines()
    if leads and _is_numeric_table(lines):
        return _read_headerless(text, lines, leads, fs, units)
    k, delimiter = _find_header(lines)
    preface_fs, mv_per_digit = _preface(lines[:k])
    frame = _parse_table(text, k, delimiter)
    _, cells = _split(lines[k])
    if len(cells) == frame.shape[1]:
        frame.columns = cells  # pandas renames duplicates ("II.1"); keep them visible to the lead check
    rec = read_frame(frame, fs, units, "csv", mv_per_digit)
    if rec.fs is None and preface_fs is not None:
        rec.fs = preface_fs
        rec.metadata["fs_from"] = "header line"
    return rec


def load_npy(content: bytes) -> np.ndarray:
    """A ``.npy`` file's array, its declared size checked against the bytes before anything is allocated
    (a 100-byte file may declare a terabyte array); object arrays are refused (no pickle)."""
    from numpy.lib import format as npy

    with damaged("NumPy"):
        stream = io.BytesIO(content)
        version = npy.read_magic(stream)
        read_header = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
        shape, _, dtype = read_header(stream)
        if dtype.hasobject:
            raise EcgError("This NumPy file holds Python objects, not numbers; it is refused for security reasons.")
        declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
        if declared > len(content) - stream.tell():
            raise EcgError(f"This NumPy file declares an array of {declared:,} bytes but holds only "
                           f"{len(content) - stream.tell():,}; it is truncated or damaged.")
        return np.load(io.BytesIO(content), allow_pickle=False)


def read_array(array: np.ndarray, fs: float | None, leads: list[str] | None = None,
               units: str | None = "mV") -> Recording:
    """A NumPy array (leads x samples or samples x leads); without ``leads`` it must be 12 standard leads."""
    try:
        x = np.asarray(array, dtype=np.float64)
    except (TypeError, ValueError):
        raise EcgError("The array contains values that are not numbers.") from None
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2:
        raise EcgError(f"An ECG array must be 2-D (leads x samples); this one has {x.ndim} dimensions.")
    n_leads = len(leads) if leads is not None else 12
    if x.shape[0] != n_leads and x.shape[1] == n_leads:
        x = x.T
    elif x.shape[0] != n_leads and leads is None and min(x.shape) > 1:
        n = min(x.shape)
        raise EcgError(
            f"This recording has {n} channels; without lead names only a standard 12-lead array "
            "(I, II, III, aVR, aVL, aVF, V1-V6) can be used, so please give the lead names."
        )
    labels = list(leads) if leads is not None else list(LEADS[: x.shape[0]])
    if x.shape[0] != len(labels):
        raise EcgError(f"The array has {x.shape[0]} channels but {len(labels)} lead names were given.")
    factor = mv_per_unit(units) if units is not None else 1.0
    if factor is None:
        raise ValueError(f"unknown amplitude unit {units!r}; use 'mV', 'uV' or 'nV'")
    return Recording(labels=labels, signal=x * factor, fs=fs, source_format="array",
                     calibrated=units is not None)
