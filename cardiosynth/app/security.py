"""What the web server does for a hospital's IT security, whatever the page: headers, limits, no history.

- Security headers on every response: the app may not be framed by another site (clickjacking a reader's
  answers), the browser may not guess content types, and no page address leaks to other sites.
- Gradio's run history is off: by default it keeps every call's inputs and outputs in the browser's
  localStorage, which would leave readers' resume codes and the administrator's password on a shared
  workstation for the next person.
- Gradio's monitoring pages are off (they summarise every event to anyone who asks).
- Uploads are capped by the server before anything reads them.
- Files the server writes for people (Gradio's copies of downloads, the review database and case files)
  are readable by this user only.
"""

from __future__ import annotations

import os

from starlette.middleware import Middleware

from cardiosynth.paths import cache_dir, private_folder

#: Largest upload accepted (ECG files are limited to 20 MB by the reader; a 4D NIfTI cine is a few MB).
MAX_UPLOAD = "50mb"
SECURITY_HEADERS = {
    b"x-frame-options": b"DENY",
    b"content-security-policy": b"frame-ancestors 'none'",
    b"x-content-type-options": b"nosniff",
    b"referrer-policy": b"no-referrer",
}


class SecurityHeaders:
    """ASGI middleware adding :data:`SECURITY_HEADERS` to every HTTP response (streamed ones too)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []),
                                      *[(k, v) for k, v in SECURITY_HEADERS.items() if k not in present]]
            await send(message)

        return await self.app(scope, receive, send_with_headers)


def prepare_gradio_environment() -> None:
    """Run before gradio is first imported (it reads both variables once, at import).

    - No analytics and no version check (the app makes no network calls).
    - Gradio copies every file it serves (answer CSVs with the truth among them) into its temp folder, by
      default a world-readable one under /tmp; point it at a private folder unless the operator chose one."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    if "GRADIO_TEMP_DIR" not in os.environ:
        os.environ["GRADIO_TEMP_DIR"] = str(private_folder(cache_dir() / "gradio"))


def secure_launch_kwargs() -> dict:
    """The ``Blocks.launch`` arguments above, for every way the app is served (app.py, tests, benchmarks)."""
    return {"run_history": False, "enable_monitoring": False, "max_file_size": MAX_UPLOAD,
            "app_kwargs": {"middleware": [Middleware(SecurityHeaders)]}}
