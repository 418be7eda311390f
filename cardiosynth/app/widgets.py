"""Small Gradio pieces that more than one tab lays out: named ``*args`` handlers, number inputs that pass what
was typed, an animated cine, two cines beside their values, and Play / Pause for a frame-by-frame figure.

They live here so that each tab's module holds only its own layout and wiring, and so that the same piece looks
and behaves the same wherever it appears.
"""

from __future__ import annotations

import inspect

import gradio as gr

from .player import pause_js, play_js


def named(fn, names):
    """Give a ``*args`` handler named parameters, so the API page and gradio_client show real names."""
    fn.__signature__ = inspect.Signature(
        [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in names])
    return fn


def named_as(names):
    """:func:`named` as a decorator."""
    return lambda fn: named(fn, names)


def as_typed(component):
    """``component`` (a Slider or Number) passes a typed number to its handler as typed, even beyond its ends.

    Gradio's own bound check answers LVEDV 700 on a 20-600 slider with a bare toast ("Value 700 is greater than
    maximum value 600.0") while the page's slider settles on 600 and sends that with the next click: the box
    says 700, the app uses 600, and the next message explains a value nobody typed. Every handler checks its
    numbers itself and answers in its panel, naming the value typed and the range it accepts (and, for the
    phenotype sliders, puts the set in use back on screen). Only the rounding to the component's precision
    is kept. Returns ``component``."""
    precision = component.precision

    def preprocess(payload):
        return None if payload is None else gr.Number.round_to_precision(payload, precision)

    component.preprocess = preprocess
    return component


def slider(*args, **kwargs) -> gr.Slider:
    """A :class:`gr.Slider` whose typed value reaches the handler as typed (:func:`as_typed`)."""
    return as_typed(gr.Slider(*args, **kwargs))


def number(*args, **kwargs) -> gr.Number:
    """A :class:`gr.Number` whose typed value reaches the handler as typed (:func:`as_typed`)."""
    return as_typed(gr.Number(*args, **kwargs))


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
        with gr.Column(min_width=440):
            values = gr.Markdown("", elem_id=values_id)
    return (*views, values)
