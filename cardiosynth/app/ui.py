"""The Gradio Blocks of the CardioSynth app: the theme, the CSS and :func:`build_app`, which puts the tabs in
order. Each tab's layout and wiring is its own module (phenotype_tab, ecg_tab, review_tab, about_tab; the two
"Generate cine" panels share generation_panel); the logic behind them does not import Gradio (phenotype_explorer,
cine_studio, batches, heart_edit, ecg_reading, ecg_cine_studio).

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
- ``/review_case`` (1) and ``/review_answer`` (answer, confidence, comment): the Review tab, for the reader whose
  cookie comes with the call; ``/review_create`` (study settings): the study administration page (a route at
  ``/review-admin`` that the readers' page does not link to), for a signed-in administrator's cookie. Joining,
  signing in, a new study's credentials and the results are HTTP routes under ``/review-session/``, not Gradio
  endpoints: Gradio's queue would hand them to anyone with the session hash (review_routes.py;
  ``evaluation/review_web_client.py`` is a script's way through them)
- ``/edit_real`` (file, slice, new LVEF, seed) -> GIF (real slice), GIF (edited), values, message: a real heart's
  ED anatomy with the motion of a new LVEF (heart_edit.py)
- ``/ecg`` (list of uploaded files) and ``/ecg_example`` (example name) -> figure, summary, details JSON, message;
  the ECG read is kept in the session (gr.State) for ``/ecg_generate``
- ``/ecg_generate`` (seed, steps, cfg, slice_position) -> GIF, figure (cine beside lead II, with animation frames),
  cycle and settings, message: a cine from the session's ECG (ecg_cine_studio.py; only when its weights are bundled)
"""

from __future__ import annotations

import gradio as gr  # the package's __init__ has set Gradio's environment before this runs

from cardiosynth.review import ReviewService

from . import about
from .about_tab import add_about_tab
from .cine_studio import CineStudio
from .ecg_cine_studio import EcgCineStudio
from .ecg_tab import add_ecg_tab
from .phenotype_explorer import PhenotypeExplorer
from .phenotype_tab import add_phenotype_tab
from .review_routes import ROUTE_PREFIX, review_router
from .review_tab import add_review_admin_page, add_review_tab
from .security import secure_launch_kwargs
from .widgets import KEEP_TYPED_JS

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
.cs-values table { display: block; overflow-x: auto; font-size: 0.92em; }
.cs-values td, .cs-values th { white-space: nowrap; padding: 4px 10px !important; }
"""

# no web fonts: the page must not reach the network
THEME = gr.themes.Default(font=["system-ui", "Segoe UI", "Helvetica", "Arial", "sans-serif"],
                          font_mono=["ui-monospace", "Consolas", "monospace"])


def launch_kwargs(demo: gr.Blocks, host: str = "127.0.0.1", **security) -> dict:
    """Theme and CSS for ``Blocks.launch`` (Gradio 6 takes them there, not in ``Blocks``), the reader study's
    own routes (:mod:`.review_routes`) and the server's security settings for ``host`` (``security``:
    :func:`.security.secure_launch_kwargs`'s options)."""
    routes = review_router(demo.review_service).routes if getattr(demo, "review_service", None) else ()
    return {"theme": THEME, "css": CSS, "js": KEEP_TYPED_JS, "footer_links": ["api", "settings"],
            **secure_launch_kwargs(host, routes, protected=(ROUTE_PREFIX,), **security)}


def build_app(explorer: PhenotypeExplorer | None = None, studio: CineStudio | None = None,
              review=None, ecg_studio: EcgCineStudio | None = None, device: str = "auto") -> gr.Blocks:
    """The app's Blocks (queue enabled). ``explorer`` defaults to the bundled phenotype VAE, ``studio`` to the
    bundled phenotype -> cine pipeline and ``ecg_studio`` to the bundled ECG -> cine pipeline (each tab says
    so when its weights are missing), both loaded onto ``device`` (``auto``, ``cpu`` or ``cuda``), ``review`` to
    a ReviewService on the default database ($CARDIOSYNTH_REVIEW_DB)."""
    explorer = explorer if explorer is not None else PhenotypeExplorer()
    studio = studio if studio is not None else CineStudio(device=device)
    ecg_studio = ecg_studio if ecg_studio is not None else EcgCineStudio(anatomy=studio.pipeline, device=device)
    if review is None:
        review = ReviewService()

    with gr.Blocks(title="CardioSynth", analytics_enabled=False, delete_cache=(3600, 3600)) as demo:
        gr.Markdown("# CardioSynth\nSynthetic cine cardiac MRI under clinical control. " + about.DISCLAIMER)
        with gr.Tabs():
            add_phenotype_tab(explorer, studio)
            add_ecg_tab(ecg_studio)
            add_review_tab(review)
            add_about_tab(review)
    add_review_admin_page(demo, review)  # its own page (a route): readers see only the Review tab
    demo.review_service = review  # its routes are added at launch (launch_kwargs)
    demo.queue()
    return demo
