"""The "Generate cine from this ECG" panel's logic (no Gradio here): ECG -> cine with the bundled EcgToCine, a
figure that plays the cine beside lead II of the heartbeat it was made from, the animated GIF and the downloads.

The figure: left the cine frame, right lead II from the cycle's R peak to the next, with a cursor at the time of
the frame shown. Play / Pause (buttons beside the plot) and a frame slider step frame k and the cursor (at
``cycle['frame_times_s'][k]``) together, through :mod:`.player` (it says why the frames switch opacity and
plotly's own ``animate`` is not used: during Play the pane was blank). The GIF, at the ECG's own heart rate,
is what animates without a click. What it shares with the phenotype -> cine studio (settings checks, file names,
downloads) is :class:`.studio.GeneratorStudio`.

The heart animated is not read from the ECG: by default it is the typical healthy heart (the phenotype
explorer's start, :meth:`PhenotypePrior.typical_heart`); the tab offers a random heart from the phenotype model
(a heart seed that moves on) or one with the values a user types, and says in one sentence which heart it uses.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from cardiosynth import phenotypes as ph
from cardiosynth.ecg import read_ecg
from cardiosynth.export import save_cine
from cardiosynth.pipelines.ecg_to_cine import MAX_STEPS, AnalysedEcg, EcgToCine
from cardiosynth.weights import WEIGHTS_DIR

from .compute import on_compute_thread
from .player import frame_steps, image_frame, set_frame_time
from .studio import GeneratorStudio, png_uris

CURSOR_COLOUR = "#c62828"
FORMATS = ("mp4", "gif", "nii.gz", "dcm", "json")
#: The heart a cine animates, as the tab offers it: (label, value); the first is the default.
HEART_CHOICES = (("A typical healthy heart", "typical"), ("A random heart from the phenotype model", "random"),
                 ("A heart with the values I set", "values"))
#: The values a user may set for the heart (the rest is completed by the phenotype model).
HEART_VALUES = ("LVEDV", "LVEF", "LVM", "RVEDV", "RVEF")
ASK_FOR_VALUES = "Type at least one of LVEDV, LVEF, LVM, RVEDV or RVEF; the phenotype model fills in the rest."


@dataclass
class EcgCineResult:
    """One cine generated from an ECG, with the ECG it came from (for the lead II panel) and its files."""

    output: object  # cardiosynth.pipelines.ecg_to_cine.EcgToCineOutput
    ecg: object  # cardiosynth.ecg.Ecg
    name: str = ""
    files: dict = field(default_factory=dict)  # format -> path, written on demand; "stem" -> the file name stem

    @property
    def cine(self):
        return self.output.cine

    @property
    def cycle(self) -> dict:
        return self.output.cycle

    @property
    def frame_seconds(self) -> float:
        """Seconds per frame: the cycle's RR interval over the frames, so the GIF beats at the ECG's rate."""
        return self.cycle["rr_s"] / self.cine.n_frames

    def lead_ii(self) -> tuple[np.ndarray, np.ndarray]:
        """Times (s) and lead II samples from the cycle's start to its end (both R peaks included)."""
        fs = self.ecg.fs
        first = max(0, int(np.floor(self.cycle["start_s"] * fs)))
        last = min(self.ecg.signal.shape[1], int(np.ceil(self.cycle["end_s"] * fs)) + 1)
        return np.arange(first, last) / fs, self.ecg.lead("II")[first:last]


class EcgCineStudio(GeneratorStudio):
    """Holds the ECG -> cine pipeline; ``available`` is False (with the reason) when its weights are not bundled,
    and the ECG tab says so instead of failing: reading and analysing ECGs works without them."""

    missing = "No ECG\u2192cine generator is bundled"
    formats = FORMATS
    stem_kind = "ecg_"

    def __init__(self, pipeline=None, weights: str | Path | None = None, load: bool = True, anatomy=None,
                 device: str = "auto"):
        """``anatomy``: the app's phenotype -> cine pipeline, shared rather than loaded a second time; ``device``:
        where the pipeline it loads runs (``auto``, ``cpu`` or ``cuda``; app.py's ``--device``)."""
        self.pipeline, self.weights, self.unavailable_reason = pipeline, weights, ""
        self.device = device
        self.anatomy = anatomy
        self.folder = Path(tempfile.mkdtemp(prefix="cardiosynth-ecg-cines-"))
        if load and pipeline is None:
            on_compute_thread(self._load)  # where generation will run (see cardiosynth.app.compute)
        elif pipeline is None:
            self.unavailable_reason = "the ECG\u2192cine pipeline was not loaded"

    def _load(self) -> None:
        self.load_pipeline(lambda device: EcgToCine.from_pretrained(self.weights or WEIGHTS_DIR, anatomy=self.anatomy,
                                                                    device=device), "ECG\u2192cine")

    @property
    def defaults(self) -> dict:
        """The flow's own sampling settings, which the Advanced controls start from."""
        if not self.available:
            return {"steps": 10, "cfg": 2.0, "max_steps": MAX_STEPS}
        defaults = self.pipeline.default_sampling
        return {"steps": defaults.steps, "cfg": defaults.cfg, "max_steps": MAX_STEPS}

    # ----------------------------------------------------------------------------------------- actions
    def analyse(self, ecg) -> AnalysedEcg:
        """``ecg`` read and analysed by the pipeline (neurokit2 and the ECG MAE): its ``cycle`` is the one
        "Generate cine from this ECG" animates (the same for every seed and setting), so the ECG tab marks that
        one cycle before any cine exists (None when the model finds no complete heartbeat; generating then says
        why). The result belongs to this request (the tab keeps it in the session) and is what :meth:`generate`
        takes."""
        self.require_pipeline()
        return on_compute_thread(self.pipeline.analyse, ecg)

    @staticmethod
    def heart_request(choice: str = "typical", heart_seed=0, values: dict | None = None) -> dict:
        """The tab's heart controls as EcgToCine keywords: ``{}`` for the typical healthy heart (the pipeline's
        default), ``{"phenotype_seed": s}`` for a random heart, ``{"phenotypes": {...}}`` for the values typed
        (blank ones left to the phenotype model). What the controls hold is passed as it is: the pipeline's
        request checks it, once."""
        if choice in (None, "", "typical"):
            return {}
        if choice == "random":
            return {"phenotype_seed": heart_seed}
        if choice != "values":
            raise ValueError(f"Choose the heart to animate: {', '.join(v for _, v in HEART_CHOICES)}; got {choice!r}.")
        given = {n: v for n, v in (values or {}).items() if n in HEART_VALUES and typed(v)}
        if not given:
            raise ValueError(ASK_FOR_VALUES)
        return {"phenotypes": given}

    def heart(self, choice: str = "typical", heart_seed=0, values: dict | None = None) -> dict:
        """The heart a cine would animate with these controls (its phenotypes and what it is), without
        generating: the pipeline's ``conditions["anatomy"]``."""
        self.require_pipeline()
        request = self.heart_request(choice, heart_seed, values)
        return on_compute_thread(lambda: self.pipeline.anatomy_set(**request)[1])

    def generate(self, ecg, seed, steps, cfg, slice_position, name: str = "",
                 heart: dict | None = None) -> EcgCineResult:
        """One cine for ``ecg`` (an Ecg, a path, or the :class:`AnalysedEcg` :meth:`analyse` made, already shown
        in the tab); ``heart``: :meth:`heart_request`'s keywords (default: the typical healthy heart). Bad settings
        and unusable ECGs raise readable errors."""
        self.require_pipeline()
        if ecg is None:
            raise ValueError("Load an ECG first: upload a file or pick a bundled example above.")
        if isinstance(ecg, (str, Path)):
            ecg, name = read_ecg(ecg), name or Path(ecg).name
        request = on_compute_thread(self.pipeline.request, ecg, seed=seed, steps=steps, cfg=cfg,
                                    slice_position=slice_position, **(heart or {}))
        output = on_compute_thread(self.pipeline.run, request)
        result = EcgCineResult(output, request.ecg.ecg, name)
        self.name_files(result, request.sampling.seed)
        return result

    def metadata(self, result: EcgCineResult) -> dict:
        """What made the cine (settings, model, source ECG) and the cycle it follows: the JSON download."""
        return {"conditions": {**result.output.conditions, "ecg_file": result.name}, "cycle": result.cycle}

    def write(self, result: EcgCineResult, fmt: str, path: Path) -> None:
        """The result as ``fmt`` (gif, mp4, nii.gz, dcm, json) at ``path``; frames run at the ECG's rate."""
        if fmt == "json":
            path.write_text(json.dumps(self.metadata(result), indent=2))
        else:
            info = self.metadata(result) if fmt in ("nii.gz", "dcm") else None
            save_cine(result.cine, path, info, frame_seconds=result.frame_seconds)

    # ----------------------------------------------------------------------------------------- views
    def summary_markdown(self, result: EcgCineResult) -> str:
        """The heartbeat the cine follows and the settings that made it."""
        c, k = result.output.conditions, result.cycle
        return (f"**Cycle used**: the selected cycle shaded in the ECG above, {k['start_s']:.2f}\u2013"
                f"{k['end_s']:.2f} s (beat {k['index'] + 1} of the {k['cycles_found']} complete ones the ECG model "
                "found; the typical one), "
                f"RR {1000 * k['rr_s']:.0f} ms, {k['heart_rate_bpm']:.0f} bpm. Frame 0 sits on the R peak "
                f"(end-diastole); the {result.cine.n_frames} frames span one R\u2013R interval, "
                f"{1000 * result.frame_seconds:.0f} ms apart."
                + (f" **End-systole** {1000 * k['es_s']:.0f} ms after the R peak ({100 * k['es_fraction']:.0f} % of "
                   f"the cycle, dashed line): the cine is re-timed so that systole lasts the QT, "
                   f"{1000 * k['qt_s']:.0f} ms ({k['timing_source']})." if "es_s" in k else "")
                + _anatomy_markdown(c.get("anatomy"))
                + f"\n\n**Settings**: seed {c['seed']}, {c['steps']} {c['sampler']} "
                f"sampling steps, guidance {c['cfg']:g}, slice position {c['slice_position']:.2f}; model `{c['model']}`"
                + (f"; ECG `{result.name}`" if result.name else "") + ".")

    def figure(self, result: EcgCineResult) -> go.Figure:
        """The cine frame beside lead II of its cycle, a cursor (a shape) at the frame's time, a frame slider."""
        n, times = result.cine.n_frames, result.cycle["frame_times_s"]
        fig = make_subplots(rows=1, cols=2, column_widths=[0.38, 0.62], horizontal_spacing=0.08,
                            subplot_titles=["Generated cine", "Lead II over the cycle used (cursor: frame time)"])
        for k, uri in enumerate(png_uris(result.cine)):
            fig.add_trace(image_frame(uri, k == 0, f"frame {k}"), row=1, col=1)
        t, lead = result.lead_ii()
        low, high = float(np.min(lead)), float(np.max(lead))
        pad = 0.1 * max(high - low, 1e-3)
        fig.add_trace(go.Scatter(x=t, y=lead, mode="lines", name="lead II", line={"color": "#263238", "width": 1.5},
                                 hovertemplate="%{x:.3f} s<extra></extra>"), row=1, col=2)
        cursor_y = [low - pad, high + pad]
        fixed = []
        if "es_s" in result.cycle:  # where the cine was re-timed to end systole (QT after the R peak)
            es = result.cycle["start_s"] + result.cycle["es_s"]
            fixed.append({"type": "line", "xref": "x2", "yref": "y2", "x0": es, "x1": es, "y0": cursor_y[0],
                          "y1": cursor_y[1], "line": {"dash": "dash", "color": "#1565c0"}})
            fig.add_annotation(x=es, y=cursor_y[0], xref="x2", yref="y2", text="end-systole", showarrow=False,
                               xanchor="left", yanchor="bottom")

        def shapes_at(k: int) -> list[dict]:
            return [{"type": "line", "xref": "x2", "yref": "y2", "x0": times[k], "x1": times[k], "y0": cursor_y[0],
                     "y1": cursor_y[1], "line": {"color": CURSOR_COLOUR, "width": 3}}, *fixed]

        steps = frame_steps(n, [list(range(n))], shapes_at, [f"{k}" for k in range(n)])
        fig.update_layout(
            height=430, template="plotly_white", showlegend=False, margin={"l": 40, "r": 20, "t": 60, "b": 40},
            shapes=shapes_at(0),
            sliders=[{"active": 0, "steps": steps, "x": 0.0, "len": 1.0, "y": -0.05, "yanchor": "top",
                      "currentvalue": {"prefix": "frame ", "suffix": " (0 = R peak)"}, "pad": {"t": 30}}])
        set_frame_time(fig, result.frame_seconds)
        fig.update_xaxes(visible=False, constrain="domain", row=1, col=1)
        fig.update_yaxes(visible=False, scaleanchor="x", constrain="domain", row=1, col=1)
        fig.update_xaxes(title_text="time in the recording (s)", range=[result.cycle["start_s"], result.cycle["end_s"]],
                         row=1, col=2)
        fig.update_yaxes(title_text=f"lead II ({result.ecg.units})", range=cursor_y, row=1, col=2)
        return fig


def typed(value) -> bool:
    """Whether a heart value box holds a value: the page sends an empty number box as 0 (or None), and no heart
    has a volume, mass or ejection fraction of 0, so 0 reads as left blank."""
    return value not in (None, "") and not (isinstance(value, (int, float)) and value == 0)


def heart_values(anatomy: dict) -> str:
    """The heart's main phenotypes in words: "LVEDV 123 mL, LVEF 62 %, ..." (empty for a real heart)."""
    return ", ".join(f"{n} {anatomy[n]:.0f} {ph.BY_NAME[n].unit}" for n in HEART_VALUES if n in anatomy)


def heart_sentence(anatomy: dict) -> str:
    """One sentence naming the heart a cine animates, its values, and that the ECG does not choose it."""
    values = heart_values(anatomy)
    source = anatomy["source"]
    return (f"The cine animates {source}{': ' + values if values else ''}, not a heart read from the ECG; change it "
            "under \u201cHeart to animate\u201d.")


def _anatomy_markdown(anatomy: dict | None) -> str:
    """Which heart the cine animates (the ECG does not set it) and the real slice its pixels come from."""
    if not anatomy:
        return ""
    values = heart_values(anatomy)
    made_of = ("" if "exemplar" not in anatomy else
               f" Every frame is made of the real pixels of one training slice ({anatomy['exemplar']}, ACDC, "
               "CC BY-NC-SA 4.0), deformed toward these values and moved, so it shares that patient's image texture.")
    return (f"\n\n**Heart** (not from the ECG): {anatomy['source']}{', with ' + values if values else ''}.{made_of}")
