"""Slow down guessing without letting one guesser lock anyone else out.

Study codes are 8 characters from 32 (40 bits), tokens 144 bits: unguessable, but a script could still try
codes, names or the administrator password at the speed of the server. Three counters, in memory:

- **Per target and address** (a name in a study, the administrator password, a study's admin token, each
  from one address): after ``free_failures`` wrong attempts, each further attempt waits ``backoff_s``
  doubled per failure, up to ``max_backoff_s``. It slows a guesser without touching anyone else: the
  administrator signing in from their own desk is not held up by someone failing on purpose elsewhere.
- **Per target** from all addresses together, a looser ceiling (``target_ceiling`` failures within
  ``window_s``), past which the target backs off for everyone: what stops a guesser spread over many
  addresses. Only a guesser with that many addresses can hold a target up, and the command line on the server
  is never counted, so the administrator always has a way in.
- **Per address** (IPv6 by its /64), a ceiling (``address_ceiling`` failures within ``window_s``): one machine
  sweeping over many targets (every possible study code) is refused for the rest of the window. It is loose
  because a hospital's readers often share one address behind a proxy or NAT.

Successes never count (a success clears the target's count from that address), and a reader who already
holds a valid session is never checked here (see ``ReviewService.answer``). Which address a request came from
is what the web server sees: forwarded headers count only when the operator names the proxy
(``cardiosynth.app.security``). Targets are kept as short hashes, so a long typed code costs no memory. A
restart forgets, which costs an attacker a restart of the server, not a bypass.
"""

from __future__ import annotations

import hashlib
import ipaddress
import threading
import time
from collections import deque

from cardiosynth.review.errors import ReviewError

MAX_KEYS = 10_000  # per table, before the ones idle for a whole window are forgotten


class TooManyAttempts(ReviewError):
    pass


def _address_key(client: str) -> str:
    """An IPv6 client by its /64 (one machine can hold a whole /64), anything else as it is."""
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return client
    return str(ipaddress.ip_network(f"{address}/64", strict=False)) if address.version == 6 else client


def _target_key(target: tuple) -> str:
    return hashlib.sha256(repr(target).encode()).hexdigest()[:24]


class FailureLimiter:
    """Failed attempts per (target, address) and per target (with backoff), and per address; thread-safe."""

    def __init__(self, free_failures: int = 5, backoff_s: float = 2.0, max_backoff_s: float = 300.0,
                 target_ceiling: int = 50, address_ceiling: int = 100, window_s: float = 900.0, clock=time.monotonic):
        self.free_failures, self.target_ceiling = int(free_failures), int(target_ceiling)
        self.address_ceiling = int(address_ceiling)
        self.backoff_s, self.max_backoff_s, self.window_s = float(backoff_s), float(max_backoff_s), float(window_s)
        self.clock = clock
        self._failures: dict[str, deque] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str) -> deque:
        failures = self._failures.setdefault(key, deque())
        while failures and self.clock() - failures[0] > self.window_s:
            failures.popleft()
        return failures

    def _keys(self, client: str | None, target: tuple | None) -> tuple[str | None, str | None, str | None]:
        """(address, target from this address, target from anywhere) keys; None where not counted."""
        address = None if client is None else "address " + _address_key(client)
        if target is None:
            return address, None, None
        target_key = "target " + _target_key(target)
        return address, None if address is None else f"{target_key} from {address}", target_key

    def _delay(self, failures: deque, free: int) -> float:
        extra = len(failures) - free
        if extra < 0 or not failures:
            return 0.0
        return max(0.0, failures[-1] + min(self.max_backoff_s, self.backoff_s * 2.0 ** extra) - self.clock())

    def wait_s(self, client: str | None, target: tuple | None) -> float:
        """Seconds before ``client`` may try ``target`` again (0 when it may now)."""
        _, pair, anywhere = self._keys(client, target)
        with self._lock:
            return max(self._delay(self._recent(pair), self.free_failures) if pair else 0.0,
                       self._delay(self._recent(anywhere), self.target_ceiling) if anywhere else 0.0)

    def check(self, client: str | None, target: tuple | None = None) -> None:
        """Refuse before doing any work when the address or the target has failed too often lately."""
        address, _, _ = self._keys(client, target)
        if address is not None:
            with self._lock:
                failures = self._recent(address)
                if len(failures) >= self.address_ceiling:
                    wait = max(1, round(self.window_s - (self.clock() - failures[0])))
                    raise TooManyAttempts(f"Too many wrong codes or names from this computer; please wait {wait} s "
                                          "and try again.")
        wait = self.wait_s(client, target)
        if wait > 0:
            raise TooManyAttempts(f"Too many wrong attempts at this {target[0]}; please wait {max(1, round(wait))} s "
                                  "and try again.")

    def failed(self, client: str | None, target: tuple | None = None) -> None:
        now = self.clock()
        with self._lock:
            for key in self._keys(client, target):
                if key is not None:
                    self._recent(key).append(now)
            if len(self._failures) > MAX_KEYS:  # forget keys idle for a whole window
                for key in [k for k, v in self._failures.items() if not v or now - v[-1] > self.window_s]:
                    del self._failures[key]

    def succeeded(self, client: str | None, target: tuple | None) -> None:
        """A right answer clears the target's count from that address (the rightful user is not left behind a
        backoff of their own typos)."""
        _, pair, _ = self._keys(client, target)
        if pair is not None:
            with self._lock:
                self._failures.pop(pair, None)
