"""Parse + process time for one 12-lead 10 s ECG, as JSON (median of repeats after warm-up).

``python -m evaluation.ecg_bench [FILE ...] [--repeats 20] [--warmup 3]``; without files: the first LUDB
record and every example in ``<data>/ecg/formats``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import neurokit2

from cardiosynth.ecg import EcgError, read_ecg
from cardiosynth.ecg.process import process_ecg
from cardiosynth.paths import data_root

GOAL_S = 0.3  # parse + process per 10-s 12-lead ECG (issue "Clinical interop")


def bench_file(path: Path, repeats: int, warmup: int) -> dict:
    """Median wall time of read_ecg (parse + standardise) and process_ecg for one file."""
    for _ in range(warmup):
        process_ecg(read_ecg(path))
    read_s, process_s = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        ecg = read_ecg(path)
        t1 = time.perf_counter()
        process_ecg(ecg)
        t2 = time.perf_counter()
        read_s.append(t1 - t0)
        process_s.append(t2 - t1)
    total = [a + b for a, b in zip(read_s, process_s)]
    return {"file": path.name, "format": ecg.source_format, "repeats": repeats, "warmup": warmup,
            "parse_median_s": round(statistics.median(read_s), 4),
            "process_median_s": round(statistics.median(process_s), 4),
            "total_median_s": round(statistics.median(total), 4),
            "total_max_s": round(max(total), 4)}


def default_files() -> list[Path]:
    ecg = data_root() / "ecg"
    files = []
    records = ecg / "ludb" / "RECORDS"
    if records.is_file():
        files.append(ecg / "ludb" / f"{records.read_text().split()[0]}.hea")
    files += sorted(p for p in (ecg / "formats").glob("*/*") if p.is_file())
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluation.ecg_bench", description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args(argv)
    results = []
    for path in args.files or default_files():
        try:
            results.append(bench_file(path, args.repeats, args.warmup))
        except EcgError as err:
            results.append({"file": path.name, "skipped": str(err)})
    timed = [r for r in results if "total_median_s" in r]
    print(json.dumps({"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                  "neurokit2": neurokit2.__version__},
                      "goal_s": GOAL_S, "all_within_goal": bool(timed) and all(r["total_median_s"] <= GOAL_S for r in timed),
                      "slowest_median_s": max((r["total_median_s"] for r in timed), default=None),
                      "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
