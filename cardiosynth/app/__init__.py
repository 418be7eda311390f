"""The CardioSynth web app (Gradio): ``build_app()`` returns the Blocks; ``python app.py`` serves it.

Layout and wiring live in :mod:`.ui`; the logic behind each tab in :mod:`.phenotype_explorer`, :mod:`.cine_view`,
:mod:`.ecg_view` and :mod:`.ecg_cine`, which do not import Gradio.
"""

import os

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before gradio is imported anywhere: no telemetry

from .security import use_private_gradio_temp  # noqa: E402

use_private_gradio_temp()  # before gradio is imported too: it reads the folder once

from .ui import CSS, THEME, build_app, launch_kwargs  # noqa: E402

__all__ = ["build_app", "launch_kwargs", "CSS", "THEME"]
