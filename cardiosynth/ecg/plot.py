"""A plotly figure of an ECG and its analysis: leads with R-peaks, the selected cycle, the cardiac phase.

Returns a plain ``plotly.graph_objects.Figure``, so the Gradio app can show it with ``gr.Plot`` and the
CLI can write it to HTML without any extra dependency.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .process import EcgAnalysis
from .types import Ecg

CYCLE_COLOUR = "rgba(255, 165, 0, 0.25)"


ANALYSIS_CYCLE = "analysis"


def plot_ecg(ecg: Ecg, analysis: EcgAnalysis | None = None, leads: Sequence[str] | None = None,
             show_phase: bool = True, title: str | None = None,
             cycle: tuple[float, float] | None | str = ANALYSIS_CYCLE, cycle_name: str = "selected cycle") -> go.Figure:
    """The chosen leads (default all 12) stacked on one time axis, plus the phase phi(t) underneath.

    ``cycle``: the (start, end) in s to shade and call ``cycle_name``, None for none; by default the analysis's
    own cycle. A viewer that generates from another cycle (the app's ECG->cine model) passes that one, so that
    one figure never marks two different "selected" cycles."""
    canonical = {lead.lower(): lead for lead in ecg.leads}
    wanted = list(leads) if leads is not None else list(ecg.leads)
    unknown = [n for n in wanted if n.lower() not in canonical]
    if unknown:
        raise ValueError(f"unknown lead(s) {unknown}; choose from {list(ecg.leads)}")
    names = [canonical[n.lower()] for n in wanted]
    with_phase = show_phase and analysis is not None and analysis.r_peaks.size >= 2
    rows = len(names) + int(with_phase)
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.012,
                        row_heights=[1.0] * len(names) + ([1.3] if with_phase else []))
    t = np.arange(ecg.signal.shape[1]) / ecg.fs
    r = analysis.r_peaks if analysis is not None else np.array([], dtype=int)
    for row, name in enumerate(names, start=1):
        y = ecg.lead(name)
        fig.add_trace(go.Scatter(x=t, y=y, mode="lines", line={"width": 1, "color": "black"}, name=name,
                                 showlegend=False, hovertemplate=f"{name}: %{{y:.2f}} {ecg.units}<extra></extra>"),
                      row=row, col=1)
        if r.size:
            fig.add_trace(go.Scatter(x=t[r], y=y[r], mode="markers", marker={"color": "red", "size": 5},
                                     name="R peak", showlegend=row == 1, legendgroup="r",
                                     hovertemplate="R peak %{x:.3f} s<extra></extra>"), row=row, col=1)
        fig.update_yaxes(showticklabels=False, row=row, col=1)
        # the lead's name reads left to right beside its trace (a y-axis title turns I, II, III on their side)
        axis = "y" if row == 1 else f"y{row}"
        fig.add_annotation(text=f"<b>{name}</b>", xref="paper", x=0, xanchor="right", xshift=-6,
                           yref=f"{axis} domain", y=0.5, showarrow=False, font={"size": 12})
    if with_phase:
        phase = np.where(analysis.phase_valid, analysis.phase, np.nan)
        guessed = np.where(analysis.phase_valid, np.nan, analysis.phase)
        fig.add_trace(go.Scatter(x=t, y=phase, mode="lines", line={"color": "royalblue"},
                                 name="phase φ(t)", hovertemplate="φ = %{y:.2f} rad<extra></extra>"),
                      row=rows, col=1)
        fig.add_trace(go.Scatter(x=t, y=guessed, mode="lines", line={"color": "royalblue", "dash": "dot"},
                                 name="φ extrapolated", hoverinfo="skip"), row=rows, col=1)
        fig.update_yaxes(title_text="φ (rad)", range=[0, 2 * np.pi], tickvals=[0, np.pi, 2 * np.pi],
                         ticktext=["0", "π", "2π"], row=rows, col=1)
    if isinstance(cycle, str):
        cycle = None if analysis is None or analysis.cycle is None else (analysis.cycle[0] / ecg.fs,
                                                                         analysis.cycle[1] / ecg.fs)
    if cycle is not None:
        fig.add_vrect(x0=cycle[0], x1=cycle[1], fillcolor=CYCLE_COLOUR, line_width=0, row="all", col=1)
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=cycle_name,
                                 marker={"color": CYCLE_COLOUR, "size": 12, "symbol": "square"}))
    if ecg.valid_samples < ecg.signal.shape[1]:
        fig.add_vrect(x0=ecg.valid_samples / ecg.fs, x1=t[-1], fillcolor="rgba(128,128,128,0.2)",
                      line_width=0, row="all", col=1)
    fig.update_xaxes(title_text="time (s)", row=rows, col=1)
    fig.update_layout(title=title or _title(ecg, analysis), height=90 * rows + 140, template="plotly_white",
                      margin={"l": 60, "r": 20, "t": 70, "b": 40},
                      legend={"orientation": "h", "y": 1.0, "yanchor": "bottom", "x": 1, "xanchor": "right"})
    return fig


def _title(ecg: Ecg, analysis: EcgAnalysis | None) -> str:
    parts = [f"{ecg.source_format}", "amplitudes in mV" if ecg.calibrated else "amplitudes not calibrated"]
    if analysis is not None and analysis.heart_rate_bpm is not None:
        parts.insert(1, f"HR {analysis.heart_rate_bpm:.0f} bpm")
        if analysis.qt_s is not None:
            parts.insert(2, f"QT {1000 * analysis.qt_s:.0f} ms")
    return " · ".join(parts)
