"""The CardioSynth web app (Gradio): ``build_app()`` returns the Blocks; ``python app.py`` serves it.

:mod:`.ui` holds the theme, the CSS and ``build_app``, which lays out the tabs in order; each tab's layout and
wiring is one module: :mod:`.phenotype_tab`, :mod:`.ecg_tab`, :mod:`.review_tab` and :mod:`.about_tab`. The two
"Generate cine" panels (phenotypes -> cine, ECG -> cine) are one panel, :mod:`.generation_panel`, over one studio
base, :mod:`.studio`; small Gradio pieces several tabs use are in :mod:`.widgets`. The logic behind the tabs is in
:mod:`.phenotype_explorer`, :mod:`.cine_studio`, :mod:`.batches`, :mod:`.heart_edit`, :mod:`.ecg_reading` and
:mod:`.ecg_cine_studio`, which do not import Gradio.
"""

from .security import prepare_gradio_environment

prepare_gradio_environment()  # before any module of this package imports gradio

from .ui import CSS, THEME, build_app, launch_kwargs  # noqa: E402

__all__ = ["build_app", "launch_kwargs", "CSS", "THEME"]
