"""Blinded real-vs-synthetic reader studies (a Turing test for cine CMR).

    render.py    the one rendering path: Cine -> fixed-size, fixed-length, metadata-free MP4, equal byte sizes
    blinding.py  can a script tell real from synthetic files without the pixels?
    store.py     SQLite (WAL): studies, cases (truth kept admin-side), readers, answers (one per reader and case)
    access.py    study codes, tokens (stored hashed), the admin check
    study.py     study design: real held-out cines + generated ones, rendered and stored all or nothing
    session.py   the reader flow: join, one case at a time, answer, resume
    stats.py     accuracy (binomial test), sensitivity/specificity, ROC AUC (bootstrap), Fleiss' kappa, time
    report.py    CSV export and the results figure
    service.py   ReviewService: the facade a web page calls
    loadtest.py  concurrent readers, restart and crash checks
"""

from cardiosynth.review.errors import ReviewError
from cardiosynth.review.render import RenderSettings
from cardiosynth.review.service import ReviewService

__all__ = ["RenderSettings", "ReviewError", "ReviewService"]
