"""Slow down guessing without letting one guesser lock everyone else out.

Study codes are 8 characters from 32 (40 bits), tokens 144 bits: unguessable, but a script could still try
codes, names or the administrator password at the speed of the server. Two counters, both in memory:

- **Per target** (a study code, the administrator account, a study's admin token): after ``free_failures``
  wrong attempts on one target, each further attempt on it waits ``backoff_s`` doubled per failure (capped at
  ``max_backoff_s``), whoever sends it. A target's count decays after ``window_s`` and a success clears it.
  This is what stops a guesser who hides behind many addresses.
- **Per address**, a looser ceiling (``address_ceiling`` failures within ``window_s``): one machine sweeping
  over many targets (every possible study code) is refused for the rest of the window. It is loose because a
  hospital's readers often share one address behind a proxy or NAT.

Successes never count, and a reader who already holds a valid session is never checked here (see
``ReviewService.answer``): failed codes from the same address cannot stop a reader who has joined. Which
address a request came from is what the web server sees, so forwarded headers count only when the operator
names the proxy (``cardiosynth.app.security``). A restart forgets, which costs an attacker a restart of the
server, not a bypass.
"""

from __future__ import annotations

import threading
import time
from collections import deque

from cardiosynth.review.errors import ReviewError


class TooManyAttempts(ReviewError):
    pass


class FailureLimiter:
    """Failed attempts per target (with backoff) and per client address (a ceiling); thread-safe."""

    def __init__(self, free_failures: int = 5, backoff_s: float = 2.0, max_backoff_s: float = 300.0,
                 address_ceiling: int = 100, window_s: float = 900.0, clock=time.monotonic):
        self.free_failures, self.address_ceiling = int(free_failures), int(address_ceiling)
        self.backoff_s, self.max_backoff_s, self.window_s = float(backoff_s), float(max_backoff_s), float(window_s)
        self.clock = clock
        self._targets: dict[tuple, deque] = {}
        self._addresses: dict[str, deque] = {}
        self._lock = threading.Lock()

    def _recent(self, table: dict, key) -> deque:
        failures = table.setdefault(key, deque())
        while failures and self.clock() - failures[0] > self.window_s:
            failures.popleft()
        return failures

    def wait_s(self, target: tuple | None) -> float:
        """Seconds before ``target`` may be tried again (0 when it may now)."""
        if target is None:
            return 0.0
        with self._lock:
            failures = self._recent(self._targets, target)
            extra = len(failures) - self.free_failures
            if extra < 0:
                return 0.0
            delay = min(self.max_backoff_s, self.backoff_s * 2.0 ** extra)
            return max(0.0, failures[-1] + delay - self.clock())

    def check(self, client: str | None, target: tuple | None = None) -> None:
        """Refuse before doing any work when the address or the target has failed too often lately."""
        if client is not None:
            with self._lock:
                failures = self._recent(self._addresses, client)
                if len(failures) >= self.address_ceiling:
                    wait = max(1, round(self.window_s - (self.clock() - failures[0])))
                    raise TooManyAttempts(f"Too many wrong codes or names from this computer; please wait {wait} s "
                                          "and try again.")
        wait = self.wait_s(target)
        if wait > 0:
            raise TooManyAttempts(f"Too many wrong attempts at this {target[0]}; please wait {max(1, round(wait))} s "
                                  "and try again.")

    def failed(self, client: str | None, target: tuple | None = None) -> None:
        with self._lock:
            if client is not None:
                self._recent(self._addresses, client).append(self.clock())
            if target is not None:
                self._recent(self._targets, target).append(self.clock())
            for table in (self._addresses, self._targets):
                if len(table) > 10_000:  # forget idle keys so the tables cannot grow without bound
                    for key in [k for k, v in table.items() if not v]:
                        del table[key]

    def succeeded(self, target: tuple | None) -> None:
        """A right answer clears the target's count (the rightful user is not left behind a backoff)."""
        if target is not None:
            with self._lock:
                self._targets.pop(target, None)
