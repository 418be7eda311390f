"""The Gradio Blocks of the CardioSynth app: layout and wiring only (logic: phenotype_explorer, cine_view,
ecg_view, ecg_cine).

Every handler returns a readable message instead of raising: expected problems (PhenotypeError, EcgError,
ValueError) show their own message; anything else shows one sentence and logs the traceback (errors.py).

Endpoints for ``gradio_client`` (``Client(url).predict(..., api_name=...)``):

- ``/sample`` (temperature, seed) -> 9 phenotypes, status HTML, details JSON, message, next seed
- ``/complete`` (9 phenotypes, 9 lock flags, random, temperature, seed) -> 9 phenotypes, status, details, message
- ``/plausibility`` (9 phenotypes; SV / EF are recomputed from the volumes) -> the same outputs
- ``/set_LVEF``, ``/set_LVSV``, ``/set_RVEF``, ``/set_RVSV`` (9 phenotypes) -> the same, moving that ventricle's ESV
- ``/reset`` () -> the healthy starting set
- ``/generate`` (9 phenotypes, seed, steps, cfg, slice_position) -> GIF (now), GIF (previous), values (with any
  warnings about this cine above them), message
- ``/review_join`` (code, name, resume code), ``/review_answer`` (answer, confidence, comment, reader key): the
  Review tab; ``/review_create`` (study settings, administrator password) and ``/review_results`` (code, admin
  token, administrator password): the study administration page, a route at ``/review-admin`` that the
  readers' page does not link to (review_tab.py)
- ``/edit_real`` (file, slice, new LVEF, seed) -> GIF (real slice), GIF (edited), values, message: a real heart's
  ED anatomy with the motion of a new LVEF (edit_view.py)
- ``/ecg`` (list of uploaded files) and ``/ecg_example`` (example name) -> figure, summary, details JSON, message;
  the ECG read is kept in the session (gr.State) for ``/ecg_generate``
- ``/ecg_generate`` (seed, steps, cfg, slice_position) -> GIF, figure (cine beside lead II, with animation frames),
  cycle and settings, message: a cine from the session's ECG (ecg_cine.py; only when its weights are bundled)
"""

from __future__ import annotations

import os

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before gradio is imported: no telemetry, no version check

import inspect  # noqa: E402

import gradio as gr  # noqa: E402
from gradio.components.plot import PlotData  # noqa: E402

from cardiosynth import phenotypes as ph  # noqa: E402
from cardiosynth.pipelines.ecg_to_cine import PSEUDO_PAIRED_NOTE
from cardiosynth.review import ReviewService

from . import about  # noqa: E402
from .batch_view import BULK_HINT, MAX_CINES, BatchError, csv_batch, seed_grid  # noqa: E402
from .cine_view import CineStudio  # noqa: E402
from .ecg_cine import EcgCineStudio  # noqa: E402
from .ecg_view import CYCLE_NOTE, EXAMPLES, analyse_example, analyse_upload  # noqa: E402
from .edit_view import edit_markdown, edit_real_cine  # noqa: E402
from .errors import error_box, user_message  # noqa: E402
from .phenotype_explorer import KEEP_CHOICES, PhenotypeExplorer, Scored  # noqa: E402
from .player import pause_js, play_js  # noqa: E402
from .review_tab import add_review_admin_page, add_review_tab  # noqa: E402
from .security import secure_launch_kwargs  # noqa: E402

CSS = """
.cs-note { border-left: 4px solid #1565c0; background: #e3f2fd; padding: 8px 12px; border-radius: 4px; color: #0d2b4e; }
.cs-note p { margin: 0; }
#review-video img { width: 340px; height: 340px; object-fit: contain; image-rendering: pixelated; }
.cs-error { border-left: 4px solid #c62828; background: #ffebee; padding: 8px 12px; border-radius: 4px; color: #5f0d0d; }
.cs-warning { border-left: 4px solid #b26b00; background: #fff8e1; padding: 8px 12px; border-radius: 4px; color: #4a2c00; }
.cs-warning ul { margin: 4px 0 0 18px; }
.cs-plaus { border: 2px solid; border-radius: 6px; padding: 8px 12px; }
.cs-plaus-head { display: flex; align-items: center; gap: 10px; flex-wrap: wrap; }
.cs-light { display: inline-block; width: 18px; height: 18px; border-radius: 50%; }
.cs-plaus-word { font-weight: 700; font-size: 1.1em; }
.cs-reasons { margin: 6px 0 0 18px; }
.cs-note-line { margin-top: 6px; font-size: 0.9em; opacity: 0.8; }
.cs-lock { min-width: 70px !important; }
#ecg-summary td:first-child { white-space: nowrap; }
"""

# no web fonts: the page must not reach the network
THEME = gr.themes.Default(font=["system-ui", "Segoe UI", "Helvetica", "Arial", "sans-serif"],
                          font_mono=["ui-monospace", "Consolas", "monospace"])


def _named(fn, names):
    """Give a ``*args`` handler named parameters, so the API page and gradio_client show real names."""
    fn.__signature__ = inspect.Signature(
        [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in names])
    return fn


def _named_as(names):
    return lambda fn: _named(fn, names)


def player_buttons(plot_id: str) -> None:
    """Play / Pause for the frame figure ``#plot_id``, run in the page (see :mod:`cardiosynth.app.player`)."""
    with gr.Row():
        play = gr.Button("\u25b6 Play", size="sm", elem_id=f"{plot_id}-play", scale=0, min_width=90)
        pause = gr.Button("\u275a\u275a Pause", size="sm", elem_id=f"{plot_id}-pause", scale=0, min_width=90)
    play.click(None, js=play_js(plot_id))
    pause.click(None, js=pause_js(plot_id))


def cine_pair(left: tuple[str, str], right: tuple[str, str], values_id: str) -> tuple:
    """Two animated cines side by side (label, element id each) and the values beside them."""
    with gr.Row():
        views = [gr.Image(None, type="filepath", label=label, elem_id=elem_id, height=300, interactive=False,
                          buttons=["download"]) for label, elem_id in (left, right)]
        with gr.Column(min_width=440):
            values = gr.Markdown("", elem_id=values_id)
    return (*views, values)


def add_cine_panel(studio: CineStudio, values: list, explorer: PhenotypeExplorer | None = None,
                   phenotype_panel: tuple | None = None) -> None:
    """Generate / compare / download, under the phenotype controls. The GIF, values and comparison come back
    first; the frame-by-frame figure with area curves and the download files follow in a chained step.

    Beside the cine: the generator's warnings (e.g. values more than 3 SD from its training data) and, with
    ``explorer``, its plausibility verdict when the set is unusual or implausible. ``phenotype_panel``
    (plausibility HTML, message Markdown): after a successful generation the set is re-scored there and a
    stale error box above is cleared."""
    gr.Markdown("## Cine from these phenotypes", elem_id="cine-heading")
    if not studio.available:
        gr.Markdown(f"No cine generator in this build: {studio.unavailable_reason}", elem_classes=["cs-note"])
        return
    defaults = studio.defaults
    with gr.Row(equal_height=True):
        generate_btn = gr.Button("Generate cine", variant="primary", elem_id="generate-btn", scale=2)
        cine_seed = gr.Number(0, precision=0, minimum=0, label="Cine seed", scale=1,
                              info="same seed + same values = the same cine")
    with gr.Accordion("Advanced", open=False):
        with gr.Row():
            steps = gr.Slider(1, min(64, defaults["max_steps"]), value=defaults["steps"], step=1,
                              label="Decoding steps (K)", info="more = slower, sometimes finer")
            cfg = gr.Slider(1, 10, value=defaults["cfg"], step=0.5, label="Guidance scale",
                            info="1 = no guidance; higher = follows the phenotypes harder, less variety")
            position = gr.Slider(0, 1, value=0.5, step=0.05, label="Slice position",
                                 info="0 = base, 0.5 = mid-ventricle, 1 = apex")
    cine_message = gr.Markdown("", elem_id="cine-message")
    now_view, previous_view, cine_values = cine_pair(("Now (animated)", "cine-now"), ("Previous", "cine-previous"),
                                                     "cine-values")
    cine_plot = gr.Plot(label="Frame by frame, with the measured LV / RV areas", elem_id="cine-plot")
    player_buttons("cine-plot")
    cine_files = gr.File(label="Downloads: MP4, GIF, NIfTI, DICOM, conditions (JSON, CSV)", file_count="multiple",
                         elem_id="cine-files", interactive=False)
    current = gr.State(None)
    previous = gr.State(None)
    succeeded = gr.State(False)

    @_named_as([*ph.NAMES, "seed", "steps", "cfg", "slice_position", "current"])
    def generate(*args, progress=gr.Progress()):
        vals, (seed, k, guidance, where, last) = args[:len(ph.NAMES)], args[len(ph.NAMES):]
        try:
            progress(0.0, desc="Starting the generator")
            requested = dict(zip(ph.NAMES, vals))
            result = studio.generate(requested, seed, k, guidance, where, plausibility=_verdict(requested),
                                     progress=lambda stage, fraction: progress(fraction, desc=stage))
            progress(0.95, desc="Rendering the animated GIF")
            gif = studio.file(result, "gif")
            before = studio.file(last, "gif") if last is not None else None
            return [gif, before, studio.values_markdown(result, last), "", result, last, True]
        except Exception as err:  # noqa: BLE001 - every error becomes a message
            return [gr.skip()] * 3 + [error_box(user_message(err, "generating the cine")), gr.skip(), gr.skip(),
                                      False]

    def _verdict(requested):
        """The explorer's plausibility of the set (None without an explorer or for a set that cannot hold:
        generation then refuses it with its own message)."""
        if explorer is None:
            return None
        try:
            return explorer.score(requested).plausibility
        except Exception:  # noqa: BLE001
            return None

    @_named_as(["ok", *ph.NAMES])
    def refresh_phenotype_panel(ok, *vals):
        """After a successful generation: the set it used, scored, and no stale error box above."""
        if not ok or explorer is None:
            return gr.skip(), gr.skip()
        try:
            return explorer.status_html(explorer.score(dict(zip(ph.NAMES, vals)))), ""
        except Exception as err:  # noqa: BLE001
            user_message(err, "re-scoring the generated set")  # logs it
            return gr.skip(), ""

    def details(now, before):
        try:
            if now is None:
                return gr.skip(), gr.skip()
            return studio.figure(now, before), studio.downloads(now)
        except Exception as err:  # noqa: BLE001
            user_message(err, "drawing the cine figure")  # logs it
            return gr.skip(), gr.skip()

    # the generate endpoint takes the shown result as input and returns it as the new "previous"
    event = generate_btn.click(generate, inputs=[*values, cine_seed, steps, cfg, position, current],
                               outputs=[now_view, previous_view, cine_values, cine_message, current, previous,
                                        succeeded],
                               api_name="generate", show_progress="full", concurrency_limit=2)
    event.then(details, inputs=[current, previous], outputs=[cine_plot, cine_files], api_visibility="private",
               show_progress="minimal")
    if phenotype_panel is not None:
        event.then(refresh_phenotype_panel, inputs=[succeeded, *values], outputs=list(phenotype_panel),
                   api_visibility="private", show_progress="hidden")
    add_batch_panel(studio, values, cine_seed, steps, cfg, position)


def add_batch_panel(studio: CineStudio, values: list, cine_seed, steps, cfg, position) -> None:
    """Several cines at once (:mod:`cardiosynth.app.batch_view`): a grid of seeds for the set above, or one
    cine per row of an uploaded CSV; animated in a gallery, all of them in one ZIP."""
    with gr.Accordion("Several cines: a grid of seeds, or a CSV of phenotype sets", open=False, elem_id="batch"):
        gr.Markdown(f"One cine is one draw: compare a few seeds before trusting what a set looks like. Up to "
                    f"{MAX_CINES} cines at a time, with the decoding steps, guidance and slice position above; "
                    "a CSV names one phenotype set per row (header: phenotypes, aliases or UK Biobank fields, "
                    "optional `slice_position` and `seed` columns; missing phenotypes are completed by the VAE). "
                    + BULK_HINT)
        with gr.Row(equal_height=True):
            n_seeds = gr.Slider(2, MAX_CINES, value=6, step=1, label="Seeds (from the cine seed above)",
                                elem_id="grid-seeds")
            grid_btn = gr.Button("Generate a grid of seeds", elem_id="grid-btn")
        with gr.Row(equal_height=True):
            table = gr.File(label="Phenotype sets (CSV)", file_types=[".csv", ".tsv", ".txt"], type="filepath",
                            elem_id="batch-csv")
            per_set = gr.Slider(1, MAX_CINES, value=1, step=1, label="Seeds per set", elem_id="batch-seeds")
            batch_btn = gr.Button("Generate one cine per row", elem_id="batch-btn")
        batch_message = gr.Markdown("", elem_id="batch-message")
        gallery = gr.Gallery(label="Cines (animated)", columns=6, height="auto", elem_id="batch-gallery",
                             allow_preview=True, interactive=False)
        archive = gr.File(label="All cines (ZIP: GIF, NIfTI, DICOM and JSON per cine, conditions.csv)",
                          elem_id="batch-zip", interactive=False)

    def shown(batch) -> list:
        return [batch.gallery, batch.zip_path,
                f"{len(batch.results)} cines; `conditions.csv` in the ZIP lists each one's values and seed."]

    @_named_as([*ph.NAMES, "first_seed", "count", "steps", "cfg", "slice_position"])
    def grid(*args, progress=gr.Progress()):
        vals, (first, count, k, guidance, where) = args[:len(ph.NAMES)], args[len(ph.NAMES):]
        try:
            return shown(seed_grid(studio, dict(zip(ph.NAMES, vals)), first, count, k, guidance, where,
                                   progress=lambda stage, fraction: progress(fraction, desc=stage)))
        except Exception as err:  # noqa: BLE001 - every error becomes a message
            return [gr.skip(), gr.skip(), error_box(user_message(err, "generating the grid of seeds"))]

    def batch(path, seed, seeds, k, guidance, where, progress=gr.Progress()):
        try:
            if not path:
                raise BatchError("Upload a CSV with one phenotype set per row first.")
            return shown(csv_batch(studio, path, seed, seeds, k, guidance, where,
                                   progress=lambda stage, fraction: progress(fraction, desc=stage)))
        except Exception as err:  # noqa: BLE001
            return [gr.skip(), gr.skip(), error_box(user_message(err, "generating the batch"))]

    grid_btn.click(grid, inputs=[*values, cine_seed, n_seeds, steps, cfg, position],
                   outputs=[gallery, archive, batch_message], api_name="seed_grid", concurrency_limit=1)
    batch_btn.click(batch, inputs=[table, cine_seed, per_set, steps, cfg, position],
                    outputs=[gallery, archive, batch_message], api_name="csv_batch", concurrency_limit=1)


def add_edit_panel(studio: CineStudio) -> None:
    """A real heart, edited: upload a short-axis cine, pick a slice, set a new LVEF; the real and edited cines
    play side by side with the values read back."""
    gr.Markdown("## Edit a real heart", elem_id="edit-heading")
    if not studio.available or studio.pipeline.editor is None:
        why = studio.unavailable_reason or "the phenotype\u2192cine weights have no anatomy + motion editor (mar_motion/)"
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
            new_lvef = gr.Slider(10, 85, value=35, step=1, label="New LVEF (%)", elem_id="edit-lvef")
            edit_seed = gr.Number(0, precision=0, minimum=0, label="Seed", elem_id="edit-seed")
            edit_btn = gr.Button("Edit this heart", variant="primary", elem_id="edit-btn")
    edit_message = gr.Markdown("", elem_id="edit-message")
    real_view, edited_view, edit_values = cine_pair(("Real (animated)", "edit-real"), ("Edited (animated)", "edit-edited"),
                                                    "edit-values")

    def edit(path, slice_index, lvef, seed, progress=gr.Progress()):
        try:
            progress(0.1, desc="Finding the heart and editing its motion")
            real, edited = edit_real_cine(studio, path, slice_index, lvef, seed)
            return [studio.file(real, "gif"), studio.file(edited, "gif"), edit_markdown(real, edited), ""]
        except Exception as err:  # noqa: BLE001 - every error becomes a message
            return [gr.skip()] * 3 + [error_box(user_message(err, "editing the uploaded cine"))]

    edit_btn.click(edit, inputs=[upload, slice_box, new_lvef, edit_seed],
                   outputs=[real_view, edited_view, edit_values, edit_message], api_name="edit_real",
                   show_progress="full", concurrency_limit=2)


def add_ecg_tab(studio: EcgCineStudio) -> None:
    """Upload or pick an ECG, see it analysed; the ECG read stays in the session for the cine panel below."""
    note = about.CINE_NOTE_ECG if studio.available else about.CINE_NOTE_ECG_MISSING
    gr.Markdown(note, elem_classes=["cs-note"], elem_id="cine-note-ecg")
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
            table_fs = gr.Number(None, label="Sampling rate (Hz)", minimum=0, elem_id="ecg-table-fs", scale=1)
            reread = gr.Button("Read the upload again", elem_id="ecg-reread-btn", scale=1)
    gr.Markdown("Formats: WFDB, EDF/EDF+, DICOM ECG and hemodynamic waveforms, SCP-ECG, HL7 aECG, Philips Sierra "
                "XML, GE MUSE XML, UK Biobank / CardioSoft XML, CSV, NumPy. The signal is resampled to 500 Hz and "
                "cropped or padded to 10 s. " + CYCLE_NOTE[studio.available])
    ecg_message = gr.Markdown("", label="Message", elem_id="ecg-message")
    with gr.Row():
        with gr.Column(scale=2, min_width=360):
            ecg_summary = gr.Markdown("", label="Summary", elem_id="ecg-summary")
            with gr.Accordion("Details (JSON)", open=False):
                ecg_details = gr.JSON(None, label="ECG summary")
        with gr.Column(scale=5):
            ecg_plot = gr.Plot(label="ECG with R peaks, phase and selected cycle", elem_id="ecg-plot")
    shown = gr.State(None)  # the EcgResult on screen: what "Generate cine from this ECG" uses
    ecg_outputs = [ecg_plot, ecg_summary, ecg_details, ecg_message, shown]

    def ecg_view(run, action):
        try:
            result = run()
        except Exception as err:  # noqa: BLE001
            text = user_message(err, action)
            return [None, "", {"error": text}, error_box(text), None]
        return [result.figure(), result.summary_markdown(), result.report(), "", result]

    cycle_of = studio.selected_cycle if studio.available else None  # the one cycle the tab marks

    def analyse_files(files, fs, order):
        return ecg_view(lambda: analyse_upload(files, fs, order, cycle_of), "reading the uploaded ECG")

    def analyse_bundled(label):
        return ecg_view(lambda: analyse_example(label, cycle_of), "reading the example ECG")

    upload.upload(analyse_files, inputs=[upload, table_fs, lead_order], outputs=ecg_outputs, api_name="ecg")
    reread.click(analyse_files, inputs=[upload, table_fs, lead_order], outputs=ecg_outputs, api_name="ecg_reread")
    example.input(analyse_bundled, inputs=example, outputs=ecg_outputs, api_name="ecg_example")
    add_ecg_cine_panel(studio, shown)


def add_ecg_cine_panel(studio: EcgCineStudio, shown: gr.State) -> None:
    """Generate a cine from the shown ECG: the GIF, the cine-beside-ECG figure and the cycle come back first;
    the download files follow in a chained step."""
    gr.Markdown("## Cine from this ECG", elem_id="ecg-cine-heading")
    if not studio.available:
        gr.Markdown(f"No ECG\u2192cine generator in this build: {studio.unavailable_reason}",
                    elem_classes=["cs-note"], elem_id="ecg-cine-unavailable")
        return

    gr.Markdown(f"**Note:** {PSEUDO_PAIRED_NOTE}", elem_classes=["cs-note"], elem_id="ecg-cine-note")
    defaults = studio.defaults
    with gr.Row(equal_height=True):
        generate_btn = gr.Button("Generate cine from this ECG", variant="primary", elem_id="ecg-generate-btn",
                                 scale=2)
        seed = gr.Number(0, precision=0, minimum=0, label="Cine seed", scale=1,
                         info="same ECG + same seed = the same cine")
    with gr.Accordion("Advanced", open=False):
        with gr.Row():
            steps = gr.Slider(1, 50, value=defaults["steps"], step=1, label="Sampling steps",
                              info="steps of the flow from the template to the cine; more = slower")
            cfg = gr.Slider(1, 10, value=defaults["cfg"], step=0.5, label="Guidance scale",
                            info="1 = no guidance; higher = follows the ECG harder, less variety")
            position = gr.Slider(0, 1, value=0.5, step=0.05, label="Slice position",
                                 info="0 = base, 0.5 = mid-ventricle, 1 = apex")
    message = gr.Markdown("", elem_id="ecg-cine-message")
    with gr.Row():
        gif = gr.Image(None, type="filepath", label="Cine (animated, at the ECG's heart rate)", elem_id="ecg-cine-gif",
                       height=300, interactive=False, buttons=["download"], scale=1)
        with gr.Column(scale=2):
            cycle = gr.Markdown("", elem_id="ecg-cine-cycle")
    plot = gr.Plot(label="Cine frame beside lead II of its cycle: Play, or drag the slider", elem_id="ecg-cine-plot")
    player_buttons("ecg-cine-plot")
    files = gr.File(label="Downloads: MP4, GIF, NIfTI, DICOM, conditions and cycle (JSON)", file_count="multiple",
                    elem_id="ecg-cine-files", interactive=False)
    current = gr.State(None)

    def generate(result, seed, steps, cfg, slice_position, progress=gr.Progress()):
        try:
            progress(0.1, desc="Generating the cine from the ECG")
            ecg, name, analysis = (result.ecg, result.name, result.analysis) if result is not None else (None, "", None)
            made = studio.generate(ecg, seed, steps, cfg, slice_position, name=name, analysis=analysis)
            return [studio.file(made, "gif"), studio.figure(made), studio.summary_markdown(made), "", made]
        except Exception as err:  # noqa: BLE001 - every error becomes a message
            return [gr.skip()] * 3 + [error_box(user_message(err, "generating a cine from the ECG")), gr.skip()]

    def downloads(made):
        try:
            return studio.downloads(made) if made is not None else gr.skip()
        except Exception as err:  # noqa: BLE001
            user_message(err, "writing the ECG cine files")  # logs it
            return gr.skip()

    generate_btn.click(generate, inputs=[shown, seed, steps, cfg, position],
                       outputs=[gif, plot, cycle, message, current], api_name="ecg_generate", show_progress="full",
                       concurrency_limit=2).then(
        downloads, inputs=current, outputs=files, api_visibility="private", show_progress="minimal")


def launch_kwargs() -> dict:
    """Theme and CSS for ``Blocks.launch`` (Gradio 6 takes them there, not in ``Blocks``), and the server's
    security settings (:mod:`cardiosynth.app.security`)."""
    return {"theme": THEME, "css": CSS, "footer_links": ["api", "settings"], **secure_launch_kwargs()}


def build_app(explorer: PhenotypeExplorer | None = None, studio: CineStudio | None = None,
              review=None, ecg_studio: EcgCineStudio | None = None) -> gr.Blocks:
    """The app's Blocks (queue enabled). ``explorer`` defaults to the bundled phenotype VAE, ``studio`` to the
    bundled phenotype -> cine pipeline and ``ecg_studio`` to the bundled ECG -> cine pipeline (each tab says
    so when its weights are missing), ``review`` to a ReviewService on the default database
    ($CARDIOSYNTH_REVIEW_DB)."""
    explorer = explorer if explorer is not None else PhenotypeExplorer()
    studio = studio if studio is not None else CineStudio()
    ecg_studio = ecg_studio if ecg_studio is not None else EcgCineStudio(anatomy=studio.pipeline)
    if review is None:
        review = ReviewService()
    start = explorer.score(explorer.start, note="Start: the VAE's most likely heart with normal ejection fractions "
                                                "(LVEF 62 %, RVEF 55 %).")

    with gr.Blocks(title="CardioSynth", analytics_enabled=False, delete_cache=(3600, 3600)) as demo:
        gr.Markdown("# CardioSynth\nSynthetic cine cardiac MRI under clinical control. " + about.DISCLAIMER)
        with gr.Tabs():
            with gr.Tab("Phenotype explorer", id="phenotypes"):
                gr.Markdown(about.CINE_NOTE_PHENOTYPE, elem_classes=["cs-note"], elem_id="cine-note-phenotype")
                with gr.Row():
                    with gr.Column(scale=5):
                        sliders, locks = {}, {}
                        for title, names in (("Left ventricle", ("LVEDV", "LVESV", "LVSV", "LVEF", "LVM")),
                                             ("Right ventricle", ("RVEDV", "RVESV", "RVSV", "RVEF"))):
                            gr.Markdown(f"### {title}")
                            for name in names:
                                p = ph.BY_NAME[name]
                                low, high = p.plausible_range
                                kind = ("derived; editing it moves " + name[:2] + "ESV" if not p.independent
                                        else "independent")
                                with gr.Row(equal_height=True):
                                    sliders[name] = gr.Slider(
                                        low, high, value=start.values[name], step=0.01, precision=2,
                                        label=p.label,
                                        info=f"{p.description}. Plausible {low:g}-{high:g} {p.unit}; UK Biobank "
                                             f"field {p.ukb_field}; {kind}.",
                                        elem_id=f"slider-{name}", scale=8)
                                    locks[name] = gr.Checkbox(False, label="lock", elem_id=f"lock-{name}",
                                                              scale=1, min_width=70, elem_classes=["cs-lock"])
                        edv_keeps = gr.Radio(list(KEEP_CHOICES), value="EF", label="When an EDV moves, keep its",
                                             info="a lock ticked on that ventricle's EF or ESV decides instead",
                                             elem_id="edv-keeps")
                        gr.Markdown(about.DERIVED_HELP)
                    with gr.Column(scale=4):
                        status = gr.HTML(explorer.status_html(start), label="Plausibility", elem_id="plausibility")
                        gr.Markdown(explorer.legend_markdown())
                        with gr.Row():
                            temperature = gr.Slider(0, 2, value=1.0, step=0.05, label="Temperature",
                                                    info="0 = the VAE's mean heart; 1 = like the training patients; "
                                                         "above 1 = more unusual hearts")
                            seed = gr.Number(0, precision=0, minimum=0, label="Seed",
                                             info="moves on by one after each sample")
                        with gr.Row():
                            sample_btn = gr.Button("Sample a heart", variant="primary", elem_id="sample-btn")
                            complete_btn = gr.Button("Complete the rest", elem_id="complete-btn")
                            reset_btn = gr.Button("Reset to healthy start", elem_id="reset-btn")
                        random_completion = gr.Checkbox(False, label="Random completion (use temperature and seed; "
                                                                     "otherwise the most likely completion)")
                        message = gr.Markdown("", label="Message", elem_id="phenotype-message")
                        plot = gr.Plot(explorer.figure(start), label="This heart against the population",
                                       elem_id="population-plot")
                        gr.Markdown(f"Bars: {explorer.population_label}, a stand-in for the training population. "
                                    + ("Ticks: the real ACDC training patients." if explorer.real is not None
                                       else "The real training patients are not shown: `../shared/data` is not "
                                            "available on this machine."))
                        with gr.Accordion("Details (JSON)", open=False):
                            details = gr.JSON(start.as_dict(), label="Phenotype set and plausibility")

                values = [sliders[n] for n in ph.NAMES]
                lock_boxes = [locks[n] for n in ph.NAMES]
                in_use = gr.State(dict(start.values))  # the last valid set: the sliders go back to it on a refusal
                # the plot is redrawn in a chained step (.then below): the indicator shows at once, and the
                # browser's plotly redraw (~0.5 s on a loaded machine) follows
                outputs = values + [status, details, message, in_use]

                def view(scored: Scored) -> list:
                    return ([scored.values[n] for n in ph.NAMES]
                            + [explorer.status_html(scored), scored.as_dict(), "", dict(scored.values)])

                def failed(err: Exception, action: str, last: dict | None) -> list:
                    """A refusal: the message names the fix, and the sliders show the set in use again (the
                    status beside them still describes it), so no slider shows a value the app is not using."""
                    text = user_message(err, action)
                    if last:
                        text += " The sliders show the set in use again."
                    return ([last[n] for n in ph.NAMES] if last else [gr.skip()] * len(ph.NAMES)) + [
                        gr.skip(), {"error": text}, error_box(text), gr.skip()]

                def redraw(shown):
                    try:
                        if not isinstance(shown, dict) or "phenotypes" not in shown:
                            return gr.skip()
                        return PlotData(type="plotly", plot=explorer.figure_json(
                            shown["phenotypes"], shown.get("plausibility", {}).get("status", "")))
                    except Exception as err:  # noqa: BLE001
                        user_message(err, "drawing the population plot")  # logs it
                        return gr.skip()

                def then_redraw(event):
                    event.then(redraw, inputs=details, outputs=plot, api_visibility="private", show_progress="hidden")

                # the last input of every handler below is ``in_use`` (a State: not part of the API)
                @_named_as([*ph.NAMES, "in_use"])
                def plausibility(*vals):
                    try:
                        return view(explorer.score(dict(zip(ph.NAMES, vals)), note="Edited by hand."))
                    except Exception as err:  # noqa: BLE001 - every error becomes a message
                        return failed(err, "scoring this phenotype set", vals[-1])

                def setter(name: str):
                    def set_derived(*vals):
                        try:
                            return view(explorer.score(dict(zip(ph.NAMES, vals)), edited=name,
                                                       note=f"Edited by hand ({name} moved {name[:2]}ESV)."))
                        except Exception as err:  # noqa: BLE001
                            return failed(err, f"setting {name}", vals[-1])
                    set_derived.__name__ = f"set_{name}"
                    return _named(set_derived, [*ph.NAMES, "in_use"])

                def edv_setter(side: str):
                    def set_edv(*args):
                        vals, keep, flags = args[:len(ph.NAMES)], args[len(ph.NAMES)], args[len(ph.NAMES) + 1:-1]
                        try:
                            locked = [n for n, f in zip(ph.NAMES, flags) if f]
                            return view(explorer.move_edv(dict(zip(ph.NAMES, vals)), side, keep, locked))
                        except Exception as err:  # noqa: BLE001
                            return failed(err, f"setting {side}EDV", args[-1])
                    set_edv.__name__ = f"set_{side}EDV"
                    return _named(set_edv, [*ph.NAMES, "keep", *(f"lock_{n}" for n in ph.NAMES), "in_use"])

                def sample(temperature, seed, last):
                    try:
                        return view(explorer.sample(temperature, seed)) + [int(seed) + 1]
                    except Exception as err:  # noqa: BLE001
                        return failed(err, "sampling a heart", last) + [gr.skip()]

                @_named_as([*ph.NAMES, *(f"lock_{n}" for n in ph.NAMES), "random", "temperature", "seed", "in_use"])
                def complete(*args):
                    vals, flags = args[:len(ph.NAMES)], args[len(ph.NAMES):2 * len(ph.NAMES)]
                    rand, t, s, last = args[2 * len(ph.NAMES):]
                    try:
                        locked = [n for n, f in zip(ph.NAMES, flags) if f]
                        return view(explorer.complete(dict(zip(ph.NAMES, vals)), locked, bool(rand), t, s))
                    except Exception as err:  # noqa: BLE001
                        return failed(err, "completing the phenotype set", last)

                def reset():
                    return view(start)

                then_redraw(gr.on([sliders[n].input for n in ph.INDEPENDENT if not n.endswith("EDV")], plausibility,
                                  inputs=values + [in_use], outputs=outputs, api_name="plausibility",
                                  trigger_mode="always_last", show_progress="hidden"))
                for side in ("LV", "RV"):
                    then_redraw(sliders[f"{side}EDV"].input(edv_setter(side), inputs=values + [edv_keeps, *lock_boxes,
                                                                                               in_use],
                                                            outputs=outputs, api_name=f"set_{side}EDV",
                                                            trigger_mode="always_last", show_progress="hidden"))
                for name in ph.DERIVED:
                    then_redraw(sliders[name].input(setter(name), inputs=values + [in_use], outputs=outputs,
                                                    api_name=f"set_{name}", trigger_mode="always_last",
                                                    show_progress="hidden"))
                then_redraw(sample_btn.click(sample, inputs=[temperature, seed, in_use], outputs=outputs + [seed],
                                             api_name="sample", show_progress="minimal"))
                then_redraw(complete_btn.click(complete, inputs=values + lock_boxes + [random_completion, temperature,
                                                                                       seed, in_use],
                                               outputs=outputs, api_name="complete", show_progress="minimal"))
                then_redraw(reset_btn.click(reset, outputs=outputs, api_name="reset"))
                add_cine_panel(studio, values, explorer, (status, message))
                add_edit_panel(studio)

            with gr.Tab("ECG", id="ecg"):
                add_ecg_tab(ecg_studio)

            add_review_tab(review)

            with gr.Tab("About", id="about"):
                gr.Markdown(about.about_markdown(review))
    add_review_admin_page(demo, review)  # its own page (a route): readers see only the Review tab
    demo.queue()
    return demo
