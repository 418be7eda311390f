"""Logic behind the "ECG" tab: read an upload or a bundled example, process it, summarise it.

Uploads arrive as one or more temporary files. A WFDB record is two files (``.hea`` header + ``.dat`` /
``.mat`` signal), which Gradio stores in separate folders; they are copied side by side under their own
names before reading. Every problem with the input raises :class:`~cardiosynth.ecg.EcgError`.

:mod:`cardiosynth.ecg` is imported on first use here; the app imports it while building the ECG tab (its
ECG -> cine pipeline needs it), so the first request does not wait for neurokit2.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from cardiosynth.paths import REPO_ROOT

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


def _ecg_error(message: str) -> Exception:
    from cardiosynth.ecg import EcgError

    return EcgError(message)


@dataclass
class EcgResult:
    ecg: Any  # cardiosynth.ecg.Ecg
    analysis: Any  # cardiosynth.ecg.EcgAnalysis
    name: str

    def report(self) -> dict:
        """What a clinician checks first; the same fields as ``python -m cardiosynth.ecg --json``."""
        from cardiosynth.ecg.summary import ecg_report

        return {"file": self.name, **ecg_report(self.ecg, self.analysis)}

    def summary_markdown(self) -> str:
        from cardiosynth.ecg.summary import fmt

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
            ("Quality", f"{r['quality']} (score {fmt(r['quality_score'], nd=2)})"),
            ("QT / RR", f"{fmt(r['qt_s'], ' ms', 1000)} / {fmt(r['rr_median_s'], ' ms', 1000)} = "
                        f"{fmt(r['qt_rr'], nd=2)}"),
            ("Selected cycle", f"{r['cycle_s'][0]:.3f}-{r['cycle_s'][1]:.3f} s" if r["cycle_s"] else "none found"),
            ("Warnings", "<br>".join(_escape_cell(w) for w in r["warnings"]) or "none"),
        ]
        lines = ["| Property | Value |", "|---|---|"] + [f"| **{k}** | {_escape_cell(str(v)) if k != 'Warnings' else v} |"
                                           for k, v in rows]
        return "\n".join(lines)

    def figure(self) -> "go.Figure":
        from cardiosynth.ecg import plot_ecg

        return plot_ecg(self.ecg, self.analysis)


def _escape_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def parse_table_options(fs: float | None, lead_order: str | None) -> tuple[float | None, list[str] | None]:
    """The app's "Table without a header row" fields as ``read_ecg`` arguments (blank = not given)."""
    leads = [name.strip() for name in (lead_order or "").replace(";", ",").split(",") if name.strip()]
    return (float(fs) if fs else None), (leads or None)


def analyse_path(path: str | Path, name: str | None = None, fs: float | None = None,
                 leads: list[str] | None = None) -> EcgResult:
    from cardiosynth.ecg import process_ecg, read_ecg

    ecg = read_ecg(path, fs=fs, leads=leads)
    return EcgResult(ecg, process_ecg(ecg), name or Path(path).name)


def analyse_example(label: str) -> EcgResult:
    if label not in EXAMPLES:
        raise ValueError(f"Unknown example {label!r}; choose one of: {', '.join(EXAMPLES)}")
    return analyse_path(EXAMPLE_DIR / EXAMPLES[label], name=f"{EXAMPLES[label]} (bundled example)")


def analyse_upload(files: str | Path | Sequence[str | Path] | None, fs: float | None = None,
                   lead_order: str | None = None) -> EcgResult:
    """One ECG file, or the header and signal file(s) of one WFDB record; ``fs`` and ``lead_order`` are used
    only where the file does not state them (a table without a header row)."""
    fs, leads = parse_table_options(fs, lead_order)
    if files is None or (not isinstance(files, (str, Path)) and len(files) == 0):
        raise _ecg_error("No file was uploaded. Choose an ECG file, or pick a bundled example.")
    paths = [Path(files)] if isinstance(files, (str, Path)) else [Path(f) for f in files]
    if len(paths) == 1:
        return analyse_path(paths[0], fs=fs, leads=leads)
    suffixes = {p.suffix.lower() for p in paths}
    if not suffixes <= set(WFDB_SUFFIXES) or ".hea" not in suffixes:
        raise _ecg_error("Upload one ECG file at a time. Several files are accepted only for one WFDB record "
                       "(its .hea header and its .dat or .mat signal file).")
    headers = [p for p in paths if p.suffix.lower() == ".hea"]
    if len(headers) > 1:
        raise _ecg_error("These files hold more than one WFDB record (several .hea headers); upload one record.")
    with tempfile.TemporaryDirectory(prefix="cardiosynth-wfdb-") as folder:
        for p in paths:
            shutil.copyfile(p, Path(folder) / p.name)
        return analyse_path(Path(folder) / headers[0].name, name=" + ".join(p.name for p in paths))
