"""The reader's side of a study, without any web framework: join, see one case at a time, answer, resume.

Rules (the app shows them as they are):
- A reader joins with the study code and a display name and gets a personal resume code (the reader token).
  Every answer needs that token. Each reader gets their own random order of all the study's cases.
- The same name in the same study is the same reader: coming back with the name AND the resume code resumes
  where they stopped; the name without the code is refused, so nobody can answer in someone else's name or
  see how far they got.
- One case at a time: only the case on the reader's screen (the first unanswered one in their order) can be
  answered. An answer is final: sending exactly the same answer again (a double click, a replayed request)
  is accepted and changes nothing; a different answer to an answered case is refused.
- Readers never get the truth, their score, or anything about other readers.
"""

from __future__ import annotations

import hmac
import random
import re
import secrets
import sqlite3
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from cardiosynth.review.access import display_code, new_token, normalise_code, token_hash
from cardiosynth.review.errors import ReviewError
from cardiosynth.review.store import Store

ANSWERS = ("real", "synthetic")
MAX_NAME, MAX_COMMENT = 60, 1000


@dataclass(frozen=True)
class ReaderSession:
    """What a reader may know about their own session."""

    token: str  # the resume code: keep it to come back later
    name: str
    study_code: str
    total: int
    answered: int

    @property
    def done(self) -> bool:
        return self.answered >= self.total


@dataclass(frozen=True)
class CaseView:
    """The case on the reader's screen: an opaque id and the video file, nothing else."""

    case_id: str
    path: Path
    position: int  # 1-based: "case 3 of 40"
    total: int


@dataclass(frozen=True)
class AnswerReceipt:
    case_id: str
    answered: int
    total: int
    replay: bool  # True when this exact answer had already been stored

    @property
    def done(self) -> bool:
        return self.answered >= self.total


# Letters of other scripts drawn like Latin ones: "Аnna" with a Cyrillic А must be the same reader as "Anna"
# (else a second reader could appear under a name the administrator reads as the first one's).
_LOOK_ALIKES = str.maketrans({
    **dict(zip("АВЕЗКМНОРСТУХІЈЅԁаеорсухіјѕԛԝ", "ABE3KMHOPCTYXIJSdaeopcyxijsqw")),  # Cyrillic
    **dict(zip("ΑΒΕΖΗΙΚΜΝΟΡΤΥΧοιν", "ABEZHIKMNOPTYXoiv")),  # Greek
})


def name_key(text: str) -> str:
    """What two names must share to be the same reader: compatibility forms folded (full-width letters,
    ligatures), look-alike letters mapped to Latin, case ignored."""
    return unicodedata.normalize("NFKC", text).translate(_LOOK_ALIKES).casefold()


def clean_name(name) -> tuple[str, str]:
    """(display name, comparison key): spaces collapsed; the key ignores case and look-alike letters."""
    text = re.sub(r"\s+", " ", unicodedata.normalize("NFC", str(name or ""))).strip()
    if not text:
        raise ReviewError("Please enter your name; it labels your answers in the study's results.")
    if len(text) > MAX_NAME:
        raise ReviewError(f"Please use a name of at most {MAX_NAME} characters.")
    if any(unicodedata.category(ch).startswith("C") for ch in text):
        raise ReviewError("The name contains characters that cannot be shown; please type it again.")
    return text, name_key(text)


def _study(store: Store, code) -> dict:
    code = normalise_code(code)
    study = store.study(code)
    if study is None:
        raise ReviewError(f"No study has the code {display_code(code)}; check the code you were given.")
    return study


def _reader(store: Store, token) -> dict:
    reader = store.reader_by_token(token_hash(token)) if str(token or "").strip() else None
    if reader is None:
        raise ReviewError("Your session was not recognised; join again with the study code, your name and your "
                          "resume code.")
    return reader


def _session(store: Store, reader: dict, token: str) -> ReaderSession:
    return ReaderSession(token, reader["display_name"], reader["study_code"], len(reader["case_order"]),
                         len(store.answered(reader["reader_id"])))


def join(store: Store, code, name, resume_code=None) -> ReaderSession:
    """Join a study (new name) or resume it (known name with its resume code)."""
    study = _study(store, code)
    display, key = clean_name(name)
    # The same words whether the name is taken or the resume code is wrong: nothing here says who is in a study.
    taken = ReviewError("This name cannot be used to join this study. If you joined before, enter your resume "
                        "code as well; otherwise choose another name.")
    existing = store.reader_by_name(study["code"], key)
    if existing is not None:
        if _holds(existing, resume_code):
            return _session(store, existing, str(resume_code).strip())
        raise taken
    order = store.case_ids(study["code"])
    if not order:
        raise ReviewError("This study has no cases yet; ask its administrator.")
    random.SystemRandom().shuffle(order)
    token = new_token()
    try:
        store.add_reader(study["code"], secrets.token_hex(8), display, key, token_hash(token), order)
    except sqlite3.IntegrityError:  # the same name joined a moment ago
        raise taken from None
    return ReaderSession(token, display, study["code"], len(order), 0)


def _holds(reader: dict, resume_code) -> bool:
    """Whether ``resume_code`` is this reader's, and an administrator has not taken them out."""
    return (reader.get("removed_at") is None and bool(str(resume_code or "").strip())
            and hmac.compare_digest(token_hash(resume_code), reader["token_hash"]))


def is_returning(store: Store, code, name, resume_code) -> bool:
    """Whether ``name`` is a reader of study ``code`` (not removed) and ``resume_code`` is theirs."""
    if not str(resume_code or "").strip():
        return False
    try:
        study = store.study(normalise_code(code))
        existing = study and store.reader_by_name(study["code"], clean_name(name)[1])
    except ReviewError:
        return False
    return bool(existing) and _holds(existing, resume_code)


def is_reader(store: Store, token) -> bool:
    """Whether ``token`` is the resume code of a reader taking part (not removed)."""
    return bool(str(token or "").strip()) and store.reader_by_token(token_hash(token)) is not None


def case_file(store: Store, token, case_id) -> Path:
    """The file of one case of the reader's own list (what the case route serves them, and no one else)."""
    reader = _reader(store, token)
    if str(case_id or "") not in reader["case_order"]:
        raise ReviewError("This case is not in your list; reload the page to get your current case.")
    return Path(store.study(reader["study_code"])["folder"]) / store.case_file(str(case_id))


def remove_reader(store: Store, code: str, name) -> int:
    """Take the reader called ``name`` (as the results list them) out of study ``code``; returns how many of
    their answers left the results."""
    reader = store.reader_by_name(code, clean_name(name)[1])
    if reader is None or reader.get("removed_at") is not None:
        raise ReviewError("No reader of this study has that name; copy it from the results.")
    return store.remove_reader(reader["reader_id"])


def resume(store: Store, token) -> ReaderSession:
    """Where a reader stands, from their resume code alone (e.g. kept by the browser)."""
    return _session(store, _reader(store, token), str(token).strip())


def current_case(store: Store, token) -> CaseView | None:
    """The case to show now (its first showing starts the clock), or None when the reader has finished."""
    reader = _reader(store, token)
    answered = store.answered(reader["reader_id"])
    pending = [case for case in reader["case_order"] if case not in answered]
    if not pending:
        return None
    study = store.study(reader["study_code"])
    store.mark_shown(reader["reader_id"], pending[0])
    return CaseView(pending[0], Path(study["folder"]) / store.case_file(pending[0]), len(answered) + 1,
                    len(reader["case_order"]))


def _answer(value) -> str:
    text = str(value or "").strip().lower()
    if text not in ANSWERS:
        raise ReviewError("Choose 'real' or 'synthetic' before going on.")
    return text


def _confidence(value) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if isinstance(value, bool) or number not in {1, 2, 3, 4, 5}:
        raise ReviewError("Choose a confidence from 1 (a guess) to 5 (certain) before going on.")
    return int(number)


def _comment(value) -> str:
    text = "".join(ch for ch in str(value or "") if ch in "\n\t" or not unicodedata.category(ch).startswith("C"))
    if len(text.strip()) > MAX_COMMENT:
        raise ReviewError(f"Please keep the comment under {MAX_COMMENT} characters.")
    return text.strip()


def submit_answer(store: Store, token, case_id, answer, confidence, comment="") -> AnswerReceipt:
    """Record the reader's answer to the case on their screen, committed before this returns."""
    reader = _reader(store, token)
    order = reader["case_order"]
    case_id = str(case_id or "")
    if case_id not in order:
        raise ReviewError("This case is not in your list; reload the page to get your current case.")
    answer, confidence, comment = _answer(answer), _confidence(confidence), _comment(comment)

    def receipt(replay: bool) -> AnswerReceipt:
        return AnswerReceipt(case_id, len(store.answered(reader["reader_id"])), len(order), replay)

    def same_as(row: dict) -> bool:
        return (row["answer"], row["confidence"], row["comment"]) == (answer, confidence, comment)

    earlier = store.answer(reader["reader_id"], case_id)
    if earlier is None:
        answered = store.answered(reader["reader_id"])
        if case_id in answered:  # a simultaneous click (double-click) stored this case between the two reads
            earlier = store.answer(reader["reader_id"], case_id)
        else:
            current = next(case for case in order if case not in answered)
            if case_id != current:
                raise ReviewError("Please answer the case on your screen first; this one comes later in your list.")
            earlier, inserted = store.insert_answer(reader["reader_id"], case_id, order.index(case_id) + 1, answer,
                                                    confidence, comment)
            if inserted:
                return receipt(False)
    if same_as(earlier):
        return receipt(True)
    raise ReviewError("You have already answered this case; answers cannot be changed.")
