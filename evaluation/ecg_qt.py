"""QT against the cardiologists (LUDB) and against the recording devices' own measurements, as JSON.

    python -m evaluation.ecg_qt [--split test|val|train|trainval|all] [--ludb FOLDER] [--formats FOLDER]
                                [--out reports/ecg/qt_test.json]

LUDB: for each record of the split (``cardiosynth/data/ludb_split.csv``), the pipeline's QT (``process_ecg``:
median over plausible beats of QRS onset to T-wave end, on the R-peak lead) against the annotated one (lead ii:
the median over beats of the "(" opening each QRS to the ")" closing the T wave after it; records with fewer
than two such beats have no reference). Paced records are reported apart. Reported: median absolute error,
bias (ours minus theirs), share within 40 ms, the worst cases with the doubts the pipeline raised, every case
off by more than 100 ms and whether it carried a doubt (``EcgAnalysis.qt_doubts``), and how many records got
a doubt at all (the price of the checks). Thresholds were chosen on train and val; test is the reported figure.

Devices: every example file under ``--formats`` whose reader found the device's own QT (GE MUSE
``QTInterval``, Philips ``meanqtint``, HL7 aECG's ``MDC_ECG_TIME_PD_QT`` annotation, SCP-ECG section 7) gives one
more comparison, with the same doubts, summarised like LUDB's (the "reference" is then the device).
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

from cardiosynth.data.ludb import SPLIT_FILE
from cardiosynth.ecg import EcgError, read_ecg
from cardiosynth.ecg.process import process_ecg
from cardiosynth.paths import require_dataset
from evaluation.ecg_evaluate import reference_qt

SPLITS = {"train": ("train",), "val": ("val",), "test": ("test",), "trainval": ("train", "val"),
          "all": ("train", "val", "test")}
WITHIN_S, FAR_S, N_WORST = 0.040, 0.100, 8


def ludb_rows(folder: Path, records: list[str]) -> list[dict]:
    """One row per record: our QT, the annotated QT, the error (ms) and the doubts our pipeline raised."""
    table = pd.read_csv(folder / "records.csv", dtype={"record": str}).set_index("record")
    rows = []
    for record in records:
        analysis = process_ecg(read_ecg(folder / f"{record}.hea"))
        ann = wfdb.rdann(str(folder / record), "ii")
        reference = reference_qt(np.asarray(ann.symbol), ann.sample, 500)
        rows.append(_row(record, analysis, None if reference is None else 1000 * reference,
                         paced=bool(table.loc[record, "paced"]) if record in table.index else False))
    return rows


def _row(name: str, analysis, reference_ms: float | None, **extra) -> dict:
    ours = None if analysis.qt_s is None else 1000 * analysis.qt_s
    error = None if ours is None or reference_ms is None else ours - reference_ms
    return {"record": name, "qt_ms": _round(ours), "reference_ms": _round(reference_ms), "error_ms": _round(error),
            "rr_ms": _round(None if analysis.rr_median_s is None else 1000 * analysis.rr_median_s),
            "doubts": analysis.qt_doubts, **extra}


def _round(x: float | None) -> float | None:
    return None if x is None else round(float(x), 1)


def summarise(rows: list[dict]) -> dict:
    """Agreement of the rows that have both QTs; what happened to the others; the far-off cases and doubts."""
    with_reference = [r for r in rows if r["reference_ms"] is not None]
    both = [r for r in with_reference if r["error_ms"] is not None]
    out: dict = {"records": len(rows), "with_reference": len(with_reference), "measured": len(both),
                 "not_measured": [r["record"] for r in with_reference if r["error_ms"] is None]}
    if not both:
        return out
    err = np.array([r["error_ms"] for r in both])
    far = [r for r in both if abs(r["error_ms"]) > 1000 * FAR_S]
    out.update(
        median_abs_error_ms=round(float(np.median(np.abs(err))), 1),
        mean_abs_error_ms=round(float(np.mean(np.abs(err))), 1),
        bias_ms=round(float(np.median(err)), 1),
        within_40ms=round(float(np.mean(np.abs(err) <= 1000 * WITHIN_S)), 3),
        worst=sorted(both, key=lambda r: -abs(r["error_ms"]))[:N_WORST],
        off_by_more_than_100ms=far,
        every_case_off_by_more_than_100ms_had_a_doubt=all(r["doubts"] for r in far),
        records_with_a_doubt=sum(bool(r["doubts"]) for r in both),
        doubted_within_40ms=sum(bool(r["doubts"]) and abs(r["error_ms"]) <= 1000 * WITHIN_S for r in both),
    )
    return out


def device_rows(folder: Path) -> list[dict]:
    """Example files that carry the device's own QT: ours against it."""
    rows = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in (".xml", ".scp", ".dcm")):
        try:
            ecg = read_ecg(path)
        except EcgError:
            continue
        if "device_qt_ms" in ecg.metadata:
            rows.append(_row(path.name, process_ecg(ecg), ecg.metadata["device_qt_ms"], format=ecg.source_format))
    return rows


def evaluate(ludb: Path, split: str, formats: Path | None, records: list[str] | None = None) -> dict:
    """The split's records (or those of ``records`` in the split) scored, and the device files."""
    start = time.perf_counter()
    table = pd.read_csv(SPLIT_FILE, dtype={"record": str})
    present = {p.stem for p in ludb.glob("*.hea")}
    records = [r for r in table.loc[table["split"].isin(SPLITS[split]), "record"]
               if r in present and (records is None or r in records)]
    rows = ludb_rows(ludb, records)
    devices = device_rows(formats) if formats is not None and formats.is_dir() else []
    return {
        "what": "QT (QRS onset to T-wave end, median over beats) of cardiosynth.ecg.process_ecg against LUDB's "
                "cardiologists (lead ii annotations) and against the QT the recording device stored in the file",
        "split": split,
        "command": f"python -m evaluation.ecg_qt --split {split}",
        "ludb_non_paced": summarise([r for r in rows if not r["paced"]]),
        "ludb_paced": summarise([r for r in rows if r["paced"]]),
        "device_files": {**summarise(devices), "files": devices},
        "seconds": round(time.perf_counter() - start, 1),
        "_rows": rows,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluation.ecg_qt", description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=list(SPLITS), default="test")
    parser.add_argument("--ludb", type=Path, default=None, help="LUDB folder (default: <data>/ecg/ludb)")
    parser.add_argument("--formats", type=Path, default=None,
                        help="example files of clinical formats (default: <data>/ecg/formats)")
    parser.add_argument("--per-record", action="store_true", help="include every record's row")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    root = require_dataset("ecg") if args.ludb is None or args.formats is None else None
    result = evaluate(args.ludb or root / "ludb", args.split, args.formats or root / "formats")
    result["command"] = " ".join(["python -m evaluation.ecg_qt", *(sys.argv[1:] if argv is None else argv)])
    rows = result.pop("_rows")
    if args.per_record:
        result["per_record"] = rows
    text = json.dumps(result, indent=2)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
