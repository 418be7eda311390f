"""The reader-study database: SQLite in WAL mode, one connection per thread, every write its own transaction.

Why these choices: WAL lets readers of the results run while answers are written; ``BEGIN IMMEDIATE`` takes
the write lock up front, so two writers wait for each other (``busy_timeout``) instead of failing;
``synchronous=FULL`` makes an answer durable once ``insert_answer`` returns, so a crash or restart loses
nothing that a reader was told was saved. ``PRIMARY KEY (reader_id, case_id)`` makes a second answer to the
same case impossible, whatever the web layer does.

The truth and the provenance of each case live here and leave only through the admin functions.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

SCHEMA_VERSION = 2  # 2: readers.removed_at (an administrator took the reader out)
SCHEMA = """
CREATE TABLE IF NOT EXISTS studies (
    code TEXT PRIMARY KEY,
    title TEXT NOT NULL DEFAULT '',
    settings TEXT NOT NULL,
    admin_token_hash TEXT NOT NULL,
    folder TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS cases (
    case_id TEXT PRIMARY KEY,
    study_code TEXT NOT NULL REFERENCES studies(code),
    file TEXT NOT NULL,
    truth TEXT NOT NULL CHECK (truth IN ('real', 'synthetic')),
    provenance TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS cases_by_study ON cases(study_code);
CREATE TABLE IF NOT EXISTS readers (
    reader_id TEXT PRIMARY KEY,
    study_code TEXT NOT NULL REFERENCES studies(code),
    display_name TEXT NOT NULL,
    name_key TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    case_order TEXT NOT NULL,
    joined_at REAL NOT NULL,
    removed_at REAL,
    UNIQUE (study_code, name_key)
);
CREATE TABLE IF NOT EXISTS views (
    reader_id TEXT NOT NULL REFERENCES readers(reader_id),
    case_id TEXT NOT NULL REFERENCES cases(case_id),
    shown_at REAL NOT NULL,
    PRIMARY KEY (reader_id, case_id)
);
CREATE TABLE IF NOT EXISTS answers (
    reader_id TEXT NOT NULL REFERENCES readers(reader_id),
    case_id TEXT NOT NULL REFERENCES cases(case_id),
    position INTEGER NOT NULL,
    answer TEXT NOT NULL CHECK (answer IN ('real', 'synthetic')),
    confidence INTEGER NOT NULL CHECK (confidence BETWEEN 1 AND 5),
    comment TEXT NOT NULL DEFAULT '',
    shown_at REAL,
    answered_at REAL NOT NULL,
    seconds REAL,
    PRIMARY KEY (reader_id, case_id)
);
"""


class Store:
    """One database file; safe to share between threads (each gets its own connection)."""

    def __init__(self, path: str | Path, busy_timeout_s: float = 30.0):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()  # this process's writers queue here, not in SQLite's sleep-and-retry
        self._closed = False
        # readable by this user only: it holds the truth of every case (SQLite gives its -wal and -shm files
        # the database file's permissions)
        os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        self.path.chmod(0o600)
        connection = self._connection()
        connection.execute("PRAGMA journal_mode=WAL")
        with self.transaction() as db:
            for statement in SCHEMA.split(";"):  # not executescript(): it would commit outside the transaction
                if statement.strip():
                    db.execute(statement)
            reader_columns = {row[1] for row in db.execute("PRAGMA table_info(readers)")}
            if "removed_at" not in reader_columns:  # a database of schema 1
                db.execute("ALTER TABLE readers ADD COLUMN removed_at REAL")
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    # connections and transactions -------------------------------------------------------------------------
    def _connection(self) -> sqlite3.Connection:
        if self._closed:
            raise RuntimeError("The review store is closed")
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None,
                                         check_same_thread=False)
            connection.row_factory = sqlite3.Row
            connection.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_s * 1000)}")
            connection.execute("PRAGMA foreign_keys=ON")
            connection.execute("PRAGMA synchronous=FULL")
            self._local.connection = connection
            with self._lock:
                self._connections.append(connection)
        return connection

    @contextmanager
    def transaction(self):
        """One write transaction: all of it is committed, or none of it."""
        db = self._connection()
        with self._write_lock:
            db.execute("BEGIN IMMEDIATE")  # other processes: wait up to busy_timeout for their write to finish
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _rows(self, sql: str, params=()) -> list[dict]:
        return [dict(row) for row in self._connection().execute(sql, params).fetchall()]

    def close(self) -> None:
        """Close every connection (as a server shutdown would); later calls raise."""
        with self._lock:
            self._closed = True
            for connection in self._connections:
                connection.close()
            self._connections.clear()
        self._local = threading.local()

    # studies and cases ----------------------------------------------------------------------------------
    def add_study(self, code: str, title: str, settings: dict, admin_token_hash: str, folder: str,
                  cases: list[dict]) -> None:
        """The study and all its cases in one transaction (raises sqlite3.IntegrityError if the code exists)."""
        with self.transaction() as db:
            db.execute("INSERT INTO studies VALUES (?, ?, ?, ?, ?, ?)",
                       (code, title, json.dumps(settings), admin_token_hash, str(folder), time.time()))
            db.executemany("INSERT INTO cases VALUES (?, ?, ?, ?, ?)",
                           [(c["case_id"], code, c["file"], c["truth"], json.dumps(c.get("provenance", {})))
                            for c in cases])

    def study(self, code: str) -> dict | None:
        rows = self._rows("SELECT * FROM studies WHERE code = ?", (code,))
        if not rows:
            return None
        return {**rows[0], "settings": json.loads(rows[0]["settings"])}

    def cases(self, code: str) -> list[dict]:
        """Admin view: every case with its truth and provenance."""
        rows = self._rows("SELECT * FROM cases WHERE study_code = ? ORDER BY case_id", (code,))
        return [{**row, "provenance": json.loads(row["provenance"])} for row in rows]

    def real_sources_before(self, code: str) -> set[str]:
        """The source cines of the real cases of every study created before ``code`` (blinding across studies)."""
        rows = self._rows("SELECT c.provenance FROM cases c JOIN studies s ON s.code = c.study_code "
                          "WHERE c.truth = 'real' AND s.created_at < (SELECT created_at FROM studies WHERE code = ?)",
                          (code,))
        return {json.loads(row["provenance"]).get("source") for row in rows} - {None}

    def case_ids(self, code: str) -> list[str]:
        return [row["case_id"] for row in self._rows("SELECT case_id FROM cases WHERE study_code = ? "
                                                     "ORDER BY case_id", (code,))]

    def case_file(self, case_id: str) -> str:
        return self._rows("SELECT file FROM cases WHERE case_id = ?", (case_id,))[0]["file"]

    # readers -----------------------------------------------------------------------------------------------
    def add_reader(self, code: str, reader_id: str, display_name: str, name_key: str, token_hash: str,
                   order: list[str]) -> None:
        """Raises sqlite3.IntegrityError when the name is already taken in this study."""
        with self.transaction() as db:
            db.execute("INSERT INTO readers (reader_id, study_code, display_name, name_key, token_hash, case_order, "
                       "joined_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (reader_id, code, display_name, name_key, token_hash, json.dumps(order), time.time()))

    def _reader(self, where: str, params) -> dict | None:
        rows = self._rows(f"SELECT * FROM readers WHERE {where}", params)
        return {**rows[0], "case_order": json.loads(rows[0]["case_order"])} if rows else None

    def reader_by_token(self, token_hash: str) -> dict | None:
        """The reader holding this resume code, unless an administrator removed them."""
        return self._reader("token_hash = ? AND removed_at IS NULL", (token_hash,))

    def reader_by_name(self, code: str, name_key: str) -> dict | None:
        """Removed readers too: a removed name is not free to be joined again."""
        return self._reader("study_code = ? AND name_key = ?", (code, name_key))

    def readers(self, code: str) -> list[dict]:
        return self._rows("SELECT reader_id, display_name, joined_at FROM readers WHERE study_code = ? "
                          "AND removed_at IS NULL ORDER BY joined_at", (code,))

    def remove_reader(self, reader_id: str) -> int:
        """Mark the reader removed (kept for the audit trail); returns how many answers leave the results."""
        with self.transaction() as db:
            db.execute("UPDATE readers SET removed_at = ? WHERE reader_id = ? AND removed_at IS NULL",
                       (time.time(), reader_id))
            return db.execute("SELECT COUNT(*) FROM answers WHERE reader_id = ?", (reader_id,)).fetchone()[0]

    # views and answers -------------------------------------------------------------------------------------
    def mark_shown(self, reader_id: str, case_id: str) -> float:
        """When the reader first saw this case (kept from the first showing, so a reload does not reset it)."""
        shown = self._connection().execute("SELECT shown_at FROM views WHERE reader_id = ? AND case_id = ?",
                                           (reader_id, case_id)).fetchone()
        if shown is not None:
            return shown[0]
        with self.transaction() as db:
            db.execute("INSERT OR IGNORE INTO views VALUES (?, ?, ?)", (reader_id, case_id, time.time()))
            return db.execute("SELECT shown_at FROM views WHERE reader_id = ? AND case_id = ?",
                              (reader_id, case_id)).fetchone()[0]

    def answered(self, reader_id: str) -> set[str]:
        return {row["case_id"] for row in self._rows("SELECT case_id FROM answers WHERE reader_id = ?", (reader_id,))}

    def answer(self, reader_id: str, case_id: str) -> dict | None:
        rows = self._rows("SELECT * FROM answers WHERE reader_id = ? AND case_id = ?", (reader_id, case_id))
        return rows[0] if rows else None

    def insert_answer(self, reader_id: str, case_id: str, position: int, answer: str, confidence: int,
                      comment: str) -> tuple[dict, bool]:
        """Store one answer, committed before returning; (stored row, True) or, if this reader had already
        answered this case, (the earlier row, False) with nothing changed."""
        with self.transaction() as db:
            now = time.time()
            shown = db.execute("SELECT shown_at FROM views WHERE reader_id = ? AND case_id = ?",
                               (reader_id, case_id)).fetchone()
            shown_at = shown[0] if shown else None
            inserted = db.execute(
                "INSERT INTO answers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (reader_id, case_id) DO NOTHING",
                (reader_id, case_id, position, answer, confidence, comment, shown_at, now,
                 None if shown_at is None else now - shown_at)).rowcount == 1
            row = db.execute("SELECT * FROM answers WHERE reader_id = ? AND case_id = ?",
                             (reader_id, case_id)).fetchone()
        return dict(row), inserted

    def answers_table(self, code: str) -> pd.DataFrame:
        """Admin view: every answer of a study with the reader's name and the case's truth."""
        rows = self._rows(
            "SELECT r.reader_id, r.display_name AS reader, a.case_id, c.truth, a.position, a.answer, a.confidence, "
            "a.comment, a.shown_at, a.answered_at, a.seconds, c.file FROM answers a "
            "JOIN readers r ON r.reader_id = a.reader_id JOIN cases c ON c.case_id = a.case_id "
            "WHERE r.study_code = ? AND r.removed_at IS NULL ORDER BY r.joined_at, a.position", (code,))
        columns = ["reader_id", "reader", "case_id", "truth", "position", "answer", "confidence", "comment",
                   "shown_at", "answered_at", "seconds", "file"]
        return pd.DataFrame(rows, columns=columns)

    def integrity(self, code: str | None = None) -> dict:
        """Counts for checks: answers stored, duplicate (reader, case) pairs (always 0 by the key), readers."""
        where, params = ("WHERE r.study_code = ?", (code,)) if code else ("", ())
        row = self._connection().execute(
            "SELECT COUNT(*), COUNT(DISTINCT a.reader_id || '/' || a.case_id) FROM answers a "
            f"JOIN readers r ON r.reader_id = a.reader_id {where}", params).fetchone()
        return {"answers": row[0], "duplicates": row[0] - row[1],
                "quick_check": self._connection().execute("PRAGMA quick_check").fetchone()[0]}
