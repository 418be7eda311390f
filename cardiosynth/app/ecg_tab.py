"""The "ECG" tab (layout and wiring; the logic is :mod:`.ecg_reading` and :mod:`.ecg_cine_studio`).

Top: upload or pick an ECG and see it read and analysed (endpoints ``/ecg``, ``/ecg_reread``, ``/ecg_example``);
the ECG read stays in the session (a gr.State). Below: the "Generate cine" panel (:mod:`.generation_panel`) that
makes a cine from that ECG (``/ecg_generate``), shown beside lead II of its heartbeat, for the heart chosen under
"Heart to animate" (``/ecg_heart`` says which heart that is): a typical healthy heart unless the user picks a
random one or types values. The ECG does not choose the heart.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from cardiosynth import phenotypes as ph
from cardiosynth.ecg import SUPPORTED_FORMATS
from cardiosynth.pipelines.ecg_to_cine import PSEUDO_PAIRED_NOTE

from . import about
from .ecg_cine_studio import (
    ASK_FOR_VALUES,
    HEART_CHOICES,
    HEART_VALUES,
    EcgCineStudio,
    heart_sentence,
    typed,
)
from .ecg_reading import CYCLE_NOTE, EXAMPLES, analyse_example, analyse_upload
from .errors import error_box, user_message
from .generation_panel import GenerationSpec, add_generation_panel
from .widgets import cine_image, number

FORMATS_NOTE = (f"Formats: {', '.join(SUPPORTED_FORMATS)}. The signal is resampled to 500 Hz and cropped or padded "
                "to 10 s. ")

ECG_CINE_PANEL = GenerationSpec(
    heading="Cine from this ECG", ids="ecg-cine", missing="No ECG\u2192cine generator in this build",
    button="Generate cine from this ECG", button_id="ecg-generate-btn",
    seed_info="same ECG + same seed = the same cine", steps_label="Sampling steps",
    steps_info="steps of the flow from the template to the cine; more = slower", steps_cap=50,
    conditioned_on="the ECG", plot_label="Cine frame beside lead II of its cycle: Play, or drag the slider",
    files_label="Downloads: MP4, GIF, NIfTI, DICOM, conditions and cycle (JSON)",
    note=f"**Note:** {PSEUDO_PAIRED_NOTE}", missing_id="ecg-cine-unavailable")


def add_ecg_tab(studio: EcgCineStudio) -> None:
    """Upload or pick an ECG, see it analysed; the ECG read stays in the session for the cine panel below."""
    with gr.Tab("ECG", id="ecg"):
        note = about.CINE_NOTE_ECG if studio.available else about.CINE_NOTE_ECG_MISSING
        gr.Markdown(note, elem_classes=["cs-note"], elem_id="cine-note-ecg")
        upload, example, lead_order, table_fs, reread = _ecg_inputs()
        gr.Markdown(FORMATS_NOTE + CYCLE_NOTE[studio.available])
        message = gr.Markdown("", label="Message", elem_id="ecg-message")
        plot, summary, details = _ecg_readout()
        shown = gr.State(None)  # the EcgResult on screen: what "Generate cine from this ECG" uses
        outputs = [plot, summary, details, message, shown]
        analyse_files, analyse_bundled = _ecg_readers(studio)
        upload.upload(analyse_files, inputs=[upload, table_fs, lead_order], outputs=outputs, api_name="ecg")
        reread.click(analyse_files, inputs=[upload, table_fs, lead_order], outputs=outputs, api_name="ecg_reread")
        # select, not input: Gradio's dropdown fires input twice per pick (the ECG was read and analysed twice)
        example.select(analyse_bundled, inputs=example, outputs=outputs, api_name="ecg_example")
        add_ecg_cine_panel(studio, shown)


def _ecg_inputs() -> tuple:
    """The upload, the bundled examples, and how to read a table without a header row."""
    with gr.Row():
        upload = gr.File(file_count="multiple", label="Upload an ECG file (for WFDB: the .hea and .dat together)",
                         elem_id="ecg-upload", scale=2, height=140)
        example = gr.Dropdown(list(EXAMPLES), value=None, label="...or pick a bundled example",
                              info="LUDB (ODC-By), HL7 aECG (CC0), DICOM and Philips test files (MIT)",
                              elem_id="ecg-example", scale=2)
    with gr.Accordion("Table without a header row (CSV / TSV of bare numbers)", open=False,
                      elem_id="ecg-table-options"):
        with gr.Row():
            lead_order = gr.Textbox("", label="Lead order", elem_id="ecg-lead-order", scale=3,
                                    placeholder="I,II,III,aVR,aVL,aVF,V1,V2,V3,V4,V5,V6",
                                    info="the table's columns, left to right; 'time' marks a time column")
            table_fs = number(None, label="Sampling rate (Hz)", minimum=0, elem_id="ecg-table-fs", scale=1)
            reread = gr.Button("Read the upload again", elem_id="ecg-reread-btn", scale=1)
    return upload, example, lead_order, table_fs, reread


def _ecg_readout() -> tuple[gr.Plot, gr.Markdown, gr.JSON]:
    """The summary and its JSON beside the ECG figure."""
    with gr.Row():
        with gr.Column(scale=2, min_width=360):
            summary = gr.Markdown("", label="Summary", elem_id="ecg-summary")
            with gr.Accordion("Details (JSON)", open=False):
                details = gr.JSON(None, label="ECG summary")
        with gr.Column(scale=5):
            plot = gr.Plot(label="ECG with R peaks, phase and selected cycle", elem_id="ecg-plot")
    return plot, summary, details


def _ecg_readers(studio: EcgCineStudio) -> tuple:
    """The handlers for an uploaded and for a bundled ECG; each marks the cycle the cine panel would use."""
    analyse = studio.analyse if studio.available else None  # with the model: the cycle the cine is made from

    def analyse_files(files, fs, order):
        return _ecg_outputs(lambda: analyse_upload(files, fs, order, analyse), "reading the uploaded ECG")

    def analyse_bundled(label):
        return _ecg_outputs(lambda: analyse_example(label, analyse), "reading the example ECG")

    return analyse_files, analyse_bundled


def _ecg_outputs(run, action: str) -> list:
    """Figure, summary, details, message and the result to keep, from ``run()``; its error as a message."""
    try:
        result = run()
    except Exception as err:  # noqa: BLE001
        text = user_message(err, action)
        return [None, "", {"error": text}, error_box(text), None]
    return [result.figure(), result.summary_markdown(), result.report(), "", result]


def add_ecg_cine_panel(studio: EcgCineStudio, shown: gr.State) -> None:
    """Generate a cine from the shown ECG: the GIF, the cine-beside-ECG figure and the cycle come back first;
    the download files follow in a chained step."""
    panel = add_generation_panel(ECG_CINE_PANEL, studio, lambda: _ecg_cine_views(studio))
    if panel is None:
        return
    heart, gif, cycle = panel.views
    panel.button.click(_ecg_cine_generator(studio), inputs=[shown, *panel.settings, *heart.inputs],
                       outputs=[gif, panel.plot, cycle, panel.message, panel.current], api_name="ecg_generate",
                       show_progress="full", concurrency_limit=2).then(
        _ecg_cine_downloads(studio), inputs=panel.current, outputs=panel.files, api_visibility="private",
        show_progress="minimal")
    # a cine belongs to the ECG it was made from: another ECG (or one that could not be read) clears it
    shown.change(lambda _: [None, None, "", "", None, None], inputs=shown,
                 outputs=[gif, panel.plot, cycle, panel.message, panel.current, panel.files],
                 api_visibility="private", show_progress="hidden")
    _wire_heart(studio, heart)


@dataclass
class HeartControls:
    """"Heart to animate": which heart, the random heart's seed, the values a user sets, and the sentence saying
    which heart the cine animates."""

    choice: gr.Radio
    seed: gr.Number
    draw: gr.Button
    seed_row: gr.Row
    values: list[gr.Number]
    values_row: gr.Row
    note: gr.Markdown

    @property
    def inputs(self) -> list:
        """What says which heart, in the order the handlers take it: choice, heart seed, the values."""
        return [self.choice, self.seed, *self.values]


def _ecg_cine_views(studio: EcgCineStudio) -> tuple[HeartControls, gr.Image, gr.Markdown]:
    heart = _heart_controls(studio)
    with gr.Row():
        gif = cine_image("Cine (animated, at the ECG's heart rate)", "ecg-cine-gif", scale=1)
        with gr.Column(scale=2):
            cycle = gr.Markdown("", elem_id="ecg-cine-cycle")
    return heart, gif, cycle


def _heart_controls(studio: EcgCineStudio) -> HeartControls:
    """The heart the cine animates: a typical healthy heart unless the user picks another."""
    with gr.Group():
        choice = gr.Radio(list(HEART_CHOICES), value=HEART_CHOICES[0][1], label="Heart to animate",
                          info="the ECG sets the timing of the beat, not the heart's size or pumping",
                          elem_id="ecg-heart-choice")
        with gr.Row(visible=False, equal_height=True) as seed_row:
            seed = number(0, precision=0, minimum=0, label="Heart seed", elem_id="ecg-heart-seed", scale=1,
                          info="the same seed draws the same heart")
            draw = gr.Button("Draw another random heart", elem_id="ecg-heart-draw", scale=1)
        with gr.Row(visible=False) as values_row:
            values = [number(None, label=f"{name} ({ph.BY_NAME[name].unit})", elem_id=f"ecg-heart-{name}",
                             placeholder="blank: the model fills it in", min_width=120) for name in HEART_VALUES]
        note = gr.Markdown(_heart_note(studio, HEART_CHOICES[0][1], 0, {}), elem_id="ecg-heart-note")
    return HeartControls(choice, seed, draw, seed_row, values, values_row, note)


def _heart_note(studio: EcgCineStudio, choice, seed, values: dict) -> str:
    """The one sentence naming the heart these controls choose, or why there is none."""
    if choice == "values" and not any(typed(v) for v in values.values()):
        return ASK_FOR_VALUES  # nothing typed yet: a prompt, not an error
    try:
        return heart_sentence(studio.heart(choice, seed, values))
    except Exception as err:  # noqa: BLE001 - every error becomes a message
        return error_box(user_message(err, "choosing the heart to animate"))


def _wire_heart(studio: EcgCineStudio, heart: HeartControls) -> None:
    """A new choice shows its own controls; any change says at once which heart the cine will animate."""
    def describe(choice, seed, lvedv, lvef, lvm, rvedv, rvef):
        values = dict(zip(HEART_VALUES, (lvedv, lvef, lvm, rvedv, rvef)))
        return [_heart_note(studio, choice, seed, values),
                gr.Row(visible=choice == "random"), gr.Row(visible=choice == "values")]

    def draw_another(seed):  # the seed moves on by one; the seed's change then says which heart that is
        try:
            return ["random", int(seed) + 1]
        except (TypeError, ValueError):
            return ["random", 0]

    gr.on([heart.choice.change, heart.seed.change, *(v.change for v in heart.values)], describe,
          inputs=heart.inputs, outputs=[heart.note, heart.seed_row, heart.values_row], api_name="ecg_heart",
          trigger_mode="always_last", show_progress="hidden")
    heart.draw.click(draw_another, inputs=heart.seed, outputs=[heart.choice, heart.seed], api_visibility="private",
                     show_progress="hidden")


def _ecg_cine_generator(studio: EcgCineStudio):
    def generate(result, seed, steps, cfg, slice_position, choice="typical", heart_seed=0, lvedv=None, lvef=None,
                 lvm=None, rvedv=None, rvef=None, progress=gr.Progress()):
        try:
            progress(0.1, desc="Generating the cine from the ECG")
            ecg, name = (result.request, result.name) if result is not None else (None, "")
            values = dict(zip(HEART_VALUES, (lvedv, lvef, lvm, rvedv, rvef)))
            request = studio.heart_request(choice, heart_seed, values)
            made = studio.generate(ecg, seed, steps, cfg, slice_position, name=name, heart=request)
            return [studio.file(made, "gif"), studio.figure(made), studio.summary_markdown(made), "", made]
        except Exception as err:  # noqa: BLE001 - every error becomes a message
            # no earlier cine stays under the error, as if it answered this request
            return [None, None, "", error_box(user_message(err, "generating a cine from the ECG")), None]
    return generate


def _ecg_cine_downloads(studio: EcgCineStudio):
    def downloads(made):
        try:
            return studio.downloads(made) if made is not None else None
        except Exception as err:  # noqa: BLE001
            user_message(err, "writing the ECG cine files")  # logs it
            return gr.skip()
    return downloads
