"""Slow down guessing: after too many failed attempts from one client, refuse for a while.

Study codes are 8 characters from 32 (40 bits), tokens 144 bits: unguessable, but a script could still try
codes or names at the speed of the server and learn which exist. Each refusal of a wrong study code,
resume code, admin token or taken name counts as one failure against the client (its IP address, as the
web server sees it); past ``max_failures`` within ``window_s`` the client is refused until the oldest
failure leaves the window, whatever it sends. Successes do not count. In memory only: a restart forgets,
which costs an attacker a restart of the server, not a bypass.
"""

from __future__ import annotations

import threading
import time
from collections import deque

from cardiosynth.review.errors import ReviewError


class TooManyAttempts(ReviewError):
    pass


class FailureLimiter:
    """Failed attempts per client in a sliding window; thread-safe (Gradio calls from worker threads)."""

    def __init__(self, max_failures: int = 10, window_s: float = 60.0, clock=time.monotonic):
        self.max_failures, self.window_s, self.clock = int(max_failures), float(window_s), clock
        self._failures: dict[str, deque] = {}
        self._lock = threading.Lock()

    def _recent(self, client: str) -> deque:
        failures = self._failures.setdefault(client, deque())
        while failures and self.clock() - failures[0] > self.window_s:
            failures.popleft()
        return failures

    def check(self, client: str | None) -> None:
        """Refuse a client that has failed too often lately (before doing any work for it)."""
        if client is None:
            return
        with self._lock:
            failures = self._recent(client)
            if len(failures) >= self.max_failures:
                wait = max(1, round(self.window_s - (self.clock() - failures[0])))
                raise TooManyAttempts(f"Too many wrong codes or names from this computer; please wait {wait} s "
                                      "and try again.")

    def failed(self, client: str | None) -> None:
        if client is None:
            return
        with self._lock:
            self._recent(client).append(self.clock())
            if len(self._failures) > 10_000:  # forget idle clients so the table cannot grow without bound
                for key in [k for k, v in self._failures.items() if not v]:
                    del self._failures[key]
