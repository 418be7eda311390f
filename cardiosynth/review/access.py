"""Study codes, reader and admin tokens, and the admin check.

A study code is short and typed by hand (8 letters/digits without look-alikes, shown as ``ABCD-EFGH``); it
lets a reader join but grants nothing else. Tokens are long random secrets; the database keeps only their
SHA-256 (they are random, so a slow password hash adds nothing), so a copy of the database cannot be used to
answer as a reader or to read the results.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time

from cardiosynth.review.errors import ReviewError

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no I, O, 0, 1
CODE_LENGTH = 8


def new_study_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalise_code(code) -> str:
    """What the reader typed -> the stored code ("abcd efgh", "ABCD-EFGH" -> "ABCDEFGH")."""
    text = "".join(ch for ch in str(code or "").upper() if ch not in " -_\t")
    if not text:
        raise ReviewError("Please enter the study code you were given.")
    return text


def display_code(code: str) -> str:
    return f"{code[:4]}-{code[4:]}" if len(code) == CODE_LENGTH else code


def new_token() -> str:
    return secrets.token_urlsafe(18)


def token_hash(token) -> str:
    return hashlib.sha256(str(token or "").strip().encode()).hexdigest()


def check_admin(study: dict | None, code: str, token) -> None:
    """Refuse unless ``token`` is the admin token of ``study`` (the row of ``code``, or None)."""
    if study is None:
        raise ReviewError(f"No study has the code {display_code(code)}; check the code.")
    if not str(token or "").strip():
        raise ReviewError("The results are for the study's administrator: enter the admin token.")
    if not hmac.compare_digest(token_hash(token), study["admin_token_hash"]):
        raise ReviewError("This admin token is not valid for this study.")


class AdminSessions:
    """Signed-in administrators of the web page: random session ids (kept only as hashes) that expire.

    The web page signs in once with the server's administrator password and then holds the session id in an
    HttpOnly cookie (``cardiosynth.app.review_routes``), so neither the password nor anything it unlocks has
    to travel through Gradio's event queue. A study created by a session leaves its code and admin token here
    as a *notice* that only the same session can collect, once."""

    def __init__(self, lifetime_s: float = 8 * 3600.0, clock=time.monotonic):
        self.lifetime_s, self.clock = float(lifetime_s), clock
        self._expiry: dict[str, float] = {}
        self._notices: dict[str, object] = {}
        self._lock = threading.Lock()

    def open(self) -> str:
        session_id = new_token()
        with self._lock:
            now = self.clock()
            for key in [k for k, expiry in self._expiry.items() if expiry < now]:  # forget expired sessions
                self._expiry.pop(key, None)
                self._notices.pop(key, None)
            self._expiry[token_hash(session_id)] = now + self.lifetime_s
        return session_id

    def valid(self, session_id) -> bool:
        if not str(session_id or "").strip():
            return False
        with self._lock:
            return self._expiry.get(token_hash(session_id), -1.0) >= self.clock()

    def close(self, session_id) -> None:
        with self._lock:
            self._expiry.pop(token_hash(session_id), None)
            self._notices.pop(token_hash(session_id), None)

    def leave_notice(self, session_id, notice) -> None:
        with self._lock:
            self._notices[token_hash(session_id)] = notice

    def take_notice(self, session_id):
        with self._lock:
            return self._notices.pop(token_hash(session_id), None)
