"""An engine's problem() that asks something slow (a server, a tool's own Python): the worker asks
at every advert heartbeat, so the answer is kept PROBLEM_TTL_S for the same settings."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable

PROBLEM_TTL_S = 30.0


class ProblemCache:
    def __init__(self, ttl_s: float = PROBLEM_TTL_S) -> None:
        self.ttl_s = ttl_s
        self._lock = threading.Lock()  # not a step's: a health check does not wait for a running step
        self._entry: tuple[float, Hashable, str | None] | None = None

    def clear(self) -> None:
        self._entry = None

    def get(self, key: Hashable, check: Callable[[], str | None]) -> str | None:
        """The answer ``check()`` gave for ``key`` less than ``ttl_s`` ago, else a fresh one."""
        with self._lock:
            entry = self._entry
            if entry is not None and entry[1] == key and time.monotonic() - entry[0] < self.ttl_s:
                return entry[2]
            answer = check()
            self._entry = (time.monotonic(), key, answer)
            return answer
