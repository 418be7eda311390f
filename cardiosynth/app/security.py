"""What the web server does for a hospital's IT security, whatever the page: headers, limits, no history.

- Security headers on every response: the app may not be framed by another site (clickjacking a reader's
  answers), the browser may not guess content types, and no page address leaks to other sites.
- Gradio's run history is off: by default it keeps every call's inputs and outputs in the browser's
  localStorage, which would leave readers' resume codes and the administrator's password on a shared
  workstation for the next person.
- Gradio's monitoring pages are off (they summarise every event to anyone who asks).
- Request bodies are capped by the server before anything reads them: per file (Gradio's own check), per
  request (any route), and file uploads per client address and hour and for the upload folder as a whole
  (:class:`UploadLimits`), so an anonymous client cannot fill the disk.
- Requests that change something, and the reader study's routes, must come from this app's own pages
  (:class:`SameOriginRequests`): a page on another port or subdomain cannot act with the user's cookies.
- Forwarded headers (``X-Forwarded-For``) are believed only from a proxy the operator names
  (``--trusted-proxy`` / ``$CARDIOSYNTH_TRUSTED_PROXIES``): otherwise anyone on the machine could pick the
  address that the reader study's rate limits count against. uvicorn trusts loopback by default; we do not.
- Requests must name this server in their ``Host`` header (loopback names when it listens on loopback, plus
  ``$CARDIOSYNTH_ALLOWED_HOSTS``): a DNS-rebinding page cannot reach the app through the user's browser.
- Files the server writes for people (Gradio's copies of downloads, the review database and case files)
  are readable by this user only.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware

from cardiosynth.paths import cache_dir, private_folder

log = logging.getLogger("cardiosynth.app")

#: Largest file accepted (ECG files are limited to 20 MB by the reader; a 4D NIfTI cine is a few MB).
MAX_UPLOAD = "50mb"
TRUSTED_PROXIES_ENV = "CARDIOSYNTH_TRUSTED_PROXIES"
ALLOWED_HOSTS_ENV = "CARDIOSYNTH_ALLOWED_HOSTS"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
MB = 1_000_000
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


async def refuse(send, status: int, message: str) -> None:
    """Answer an HTTP request with one JSON sentence, without reading its body."""
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"connection", b"close"), *SECURITY_HEADERS.items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def host_name(value: str) -> str:
    """The name in a Host header or host setting, without its port and IPv6 brackets, lower case."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:value.index("]")] if "]" in value else value[1:]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class HostCheck:
    """ASGI middleware refusing requests whose Host header names another server (``allowed`` None: any)."""

    def __init__(self, app, allowed: frozenset[str] | None):
        self.app, self.allowed = app, allowed

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket") and self.allowed is not None:
            host = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1")
            if host_name(host) not in self.allowed:
                if scope["type"] == "http":
                    return await refuse(send, 400, "This server does not answer to that host name.")
                return await send({"type": "websocket.close", "code": 1008})
        return await self.app(scope, receive, send)


class SameOriginRequests:
    """ASGI middleware refusing what a page of another site, or of another port of this host, sends with the
    user's cookies: every request that can change something (not GET / HEAD / OPTIONS) and every request for
    the reader study's routes (``protected``). SameSite=Strict cookies are still sent between two ports of one
    host and between sibling subdomains, and Gradio's CORS lets such pages read answers, so the browser's own
    account of where a request comes from decides: ``Sec-Fetch-Site`` (same-site and cross-site refused), or
    where a browser does not send it, an ``Origin`` naming another host. Scripts (no such headers) pass."""

    def __init__(self, app, protected: tuple[str, ...] = ()):
        self.app, self.protected = app, protected

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and (scope["method"] not in ("GET", "HEAD", "OPTIONS")
                                        or scope["path"].startswith(self.protected)):
            headers = dict(scope.get("headers") or [])
            site = headers.get(b"sec-fetch-site", b"").decode("latin-1").lower()
            origin = headers.get(b"origin", b"").decode("latin-1").lower().rstrip("/")
            host = headers.get(b"host", b"").decode("latin-1").lower()
            foreign = site in ("same-site", "cross-site") or (
                not site and origin not in ("", "null") and origin.split("://", 1)[-1] != host)
            if foreign:
                return await refuse(send, 403, "This request came from another site and was refused.")
        return await self.app(scope, receive, send)


def _megabytes_from(variable: str, default: float):
    """A dataclass default read from ``variable`` (in MB) when the limits are made, not when this is imported."""
    return field(default_factory=lambda: int(float(os.environ.get(variable, default)) * MB))


@dataclass(frozen=True)
class UploadLimits:
    """What one upload request, one client and the upload folder may hold (bytes)."""

    per_request: int = _megabytes_from("CARDIOSYNTH_UPLOAD_REQUEST_MB", 60)
    per_client_hour: int = _megabytes_from("CARDIOSYNTH_UPLOAD_CLIENT_MB_PER_HOUR", 300)
    folder: int = _megabytes_from("CARDIOSYNTH_UPLOAD_FOLDER_MB", 2000)


class UploadQuota:
    """ASGI middleware bounding every request body, whatever the route: past the per-request cap the answer is
    413 (a body without a declared length is cut off there). A file upload (a multipart body, which Gradio
    stores: its upload route, its component server, ...) must declare its length and is refused before a byte is
    read past the client's hourly quota (429) or when the upload folder would grow past its bound (507); what
    was let in is charged to the client."""

    def __init__(self, app, limits: UploadLimits, folder: str | Path | None = None, clock=time.monotonic):
        self.app, self.limits, self.clock = app, limits, clock
        self.folder = Path(folder) if folder else None
        self._charged: dict[str, deque] = {}
        self._folder_size = (-1e9, 0)  # (when measured, bytes)
        self._lock = threading.Lock()

    def _folder_bytes(self) -> int:
        """The upload folder's size, measured at most every 5 s (plus what was let in since)."""
        if self.folder is None:
            from gradio.utils import get_upload_folder

            self.folder = Path(get_upload_folder())
        when, size = self._folder_size
        if self.clock() - when > 5.0:
            size = sum(f.stat().st_size for f in self.folder.rglob("*") if f.is_file()) if self.folder.is_dir() else 0
            self._folder_size = (self.clock(), size)
        return size

    def _too_large(self) -> tuple[int, str]:
        return 413, (f"One request may hold at most {self.limits.per_request // MB} MB in all; send fewer or "
                     "smaller files.")

    def _admit(self, client: str, length: int) -> tuple[int, str] | None:
        if length > self.limits.per_request:
            return self._too_large()
        with self._lock:
            charged = self._charged.setdefault(client, deque())
            while charged and self.clock() - charged[0][0] > 3600:
                charged.popleft()
            if sum(n for _, n in charged) + length > self.limits.per_client_hour:
                return 429, (f"This computer has uploaded more than {self.limits.per_client_hour // MB} MB in the "
                             "last hour; please wait and try again.")
            if self._folder_bytes() + length > self.limits.folder:
                return 507, "The server's upload space is full; please try again later."
            charged.append((self.clock(), length))
            when, size = self._folder_size
            self._folder_size = (when, size + length)
        return None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        upload = headers.get(b"content-type", b"").lower().startswith(b"multipart/")
        if declared is None or not declared.isdigit():
            if upload:
                return await refuse(send, 411, "Uploads must declare their size.")
            return await self.app(scope, _capped(receive, self.limits.per_request), send)
        length = int(declared)
        client = str((scope.get("client") or ("?",))[0])
        # an upload may walk the upload folder (every 5 s at most): in a worker thread, not on the event loop
        refusal = (await run_in_threadpool(self._admit, client, length) if upload
                   else self._too_large() if length > self.limits.per_request else None)
        if refusal:
            if length <= 4 * self.limits.per_request:  # read (and drop) a modest body so that the client
                await _drain(receive)                    # hears the reason, not a broken pipe
            return await refuse(send, *refusal)
        return await self.app(scope, receive, send)


def _capped(receive, limit: int):
    """``receive`` for a body of undeclared length: past ``limit`` bytes the app is told the client left."""
    seen = 0

    async def capped():
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                return {"type": "http.disconnect"}
        return message
    return capped


async def _drain(receive) -> None:
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body"):
            return


def trust_forwarded_headers(proxies: str) -> None:
    """Believe X-Forwarded-For / -Proto only from ``proxies`` (comma-separated addresses; "" = from nobody).
    uvicorn reads this variable when the server starts, so call it before ``launch``."""
    os.environ["FORWARDED_ALLOW_IPS"] = proxies.strip()


def allowed_hosts(host: str, extra: str = "") -> frozenset[str] | None:
    """Host names the server answers to: the loopback names when it listens on loopback (plus ``extra``, with
    or without ports); None (any) when it listens on every interface and the operator named none."""
    named = {host_name(name) for name in extra.split(",") if name.strip()}
    if "*" in named:
        return None
    if host_name(host) in ("0.0.0.0", "::", "") and not named:
        log.warning("Listening on every interface without %s: any Host header is accepted.", ALLOWED_HOSTS_ENV)
        return None
    return frozenset({*LOOPBACK_NAMES, host_name(host), *named})


def prepare_gradio_environment() -> None:
    """Run before gradio is first imported (it reads both variables once, at import).

    - No analytics and no version check (the app makes no network calls).
    - Gradio copies every file it serves (answer CSVs with the truth among them) into its temp folder, by
      default a world-readable one under /tmp; point it at a private folder unless the operator chose one."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    if "GRADIO_TEMP_DIR" not in os.environ:
        os.environ["GRADIO_TEMP_DIR"] = str(private_folder(cache_dir() / "gradio"))


def secure_launch_kwargs(host: str = "127.0.0.1", routes=(), trusted_proxies: str | None = None,
                         hosts: str | None = None, uploads: UploadLimits | None = None,
                         protected: tuple[str, ...] = ()) -> dict:
    """The ``Blocks.launch`` arguments above, for every way the app is served (app.py, tests, benchmarks).
    ``routes`` (FastAPI routes of our own) come before Gradio's, and GET requests for paths under ``protected``
    are held to the same-origin rule as every change; ``trusted_proxies`` and ``hosts`` default to
    their environment variables. Sets uvicorn's forwarded-header trust (a process-wide variable) as a side
    effect, so call it right before ``launch``."""
    trust_forwarded_headers(os.environ.get(TRUSTED_PROXIES_ENV, "") if trusted_proxies is None else trusted_proxies)
    allowed = allowed_hosts(host, os.environ.get(ALLOWED_HOSTS_ENV, "") if hosts is None else hosts)
    middleware = [Middleware(SecurityHeaders), Middleware(HostCheck, allowed=allowed),
                  Middleware(SameOriginRequests, protected=protected),
                  Middleware(UploadQuota, limits=uploads or UploadLimits())]
    return {"run_history": False, "enable_monitoring": False, "max_file_size": MAX_UPLOAD,
            "app_kwargs": {"middleware": middleware, "routes": list(routes)}}
