"""A script's way through the reader study of a running app, as a browser goes: the review routes for
joining and signing in (they set the HttpOnly cookies), Gradio's API with those cookies for the case, the
answers and creating a study. Used by the load test and the tests."""

from __future__ import annotations

import re

import gradio_client
import httpx

from cardiosynth.app.review_routes import ADMIN_COOKIE, READER_COOKIE, ROUTE_PREFIX

CASE_ID = re.compile(r"case/([0-9a-f]+)\.gif")


class ReviewWebClient:
    """One browser: its cookie jar, and a Gradio client that sends the same cookies."""

    def __init__(self, url: str, timeout: float = 120.0):
        self.url = url.rstrip("/") + "/"
        self.http = httpx.Client(base_url=self.url, timeout=timeout)
        self._gradio, self._gradio_cookies = None, None

    # the review routes ---------------------------------------------------------------------------------------
    def post(self, path: str, body: dict, **headers) -> tuple[int, dict]:
        response = self.http.post(ROUTE_PREFIX.lstrip("/") + path, json=body, headers=headers)
        return response.status_code, response.json()

    def join(self, code, name, resume: str = "") -> dict:
        """The route's JSON: name, resume_code, answered, total, or error."""
        return self.post("/join", {"code": code, "name": name, "resume": resume})[1]

    def sign_in(self, password: str) -> dict:
        return self.post("/admin/sign-in", {"password": password})[1]

    def created(self) -> dict:
        return self.http.get(ROUTE_PREFIX.lstrip("/") + "/admin/created").json()

    def results(self, code, token) -> tuple[int, dict]:
        return self.post("/admin/results", {"code": code, "token": token})

    def get(self, path: str) -> httpx.Response:
        return self.http.get(path.lstrip("/"))

    # Gradio's API, with this browser's cookies ---------------------------------------------------------------
    @property
    def gradio(self) -> gradio_client.Client:
        cookies = {name: self.http.cookies.get(name) for name in (READER_COOKIE, ADMIN_COOKIE)}
        if self._gradio is None or cookies != self._gradio_cookies:
            header = "; ".join(f"{name}={value}" for name, value in cookies.items() if value)
            self._gradio = gradio_client.Client(self.url, verbose=False, download_files=False,
                                                headers={"Cookie": header} if header else None)
            self._gradio_cookies = cookies
        return self._gradio

    def case(self) -> tuple[str | None, str, str]:
        """(case id or None, progress HTML, message HTML) after joining, as the page shows them."""
        video, progress, message = self.gradio.predict(1, api_name="/review_case")  # (the case id is a State)
        return _case_id(video), progress, message

    def answer(self, label, confidence=3, comment: str = "") -> tuple[str | None, str, str]:
        """(next case id or None, progress HTML, message HTML)."""
        video, progress, message, *_ = self.gradio.predict(label, confidence, comment, api_name="/review_answer")
        return _case_id(video), progress, message

    def create(self, n_real=2, n_synthetic=2, generator="Group-mean cine (a trivial baseline)", split="val",
               conditions="matched", seconds=1.0, beats=1, title="") -> str:
        return self.gradio.predict(n_real, n_synthetic, generator, split, conditions, seconds, beats, title,
                                   api_name="/review_create")

    def close(self) -> None:
        self.http.close()


def _case_id(video) -> str | None:
    found = CASE_ID.search(video) if isinstance(video, str) else None
    return found.group(1) if found else None
