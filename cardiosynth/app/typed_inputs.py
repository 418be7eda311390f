"""A slider and a number box that pass a typed number to their handler as typed, even beyond their ends.

Gradio's own bound check answers LVEDV 700 on a 20-600 slider with a bare toast ("Value 700 is greater than
maximum value 600.0"), and the page's slider then settles on 600 and sends that with the next click: the box says
700, the app uses 600, and the next message explains a value nobody typed. With these, every handler checks its
numbers itself and answers in its panel, naming the value typed and the range it accepts. Only the rounding to
the component's precision is kept; the page looks and behaves as Gradio's own slider and number box.

They are subclasses (Gradio rebuilds a component from its class whenever a handler updates it, so a per-instance
override would be lost). Gradio writes an interface file for any subclass beside its module, ``typed_inputs.pyi``,
when the folder is writable (it skips it quietly when not); the file is generated, so it is not kept in git.
"""

from __future__ import annotations

import gradio as gr


class TypedSlider(gr.Slider):
    """:class:`gr.Slider`, drawn by Gradio's slider, that passes what was typed to its handler."""

    def get_block_name(self) -> str:
        return "slider"

    def preprocess(self, payload: float) -> float:
        return gr.Number.round_to_precision(payload, self.precision)


class TypedNumber(gr.Number):
    """:class:`gr.Number`, drawn by Gradio's number box, that passes what was typed to its handler."""

    def get_block_name(self) -> str:
        return "number"

    def preprocess(self, payload: float | None) -> float | int | None:
        return None if payload is None else self.round_to_precision(payload, self.precision)
