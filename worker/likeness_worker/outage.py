"""Redis or Postgres briefly gone (a restart, a failover, an OOM kill): a wait, never a failure.

``Outages.call`` retries a call that failed with a transient error, backing off from 0.2 s to
5 s, for up to WORKER_OUTAGE_MAX_S; only then does the error escape. Each outage is counted
once (``likeness_worker_dependency_outages_total``) and logged once when it starts and ends.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import psycopg
import psycopg_pool
import redis
from dramatiq.errors import BrokerConnectionError

from . import metrics

log = logging.getLogger(__name__)

T = TypeVar("T")

FIRST_DELAY_S = 0.2
MAX_DELAY_S = 5.0


class RedisLost(redis.ConnectionError):
    """Redis answers again but without our keys: it restarted and lost its data."""


def _transient_one(exc: BaseException) -> str | None:
    if isinstance(exc, (redis.ConnectionError, redis.TimeoutError, redis.ReadOnlyError, BrokerConnectionError)):
        return "redis"
    if isinstance(exc, redis.ResponseError) and str(exc).startswith(("LOADING", "READONLY", "MASTERDOWN", "TRYAGAIN")):
        return "redis"
    if isinstance(exc, (psycopg.OperationalError, psycopg_pool.PoolTimeout)):
        return "postgres"
    return None


def transient_dependency(exc: BaseException) -> str | None:
    """'redis' or 'postgres' when ``exc`` (or what caused it) is a passing outage; else None."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        dep = _transient_one(e)
        if dep:
            return dep
        e = e.__cause__ or e.__context__
    return None


class Outages:
    def __init__(self, max_s: float, sleep: Callable[[float], object] = time.sleep) -> None:
        self.max_s = max_s
        self._sleep = sleep
        self._lock = threading.Lock()
        self._down: dict[str, float] = {}

    def failed(self, dependency: str, exc: BaseException) -> None:
        with self._lock:
            if dependency in self._down:
                return
            self._down[dependency] = time.monotonic()
        metrics.DEPENDENCY_OUTAGES.labels(dependency).inc()
        metrics.DEPENDENCY_UP.labels(dependency).set(0)
        log.warning("%s unavailable (%s: %s): waiting for it", dependency, type(exc).__name__, exc)

    def recovered(self, dependency: str) -> None:
        with self._lock:
            since = self._down.pop(dependency, None)
        if since is not None:
            metrics.DEPENDENCY_UP.labels(dependency).set(1)
            log.warning("%s is back after %.1f s", dependency, time.monotonic() - since)

    def call(self, fn: Callable[[], T], what: str) -> T:
        """``fn()``, retried through transient outages for up to ``max_s``."""
        deadline: float | None = None
        delay = FIRST_DELAY_S
        failed: set[str] = set()
        while True:
            try:
                out = fn()
            except Exception as exc:
                dependency = transient_dependency(exc)
                if dependency is None:
                    raise
                self.failed(dependency, exc)
                failed.add(dependency)
                now = time.monotonic()
                deadline = deadline if deadline is not None else now + self.max_s
                if now >= deadline:
                    log.error("%s: %s still unavailable after %.0f s; giving up", what, dependency, self.max_s)
                    raise
                self._sleep(min(delay, deadline - now))
                delay = min(delay * 2, MAX_DELAY_S)
                continue
            for dependency in failed:
                self.recovered(dependency)
            return out
