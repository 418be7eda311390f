"""The one error type of the reader study: every refusal (bad study code, empty name, a case that is not the
reader's, a wrong admin token, a study design that cannot be built) is a ``ReviewError`` whose message is one
sentence a clinician can act on. It is a ``ValueError``, so the app shows it as it is (``app/errors.py``).
"""

from __future__ import annotations


class ReviewError(ValueError):
    """A request the reader study refuses; the message says why and what to do instead."""
