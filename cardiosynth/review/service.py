"""``ReviewService``: everything a web page (or the command line) needs, in one object, so a Gradio tab only
calls these methods and shows a ``ReviewError``'s message as it is.

Readers: ``join`` -> ``current_case`` -> ``answer`` -> ... (``resume`` with the resume code later).
Administrator: ``create_study`` (code + admin token, shown once), then with that token ``results``,
``results_plot``, ``export_csv`` and ``blinding_report``. Without the right token these refuse. A web page
also asks for the server's administrator password (``check_admin_password``; set by the operator in
``$CARDIOSYNTH_REVIEW_ADMIN``) before it creates a study or shows results: without one configured, study
administration over the web is off. ``client`` (the caller's address) lets repeated failures be refused
(:mod:`cardiosynth.review.ratelimit`).

The database is ``$CARDIOSYNTH_REVIEW_DB`` or ``<cache>/review/review.sqlite``; case files go to
``$CARDIOSYNTH_REVIEW_DIR`` or ``<cache>/review/studies/<code>/``.
"""

from __future__ import annotations

import hmac
import math
import os
import secrets
from pathlib import Path

from cardiosynth.data.prepare import load_or_prepare
from cardiosynth.paths import cache_dir, private_folder
from cardiosynth.pipelines.generators import build_generator
from cardiosynth.review import session, stats
from cardiosynth.review.access import AdminSessions, check_admin, display_code, normalise_code, token_hash
from cardiosynth.review.blinding import blinding_check
from cardiosynth.review.errors import ReviewError
from cardiosynth.review.ratelimit import FailureLimiter, TooManyAttempts
from cardiosynth.review.render import RenderSettings
from cardiosynth.review.report import plot_results, write_answers_csv
from cardiosynth.review.store import Store
from cardiosynth.review.study import CreatedStudy, design_study


def default_db() -> Path:
    env = os.environ.get("CARDIOSYNTH_REVIEW_DB")
    return Path(env).expanduser() if env else cache_dir() / "review" / "review.sqlite"


ADMIN_PASSWORD_ENV = "CARDIOSYNTH_REVIEW_ADMIN"
MIN_ADMIN_PASSWORD = 12


def whole_number(value, what: str, low: int, high: int) -> int:
    """``value`` as an int in [low, high], or one clear message (2.5, NaN, "ten" are refused, not truncated)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number) or number != int(number) or not low <= number <= high:
        raise ReviewError(f"The number of {what} must be a whole number from {low} to {high}; got {value!r}.")
    return int(number)


def default_studies_dir() -> Path:
    env = os.environ.get("CARDIOSYNTH_REVIEW_DIR")
    return Path(env).expanduser() if env else cache_dir() / "review" / "studies"


ADMIN_TARGET = ("administrator password",)


def _study_target(code) -> tuple | None:
    """The rate limiter's target for attempts at one study code (None when nothing was typed)."""
    try:
        return ("study code", normalise_code(code))
    except ReviewError:
        return None


def _reader_target(code, name) -> tuple | None:
    """The target of a join: one name in one study. A wrong study code is a target that no reader uses, and a
    taken name slows only attempts at that name, so nobody can hold up a study's readers by failing on purpose."""
    study = _study_target(code)
    if study is None:
        return None
    try:
        return ("reader name", study[1], session.clean_name(name)[1])
    except ReviewError:
        return study


class ReviewService:
    """The reader study behind one database; safe to share between the threads of a web server."""

    def __init__(self, db: str | Path | None = None, studies_dir: str | Path | None = None,
                 admin_password: str | None = None, limiter: FailureLimiter | None = None):
        self.store = Store(db or default_db())
        self.studies_dir = private_folder(studies_dir or default_studies_dir())  # case files, answers, truth
        password = admin_password if admin_password is not None else os.environ.get(ADMIN_PASSWORD_ENV, "")
        if password and len(password) < MIN_ADMIN_PASSWORD:
            raise ReviewError(f"The review administrator password (${ADMIN_PASSWORD_ENV}) must have at least "
                              f"{MIN_ADMIN_PASSWORD} characters.")
        self._admin_hash = token_hash(password) if password else None  # the password itself is not kept
        self.limiter = limiter or FailureLimiter()
        self.admin_sessions = AdminSessions()

    @property
    def administration_enabled(self) -> bool:
        return self._admin_hash is not None

    def _guarded(self, client, target, action):
        """Run ``action`` unless ``client`` or ``target`` failed too often lately (see ``ratelimit.py``); a
        refusal counts as one more failure, a success clears the target's count from that client. Calls
        without a client (the command line, run by the server's operator) are not counted."""
        if client is None:
            return action()
        self.limiter.check(client, target)
        try:
            result = action()
        except TooManyAttempts:
            raise
        except ReviewError:
            self.limiter.failed(client, target)
            raise
        self.limiter.succeeded(client, target)
        return result

    def _token_first(self, client, target, action):
        """For 144-bit tokens, which nobody guesses: a right one is never held back by limits that others'
        failures filled; a wrong one is counted and, past the limits, refused as too many."""
        try:
            return action()
        except ReviewError:
            if client is not None:
                self.limiter.check(client, target)
                self.limiter.failed(client, target)
            raise

    def check_admin_password(self, password, client=None) -> None:
        """Refuse unless ``password`` is the server's review administrator password."""
        def check():
            if self._admin_hash is None:
                raise ReviewError("Study administration over the web is switched off on this server: its operator "
                                  f"enables it by setting {ADMIN_PASSWORD_ENV} to an administrator password.")
            if not str(password or "").strip():
                raise ReviewError("Enter the administrator password.")
            if not hmac.compare_digest(token_hash(password), self._admin_hash):
                raise ReviewError("The administrator password is not correct.")
        self._guarded(client, ADMIN_TARGET, check)

    def sign_in_admin(self, password, client=None) -> str:
        """A new administrator session id for the web page (kept by the browser in an HttpOnly cookie)."""
        self.check_admin_password(password, client)
        return self.admin_sessions.open()

    def require_admin_session(self, session_id) -> None:
        if self._admin_hash is None:
            raise ReviewError("Study administration over the web is switched off on this server: its operator "
                              f"enables it by setting {ADMIN_PASSWORD_ENV} to an administrator password.")
        if not self.admin_sessions.valid(session_id):
            raise ReviewError("Sign in with the administrator password first (your session may have expired).")

    def close(self) -> None:
        self.store.close()

    # readers ------------------------------------------------------------------------------------------------
    def join(self, code, name, resume_code=None, client=None) -> session.ReaderSession:
        """A returning reader (name + their resume code) is never held back; anyone else is counted."""
        if session.is_returning(self.store, code, name, resume_code):
            return session.join(self.store, code, name, resume_code)
        return self._guarded(client, _reader_target(code, name),
                             lambda: session.join(self.store, code, name, resume_code))

    def resume(self, resume_code, client=None) -> session.ReaderSession:
        return self._guarded(client, None, lambda: session.resume(self.store, resume_code))

    def current_case(self, resume_code) -> session.CaseView | None:
        return session.current_case(self.store, resume_code)

    def answer(self, resume_code, case_id, answer, confidence, comment="", client=None) -> session.AnswerReceipt:
        """A reader with a valid session is never held back by other people's failures from the same address;
        an unknown resume code is a failed attempt, a wrong choice is not."""
        if not session.is_reader(self.store, resume_code):
            self.resume(resume_code, client)  # refused, counted
        return session.submit_answer(self.store, resume_code, case_id, answer, confidence, comment)

    def case_file(self, resume_code, case_id) -> Path:
        """The file of ``case_id`` for the reader holding ``resume_code`` (a case of their own study only)."""
        return session.case_file(self.store, resume_code, case_id)

    # administrator ----------------------------------------------------------------------------------------------
    def create_study(self, generator, n_real: int, n_synthetic: int, split: str = "val", conditions: str = "vae",
                     seed: int | None = None, settings: RenderSettings = RenderSettings(), title: str = "",
                     dataset=None, temperature: float = 1.0, notify=None) -> CreatedStudy:
        """``generator``: an object with ``generate(conditions)`` or a name build_generator knows. ``seed``
        fixes which real cines and which synthetic ones a study gets; None (the web page, and the command line
        unless told) draws a fresh one, so two studies do not show the same cases (blinding across studies).
        Without ``dataset``, the default prepared ACDC set, prepared on first use (``notify(message)`` is told
        when that happens; see ``cardiosynth.data.prepare.load_or_prepare``)."""
        n_real = whole_number(n_real, "real cines", 1, 500)
        n_synthetic = whole_number(n_synthetic, "synthetic cines", 1, 500)
        if dataset is None:
            dataset = load_or_prepare("default", notify=notify)
        if isinstance(generator, str):
            if generator == "real":
                raise ReviewError("The synthetic cases need a generator that makes cines, not 'real'.")

            generator = build_generator(generator, dataset)
        if seed is None:
            seed = secrets.randbelow(2 ** 31)
        return design_study(self.store, self.studies_dir, dataset, generator, n_real, n_synthetic, split,
                            conditions, seed, settings, title, temperature)

    def _admin_study(self, code, admin_token, client=None) -> dict:
        def check():
            normalised = normalise_code(code)
            study = self.store.study(normalised)
            check_admin(study, normalised, admin_token)
            return study
        target = _study_target(code)
        return self._token_first(client, target and ("admin token", target[1]), check)

    def remove_reader(self, code, admin_token, reader_name, client=None) -> int:
        """Take a reader out of the study (their answers leave the results and the exports, and they can no
        longer answer); the rows stay in the database, marked, for the audit trail. Returns the answers removed."""
        study = self._admin_study(code, admin_token, client)
        return session.remove_reader(self.store, study["code"], reader_name)

    def results(self, code, admin_token, n_boot: int = 1000, seed: int = 0, client=None) -> dict:
        """Per reader and pooled statistics (see ``stats.py``), JSON-ready."""
        study = self._admin_study(code, admin_token, client)
        cases = self.store.cases(study["code"])
        table = self.store.answers_table(study["code"])
        return stats.json_safe({
            "study": display_code(study["code"]), "title": study["title"], "settings": study["settings"],
            "n_real": sum(c["truth"] == "real" for c in cases),
            "n_synthetic": sum(c["truth"] == "synthetic" for c in cases),
            **stats.study_statistics(table, len(cases), n_boot, seed),
        })

    def results_plot(self, code, admin_token, path: str | Path | None = None, n_boot: int = 1000,
                     statistics: dict | None = None) -> Path:
        """The figure; ``statistics`` (what :meth:`results` returned) saves computing them again."""
        study = self._admin_study(code, admin_token)
        table = self.store.answers_table(study["code"])
        statistics = statistics or stats.study_statistics(table, len(self.store.case_ids(study["code"])), n_boot)
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
        earlier = self.store.real_sources_before(study["code"])
        repeated = sorted({c["provenance"].get("source") for c in cases if c["truth"] == "real"} & earlier)
        report["real_sources_shown_in_earlier_studies"] = len(repeated)
        report["warnings"] = [f"The source cines differ in {key} between real and synthetic cases; readers may see "
                              "it in the pictures." for key, value in sources.items() if value["differs"]]
        report["warnings"] += [f"The {name.replace('_', ' ')} of the decoded pictures separates real from synthetic "
                               f"cases (AUC {report['pixel_statistics'][name]['auc']:.2f})."
                               for name in report["pixel_statistics_separating"]]
        if repeated:
            report["warnings"].append(f"{len(repeated)} real cases were shown in earlier studies on this server (as "
                                      "other files); a reader who took part in both may recognise them.")
        return stats.json_safe(report)
