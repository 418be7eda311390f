"""The "About" tab: what CardioSynth is, its models, data and limits (the text is :mod:`.about`)."""

from __future__ import annotations

import gradio as gr

from cardiosynth.review import ReviewService

from . import about


def add_about_tab(review: ReviewService) -> None:
    """The about text, naming where ``review`` keeps its reader studies."""
    with gr.Tab("About", id="about"):
        gr.Markdown(about.about_markdown(review))
