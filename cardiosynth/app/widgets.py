"""Small Gradio pieces that more than one tab lays out: named ``*args`` handlers, number inputs that pass what
was typed, an animated cine, two cines beside their values, and Play / Pause for a frame-by-frame figure.

They live here so that each tab's module holds only its own layout and wiring, and so that the same piece looks
and behaves the same wherever it appears.
"""

from __future__ import annotations

import inspect

import gradio as gr

from .player import pause_js, play_js
from .typed_inputs import TypedNumber, TypedSlider


def named(fn, names):
    """Give a ``*args`` handler named parameters, so the API page and gradio_client show real names."""
    fn.__signature__ = inspect.Signature(
        [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in names])
    return fn


def named_as(names):
    """:func:`named` as a decorator."""
    return lambda fn: named(fn, names)


TYPED_CLASS = "cs-typed"

#: Run once on page load (``launch(js=...)``): a slider's number box keeps what was typed when it loses focus.
#: Gradio's slider clamps the box to its end on blur (LVEDV 700 -> 600), after which every click sends 600 while
#: the user believes 700 was refused or used; stopping that one listener leaves the typed value for the
#: handlers to answer (:mod:`.typed_inputs`).
KEEP_TYPED_JS = f"""() => {{
  document.addEventListener('blur', (event) => {{
    const box = event.target;
    if (box instanceof HTMLInputElement && box.type === 'number' && box.closest('.{TYPED_CLASS}')) {{
      event.stopPropagation();
    }}
  }}, true);
}}"""


def _typed_classes(kwargs: dict) -> dict:
    return {**kwargs, "elem_classes": [*(kwargs.get("elem_classes") or []), TYPED_CLASS]}


def slider(*args, **kwargs) -> gr.Slider:
    """A slider whose typed value stays in its box and reaches the handler as typed (:class:`.typed_inputs.TypedSlider`,
    :data:`KEEP_TYPED_JS`)."""
    return TypedSlider(*args, **_typed_classes(kwargs))


def number(*args, **kwargs) -> gr.Number:
    """A number box whose typed value reaches the handler as typed (:class:`.typed_inputs.TypedNumber`)."""
    return TypedNumber(*args, **_typed_classes(kwargs))


def player_buttons(plot_id: str) -> None:
    """Play / Pause for the frame figure ``#plot_id``, run in the page (see :mod:`cardiosynth.app.player`)."""
    with gr.Row():
        play = gr.Button("\u25b6 Play", size="sm", elem_id=f"{plot_id}-play", scale=0, min_width=90)
        pause = gr.Button("\u275a\u275a Pause", size="sm", elem_id=f"{plot_id}-pause", scale=0, min_width=90)
    play.click(None, js=play_js(plot_id))
    pause.click(None, js=pause_js(plot_id))


def cine_image(label: str, elem_id: str, **layout) -> gr.Image:
    """One cine as an animated GIF (it plays without a click), with a download button; never an input."""
    return gr.Image(None, type="filepath", label=label, elem_id=elem_id, height=300, interactive=False,
                    buttons=["download"], **layout)


def cine_pair(left: tuple[str, str], right: tuple[str, str], values_id: str) -> tuple:
    """Two animated cines side by side (label, element id each) and the values beside them."""
    with gr.Row():
        views = [cine_image(label, elem_id) for label, elem_id in (left, right)]
        with gr.Column(min_width=440, scale=2):  # the values table: room for four columns unwrapped
            values = gr.Markdown("", elem_id=values_id, elem_classes=["cs-values"])  # cells never wrap
    return (*views, values)
