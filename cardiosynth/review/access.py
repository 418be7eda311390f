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
