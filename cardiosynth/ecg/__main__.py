"""``python -m cardiosynth.ecg FILE``: read, analyse and plot one ECG from the command line.

Prints what a clinician would check first (format, leads, rate, duration, heart rate, quality, QT/RR,
warnings). Only when ``--out`` is given does it write a file: the figure as one self-contained HTML file
(plotly.js inside, so it opens on a workstation without internet), at ``--out`` if that names an .html file,
else as ``<file>.ecg.html`` inside the folder ``--out`` names. Nothing is written unasked (a command run in a
shared or read-only folder must not leave files behind). Bad input prints the reason and exits with status 2,
writing nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cardiosynth.export import atomic_path

from . import EcgError, read_ecg
from .plot import plot_ecg
from .process import process_ecg
from .readers._common import mv_per_unit
from .summary import ecg_report, fmt, quality_text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cardiosynth.ecg", description=__doc__.splitlines()[0])
    parser.add_argument("file", help="ECG file (WFDB .hea/.dat, EDF, DICOM, XML, CSV, .npy)")
    parser.add_argument("--fs", type=float, default=None, help="sampling rate in Hz, if the file lacks it")
    parser.add_argument("--lead-order", default=None,
                        help="for a table without a header row: its columns' leads in order, e.g. "
                             "I,II,III,aVR,aVL,aVF,V1,V2,V3,V4,V5,V6 ('time' marks a time column)")
    parser.add_argument("--units", default=None,
                        help="amplitude unit of a table's or array's values where the file does not say: mV, uV or nV")
    parser.add_argument("--crop", choices=["start", "centre"], default="start",
                        help="which 10 s of a longer recording to keep")
    parser.add_argument("--out", type=Path, default=None,
                        help="write the figure: an .html file, or a folder to write <file name>.ecg.html into "
                             "(without --out no file is written)")
    parser.add_argument("--no-figure", action="store_true", help="do not write the figure, even with --out")
    parser.add_argument("--leads", default=None, help="comma-separated leads to plot, e.g. I,II,V1")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    if args.units is not None and mv_per_unit(args.units) is None:
        parser.error(f"unknown amplitude unit {args.units!r}; use mV, uV or nV")
    try:
        lead_order = [s.strip() for s in args.lead_order.split(",")] if args.lead_order else None
        ecg = read_ecg(args.file, fs=args.fs, leads=lead_order, units=args.units, crop=args.crop)
    except EcgError as err:
        print(f"Cannot use this ECG: {err}", file=sys.stderr)
        return 2
    analysis = process_ecg(ecg)
    report = ecg_report(ecg, analysis)
    if args.out is not None and not args.no_figure:
        out = figure_path(args.out, args.file)
        leads = [s.strip() for s in args.leads.split(",")] if args.leads else None
        with atomic_path(out) as partial:
            plot_ecg(ecg, analysis, leads=leads).write_html(partial, include_plotlyjs=True)
        report["figure"] = str(out)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print(report)
    return 0


def figure_path(out: Path, ecg_file: str | Path) -> Path:
    """Where the figure goes: ``out`` itself if it names an .html file, else ``<ecg file>.ecg.html`` in the
    folder ``out`` names (created if missing)."""
    name = Path(ecg_file).name + ".ecg.html"
    if out.suffix.lower() in (".html", ".htm") and not out.is_dir():
        return out
    return out / name


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
    print(f"Quality:       {quality_text(report)}")
    print(f"QT / RR:       {fmt(report['qt_s'], ' ms', 1000)} / {fmt(report['rr_median_s'], ' ms', 1000)}"
          f" = {fmt(report['qt_rr'], nd=2)}")
    if report["cycle_s"]:
        start, end = report["cycle_s"]
        print(f"Typical beat:  {start:.3f}-{end:.3f} s (neurokit2: the R-R interval nearest the median)")
    for warning in report["warnings"]:
        print(f"Warning:       {warning}")
    if "figure" in report:
        print(f"Figure:        {report['figure']}")


if __name__ == "__main__":
    sys.exit(main())
