"""Turn any exception raised while handling a click into one sentence for the page.

Expected problems (a phenotype set that cannot hold, an ECG file that cannot be read, a bad number) carry
messages written for the user and are shown as they are. Anything else is a bug: the page says so in one
sentence and the traceback goes to the server log, never to the page.
"""

from __future__ import annotations

import html
import logging

from cardiosynth.ecg import EcgError
from cardiosynth.paths import DataNotFoundError
from cardiosynth.phenotypes import PhenotypeError

log = logging.getLogger("cardiosynth.app")


#: Errors whose messages are written for the user: PhenotypeError, ValueError, EcgError and DataNotFoundError
#: (a missing data folder: its message says where we looked and how to point elsewhere).
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (PhenotypeError, ValueError, EcgError, DataNotFoundError)


def user_message(err: BaseException, action: str) -> str:
    """The sentence the page shows for ``err`` raised while ``action`` (e.g. "sampling a heart")."""
    if isinstance(err, EXPECTED_ERRORS):
        log.info("%s: %s: %s", action, type(err).__name__, err)
        return str(err) or f"{type(err).__name__} while {action}"
    log.exception("Unexpected error while %s", action)
    return (f"Something went wrong inside CardioSynth while {action} ({type(err).__name__}). "
            "This is a bug, not a problem with your input; the details are in the server log.")


def error_box(message: str) -> str:
    """A red Markdown/HTML box for the page (escaped)."""
    return f'<div class="cs-error" role="alert"><b>Cannot do this:</b> {html.escape(message)}</div>'
