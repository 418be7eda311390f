"""Play / Pause for the app's frame-by-frame plotly figures (the phenotype tab's cine figure, the ECG tab's
cine beside lead II), without blanking the cine while it plays.

Gradio's plot component hands plotly only the data and layout (``Plotly.react``), never the figure's
``frames``, so plotly's own Play (``animate``) has no frames to run unless the buttons carry them, and an
``animate`` that redraws rebuilds every image element: the browser decodes each frame's PNG anew and the pane
is blank for most of the playback (measured in Chromium: the shown image absent in every sample during Play).
So each frame of a figure is one slider step that only changes which image traces are opaque (and moves the
cursor shapes) with ``Plotly.update``, which keeps the image elements; Play runs those same steps on a timer
in the page (:func:`play_js`), looping until Pause. The figure states its frame time in ``layout.meta``.
"""

from __future__ import annotations

import plotly.graph_objects as go

META_KEY = "cs_frame_ms"


def frame_steps(n_frames: int, image_traces: list[list[int]], shapes_at, labels: list[str]) -> list[dict]:
    """One slider step per frame: in each group of image traces (a cine's frames, in order) only frame k is
    opaque, and ``shapes_at(k)`` (the figure's layout shapes at frame k: cursors) replaces the shapes."""
    flat = [i for group in image_traces for i in group]
    steps = []
    for k in range(n_frames):
        opacity = [float(pos == k) for group in image_traces for pos in range(len(group))]
        steps.append({"method": "update", "label": labels[k],
                      "args": [{"opacity": opacity}, {"shapes": shapes_at(k)}, flat]})
    return steps


def image_frame(source: str, shown: bool, name: str) -> go.Image:
    """One frame of a cine as an image trace: opaque when shown (see the module docstring for why not visible)."""
    return go.Image(source=source, opacity=float(shown), name=name, hoverinfo="skip")


def set_frame_time(fig: go.Figure, seconds: float) -> None:
    fig.update_layout(meta={META_KEY: round(1000.0 * seconds, 1)})


def play_js(elem_id: str) -> str:
    """JavaScript for a Play button beside the plot ``#elem_id``: step its slider frames on a timer, looping."""
    return f"""(...args) => {{
  const gd = document.querySelector('#{elem_id} .js-plotly-plot');
  if (!gd || !gd.layout || !gd.layout.sliders || !window.Plotly) return args;
  const steps = gd.layout.sliders[0].steps, ms = (gd.layout.meta || {{}}).{META_KEY} || 80;
  clearTimeout(gd._csTimer);
  gd._csPlaying = true;
  let k = (gd._fullLayout.sliders && gd._fullLayout.sliders[0].active) || 0;
  const tick = () => {{
    if (!gd._csPlaying || gd.layout.sliders[0].steps !== steps) return;
    k = (k + 1) % steps.length;
    const [data, layout, traces] = steps[k].args;
    window.Plotly.update(gd, data, {{...layout, 'sliders[0].active': k}}, traces)
      .then(() => {{ gd._csTimer = setTimeout(tick, ms); }});
  }};
  gd._csTimer = setTimeout(tick, ms);
  return args;
}}"""


def pause_js(elem_id: str) -> str:
    return f"""(...args) => {{
  const gd = document.querySelector('#{elem_id} .js-plotly-plot');
  if (gd) {{ gd._csPlaying = false; clearTimeout(gd._csTimer); }}
  return args;
}}"""
