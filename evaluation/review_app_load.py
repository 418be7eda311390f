"""``python -m evaluation.review_app_load``: many readers answering at once through the running app; JSON out.

Creates a real study (real val cines + group-mean synthetic ones, small videos) in a temporary database,
starts ``python app.py`` on it, and lets N simulated readers (one browser each, in threads: the review routes
to join, gradio_client with the reader's cookie for the case and the answers) join and answer every case
concurrently. With ``--restart`` the server is stopped and started again when half of the answers are in
(``--kill``: killed with SIGKILL, as a crash would); readers whose request fails wait for it and rejoin with
their resume code. A probe thread
loads the page every 0.5 s to show whether the app stays responsive. Reported: answers confirmed to readers,
stored, lost (confirmed but not stored), duplicated (more than one row for a reader and case), errors shown
to readers, answer latency and page-load latency.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from cardiosynth.paths import REPO_ROOT
from cardiosynth.review import ReviewService
from cardiosynth.review.render import RenderSettings
from evaluation.app_bench import free_port, latency_stats, wait_for_page
from evaluation.review_web_client import ReviewWebClient


class Server:
    """``app.py`` as a child process on a fixed port and review database (so it can be restarted)."""

    def __init__(self, port: int, env: dict):
        self.port, self.env, self.process = port, env, None
        self.url = f"http://127.0.0.1:{port}/"
        self.up = threading.Event()

    def start(self, timeout: float = 180.0) -> None:
        self.process = subprocess.Popen([sys.executable, str(REPO_ROOT / "app.py"), "--port", str(self.port)],
                                        cwd=REPO_ROOT, env=self.env, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        wait_for_page(self.url, self.process, timeout)
        self.up.set()

    def stop(self, kill: bool = False) -> None:
        self.up.clear()
        if kill:
            self.process.kill()  # SIGKILL: no shutdown, no flush, as a crash
        else:
            self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _reader(server: Server, code: str, name: str, seed: int, out: dict) -> None:
    rng = random.Random(seed)
    confirmed, latencies, shown_errors, token = 0, [], [], ""
    while True:
        try:
            server.up.wait(timeout=300)
            client = ReviewWebClient(server.url)
            joined = client.join(code, name, token)
            if "error" in joined:
                shown_errors.append(joined["error"])
                break
            token = joined["resume_code"]
            _, progress, message = client.case()
            while "answered every case" not in progress:
                started = time.perf_counter()
                _, progress, message = client.answer(rng.choice(["real", "synthetic"]), rng.randint(1, 5))
                latencies.append(1000 * (time.perf_counter() - started))
                if "cs-error" in message:
                    shown_errors.append(message)
                    break
                confirmed += 1
            break
        except Exception:  # noqa: BLE001 - the server is restarting: wait, rejoin with the resume code
            time.sleep(0.5)
    out[name] = {"confirmed": confirmed, "latencies": latencies, "errors": shown_errors}


def _probe(server: Server, stop: threading.Event, page_ms: list, failures: list) -> None:
    while not stop.is_set():
        if server.up.is_set():
            started = time.perf_counter()
            try:
                with urllib.request.urlopen(server.url, timeout=10) as response:
                    response.read()
                page_ms.append(1000 * (time.perf_counter() - started))
            except OSError:
                failures.append(time.time())
        stop.wait(0.5)


def run(readers: int, cases: int, restart: bool, kill: bool = False) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="cardiosynth-review-load-"))
    db, studies = folder / "review.sqlite", folder / "studies"
    service = ReviewService(db, studies)
    study = service.create_study("group-mean", cases // 2, cases - cases // 2, "val", "matched",
                                 settings=RenderSettings(size=64, frames_per_cycle=8, cycles=1))
    service.close()
    env = {**os.environ, "CARDIOSYNTH_REVIEW_DB": str(db), "CARDIOSYNTH_REVIEW_DIR": str(studies)}
    server = Server(free_port(), env)
    server.start()
    results, page_ms, probe_failures, stop = {}, [], [], threading.Event()
    probe = threading.Thread(target=_probe, args=(server, stop, page_ms, probe_failures), daemon=True)
    probe.start()
    started = time.perf_counter()
    threads = [threading.Thread(target=_reader, args=(server, study.display_code, f"Reader {i:02d}", i, results))
               for i in range(readers)]
    for thread in threads:
        thread.start()
    restarted_at = None
    if restart:
        while _stored(db) < readers * cases // 2 and any(t.is_alive() for t in threads):
            time.sleep(0.2)
        restarted_at = _stored(db)
        server.stop(kill=kill)
        server.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    stop.set()
    server.stop()
    stored = _stored_per_reader(db)
    confirmed = {name: r["confirmed"] for name, r in results.items()}
    return {
        "readers": readers, "cases": cases, "restart": restart, "killed": kill and restart,
        "answers_stored_at_restart": restarted_at,
        "answers_expected": readers * cases, "answers_confirmed": sum(confirmed.values()),
        "answers_stored": sum(stored.values()),
        "lost_confirmed_but_not_stored": sum(max(0, c - stored.get(n, 0)) for n, c in confirmed.items()),
        "duplicated_rows": _duplicates(db),
        "errors_shown_to_readers": sum(len(r["errors"]) for r in results.values()),
        "answer_ms": latency_stats([x for r in results.values() for x in r["latencies"]]),
        "page_load_ms_during_load": latency_stats(page_ms) if page_ms else None,
        "page_load_failures_outside_restart": len(probe_failures),
        "seconds": round(seconds, 1),
    }


def _query(db: Path, sql: str) -> list:
    with sqlite3.connect(db, timeout=30) as connection:
        return connection.execute(sql).fetchall()


def _stored(db: Path) -> int:
    return _query(db, "SELECT COUNT(*) FROM answers")[0][0]


def _stored_per_reader(db: Path) -> dict:
    return dict(_query(db, "SELECT r.display_name, COUNT(*) FROM answers a JOIN readers r ON a.reader_id = r.reader_id "
                           "GROUP BY r.display_name"))


def _duplicates(db: Path) -> int:
    return _query(db, "SELECT COUNT(*) FROM (SELECT reader_id, case_id FROM answers GROUP BY reader_id, case_id "
                      "HAVING COUNT(*) > 1)")[0][0]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readers", type=int, default=30)
    parser.add_argument("--cases", type=int, default=50)
    parser.add_argument("--restart", action="store_true", help="stop and restart the server half-way")
    parser.add_argument("--kill", action="store_true", help="with --restart: kill it (SIGKILL) instead of stopping it")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.readers, args.cases, args.restart, args.kill), indent=2))


if __name__ == "__main__":
    main()
