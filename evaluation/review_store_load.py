"""Load and durability test of the reader flow on one database (no web server, no rendering).

    python -m evaluation.review_store_load [--readers 30] [--cases 50] [--no-crash] [--db FILE]   # JSON out

``run_loadtest``: N simulated readers (threads) answer M cases each through the session layer, concurrently;
some answers are sent twice (double clicks) and every reader also tries a case that is not theirs and a wrong
resume code. Half-way the store is closed and reopened (a server restart) and every reader resumes with their
resume code. Reported: answers expected / stored / duplicated / lost, answers acknowledged but not stored,
refusals, and the latency of each request.

``crash_check``: a separate process answers as fast as it can and is killed with SIGKILL; every answer it was
told had been saved must be in the database afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from cardiosynth.paths import REPO_ROOT
from cardiosynth.review import session
from cardiosynth.review.access import new_study_code, new_token, token_hash
from cardiosynth.review.errors import ReviewError
from cardiosynth.review.store import Store


def fake_study(store: Store, n_cases: int) -> str:
    """A study whose cases are database rows only (the session layer never opens the files)."""
    code = new_study_code()
    cases = [{"case_id": secrets.token_hex(16), "file": "none.mp4", "truth": ("real", "synthetic")[k % 2]}
             for k in range(n_cases)]
    store.add_study(code, "load test", {"loadtest": True}, token_hash(new_token()), "/nonexistent", cases)
    return code


def _reader_phase(store: Store, token: str, n_answers: int, rng: random.Random, latencies: dict, acked: dict,
                  refusals: list, errors: list, probe_abuse: bool) -> None:
    try:
        if probe_abuse:
            for attempt in (lambda: session.submit_answer(store, token, secrets.token_hex(16), "real", 3),
                            lambda: session.submit_answer(store, "not-a-token", secrets.token_hex(16), "real", 3)):
                try:
                    attempt()
                    errors.append("an abusive request was accepted")
                except ReviewError:
                    refusals.append(1)
        for _ in range(n_answers):
            start = time.perf_counter()
            case = session.current_case(store, token)
            latencies["next"].append(time.perf_counter() - start)
            if case is None:
                return
            answer, confidence = rng.choice(session.ANSWERS), rng.randint(1, 5)
            for _click in range(2 if rng.random() < 0.1 else 1):  # sometimes a double click
                start = time.perf_counter()
                receipt = session.submit_answer(store, token, case.case_id, answer, confidence)
                latencies["answer"].append(time.perf_counter() - start)
                if not receipt.replay:
                    acked[(token, case.case_id)] = answer
    except Exception as error:  # noqa: BLE001 - any failure is a finding of the load test
        errors.append(f"{type(error).__name__}: {error}")


def _run_phase(store: Store, tokens: list[str], n_answers: int, seed: int, latencies, acked, refusals, errors,
               probe_abuse: bool) -> None:
    threads = [threading.Thread(target=_reader_phase,
                                args=(store, token, n_answers, random.Random(seed * 1000 + k), latencies, acked,
                                      refusals, errors, probe_abuse))
               for k, token in enumerate(tokens)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _ms(values: list[float]) -> dict:
    if not values:
        return {}
    p50, p95 = np.percentile(values, [50, 95]) * 1000
    return {"n": len(values), "p50_ms": round(float(p50), 2), "p95_ms": round(float(p95), 2),
            "max_ms": round(max(values) * 1000, 2)}


def run_loadtest(db: str | Path, n_readers: int = 30, n_cases: int = 50, seed: int = 0) -> dict:
    store = Store(db)
    code = fake_study(store, n_cases)
    tokens = [session.join(store, code, f"reader {k + 1}").token for k in range(n_readers)]
    latencies, acked, refusals, errors = {"next": [], "answer": []}, {}, [], []
    start = time.perf_counter()
    _run_phase(store, tokens, n_cases // 2, seed, latencies, acked, refusals, errors, probe_abuse=True)
    stored_before = store.integrity(code)["answers"]
    store.close()  # the restart: every connection closed, a new store on the same file
    store = Store(db)
    resumed = [session.resume(store, token).answered for token in tokens]
    _run_phase(store, tokens, n_cases, seed + 1, latencies, acked, refusals, errors, probe_abuse=False)
    elapsed = time.perf_counter() - start
    table = store.answers_table(code)
    stored = {(row.reader_id, row.case_id): row.answer for row in table.itertuples()}
    reader_of = {store.reader_by_token(token_hash(t))["reader_id"]: t for t in tokens}
    stored_by_token = {(reader_of[r], c): a for (r, c), a in stored.items()}
    integrity = store.integrity(code)
    store.close()
    expected = n_readers * n_cases
    return {
        "readers": n_readers, "cases_per_reader": n_cases, "answers_expected": expected,
        "answers_stored": integrity["answers"], "duplicates": integrity["duplicates"],
        "lost": expected - integrity["answers"],
        "acknowledged_not_stored": sum(stored_by_token.get(key) != value for key, value in acked.items()),
        "stored_before_restart": stored_before, "resumed_at": sorted(set(resumed)),
        "abusive_requests_refused": len(refusals), "errors": errors[:10],
        "latency": {"next_case": _ms(latencies["next"]), "answer": _ms(latencies["answer"])},
        "seconds": round(elapsed, 2), "sqlite_quick_check": integrity["quick_check"],
    }


def _child(db: str, code: str) -> None:
    """Answer as one reader, printing each case id once its answer is committed (killed by the parent)."""
    store = Store(db)
    token = session.join(store, code, f"crash {os.getpid()}").token
    print("token", token, flush=True)
    while (case := session.current_case(store, token)) is not None:
        session.submit_answer(store, token, case.case_id, "synthetic", 4)
        print("saved", case.case_id, flush=True)


def crash_check(db: str | Path, n_cases: int = 400, kill_after: int = 40) -> dict:
    """Kill a process that is answering with SIGKILL; check that every answer it had confirmed survived."""
    store = Store(db)
    code = fake_study(store, n_cases)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT),
                                                                       os.environ.get("PYTHONPATH")]))}
    child = subprocess.Popen([sys.executable, "-m", "evaluation.review_store_load", "child", str(db), code],
                             stdout=subprocess.PIPE, text=True, env=env)
    token, saved = None, []
    for words in map(str.split, child.stdout):
        if words[:1] == ["token"]:
            token = words[1]
        elif words[:1] == ["saved"]:
            saved.append(words[1])
        if len(saved) >= kill_after:
            child.send_signal(signal.SIGKILL)
            break
    # lines printed before the kill landed were confirmed saves too
    saved += [words[1] for words in map(str.split, child.stdout) if words[:1] == ["saved"]]
    child.wait()
    store.close()
    store = Store(db)  # reopened after the crash, as the restarted server would
    reader = store.reader_by_token(token_hash(token)) if token else None
    stored = store.answered(reader["reader_id"]) if reader else set()
    result = {"acknowledged": len(saved), "acknowledged_and_stored": len(set(saved) & stored),
              "stored": len(stored), "lost": len(set(saved) - stored),
              "sqlite_quick_check": store.integrity(code)["quick_check"], "killed_by": "SIGKILL"}
    store.close()
    return result


def main(argv: list[str] | None = None) -> int:
    """Both checks on scratch databases (or ``--db``), one JSON report; exit 1 if an answer was lost or doubled."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["child"]:  # the crash check's child process: child DB CODE
        _child(argv[1], argv[2])
        return 0
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--readers", type=int, default=30)
    parser.add_argument("--cases", type=int, default=50)
    parser.add_argument("--no-crash", action="store_true", help="skip the SIGKILL crash check")
    parser.add_argument("--db", help="database file for the load test (default: a scratch file)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="cardiosynth-loadtest-") as scratch:
        report = run_loadtest(args.db or Path(scratch) / "load.sqlite", args.readers, args.cases)
        if not args.no_crash:
            report["crash"] = crash_check(Path(scratch) / "crash.sqlite")
    print(json.dumps(report, indent=2))
    return 0 if not report["errors"] and report["lost"] == 0 and report["duplicates"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
