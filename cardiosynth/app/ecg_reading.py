"""Logic behind the "ECG" tab: read an upload or a bundled example, process it, summarise it.

Uploads arrive as one or more temporary files. A WFDB record is two files (``.hea`` header + ``.dat`` /
``.mat`` signal), often with annotation files (LUDB: one per lead), which Gradio stores in separate folders;
the header and signal files are copied side by side under their own names before reading, the annotations
left out. Every problem with the input raises :class:`~cardiosynth.ecg.EcgError`.

The tab marks one cycle, the one the pipeline chose (:class:`~cardiosynth.pipelines.ecg_to_cine.AnalysedEcg`):
the one the ECG->cine model generates from, when the app has that model (see :class:`EcgResult`).

:mod:`cardiosynth.ecg` is imported on first use here; the app imports it while building the ECG tab (its
ECG -> cine pipeline needs it), so the first request does not wait for neurokit2.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from cardiosynth.ecg import Ecg, EcgError, plot_ecg, read_ecg
from cardiosynth.ecg.readers.physionet import signal_file_names
from cardiosynth.ecg.summary import ecg_report, fmt, quality_text
from cardiosynth.paths import REPO_ROOT
from cardiosynth.pipelines.ecg_to_cine import AnalysedEcg, analyse_ecg

if TYPE_CHECKING:
    import plotly.graph_objects as go

EXAMPLE_DIR = REPO_ROOT / "assets" / "ecg"
#: Bundled examples (assets/ecg/README.md gives sources and licences).
EXAMPLES: dict[str, str] = {
    "LUDB record 2: sinus rhythm (WFDB)": "ludb/2.hea",
    "LUDB record 88: atrial fibrillation (WFDB)": "ludb/88.hea",
    "LUDB record 34: ventricular pacing (WFDB)": "ludb/34.hea",
    "HL7 aECG example (XML)": "Example_aECG.xml",
    "DICOM 12-lead waveform (pydicom test file)": "waveform_ecg.dcm",
    "Philips Sierra XML example": "129DYPRG.XML",
}
WFDB_SUFFIXES = (".hea", ".dat", ".mat")
CHOSEN_BY_MODEL = "the ECG\u2192cine model: the cycle the cine is generated from"
#: Under the upload, by whether the app has the ECG->cine model: what the shaded band is.
CYCLE_NOTE = {
    True: "The shaded band is the selected cycle: the heartbeat the ECG\u2192cine model picked, the one the cine "
          "below is generated from.",
    False: "The shaded band is neurokit2's typical beat (this build generates no cine).",
}


def _ecg_error(message: str) -> Exception:
    return EcgError(message)


#: Reads and analyses an Ecg for the tab (EcgCineStudio.analyse, with the ECG->cine model; analyse_ecg without).
Analyser = Callable[[Ecg], AnalysedEcg]


@dataclass
class EcgResult:
    """One ECG read and analysed: ``request`` (its :class:`AnalysedEcg`, what "Generate cine" takes) and its
    name. The tab marks its one cycle, chosen by the pipeline: with the ECG->cine model the cycle the cine is
    generated from (None: the model found no complete heartbeat), without a model neurokit2's typical beat,
    named as such (the two usually differ)."""

    request: AnalysedEcg
    name: str

    @property
    def ecg(self) -> Ecg:
        return self.request.ecg

    @property
    def analysis(self):  # cardiosynth.ecg.EcgAnalysis
        return self.request.analysis

    @property
    def by_model(self) -> bool:
        """Whether the ECG->cine model chose the cycle (the one its cine is generated from)."""
        return self.request.cycle_detector == "ecg_mae"

    def cycle_seconds(self) -> tuple[float, float] | None:
        """(start, end) in s of the one cycle the tab marks."""
        cycle = self.request.cycle
        return None if cycle is None else (cycle["start_s"], cycle["end_s"])

    def cycle_row(self) -> tuple[str, str]:
        """The summary row of that cycle: its name and what it is."""
        span = self.cycle_seconds()
        where = "" if span is None else f"{span[0]:.2f}\u2013{span[1]:.2f} s (RR {1000 * (span[1] - span[0]):.0f} ms)"
        if not self.by_model:
            return "Typical beat (neurokit2)", (f"{where}, the R\u2013R interval nearest the median, with typical QRS "
                                                "complexes and a T-wave end found; no cine is generated in this build"
                                                if span else "none found")
        if span is None:
            return "Selected cycle", ("none: the ECG\u2192cine model found no complete heartbeat (R peak to R peak), "
                                      "so no cine can be generated from this ECG")
        k = self.request.cycle
        return "Selected cycle", (f"{where}, the cycle the cine below is generated from: beat {k['index'] + 1} of the "
                                  f"{k['cycles_found']} complete ones the ECG\u2192cine model found, the one closest "
                                  "to their median length")

    def report(self) -> dict:
        """What a clinician checks first; the fields of ``python -m cardiosynth.ecg --json``, except that the cycle
        is the tab's one (``cycle_chosen_by`` says whose)."""
        report = {"file": self.name, **ecg_report(self.ecg, self.analysis)}
        span = self.cycle_seconds()
        report["cycle_samples"] = None if span is None else [round(t * self.ecg.fs) for t in span]
        report["cycle_s"] = None if span is None else [round(t, 3) for t in span]
        report["cycle_chosen_by"] = (CHOSEN_BY_MODEL if self.by_model else
                                     "neurokit2: the typical beat (no ECG\u2192cine model in this build)")
        return report

    def summary_markdown(self) -> str:
        r = self.report()

        derived = f" (derived: {', '.join(r['derived_leads'])})" if r["derived_leads"] else ""
        duration = f"{fmt(r['original_duration_s'], ' s', nd=1)} in the file, {r['duration_s']:g} s analysed"
        if r["crop"]:
            duration += f" (kept {r['crop']['from_s']:g}-{r['crop']['to_s']:g} s)"
        if r["pad"]:
            duration += f" (padded {r['pad']['added_s']:g} s)"
        rows = [
            ("File", r["file"]),
            ("Format", r["format"]),
            ("Leads", f"{len(r['leads'])}: {', '.join(r['leads'])}{derived}"),
            ("Sampling rate", f"{fmt(r['original_rate_hz'], ' Hz')} in the file, analysed at {r['rate_hz']} Hz"),
            ("Duration", duration),
            ("Amplitudes", r["amplitudes"]),
            ("Heart rate", f"{fmt(r['heart_rate_bpm'], ' bpm')} ({r['n_beats']} beats; R peaks on lead "
                           f"{r['r_peak_lead'] or 'none'})"),
            ("Quality", quality_text(r)),
            ("QT / RR", f"{fmt(r['qt_s'], ' ms', 1000)} / {fmt(r['rr_median_s'], ' ms', 1000)} = "
                        f"{fmt(r['qt_rr'], nd=2)}"),
            self.cycle_row(),
            ("Warnings", "<br>".join(_escape_cell(w) for w in r["warnings"]) or "none"),
        ]
        lines = ["| Property | Value |", "|---|---|"] + [f"| **{k}** | {_escape_cell(str(v)) if k != 'Warnings' else v} |"
                                           for k, v in rows]
        return "\n".join(lines)

    def figure(self) -> "go.Figure":
        name = "selected cycle" if self.by_model else "typical beat (neurokit2)"
        return plot_ecg(self.ecg, self.analysis, cycle=self.cycle_seconds(), cycle_name=name)


def _escape_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def parse_table_options(fs: float | None, lead_order: str | None) -> tuple[float | None, list[str] | None]:
    """The app's "Table without a header row" fields as ``read_ecg`` arguments (blank = not given)."""
    leads = [name.strip() for name in (lead_order or "").replace(";", ",").split(",") if name.strip()]
    return (float(fs) if fs else None), (leads or None)


def analyse_path(path: str | Path, name: str | None = None, fs: float | None = None,
                 leads: list[str] | None = None, analyse: Analyser | None = None) -> EcgResult:
    """Read and analyse one ECG file. ``analyse``: the ECG->cine model's analysis (EcgCineStudio.analyse), when
    the app has that model: the tab then marks the cycle the cine is generated from (see :class:`EcgResult`);
    neurokit2's alone otherwise."""
    ecg = read_ecg(path, fs=fs, leads=leads)
    return EcgResult((analyse or analyse_ecg)(ecg), name or Path(path).name)


def analyse_example(label: str, analyse: Analyser | None = None) -> EcgResult:
    if label not in EXAMPLES:
        raise ValueError(f"Unknown example {label!r}; choose one of: {', '.join(EXAMPLES)}")
    return analyse_path(EXAMPLE_DIR / EXAMPLES[label], name=f"{EXAMPLES[label]} (bundled example)", analyse=analyse)


def analyse_upload(files: str | Path | Sequence[str | Path] | None, fs: float | None = None,
                   lead_order: str | None = None, analyse: Analyser | None = None) -> EcgResult:
    """One ECG file, or the files of one WFDB record (header, signal file(s), and any annotation files, which
    are left out); ``fs`` and ``lead_order`` are used only where the file does not state them (a table without
    a header row). ``analyse``: see :func:`analyse_path`."""
    fs, leads = parse_table_options(fs, lead_order)
    if files is None or (not isinstance(files, (str, Path)) and len(files) == 0):
        raise _ecg_error("No file was uploaded. Choose an ECG file, or pick a bundled example.")
    paths = [Path(files)] if isinstance(files, (str, Path)) else [Path(f) for f in files]
    if len(paths) == 1:
        return analyse_path(paths[0], fs=fs, leads=leads, analyse=analyse)
    header, record, unused = wfdb_upload(paths)
    name = " + ".join(p.name for p in [header, *record])
    if unused:
        name += f" ({len(unused)} annotation file{'s' if len(unused) > 1 else ''} not used)"
    with tempfile.TemporaryDirectory(prefix="cardiosynth-wfdb-") as folder:
        for p in [header, *record]:
            shutil.copyfile(p, Path(folder) / p.name)
        return analyse_path(Path(folder) / header.name, name=name, analyse=analyse)


def wfdb_upload(paths: Sequence[Path]) -> tuple[Path, list[Path], list[Path]]:
    """Sort several uploaded files into one WFDB record: (its header, the signal files the header names,
    the record's other files). The others are annotation files (LUDB ships one per lead: ``N.i``, ``N.ii``,
    ...; PhysioNet's ``N.atr``, ``N.qrs``): named after the record, they come with it and are left out, since
    the analysis finds the waves itself. Anything else means these are not the files of one record."""
    headers = [p for p in paths if p.suffix.lower() == ".hea"]
    if not headers:
        if any(p.suffix.lower() in WFDB_SUFFIXES for p in paths):
            raise _ecg_error("These look like the files of a WFDB record without its header: upload the record's "
                             ".hea file together with its .dat or .mat signal file.")
        raise _ecg_error("Upload one ECG file at a time. Several files are accepted only for one WFDB record "
                         "(its .hea header, its .dat or .mat signal file and, if you have them, its annotation "
                         "files).")
    if len(headers) > 1:
        raise _ecg_error("These files hold more than one WFDB record (several .hea headers); upload one record.")
    header = headers[0]
    signals = {Path(n).name for n in _header_signal_names(header)}
    record = [p for p in paths if p is not header and (p.name in signals or p.suffix.lower() in WFDB_SUFFIXES)]
    unused = [p for p in paths if p is not header and p not in record]
    strangers = [p.name for p in unused if not p.name.startswith(header.stem + ".")]
    if strangers:
        raise _ecg_error(f"{', '.join(n[:80] for n in strangers[:3])} {'is' if len(strangers) == 1 else 'are'} not "
                         f"part of the WFDB record {header.stem[:80]}: upload one record at a time (its .hea, its "
                         ".dat or .mat and, if you have them, its annotation files).")
    return header, record, unused


def _header_signal_names(header: Path) -> list[str]:
    """The signal files an uploaded header names; its first megabyte is plenty (a 12-lead header is ~2 kB)."""
    with header.open("rb") as f:
        return signal_file_names(f.read(1_000_000).decode("latin-1"))
