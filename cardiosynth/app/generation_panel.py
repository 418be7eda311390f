"""The one "Generate cine" panel behind both generation tabs: phenotypes -> cine (phenotype tab) and ECG -> cine
(ECG tab).

Both panels are laid out the same way: a heading (or, without a generator, why there is none), the generate
button beside the cine seed, the Advanced settings (steps, guidance, slice position), a message line, the tab's
own result views, the frame-by-frame figure with Play / Pause, and the downloads. :func:`add_generation_panel`
lays that out from a :class:`GenerationSpec` (the words and element ids that tell the panels apart); each tab
then wires its own handlers to the components it returns, since what a click returns differs between them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import gradio as gr

from cardiosynth.pipelines.requests import GUIDANCE_RANGE

from .studio import GeneratorStudio
from .widgets import number, player_buttons, slider


@dataclass(frozen=True)
class GenerationSpec:
    """What tells one generation panel from the other. ``ids`` prefixes the element ids: ``#{ids}-heading``,
    ``-message``, ``-plot`` (and its ``-play`` / ``-pause``), ``-files``, ``-note``, ``-advanced`` (with
    ``-steps``, ``-cfg``, ``-position``)."""

    heading: str
    ids: str
    missing: str  # opens the note shown instead of the panel when there is no generator
    button: str
    button_id: str
    seed_info: str
    steps_label: str
    steps_info: str
    steps_cap: int  # the steps slider ends at the lower of this and the generator's own maximum
    conditioned_on: str  # what guidance makes the cine follow harder ("the phenotypes", "the ECG")
    plot_label: str
    files_label: str
    note: str = ""  # shown under the heading when there is a generator
    missing_id: str | None = None


@dataclass
class GenerationPanel:
    """The components of a laid-out generation panel, for the tab to wire."""

    button: gr.Button
    seed: gr.Number
    steps: gr.Slider
    cfg: gr.Slider
    position: gr.Slider
    message: gr.Markdown
    views: tuple  # what the tab's ``views()`` laid out between the message and the figure
    plot: gr.Plot
    files: gr.File
    current: gr.State  # the result on screen

    @property
    def settings(self) -> list:
        """The generate handlers' settings inputs, in their order: seed, steps, cfg, slice position."""
        return [self.seed, self.steps, self.cfg, self.position]


def add_generation_panel(spec: GenerationSpec, studio: GeneratorStudio,
                         views: Callable[[], tuple]) -> GenerationPanel | None:
    """The panel for ``studio``, with ``views()`` laying out the tab's result views; None (and a note saying
    why) when ``studio`` has no generator."""
    gr.Markdown(f"## {spec.heading}", elem_id=f"{spec.ids}-heading")
    if not studio.available:
        gr.Markdown(f"{spec.missing}: {studio.unavailable_reason}", elem_classes=["cs-note"], elem_id=spec.missing_id)
        return None
    if spec.note:
        gr.Markdown(spec.note, elem_classes=["cs-note"], elem_id=f"{spec.ids}-note")
    button, seed = _generate_row(spec)
    steps, cfg, position = _advanced_settings(spec, studio.defaults)
    message = gr.Markdown("", elem_id=f"{spec.ids}-message")
    shown = views()
    plot = gr.Plot(label=spec.plot_label, elem_id=f"{spec.ids}-plot")
    player_buttons(f"{spec.ids}-plot")
    files = gr.File(label=spec.files_label, file_count="multiple", elem_id=f"{spec.ids}-files", interactive=False)
    return GenerationPanel(button, seed, steps, cfg, position, message, shown, plot, files, gr.State(None))


def _generate_row(spec: GenerationSpec) -> tuple[gr.Button, gr.Number]:
    with gr.Row(equal_height=True):
        button = gr.Button(spec.button, variant="primary", elem_id=spec.button_id, scale=2)
        seed = number(0, precision=0, minimum=0, label="Cine seed", scale=1, info=spec.seed_info)
    return button, seed


def _advanced_settings(spec: GenerationSpec, defaults: dict) -> tuple[gr.Slider, gr.Slider, gr.Slider]:
    with gr.Accordion("Advanced", open=False, elem_id=f"{spec.ids}-advanced"):
        with gr.Row():
            steps = slider(1, min(spec.steps_cap, defaults["max_steps"]), value=defaults["steps"], step=1,
                           label=spec.steps_label, info=spec.steps_info, elem_id=f"{spec.ids}-steps")
            cfg = slider(*GUIDANCE_RANGE, value=defaults["cfg"], step=0.5, label="Guidance scale",
                         info=f"1 = no guidance; higher = follows {spec.conditioned_on} harder, less variety",
                         elem_id=f"{spec.ids}-cfg")
            position = slider(0, 1, value=0.5, step=0.05, label="Slice position",
                              info="0 = base, 0.5 = mid-ventricle, 1 = apex", elem_id=f"{spec.ids}-position")
    return steps, cfg, position
