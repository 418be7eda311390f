"""The reader study's own HTTP routes beside Gradio: where every secret of a study travels, and nowhere else.

Why not through Gradio: Gradio delivers an event's outputs on ``/gradio_api/queue/data?session_hash=H``, and
anyone who knows H (it is in the page's own request URLs, so in proxy logs) receives them. A resume code, an
admin token, a study's code or a link to its answers sent as an output would be handed to them. So:

- a reader joins by ``POST /review-session/join``; the answer sets an **HttpOnly, SameSite=Strict cookie**
  holding their resume code and returns the code to that one HTTP response (the page shows it);
- the administrator signs in by ``POST /review-session/admin/sign-in`` with the server's password; the cookie
  holds a random session id (``ReviewService.admin_sessions``);
- every Gradio event of the review (show the case, answer, create a study) reads its credentials from the
  cookie server-side, never from its inputs, and its outputs carry nothing secret;
- case files (``/review-session/case/<case id>.gif``: a random id per study, never a name derived from the
  content), the created study's code and token, the results, the answers CSV with the truth and the figure are
  served only to the cookie that may see them, with ``Cache-Control: no-store``.

What a page of another site or port sends with the user's cookies never reaches these routes
(``security.SameOriginRequests``); POST routes take JSON bodies of at most 16 kB. Every refusal is one
sentence, ``{"error": ...}``.
"""

from __future__ import annotations

import json
import secrets
import threading
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse
from markdown_it import MarkdownIt
from starlette.concurrency import run_in_threadpool

from cardiosynth.review import ReviewError, ReviewService
from cardiosynth.review.access import token_hash
from cardiosynth.review.ratelimit import TooManyAttempts

from .errors import user_message

ROUTE_PREFIX = "/review-session"
READER_COOKIE = "cardiosynth_reader"
ADMIN_COOKIE = "cardiosynth_admin"
MAX_BODY = 16_384
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def client_address(request) -> str:
    """The caller's address as the server sees it (forwarded headers only from a named proxy: security.py);
    "unknown" when the server gives none (a unix socket), which is counted like any address."""
    return getattr(getattr(request, "client", None), "host", None) or "unknown"


def cookie(request, name: str) -> str:
    """A cookie of the request behind a Gradio event or a route ('' when absent)."""
    cookies = getattr(request, "cookies", None) or {}
    return str(cookies.get(name, "") or "")


def _refusal(err: BaseException, action: str) -> JSONResponse:
    if isinstance(err, TooManyAttempts):
        status = 429
    elif isinstance(err, ReviewError):
        status = 400
    else:
        status = 500
    return JSONResponse({"error": user_message(err, action)}, status_code=status, headers=NO_STORE)


def _ok(payload: dict) -> JSONResponse:
    return JSONResponse(payload, headers=NO_STORE)


async def _body(request: Request) -> dict:
    """The JSON object of a POST (whose origin ``security.SameOriginRequests`` checked), else a ReviewError."""
    if int(request.headers.get("content-length") or 0) > MAX_BODY:
        raise ReviewError("The request is too large.")
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise ReviewError("The request is too large.")
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ReviewError("The request could not be read; reload the page and try again.")
    return body


def _set_cookie(response: JSONResponse, request: Request, name: str, value: str, max_age: int | None) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")


def _summary_html(report: dict, blinding: dict) -> str:
    return MarkdownIt("commonmark", {"html": False}).enable("table").render(summary_markdown(report, blinding))


def _fmt(value, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _interval(pair) -> str:
    low, high = pair or (None, None)
    return "-" if low is None or high is None else f"{low:.2f}-{high:.2f}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def summary_markdown(report: dict, blinding: dict) -> str:
    pooled = report.get("pooled") or {}
    if not pooled:
        return f"Study {report['study']}: no answers yet."
    accuracy, auc = pooled["accuracy"], pooled["auc"]
    kappa = (report.get("agreement") or {}).get("fleiss_kappa")
    lines = [
        f"**Study {report['study']}**: {report['n_real']} real + {report['n_synthetic']} synthetic cases, "
        f"{_count(report['n_readers'], 'reader')} ({report['n_readers_finished']} finished), "
        f"{_count(report['n_answers'], 'answer')}.",
        "",
        "| | value | 95 % CI |",
        "|---|---:|---|",
        f"| pooled accuracy | {_fmt(accuracy['value'])} | {_interval(accuracy.get('ci95_bootstrap'))} (bootstrap over "
        "readers and cases) |",
        f"| binomial test vs 0.5 | p = {_fmt(accuracy.get('p_value'), 4)} | exact: {_interval(accuracy['ci95'])} "
        "(answers taken as independent) |",
        f"| sensitivity for synthetic | {_fmt(pooled['sensitivity']['value'])} | |",
        f"| specificity | {_fmt(pooled['specificity']['value'])} | |",
        f"| ROC AUC (confidence ratings) | {_fmt(auc['value'])} | {_interval(auc['ci95'])} |",
        f"| Fleiss' kappa | {_fmt(kappa)} | |",
        "",
        "Accuracy near 0.5 and AUC near 0.5 mean the readers could not tell real from synthetic. "
        f"Blinding check of the files: **{'passed' if blinding.get('blinded') else 'FAILED'}**"
        + (f" ({'; '.join(blinding.get('warnings', []))})" if blinding.get("warnings") else "") + ".",
    ]
    return "\n".join(lines)


class _AdminFiles:
    """Files shown to one administrator session (plot, answers CSV, blinding JSON), by random id."""

    def __init__(self):
        self._files: dict[tuple[str, str], Path] = {}
        self._lock = threading.Lock()

    def offer(self, session_id: str, path: Path) -> str:
        file_id = secrets.token_urlsafe(12) + path.suffix
        with self._lock:
            if len(self._files) > 1000:
                self._files.clear()
            self._files[(token_hash(session_id), file_id)] = path
        return f"{ROUTE_PREFIX}/admin/file/{file_id}"

    def get(self, session_id: str, file_id: str) -> Path | None:
        with self._lock:
            return self._files.get((token_hash(session_id), file_id))


def review_router(service: ReviewService) -> APIRouter:
    """The routes above for ``service`` (passed to Gradio's FastAPI app before its own routes)."""
    router = APIRouter(prefix=ROUTE_PREFIX)
    files = _AdminFiles()

    def _signed_in(request: Request) -> str:
        """The administrator's session id from the cookie, or a ReviewError."""
        session_id = cookie(request, ADMIN_COOKIE)
        service.require_admin_session(session_id)
        return session_id

    @router.post("/join")
    async def join(request: Request):
        try:
            body = await _body(request)
            # a database write (fsync'd): off the event loop, which serves every other user meanwhile
            joined = await run_in_threadpool(service.join, body.get("code"), body.get("name"),
                                             str(body.get("resume") or "").strip() or None,
                                             client=client_address(request))
            response = _ok({"name": joined.name, "resume_code": joined.token, "answered": joined.answered,
                            "total": joined.total})
            # a session cookie: on a shared workstation it ends with the browser; the resume code brings the
            # reader back in a later sitting
            _set_cookie(response, request, READER_COOKIE, joined.token, None)
            return response
        except Exception as err:  # noqa: BLE001 - every refusal is one sentence
            return _refusal(err, "joining the study")

    @router.post("/leave")
    async def leave(request: Request):
        response = _ok({"left": True})
        response.delete_cookie(READER_COOKIE, path="/")
        return response

    @router.get("/case/{case_file}")
    def case(case_file: str, request: Request):
        try:
            path = service.case_file(cookie(request, READER_COOKIE), case_file.removesuffix(".gif"))
            return FileResponse(path, media_type="image/gif", headers={**NO_STORE, "Content-Disposition": "inline"})
        except Exception as err:  # noqa: BLE001
            return _refusal(err, "showing the case")

    @router.post("/admin/sign-in")
    async def sign_in(request: Request):
        try:
            body = await _body(request)
            session_id = service.sign_in_admin(body.get("password"), client=client_address(request))
            response = _ok({"signed_in": True})
            _set_cookie(response, request, ADMIN_COOKIE, session_id, None)  # ends with the browser session
            return response
        except Exception as err:  # noqa: BLE001
            return _refusal(err, "signing in")

    @router.post("/admin/sign-out")
    async def sign_out(request: Request):
        service.admin_sessions.close(cookie(request, ADMIN_COOKIE))
        response = _ok({"signed_in": False})
        response.delete_cookie(ADMIN_COOKIE, path="/")
        return response

    @router.get("/admin/created")
    def created(request: Request):
        """The code and admin token of the study this session created last, once."""
        try:
            session_id = _signed_in(request)
            study = service.admin_sessions.take_notice(session_id)
            if study is None:
                raise ReviewError("No new study is waiting to be shown; its code and token are shown only once.")
            return _ok({"code": study.display_code, "admin_token": study.admin_token, "n_real": study.n_real,
                        "n_synthetic": study.n_synthetic})
        except Exception as err:  # noqa: BLE001
            return _refusal(err, "showing the new study")

    @router.post("/admin/results")
    async def results(request: Request):
        try:
            body = await _body(request)
            session_id = _signed_in(request)
            return _ok(await run_in_threadpool(_results, session_id, body.get("code"), body.get("token"),
                                               client_address(request)))
        except Exception as err:  # noqa: BLE001
            return _refusal(err, "showing the results")

    def _results(session_id: str, code, token, client: str) -> dict:
        """Statistics, blinding check, answers CSV and figure (seconds of work: off the event loop)."""
        report = service.results(code, token, client=client)
        blinding = service.blinding_report(code, token)
        answers = service.export_csv(code, token)
        blinding_file = answers.with_name(answers.stem.replace("_answers", "") + "_blinding.json")
        blinding_file.write_text(json.dumps(blinding, indent=2))
        blinding_file.chmod(0o600)
        plot = service.results_plot(code, token, statistics=report)
        return {"summary_html": _summary_html(report, blinding), "details": report,
                "readers": [r["reader"] for r in report.get("readers") or []],
                "plot": files.offer(session_id, plot), "answers_csv": files.offer(session_id, answers),
                "blinding_json": files.offer(session_id, blinding_file)}

    @router.post("/admin/remove-reader")
    async def remove_reader(request: Request):
        try:
            body = await _body(request)
            _signed_in(request)
            removed = await run_in_threadpool(service.remove_reader, body.get("code"), body.get("token"),
                                              body.get("name"), client=client_address(request))
            return _ok({"removed": True, "answers_removed": removed})
        except Exception as err:  # noqa: BLE001
            return _refusal(err, "removing the reader")

    @router.get("/admin/file/{file_id}")
    def admin_file(file_id: str, request: Request):
        session_id = cookie(request, ADMIN_COOKIE)
        path = files.get(session_id, file_id) if service.admin_sessions.valid(session_id) else None
        if path is None or not path.is_file():
            return _refusal(ReviewError("This file is for the signed-in administrator who asked for it; show the "
                                        "results again."), "sending the file")
        media = {".csv": "text/csv", ".json": "application/json", ".png": "image/png"}.get(path.suffix)
        disposition = "inline" if path.suffix == ".png" else "attachment"
        return FileResponse(path, media_type=media, filename=path.name, content_disposition_type=disposition,
                            headers=NO_STORE)

    return router
