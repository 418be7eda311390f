"""The "Generate cine" panel's logic (no Gradio here): phenotypes -> cine with the bundled PhenotypeToCine,
the measured LV/RV area curves of the result, the side-by-side comparison with the previous result, and the
download files. What it shares with the ECG -> cine studio (settings checks, file names, downloads) is
:class:`.studio.GeneratorStudio`.

Gradio's plot component renders plotly figures without animation frames, so the cine plays as an animated
GIF (an <img>, plays everywhere), and a plotly figure steps through the frames with a slider, in sync with the
area curves and with the previous result.
"""

from __future__ import annotations

import html
import json
import logging
import math
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from cardiosynth import phenotypes as ph
from cardiosynth.cine import Cine
from cardiosynth.export import frame_interval, save_cine
from cardiosynth.measure.curves import NOT_MEASURABLE, unreadable_reason
from cardiosynth.measure.measurer import CineMeasurer
from cardiosynth.pipelines import PhenotypeToCine
from cardiosynth.pipelines.requests import CineRequest

from .compute import on_compute_thread
from .player import frame_steps, image_frame, set_frame_time
from .studio import GeneratorStudio, png_uris

log = logging.getLogger("cardiosynth.app")

COLOURS = {"now": "#1565c0", "previous": "#8d6e63"}
GENERATION_SHARE = 0.85  # of the click's wait: the generator; then measuring and rendering the GIF
READ_BACK = ("est_LVEDV", "est_LVEF", "est_RVEDV")  # the estimates the panel reads back from the cine


@dataclass
class CineResult:
    """One generated cine with everything that made it and what was measured on it."""

    cine: Cine
    conditions: dict  # nine phenotypes, slice position, seed, steps, cfg, temperature, model
    measured: dict = field(default_factory=dict)  # estimated phenotypes + area curves (when the measurer is there)
    files: dict = field(default_factory=dict)  # format -> path, written on demand
    notes: list = field(default_factory=list)  # warnings that belong with this cine (shown beside it)
    scored: object = None  # the explorer's Scored set (values and plausibility), when it was scored

    @property
    def label(self) -> str:
        c = self.conditions
        return f"LVEDV {c['LVEDV']:.0f} mL, LVEF {c['LVEF']:.0f} %, seed {c['seed']}"


@dataclass(frozen=True)
class PanelRequest:
    """A "Generate cine" click's request, checked once by the pipeline, and the warnings it raised."""

    checked: CineRequest
    warnings: list = field(default_factory=list)


#: what every rendered cine shares with its exemplar, said where the cine is shown
PROVENANCE_NOTE = ("\n\n*Made of real pixels*: every frame is the real end-diastolic frame of one training slice "
                   "({exemplar}, ACDC, CC BY-NC-SA 4.0), deformed toward these values and moved through a cycle. It "
                   "shares that patient's image texture, noise and surroundings: treat it as derived from a real "
                   "patient's image, not as anonymous.")


class CineStudio(GeneratorStudio):
    """Holds the phenotype -> cine pipeline and the measurer; ``available`` is False (with the reason) when
    the generator is not bundled, and the tab says so instead of failing."""

    missing = "No phenotype\u2192cine generator is bundled"
    formats = ("mp4", "gif", "nii.gz", "dcm", "json", "csv")

    def __init__(self, pipeline=None, measurer=None, load: bool = True, device: str = "auto"):
        """``device``: where the pipeline it loads runs (``auto``, ``cpu`` or ``cuda``; app.py's ``--device``)."""
        self.pipeline, self.measurer, self.unavailable_reason = pipeline, measurer, ""
        self.device = device
        if load:
            on_compute_thread(self._load)  # where generation will run (see cardiosynth.app.compute)

    def _load(self) -> None:
        if self.pipeline is None:
            self.load_pipeline(lambda device: PhenotypeToCine.from_pretrained(device=device), "phenotype\u2192cine")
        if self.measurer is None and self.pipeline is not None:
            try:
                self.measurer = CineMeasurer()
            except Exception:  # noqa: BLE001 - the curves are optional
                log.warning("Measurement models not available: no area curves", exc_info=True)
        self.folder = Path(tempfile.mkdtemp(prefix="cardiosynth-cines-"))

    @property
    def defaults(self) -> dict:
        if not self.available:
            return {"steps": 8, "cfg": 3.0, "max_steps": 64}
        return {"steps": self.pipeline.default_sampling.steps, "cfg": self.pipeline.default_sampling.cfg,
                "max_steps": self.pipeline.max_steps}

    # ----------------------------------------------------------------------------------------- actions
    def request(self, values: Mapping[str, float], seed, steps, cfg, slice_position) -> PanelRequest:
        """The panel's request, parsed and checked once by the pipeline (each bad value one readable error):
        what :meth:`run` generates and the explorer scores. The generator's warnings about the request (e.g.
        values more than 3 SD from its training data) travel with it to the cine's notes."""
        self.require_pipeline()
        independent = {n: values.get(n) for n in ph.INDEPENDENT}  # SV / EF follow from the volumes
        request, caught = on_compute_thread(_recording_warnings, self.pipeline.request, independent, n=1, seed=seed,
                                            steps=steps, cfg=cfg, slice_position=slice_position)
        return PanelRequest(request, caught)

    def generate(self, values: Mapping[str, float], seed, steps, cfg, slice_position, plausibility=None,
                 progress=None) -> CineResult:
        """One cine for ``values``: :meth:`run` of :meth:`request`."""
        return self.run(self.request(values, seed, steps, cfg, slice_position), plausibility, progress)

    def run(self, request: PanelRequest, plausibility=None, progress=None) -> CineResult:
        """The cine of a checked request. ``plausibility`` (the explorer's verdict on the set, optional) and the
        generator's own warnings become ``notes``, which the panel shows beside the cine. ``progress(stage,
        fraction)`` hears the real stages: each MAR decoding step, the decode to frames, the measurement of the
        areas."""
        tell = progress or (lambda stage, fraction: None)
        self.require_pipeline()
        result, caught = on_compute_thread(_recording_warnings, self.pipeline.run, request.checked,
                                           progress=lambda stage, f: tell(stage, GENERATION_SHARE * f))
        row, sampling = result.conditions.iloc[0], request.checked.sampling
        conditions = {**{n: round(float(row[n]), 2) for n in ph.NAMES}, "slice_position": float(row["slice_position"]),
                      "seed": sampling.seed, "steps": sampling.steps, "cfg": sampling.cfg,
                      "temperature": float(row["temperature"]), "model": result.cines[0].source,
                      **{k: row[k] for k in ("motion", "exemplar") if k in row}}
        notes = plausibility_notes(plausibility) + list(dict.fromkeys(request.warnings + caught))
        generated = CineResult(result.cines[0], conditions, notes=notes)
        tell("Measuring the LV and RV areas frame by frame", GENERATION_SHARE)
        generated.measured = on_compute_thread(self.measure, generated.cine)
        self.name_files(generated, sampling.seed)
        return generated

    def measure(self, cine: Cine) -> dict:
        if self.measurer is None:
            return {}
        try:
            table, curves = self.measurer.measure([cine])
        except ValueError:  # e.g. a generator whose cines the bundled segmenter was not trained for
            log.warning("Could not measure the generated cine; no area curves", exc_info=True)
            return {}
        row, curve = table.iloc[0], curves[0]
        measured = {"lv_area_mm2": curve.lv_area_mm2.tolist(), "rv_area_mm2": curve.rv_area_mm2.tolist(),
                    "ed_frame": int(curve.ed_frame), "es_frame": int(curve.es_frame), "not_measurable": {}}
        for key in READ_BACK:
            value = float(row.get(key, math.nan))
            reason = unreadable_reason(key, value, curve.lv_area_mm2)
            measured[key] = None if reason else value  # never a number the measurement cannot stand behind
            if reason:
                measured["not_measurable"][key] = reason
        return measured

    def write(self, result: CineResult, fmt: str, path: Path) -> None:
        """The result as ``fmt`` (gif, mp4, nii.gz, dcm, json, csv) at ``path``, with its conditions and what
        was measured on it."""
        measured = {k: v for k, v in result.measured.items() if k.startswith("est_") or k == "not_measurable"}
        metadata = {**result.conditions, "measured": measured}
        if fmt == "json":
            path.write_text(json.dumps(metadata, indent=2))
        elif fmt == "csv":
            import pandas as pd

            pd.DataFrame([{k: v for k, v in metadata.items() if k != "measured"}]).to_csv(path, index=False)
        else:
            save_cine(result.cine, path, metadata if fmt in ("nii.gz", "dcm") else None)

    # ----------------------------------------------------------------------------------------- views
    def values_markdown(self, now: CineResult, previous: CineResult | None) -> str:
        """The values that made the cine (and the previous one), with what the measurement reads back."""
        head = "| | now |" + (" previous | change |" if previous else "")
        rule = "|---|---:|" + ("---:|---:|" if previous else "")
        lines = [head, rule]

        def cell(result, key, fmt, source):
            if source == "measured" and key in result.measured.get("not_measurable", {}):
                return f"*{NOT_MEASURABLE}*"
            value = getattr(result, source).get(key)
            return fmt.format(value) if value is not None else "-"

        def row(label, key, fmt="{:.1f}", source="conditions"):
            a = getattr(now, source).get(key)
            text = f"| {label} | {cell(now, key, fmt, source)} |"
            if previous:
                b = getattr(previous, source).get(key)
                change = (a - b) if isinstance(a, (int, float)) and isinstance(b, (int, float)) else None
                text += f" {cell(previous, key, fmt, source)} | {'' if not change else f'{change:+.1f}'} |"
            return text

        for name in ph.NAMES:
            lines.append(row(f"{name} ({ph.BY_NAME[name].unit})", name))
        lines += [row("slice position", "slice_position", "{:.2f}"), row("seed", "seed", "{:d}")]
        if now.conditions.get("motion") in (None, "mar"):  # the MAR drew: its sampler settings matter
            lines += [row("decoding steps", "steps", "{:d}"), row("guidance scale", "cfg", "{:.1f}")]
        if "exemplar" in now.conditions:
            lines += [row("made from (real exemplar)", "exemplar", "{}"), row("motion", "motion", "{}")]
        if now.measured:
            lines += [row("**read back** LVEDV (mL)", "est_LVEDV", source="measured"),
                      row("**read back** LVEF (%)", "est_LVEF", source="measured")]
        note = ("\n\n*Read back*: what the bundled segmenter and phenotype estimator measure on this one generated "
                "slice (their own error on real cines: LVEDV MAE ~44 mL, LVEF MAE ~8 points on the validation split). "
                "Draws scatter: for one set of values, the LVEF read back moves by about 4-6 points from seed to "
                "seed, so compare a few seeds before trusting one cine.")
        reasons = sorted(set(now.measured.get("not_measurable", {}).values())) if now.measured else []
        if reasons:
            note += (f"\n\n*{NOT_MEASURABLE[0].upper() + NOT_MEASURABLE[1:]}*: " + "; ".join(reasons) +
                     ". Try a slice nearer the mid-ventricle, or another seed.")
        if "exemplar" in now.conditions:
            note += PROVENANCE_NOTE.format(exemplar=now.conditions["exemplar"])
        return notes_markdown(now) + "\n".join(lines) + (note if now.measured else "")

    def figure(self, now: CineResult, previous: CineResult | None = None) -> go.Figure:
        """Frames of this cine (and the previous one) with a frame slider, above the LV/RV area curves; Play
        (:mod:`.player`, buttons beside the plot) runs the slider's frames at the cine's frame rate."""
        results = [("now", now)] + ([("previous", previous)] if previous else [])
        n_frames = now.cine.n_frames
        fig = make_subplots(rows=2, cols=len(results), row_heights=[0.62, 0.38], vertical_spacing=0.1,
                            horizontal_spacing=0.06,
                            specs=[[{}] * len(results), [{"colspan": len(results)}] + [None] * (len(results) - 1)],
                            subplot_titles=[f"{name}: {r.label}" for name, r in results] + ["LV / RV area (mm\u00b2)"])
        groups = []
        for col, (name, result) in enumerate(results, start=1):
            uris = png_uris(result.cine)
            groups.append(list(range(len(fig.data), len(fig.data) + n_frames)))
            for frame in range(n_frames):
                fig.add_trace(image_frame(uris[min(frame, len(uris) - 1)], frame == 0, f"{name} frame {frame}"),
                              row=1, col=col)
            fig.update_xaxes(visible=False, constrain="domain", row=1, col=col)
            fig.update_yaxes(visible=False, scaleanchor=f"x{'' if col == 1 else col}", constrain="domain", row=1, col=col)
        for name, result in results:
            if not result.measured:
                continue
            for key, chamber in (("lv_area_mm2", "LV"), ("rv_area_mm2", "RV")):
                fig.add_trace(go.Scatter(y=result.measured[key], x=list(range(len(result.measured[key]))),
                                         mode="lines+markers", name=f"{chamber} {name}",
                                         line={"color": COLOURS[name], "dash": "solid" if chamber == "LV" else "dot"}),
                              row=2, col=1)
        curve_axis = "x" + ("" if len(results) == 1 else str(len(results) + 1))

        def line(frame):
            return [{"type": "line", "xref": curve_axis, "yref": "paper", "x0": frame, "x1": frame, "y0": 0, "y1": 0.36,
                     "line": {"color": "#c62828", "width": 2}}]

        steps = frame_steps(n_frames, groups, line, [f"{k}" + (" ED" if k == 0 else "") for k in range(n_frames)])
        fig.update_layout(height=700, template="plotly_white", margin={"l": 40, "r": 20, "t": 50, "b": 110},
                          shapes=line(0), legend={"orientation": "h", "x": 0.5, "xanchor": "center", "y": 0.4,
                                                  "yanchor": "bottom"},
                          sliders=[{"active": 0, "steps": steps, "currentvalue": {"prefix": "frame "}, "y": -0.07,
                                    "yanchor": "top", "pad": {"t": 10}, "len": 1.0}])
        set_frame_time(fig, frame_interval(now.cine))
        fig.update_xaxes(title_text="frame (0 = end-diastole)", row=2, col=1)
        return fig


def _recording_warnings(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` and the texts of the warnings it raised (each also goes to the server log).
    Runs on the compute thread, which runs one generation at a time, so the warnings are this call's."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = fn(*args, **kwargs)
    texts = []
    for item in caught:
        log.warning("%s: %s", item.category.__name__, item.message)
        if issubclass(item.category, UserWarning) and str(item.message) not in texts:
            texts.append(str(item.message))
    return value, texts


def plausibility_notes(plausibility) -> list[str]:
    """The explorer's verdict as a note for the cine, when the set is not plausible (amber or red)."""
    if plausibility is None or plausibility.status == "green":
        return []
    word = {"amber": "Unusual", "red": "Implausible"}.get(plausibility.status, plausibility.status)
    reasons = "; ".join(plausibility.reasons)
    detail = f": {reasons}" if reasons else ""
    return [(f"{word} phenotype set (plausibility {plausibility.status}{detail}): the generator rarely or never "
             "saw such hearts, so this cine may not show these values.")]


def notes_markdown(result: CineResult) -> str:
    """The notes of ``result`` as a warning block above its values ("" when there are none)."""
    if not result.notes:
        return ""
    items = "".join(f"<li>{html.escape(text)}</li>" for text in result.notes)
    return (f'<div class="cs-warning" role="status" id="cine-warnings"><b>Note on this cine:</b>'
            f'<ul>{items}</ul></div>\n\n')

