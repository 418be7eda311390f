"""``python -m cardiosynth.ecg FILE``: read, analyse and plot one ECG from the command line.

Prints what a clinician would check first (format, leads, rate, duration, heart rate, quality, QT/RR,
warnings) and writes the figure as HTML. Bad input prints the reason and exits with status 2, writing
nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import EcgError, read_ecg
from .plot import plot_ecg
from .process import process_ecg
from .summary import ecg_report, fmt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cardiosynth.ecg", description=__doc__.splitlines()[0])
    parser.add_argument("file", help="ECG file (WFDB .hea/.dat, EDF, DICOM, XML, CSV, .npy)")
    parser.add_argument("--fs", type=float, default=None, help="sampling rate in Hz, if the file lacks it")
    parser.add_argument("--crop", choices=["start", "centre"], default="start",
                        help="which 10 s of a longer recording to keep")
    parser.add_argument("--out", type=Path, default=None,
                        help="figure path (.html; default: <file name>.ecg.html in the current folder)")
    parser.add_argument("--no-figure", action="store_true", help="do not write the figure")
    parser.add_argument("--leads", default=None, help="comma-separated leads to plot, e.g. I,II,V1")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    try:
        ecg = read_ecg(args.file, fs=args.fs, crop=args.crop)
    except EcgError as err:
        print(f"Cannot use this ECG: {err}", file=sys.stderr)
        return 2
    analysis = process_ecg(ecg)
    report = ecg_report(ecg, analysis)
    if not args.no_figure:
        out = args.out or Path(Path(args.file).name + ".ecg.html")
        leads = [s.strip() for s in args.leads.split(",")] if args.leads else None
        plot_ecg(ecg, analysis, leads=leads).write_html(out, include_plotlyjs="cdn")
        report["figure"] = str(out)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print(report)
    return 0


def _print(report: dict) -> None:
    print(f"Format:        {report['format']}")
    derived = f" (derived: {', '.join(report['derived_leads'])})" if report["derived_leads"] else ""
    print(f"Leads:         {', '.join(report['leads'])}{derived}")
    print(f"Rate:          {report['original_rate_hz']:g} Hz in the file, analysed at {report['rate_hz']} Hz")
    print(f"Duration:      {report['original_duration_s']:g} s in the file, analysed {report['duration_s']:g} s"
          + (f" (cropped {report['crop']['from_s']:g}-{report['crop']['to_s']:g} s)" if report["crop"] else "")
          + (f" (padded {report['pad']['added_s']:g} s)" if report["pad"] else ""))
    print(f"Amplitudes:    {report['amplitudes']}")
    print(f"Heart rate:    {fmt(report['heart_rate_bpm'], ' bpm')} ({report['n_beats']} beats, "
          f"R-peaks on lead {report['r_peak_lead']})")
    print(f"Quality:       {report['quality']} (score {fmt(report['quality_score'], nd=2)})")
    print(f"QT / RR:       {fmt(report['qt_s'], ' ms', 1000)} / {fmt(report['rr_median_s'], ' ms', 1000)}"
          f" = {fmt(report['qt_rr'], nd=2)}")
    if report["cycle_s"]:
        print(f"Cycle used:    {report['cycle_s'][0]:.3f}-{report['cycle_s'][1]:.3f} s")
    for warning in report["warnings"]:
        print(f"Warning:       {warning}")
    if "figure" in report:
        print(f"Figure:        {report['figure']}")


if __name__ == "__main__":
    sys.exit(main())
