"""The "Phenotype explorer" tab (layout and wiring; the logic is :mod:`.phenotype_explorer`, :mod:`.cine_studio`,
:mod:`.batches` and :mod:`.heart_edit`).

Top: nine phenotype sliders with locks beside the plausibility verdict, sampling and completion by the VAE, and
the population plot. Below: the "Generate cine" panel (:mod:`.generation_panel`) for the set shown, several
cines at once (a seed grid or a CSV), and the editor of a real heart. Endpoints: ``/plausibility``,
``/set_<phenotype>``, ``/sample``, ``/complete``, ``/reset``, ``/generate``, ``/seed_grid``, ``/csv_batch``,
``/edit_real`` (listed with their inputs in :mod:`.ui`).
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
from gradio.components.plot import PlotData

from cardiosynth import phenotypes as ph

from . import about
from .batches import BULK_HINT, MAX_CINES, BatchError, csv_batch, seed_grid
from .cine_studio import CineStudio
from .errors import error_box, user_message
from .generation_panel import GenerationPanel, GenerationSpec, add_generation_panel
from .heart_edit import edit_markdown, edit_real_cine
from .phenotype_explorer import (
    KEEP_CHOICES,
    TEMPERATURE_RANGE,
    PhenotypeExplorer,
    Scored,
    TypedOutOfRange,
    check_typed,
)
from .widgets import cine_pair, named, named_as, number, slider

START_NOTE = "Start: the VAE's most likely heart with normal ejection fractions (LVEF 62 %, RVEF 55 %)."
VENTRICLES = (("Left ventricle", ("LVEDV", "LVESV", "LVSV", "LVEF", "LVM")),
              ("Right ventricle", ("RVEDV", "RVESV", "RVSV", "RVEF")))

CINE_PANEL = GenerationSpec(
    heading="Cine from these phenotypes", ids="cine", missing="No cine generator in this build",
    button="Generate cine", button_id="generate-btn", seed_info="same seed + same values = the same cine",
    steps_label="Decoding steps (K)", steps_info="more = slower, sometimes finer", steps_cap=64,
    conditioned_on="the phenotypes", plot_label="Frame by frame, with the measured LV / RV areas",
    files_label="Downloads: MP4, GIF, NIfTI, DICOM, conditions (JSON, CSV)")


@dataclass
class PhenotypeForm:
    """The tab's phenotype controls and what shows their set."""

    sliders: dict  # phenotype name -> its slider
    locks: dict  # phenotype name -> its lock checkbox
    edv_keeps: gr.Radio
    status: gr.HTML
    temperature: gr.Slider
    seed: gr.Number
    sample_btn: gr.Button
    complete_btn: gr.Button
    reset_btn: gr.Button
    random_completion: gr.Checkbox
    message: gr.Markdown
    plot: gr.Plot
    details: gr.JSON
    in_use: gr.State  # the last valid set: the sliders go back to it on a refusal

    @property
    def values(self) -> list:
        return [self.sliders[n] for n in ph.NAMES]

    @property
    def lock_boxes(self) -> list:
        return [self.locks[n] for n in ph.NAMES]

    @property
    def outputs(self) -> list:
        """What every phenotype handler returns. The plot is redrawn in a chained step: the indicator shows at
        once, and the browser's plotly redraw (~0.5 s on a loaded machine) follows."""
        return [*self.values, self.status, self.details, self.message, self.in_use]


def add_phenotype_tab(explorer: PhenotypeExplorer, studio: CineStudio) -> None:
    """The tab: the phenotype form, its cine panel (with the batch panel) and the real-heart editor."""
    start = explorer.score(explorer.start, note=START_NOTE)
    with gr.Tab("Phenotype explorer", id="phenotypes"):
        gr.Markdown(about.CINE_NOTE_PHENOTYPE, elem_classes=["cs-note"], elem_id="cine-note-phenotype")
        form = _phenotype_form(explorer, start)
        _wire_phenotype_form(explorer, start, form)
        add_cine_panel(studio, form.values, explorer, (form.status, form.message))
        add_edit_panel(studio)


# ------------------------------------------------------------------------------------------------ the form
def _phenotype_form(explorer: PhenotypeExplorer, start: Scored) -> PhenotypeForm:
    with gr.Row():
        with gr.Column(scale=5):
            sliders, locks, edv_keeps = _phenotype_sliders(start)
        with gr.Column(scale=4):
            column = _status_column(explorer, start)
    return PhenotypeForm(sliders, locks, edv_keeps, **column, in_use=gr.State(dict(start.values)))


def _phenotype_sliders(start: Scored) -> tuple[dict, dict, gr.Radio]:
    """A slider and a lock per phenotype, ventricle by ventricle, and what a moving EDV keeps."""
    sliders, locks = {}, {}
    for title, names in VENTRICLES:
        gr.Markdown(f"### {title}")
        for name in names:
            sliders[name], locks[name] = _phenotype_slider(name, start)
    edv_keeps = gr.Radio(list(KEEP_CHOICES), value="EF", label="When an EDV moves, keep its",
                         info="a lock ticked on that ventricle's EF or ESV decides instead", elem_id="edv-keeps")
    gr.Markdown(about.DERIVED_HELP)
    return sliders, locks, edv_keeps


def _phenotype_slider(name: str, start: Scored) -> tuple[gr.Slider, gr.Checkbox]:
    p = ph.BY_NAME[name]
    low, high = p.plausible_range
    kind = "derived; editing it moves " + name[:2] + "ESV" if not p.independent else "independent"
    with gr.Row(equal_height=True):
        box = slider(low, high, value=start.values[name], step=0.01, precision=2, label=p.label,
                     info=f"{p.description}. Plausible {low:g}-{high:g} {p.unit}; UK Biobank field "
                          f"{p.ukb_field}; {kind}.",
                     elem_id=f"slider-{name}", scale=8)
        lock = gr.Checkbox(False, label="lock", elem_id=f"lock-{name}", scale=1, min_width=70,
                           elem_classes=["cs-lock"])
    return box, lock


def _status_column(explorer: PhenotypeExplorer, start: Scored) -> dict:
    """The verdict, the VAE's controls, the message and the population plot, by PhenotypeForm field."""
    status = gr.HTML(explorer.status_html(start), label="Plausibility", elem_id="plausibility")
    gr.Markdown(explorer.legend_markdown())
    with gr.Row():
        temperature = slider(*TEMPERATURE_RANGE, value=1.0, step=0.05, label="Temperature",
                                info="0 = the VAE's mean heart; 1 = like the training patients; "
                                     "above 1 = more unusual hearts")
        seed = number(0, precision=0, minimum=0, label="Seed", info="moves on by one after each sample")
    with gr.Row():
        sample_btn = gr.Button("Sample a heart", variant="primary", elem_id="sample-btn")
        complete_btn = gr.Button("Complete the rest", elem_id="complete-btn")
        reset_btn = gr.Button("Reset to healthy start", elem_id="reset-btn")
    random_completion = gr.Checkbox(False, label="Random completion (use temperature and seed; "
                                                 "otherwise the most likely completion)")
    message = gr.Markdown("", label="Message", elem_id="phenotype-message")
    plot = gr.Plot(explorer.figure(start), label="This heart against the population", elem_id="population-plot")
    gr.Markdown(f"Bars: {explorer.population_label}, a stand-in for the training population. "
                + ("Ticks: the real ACDC training patients." if explorer.real is not None
                   else "The real training patients are not shown: `../shared/data` is not "
                        "available on this machine."))
    with gr.Accordion("Details (JSON)", open=False):
        details = gr.JSON(start.as_dict(), label="Phenotype set and plausibility")
    return {"status": status, "temperature": temperature, "seed": seed, "sample_btn": sample_btn,
            "complete_btn": complete_btn, "reset_btn": reset_btn, "random_completion": random_completion,
            "message": message, "plot": plot, "details": details}


# ------------------------------------------------------------------------------------------------ its handlers
def _shown(explorer: PhenotypeExplorer, scored: Scored) -> list:
    """The form's outputs for a scored set."""
    return [scored.values[n] for n in ph.NAMES] + [explorer.status_html(scored), scored.as_dict(), "",
                                                   dict(scored.values)]


def _refused(err: Exception, action: str, last: dict | None) -> list:
    """A refusal: the message names the fix, and the sliders show the set in use again (the status beside
    them still describes it), so no slider shows a value the app is not using. A number typed beyond its
    slider stays in its box instead (the user may be half-way through typing it) and the message says which
    value the app still uses; anything generated from the box is refused until it is in range."""
    text = user_message(err, action)
    if isinstance(err, TypedOutOfRange):
        last = None
    elif last:
        text = text.rstrip(". ") + "; the sliders show the set in use again."
    return ([last[n] for n in ph.NAMES] if last else [gr.skip()] * len(ph.NAMES)) + [
        gr.skip(), {"error": text}, error_box(text), gr.skip()]


def _population_redraw(explorer: PhenotypeExplorer):
    def redraw(shown):
        try:
            if not isinstance(shown, dict) or "phenotypes" not in shown:
                return gr.skip()
            return PlotData(type="plotly", plot=explorer.figure_json(
                shown["phenotypes"], shown.get("plausibility", {}).get("status", "")))
        except Exception as err:  # noqa: BLE001
            user_message(err, "drawing the population plot")  # logs it
            return gr.skip()
    return redraw


# the last input of every handler below is ``in_use`` (a State: not part of the API)
def _plausibility(explorer: PhenotypeExplorer):
    @named_as([*ph.NAMES, "in_use"])
    def plausibility(*vals):
        try:
            check_typed(dict(zip(ph.NAMES, vals)), vals[-1])
            return _shown(explorer, explorer.score(dict(zip(ph.NAMES, vals)), note="Edited by hand."))
        except Exception as err:  # noqa: BLE001 - every error becomes a message
            return _refused(err, "scoring this phenotype set", vals[-1])
    return plausibility


def _derived_setter(explorer: PhenotypeExplorer, name: str):
    def set_derived(*vals):
        try:
            check_typed(dict(zip(ph.NAMES, vals)), vals[-1])
            return _shown(explorer, explorer.score(dict(zip(ph.NAMES, vals)), edited=name,
                                                   note=f"Edited by hand ({name} moved {name[:2]}ESV)."))
        except Exception as err:  # noqa: BLE001
            return _refused(err, f"setting {name}", vals[-1])
    set_derived.__name__ = f"set_{name}"
    return named(set_derived, [*ph.NAMES, "in_use"])


def _edv_setter(explorer: PhenotypeExplorer, side: str):
    def set_edv(*args):
        vals, keep, flags = args[:len(ph.NAMES)], args[len(ph.NAMES)], args[len(ph.NAMES) + 1:-1]
        try:
            check_typed(dict(zip(ph.NAMES, vals)), args[-1])
            locked = [n for n, f in zip(ph.NAMES, flags) if f]
            return _shown(explorer, explorer.move_edv(dict(zip(ph.NAMES, vals)), side, keep, locked))
        except Exception as err:  # noqa: BLE001
            return _refused(err, f"setting {side}EDV", args[-1])
    set_edv.__name__ = f"set_{side}EDV"
    return named(set_edv, [*ph.NAMES, "keep", *(f"lock_{n}" for n in ph.NAMES), "in_use"])


def _sampler(explorer: PhenotypeExplorer):
    def sample(temperature, seed, last):
        try:
            return _shown(explorer, explorer.sample(temperature, seed)) + [int(seed) + 1]
        except Exception as err:  # noqa: BLE001
            return _refused(err, "sampling a heart", last) + [gr.skip()]
    return sample


def _completer(explorer: PhenotypeExplorer):
    @named_as([*ph.NAMES, *(f"lock_{n}" for n in ph.NAMES), "random", "temperature", "seed", "in_use"])
    def complete(*args):
        vals, flags = args[:len(ph.NAMES)], args[len(ph.NAMES):2 * len(ph.NAMES)]
        rand, t, s, last = args[2 * len(ph.NAMES):]
        try:
            check_typed(dict(zip(ph.NAMES, vals)), last)
            locked = [n for n, f in zip(ph.NAMES, flags) if f]
            return _shown(explorer, explorer.complete(dict(zip(ph.NAMES, vals)), locked, bool(rand), t, s))
        except Exception as err:  # noqa: BLE001
            return _refused(err, "completing the phenotype set", last)
    return complete


def _resetter(explorer: PhenotypeExplorer, start: Scored):
    def reset():
        return _shown(explorer, start)
    return reset


def _wire_phenotype_form(explorer: PhenotypeExplorer, start: Scored, form: PhenotypeForm) -> None:
    """Every edit and button re-scores the set, then redraws the population plot."""
    redraw = _population_redraw(explorer)

    def then_redraw(event):
        event.then(redraw, inputs=form.details, outputs=form.plot, api_visibility="private", show_progress="hidden")

    _wire_slider_edits(explorer, form, then_redraw)
    _wire_vae_buttons(explorer, start, form, then_redraw)


def _wire_slider_edits(explorer: PhenotypeExplorer, form: PhenotypeForm, then_redraw) -> None:
    values, outputs, in_use = form.values, form.outputs, form.in_use
    then_redraw(gr.on([form.sliders[n].input for n in ph.INDEPENDENT if not n.endswith("EDV")],
                      _plausibility(explorer), inputs=values + [in_use], outputs=outputs, api_name="plausibility",
                      trigger_mode="always_last", show_progress="hidden"))
    for side in ("LV", "RV"):
        then_redraw(form.sliders[f"{side}EDV"].input(_edv_setter(explorer, side),
                                                     inputs=values + [form.edv_keeps, *form.lock_boxes, in_use],
                                                     outputs=outputs, api_name=f"set_{side}EDV",
                                                     trigger_mode="always_last", show_progress="hidden"))
    for name in ph.DERIVED:
        then_redraw(form.sliders[name].input(_derived_setter(explorer, name), inputs=values + [in_use],
                                             outputs=outputs, api_name=f"set_{name}", trigger_mode="always_last",
                                             show_progress="hidden"))


def _wire_vae_buttons(explorer: PhenotypeExplorer, start: Scored, form: PhenotypeForm, then_redraw) -> None:
    outputs, in_use = form.outputs, form.in_use
    then_redraw(form.sample_btn.click(_sampler(explorer), inputs=[form.temperature, form.seed, in_use],
                                      outputs=outputs + [form.seed], api_name="sample", show_progress="minimal"))
    then_redraw(form.complete_btn.click(_completer(explorer),
                                        inputs=form.values + form.lock_boxes + [form.random_completion,
                                                                                form.temperature, form.seed, in_use],
                                        outputs=outputs, api_name="complete", show_progress="minimal"))
    then_redraw(form.reset_btn.click(_resetter(explorer, start), outputs=outputs, api_name="reset"))


# ------------------------------------------------------------------------------------------------ the cine panel
def add_cine_panel(studio: CineStudio, values: list, explorer: PhenotypeExplorer | None = None,
                   phenotype_panel: tuple | None = None) -> None:
    """Generate / compare / download, under the phenotype controls. The GIF, values and comparison come back
    first; the frame-by-frame figure with area curves and the download files follow in a chained step.

    Beside the cine: the generator's warnings (e.g. values more than 3 SD from its training data) and, with
    ``explorer``, its plausibility verdict when the set is unusual or implausible. ``phenotype_panel``
    (plausibility HTML, message Markdown): after a successful generation the set is re-scored there and a
    stale error box above is cleared."""
    panel = add_generation_panel(CINE_PANEL, studio, lambda: cine_pair(
        ("Now (animated)", "cine-now"), ("Previous", "cine-previous"), "cine-values"))
    if panel is None:
        return
    now_view, previous_view, cine_values = panel.views
    previous = gr.State(None)
    succeeded = gr.State(False)
    # the generate endpoint takes the shown result as input and returns it as the new "previous"
    event = panel.button.click(_cine_generator(studio, explorer), inputs=[*values, *panel.settings, panel.current],
                               outputs=[now_view, previous_view, cine_values, panel.message, panel.current, previous,
                                        succeeded],
                               api_name="generate", show_progress="full", concurrency_limit=2)
    event.then(_cine_details(studio), inputs=[succeeded, panel.current, previous],
               outputs=[panel.plot, panel.files], api_visibility="private", show_progress="minimal")
    if phenotype_panel is not None:
        event.then(_phenotype_rescorer(explorer), inputs=[succeeded, panel.current], outputs=list(phenotype_panel),
                   api_visibility="private", show_progress="hidden")
    add_batch_panel(studio, values, panel)


def _cine_generator(studio: CineStudio, explorer: PhenotypeExplorer | None):
    @named_as([*ph.NAMES, "seed", "steps", "cfg", "slice_position", "current"])
    def generate(*args, progress=gr.Progress()):
        vals, (seed, k, guidance, where, last) = args[:len(ph.NAMES)], args[len(ph.NAMES):]
        try:
            progress(0.0, desc="Starting the generator")
            request = studio.request(dict(zip(ph.NAMES, vals)), seed, k, guidance, where)  # parsed once, here
            scored = _verdict(explorer, request)
            result = studio.run(request, plausibility=None if scored is None else scored.plausibility,
                                progress=lambda stage, fraction: progress(fraction, desc=stage))
            result.scored = scored
            progress(0.95, desc="Rendering the animated GIF")
            gif = studio.file(result, "gif")
            before = studio.file(last, "gif") if last is not None else None
            return [gif, before, studio.values_markdown(result, last), "", result, last, True]
        except Exception as err:  # noqa: BLE001 - every error becomes a message
            # the last cine leaves the screen (it stays the one a success compares with): nothing under the
            # red box may look like the answer to the request that failed
            return [None, None, "", error_box(user_message(err, "generating the cine")), gr.skip(), gr.skip(),
                    False]
    return generate


def _verdict(explorer: PhenotypeExplorer | None, request):
    """The explorer's plausibility of the request's set, scored once (None without an explorer, or when the
    set cannot be scored: the cine is still made, without the note)."""
    if explorer is None:
        return None
    try:
        return explorer.verdict(request.checked)
    except Exception as err:  # noqa: BLE001
        user_message(err, "scoring the requested set")  # logs it
        return None


def _phenotype_rescorer(explorer: PhenotypeExplorer | None):
    @named_as(["ok", "current"])
    def refresh_phenotype_panel(ok, current):
        """After a successful generation: the set it used, as scored for it, and no stale error box above."""
        if not ok or explorer is None:
            return gr.skip(), gr.skip()
        if current is None or current.scored is None:
            return gr.skip(), ""
        return explorer.status_html(current.scored), ""
    return refresh_phenotype_panel


def _cine_details(studio: CineStudio):
    def details(ok, now, before):
        try:
            if not ok or now is None:  # a failed request: its error box stands alone
                return None, None
            return studio.figure(now, before), studio.downloads(now)
        except Exception as err:  # noqa: BLE001
            user_message(err, "drawing the cine figure")  # logs it
            return gr.skip(), gr.skip()
    return details


# ------------------------------------------------------------------------------------------------ several cines
def add_batch_panel(studio: CineStudio, values: list, panel: GenerationPanel) -> None:
    """Several cines at once (:mod:`cardiosynth.app.batches`): a grid of seeds for the set above, or one
    cine per row of an uploaded CSV, with the cine panel's seed and settings; animated in a gallery, all of
    them in one ZIP."""
    with gr.Accordion("Several cines: a grid of seeds, or a CSV of phenotype sets", open=False, elem_id="batch"):
        gr.Markdown(f"One cine is one draw: compare a few seeds before trusting what a set looks like. Up to "
                    f"{MAX_CINES} cines at a time, with the decoding steps, guidance and slice position above; "
                    "a CSV names one phenotype set per row (header: phenotypes, aliases or UK Biobank fields, "
                    "optional `slice_position` and `seed` columns; missing phenotypes are completed by the VAE). "
                    + BULK_HINT)
        with gr.Row(equal_height=True):
            n_seeds = slider(2, MAX_CINES, value=6, step=1, label="Seeds (from the cine seed above)",
                                elem_id="grid-seeds")
            grid_btn = gr.Button("Generate a grid of seeds", elem_id="grid-btn")
        with gr.Row(equal_height=True):
            table = gr.File(label="Phenotype sets (CSV)", file_types=[".csv", ".tsv", ".txt"], type="filepath",
                            elem_id="batch-csv")
            per_set = slider(1, MAX_CINES, value=1, step=1, label="Seeds per set", elem_id="batch-seeds")
            batch_btn = gr.Button("Generate one cine per row", elem_id="batch-btn")
        batch_message = gr.Markdown("", elem_id="batch-message")
        gallery = gr.Gallery(label="Cines (animated)", columns=6, height="auto", elem_id="batch-gallery",
                             allow_preview=True, interactive=False)
        archive = gr.File(label="All cines (ZIP: GIF, NIfTI, DICOM and JSON per cine, conditions.csv)",
                          elem_id="batch-zip", interactive=False)
    results = [gallery, archive, batch_message]
    settings = [panel.steps, panel.cfg, panel.position]
    grid_btn.click(_seed_grid_handler(studio), inputs=[*values, panel.seed, n_seeds, *settings], outputs=results,
                   api_name="seed_grid", concurrency_limit=1)
    batch_btn.click(_csv_batch_handler(studio), inputs=[table, panel.seed, per_set, *settings], outputs=results,
                    api_name="csv_batch", concurrency_limit=1)


def _batch_shown(batch) -> list:
    return [batch.gallery, batch.zip_path,
            f"{len(batch.results)} cines; `conditions.csv` in the ZIP lists each one's values and seed."]


def _seed_grid_handler(studio: CineStudio):
    @named_as([*ph.NAMES, "first_seed", "count", "steps", "cfg", "slice_position"])
    def grid(*args, progress=gr.Progress()):
        vals, (first, count, k, guidance, where) = args[:len(ph.NAMES)], args[len(ph.NAMES):]
        try:
            return _batch_shown(seed_grid(studio, dict(zip(ph.NAMES, vals)), first, count, k, guidance, where,
                                          progress=lambda stage, fraction: progress(fraction, desc=stage)))
        except Exception as err:  # noqa: BLE001 - every error becomes a message
            return [[], None, error_box(user_message(err, "generating the grid of seeds"))]
    return grid


def _csv_batch_handler(studio: CineStudio):
    def batch(path, seed, seeds, k, guidance, where, progress=gr.Progress()):
        try:
            if not path:
                raise BatchError("Upload a CSV with one phenotype set per row first.")
            return _batch_shown(csv_batch(studio, path, seed, seeds, k, guidance, where,
                                          progress=lambda stage, fraction: progress(fraction, desc=stage)))
        except Exception as err:  # noqa: BLE001
            return [[], None, error_box(user_message(err, "generating the batch"))]
    return batch


# ------------------------------------------------------------------------------------------------ a real heart
def add_edit_panel(studio: CineStudio) -> None:
    """A real heart, edited: upload a short-axis cine, pick a slice, set a new LVEF; the real and edited cines
    play side by side with the values read back."""
    gr.Markdown("## Edit a real heart", elem_id="edit-heading")
    if not studio.available or not studio.pipeline.can_edit:
        why = (studio.unavailable_reason
               or "the phenotype\u2192cine weights have no anatomy + motion editor (mar_motion/)")
        gr.Markdown(f"No heart editor in this build: {why}", elem_classes=["cs-note"])
        return
    gr.Markdown("Upload a short-axis cine (NIfTI 4D `.nii` / `.nii.gz`, X x Y x slices x time, frame 0 = "
                "end-diastole; or a CardioSynth `.npz`). The same heart's end-diastolic anatomy is kept and its "
                "motion drawn anew for the LVEF you set. The file is used for this edit only and not stored.")
    with gr.Row(equal_height=True):
        upload = gr.File(label="Real cine", file_types=[".nii", ".gz", ".npz"], type="filepath",
                         elem_id="edit-upload", scale=3)
        with gr.Column(scale=2):
            slice_box = gr.Textbox("", label="Slice", elem_id="edit-slice", placeholder="middle",
                                   info="0 = the first slice in the file; empty = the middle one")
            new_lvef = slider(10, 85, value=35, step=1, label="New LVEF (%)", elem_id="edit-lvef")
            edit_seed = number(0, precision=0, minimum=0, label="Seed", elem_id="edit-seed")
            edit_btn = gr.Button("Edit this heart", variant="primary", elem_id="edit-btn")
    edit_message = gr.Markdown("", elem_id="edit-message")
    real_view, edited_view, edit_values = cine_pair(("Real (animated)", "edit-real"),
                                                    ("Edited (animated)", "edit-edited"), "edit-values")
    edit_btn.click(_editor(studio), inputs=[upload, slice_box, new_lvef, edit_seed],
                   outputs=[real_view, edited_view, edit_values, edit_message], api_name="edit_real",
                   show_progress="full", concurrency_limit=2)


def _editor(studio: CineStudio):
    def edit(path, slice_index, lvef, seed, progress=gr.Progress()):
        try:
            progress(0.1, desc="Finding the heart and editing its motion")
            real, edited = edit_real_cine(studio, path, slice_index, lvef, seed)
            return [studio.file(real, "gif"), studio.file(edited, "gif"), edit_markdown(real, edited), ""]
        except Exception as err:  # noqa: BLE001 - every error becomes a message
            return [None, None, "", error_box(user_message(err, "editing the uploaded cine"))]
    return edit
