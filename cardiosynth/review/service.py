"""``ReviewService``: everything a web page (or the command line) needs, in one object, so a Gradio tab only
calls these methods and shows a ``ReviewError``'s message as it is.

Readers: ``join`` -> ``current_case`` -> ``answer`` -> ... (``resume`` with the resume code later).
Administrator: ``create_study`` (code + admin token, shown once), then with that token ``results``,
``results_plot``, ``export_csv`` and ``blinding_report``. Without the right token these refuse.

The database is ``$CARDIOSYNTH_REVIEW_DB`` or ``<cache>/review/review.sqlite``; case files go to
``$CARDIOSYNTH_REVIEW_DIR`` or ``<cache>/review/studies/<code>/``.
"""

from __future__ import annotations

import os
from pathlib import Path

from cardiosynth.paths import cache_dir
from cardiosynth.review import session, stats
from cardiosynth.review.access import check_admin, display_code, normalise_code
from cardiosynth.review.blinding import blinding_check
from cardiosynth.review.errors import ReviewError
from cardiosynth.review.render import RenderSettings
from cardiosynth.review.report import plot_results, write_answers_csv
from cardiosynth.review.store import Store
from cardiosynth.review.study import CreatedStudy, design_study


def default_db() -> Path:
    env = os.environ.get("CARDIOSYNTH_REVIEW_DB")
    return Path(env).expanduser() if env else cache_dir() / "review" / "review.sqlite"


def default_studies_dir() -> Path:
    env = os.environ.get("CARDIOSYNTH_REVIEW_DIR")
    return Path(env).expanduser() if env else cache_dir() / "review" / "studies"


class ReviewService:
    """The reader study behind one database; safe to share between the threads of a web server."""

    def __init__(self, db: str | Path | None = None, studies_dir: str | Path | None = None):
        self.store = Store(db or default_db())
        self.studies_dir = Path(studies_dir or default_studies_dir())

    def close(self) -> None:
        self.store.close()

    # readers ------------------------------------------------------------------------------------------------
    def join(self, code, name, resume_code=None) -> session.ReaderSession:
        return session.join(self.store, code, name, resume_code)

    def resume(self, resume_code) -> session.ReaderSession:
        return session.resume(self.store, resume_code)

    def current_case(self, resume_code) -> session.CaseView | None:
        return session.current_case(self.store, resume_code)

    def answer(self, resume_code, case_id, answer, confidence, comment="") -> session.AnswerReceipt:
        return session.submit_answer(self.store, resume_code, case_id, answer, confidence, comment)

    # administrator ----------------------------------------------------------------------------------------------
    def create_study(self, generator, n_real: int, n_synthetic: int, split: str = "val", conditions: str = "vae",
                     seed: int = 0, settings: RenderSettings = RenderSettings(), title: str = "", dataset=None,
                     temperature: float = 1.0, notify=None) -> CreatedStudy:
        """``generator``: an object with ``generate(conditions)`` or a name build_generator knows. Without
        ``dataset``, the default prepared ACDC set, prepared on first use (``notify(message)`` is told when
        that happens; see ``cardiosynth.data.dataset.load_or_prepare``)."""
        if dataset is None:
            from cardiosynth.data.dataset import load_or_prepare

            dataset = load_or_prepare("default", notify=notify)
        if isinstance(generator, str):
            if generator == "real":
                raise ReviewError("The synthetic cases need a generator that makes cines, not 'real'.")
            from cardiosynth.measure.generators import build_generator

            generator = build_generator(generator, dataset)
        return design_study(self.store, self.studies_dir, dataset, generator, n_real, n_synthetic, split,
                            conditions, seed, settings, title, temperature)

    def _admin_study(self, code, admin_token) -> dict:
        code = normalise_code(code)
        study = self.store.study(code)
        check_admin(study, code, admin_token)
        return study

    def results(self, code, admin_token, n_boot: int = 1000, seed: int = 0) -> dict:
        """Per reader and pooled statistics (see ``stats.py``), JSON-ready."""
        study = self._admin_study(code, admin_token)
        cases = self.store.cases(study["code"])
        table = self.store.answers_table(study["code"])
        return stats.json_safe({
            "study": display_code(study["code"]), "title": study["title"], "settings": study["settings"],
            "n_real": sum(c["truth"] == "real" for c in cases),
            "n_synthetic": sum(c["truth"] == "synthetic" for c in cases),
            **stats.study_statistics(table, len(cases), n_boot, seed),
        })

    def results_plot(self, code, admin_token, path: str | Path | None = None, n_boot: int = 1000) -> Path:
        study = self._admin_study(code, admin_token)
        table = self.store.answers_table(study["code"])
        statistics = stats.study_statistics(table, len(self.store.case_ids(study["code"])), n_boot)
        return plot_results(table, statistics, path or Path(study["folder"]).parent / f"{study['code']}_results.png")

    def export_csv(self, code, admin_token, path: str | Path | None = None) -> Path:
        study = self._admin_study(code, admin_token)
        return write_answers_csv(self.store.answers_table(study["code"]),
                                 path or Path(study["folder"]).parent / f"{study['code']}_answers.csv")

    def blinding_report(self, code, admin_token) -> dict:
        """The file-level blinding check, plus the pre-rendering differences between the groups (shape and
        pixel spacing of the source cines: the rendering equalises the files, not the field of view)."""
        study = self._admin_study(code, admin_token)
        cases = self.store.cases(study["code"])
        missing = [c["file"] for c in cases if not (Path(study["folder"]) / c["file"]).is_file()]
        if missing:
            raise ReviewError(f"{len(missing)} case files of this study are missing from {study['folder']}.")
        report = blinding_check([(Path(study["folder"]) / c["file"], c["truth"]) for c in cases])
        sources = {}
        for key in ("source_shape", "spacing_mm"):
            values = {truth: sorted({str(c["provenance"].get(key)) for c in cases if c["truth"] == truth})
                      for truth in ("real", "synthetic")}
            sources[key] = {**values, "differs": values["real"] != values["synthetic"]}
        report["source_cines"] = sources
        report["warnings"] = [f"The source cines differ in {key} between real and synthetic cases; readers may see "
                              "it in the pictures." for key, value in sources.items() if value["differs"]]
        return stats.json_safe(report)
