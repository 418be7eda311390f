"""R-peak accuracy (and QT agreement) on LUDB against the cardiologists' annotations (lead ii), as JSON.

``python -m evaluation.ecg_evaluate [--ludb FOLDER] [--records 1 2 3] [--per-record]``

Rule (docs/design.md): a detection matches an annotated QRS peak within +-75 ms (one-to-one, nearest first);
only the annotated span of each record counts (``annotated_from_s``..``annotated_to_s`` in records.csv,
else the first/last lead-ii annotation), widened by the tolerance so a beat on the edge is not lost;
paced records are reported separately. Our copy holds 170 of LUDB's 200 records: all present are scored.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import wfdb

from cardiosynth.ecg import read_ecg
from cardiosynth.ecg.process import process_ecg
from cardiosynth.paths import require_dataset

TOLERANCE_S = 0.075
PACED = {34, 45, 74, 90, 93, 95, 104, 111}


def match(detected: np.ndarray, reference: np.ndarray, tolerance: int) -> int:
    """Number of one-to-one matches (each annotation takes the nearest unused detection in range)."""
    used: set[int] = set()
    hits = 0
    for ref in reference:
        candidates = [k for k, d in enumerate(detected) if abs(int(d) - int(ref)) <= tolerance and k not in used]
        if candidates:
            used.add(min(candidates, key=lambda k: abs(int(detected[k]) - int(ref))))
            hits += 1
    return hits


def reference_qt(symbols: np.ndarray, samples: np.ndarray, fs: int) -> float | None:
    """Median annotated QT in lead ii: QRS onset "(" before each "N" to the ")" closing the next "t"."""
    qts = []
    for i in np.flatnonzero(symbols == "N"):
        if i == 0 or symbols[i - 1] != "(":
            continue
        j = i + 1
        while j < symbols.size and symbols[j] not in ("t", "N"):
            j += 1
        if j + 1 < symbols.size and symbols[j] == "t" and symbols[j + 1] == ")":
            qts.append((samples[j + 1] - samples[i - 1]) / fs)
    return float(np.median(qts)) if len(qts) >= 2 else None


def score_record(folder: Path, record: str, span: tuple[float, float] | None = None) -> dict:
    """TP/FP/FN of our R-peaks for one LUDB record."""
    ecg = read_ecg(folder / f"{record}.hea")
    analysis = process_ecg(ecg)
    ann = wfdb.rdann(str(folder / record), "ii")
    symbols = np.asarray(ann.symbol)
    reference = ann.sample[symbols == "N"]
    fs = ecg.fs
    lo, hi = (span[0] * fs, span[1] * fs) if span else (ann.sample.min(), ann.sample.max())
    tol = int(round(TOLERANCE_S * fs))
    detected = analysis.r_peaks[(analysis.r_peaks >= lo - tol) & (analysis.r_peaks <= hi + tol)]
    reference = reference[(reference >= lo) & (reference <= hi)]
    tp = match(detected, reference, tol)
    qt_ref = reference_qt(symbols, ann.sample, fs)
    return {"record": record, "tp": tp, "fp": int(detected.size - tp), "fn": int(reference.size - tp),
            "r_peak_lead": analysis.r_peak_lead, "pacing_suspected": analysis.pacing_suspected,
            "qt_s": None if analysis.qt_s is None else round(analysis.qt_s, 3),
            "qt_reference_s": None if qt_ref is None else round(qt_ref, 3)}


def _totals(rows: list[dict]) -> dict:
    tp, fp, fn = (sum(r[k] for r in rows) for k in ("tp", "fp", "fn"))
    return {"records": len(rows), "annotated_beats": tp + fn, "tp": tp, "fp": fp, "fn": fn,
            "sensitivity": round(tp / (tp + fn), 4) if tp + fn else None,
            "precision": round(tp / (tp + fp), 4) if tp + fp else None,
            "qt": _qt_agreement(rows)}


def _qt_agreement(rows: list[dict]) -> dict:
    """Record-level median QT against the annotated one (ms)."""
    with_ref = [r for r in rows if r["qt_reference_s"] is not None]
    both = [r for r in with_ref if r["qt_s"] is not None]
    if not both:
        return {"records_with_reference": len(with_ref), "measured": 0}
    err = 1000 * np.array([r["qt_s"] - r["qt_reference_s"] for r in both])
    return {"records_with_reference": len(with_ref), "measured": len(both),
            "bias_ms": round(float(np.mean(err)), 1), "median_abs_error_ms": round(float(np.median(np.abs(err))), 1),
            "within_40ms": round(float(np.mean(np.abs(err) <= 40)), 3)}


def evaluate(folder: Path, records: list[str] | None = None) -> dict:
    table = pd.read_csv(folder / "records.csv", dtype={"record": str}).set_index("record")
    names = records or [line.strip() for line in (folder / "RECORDS").read_text().split() if line.strip()]
    rows = []
    start = time.perf_counter()
    for name in names:
        span = None
        if name in table.index and pd.notna(table.loc[name, "annotated_from_s"]):
            span = (float(table.loc[name, "annotated_from_s"]), float(table.loc[name, "annotated_to_s"]))
        row = score_record(folder, name, span)
        row["paced"] = bool(table.loc[name, "paced"]) if name in table.index else int(name) in PACED
        rows.append(row)
    paced = [r for r in rows if r["paced"]]
    other = [r for r in rows if not r["paced"]]
    return {
        "dataset": f"LUDB v1.0.1, {len(rows)} records evaluated (our copy holds 170 of the 200)",
        "rule": "match within +-75 ms, one-to-one; annotated span only; lead ii QRS annotations",
        "non_paced": _totals(other),
        "paced": _totals(paced),
        "pacing_warning": {
            "paced_flagged": sum(r["pacing_suspected"] for r in paced), "paced_total": len(paced),
            "non_paced_flagged": sum(r["pacing_suspected"] for r in other), "non_paced_total": len(other),
        },
        "records_with_errors": [r for r in rows if r["fp"] or r["fn"]],
        "seconds": round(time.perf_counter() - start, 1),
        "_rows": rows,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluation.ecg_evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--ludb", type=Path, default=None, help="LUDB folder (default: <data>/ecg/ludb)")
    parser.add_argument("--records", nargs="*", default=None, help="only these records")
    parser.add_argument("--per-record", action="store_true", help="include every record's counts")
    args = parser.parse_args(argv)
    folder = args.ludb or require_dataset("ecg") / "ludb"
    result = evaluate(folder, args.records)
    rows = result.pop("_rows")
    if args.per_record:
        result["per_record"] = rows
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
