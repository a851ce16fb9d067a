"""Dramatiq middleware for the worker's cross-cutting concerns (each overrides only its hooks)."""

from __future__ import annotations

import logging
import threading
import time

from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import Middleware

from .. import metrics

log = logging.getLogger(__name__)


class StepMetrics(Middleware):
    """Step durations, outcomes and real-time factors per task kind and engine."""

    def __init__(self) -> None:
        self._started: dict[str, float] = {}

    def before_process_message(self, broker, message):
        self._started[message.message_id] = time.monotonic()

    def after_process_message(self, broker, message, *, result=None, exception=None):
        started = self._started.pop(message.message_id, None)
        if started is None:
            return
        elapsed = time.monotonic() - started
        request = message.args[0] if message.args else {}
        task, engine = message.actor_name, request.get("engine", "?")
        if exception is not None:
            outcome = "retry"
        elif isinstance(result, dict) and result.get("ok"):
            outcome = "reused" if result.get("reused") else "succeeded"
            duration = (result.get("done") or {}).get("outputs", {}).get("durationSec")
            if outcome == "succeeded" and isinstance(duration, (int, float)) and duration > 0:
                metrics.REAL_TIME_FACTOR.labels(task, engine).observe(elapsed / duration)
        elif isinstance(result, dict) and result.get("fenced"):
            outcome = "fenced"  # not run, or its marker not written: another worker owns the job
        else:
            outcome = "failed"
            code = ((result or {}).get("error") or {}).get("code", "internal")
            metrics.STEP_FAILURES.labels(task, engine, code).inc()
        metrics.STEP_SECONDS.labels(task, engine, outcome).observe(elapsed)

    def after_skip_message(self, broker, message):
        self._started.pop(message.message_id, None)


class StepStarted(Middleware):
    """Marks a step's message as picked up, so the waiting graph node counts the step time limit
    from here, not from when the message was queued. A retry or a redelivery marks it again."""

    def __init__(self, started_key, ttl_s: int) -> None:
        self._key = started_key  # message_id -> Redis key
        self._ttl_s = ttl_s

    def before_process_message(self, broker, message):
        try:
            broker.client.set(self._key(message.message_id), f"{time.time():.3f}", ex=self._ttl_s)
        except Exception as exc:  # the node then only sees the queue-wait limit
            log.warning("could not mark step message %s as started: %s", message.message_id, exc)


class StepProgress(Middleware):
    """Publishes 0 % when an actor picks a step up and 100 % when it is done (lossy, Pub/Sub)."""

    def __init__(self, publish) -> None:
        self._publish = publish  # (request, fraction, message) -> None

    def before_process_message(self, broker, message):
        if message.args:
            self._publish(message.args[0], 0.0, "started")

    def after_process_message(self, broker, message, *, result=None, exception=None):
        if message.args and isinstance(result, dict) and result.get("ok"):
            self._publish(message.args[0], 1.0, "reused" if result.get("reused") else "done")


class BrokerHeartbeat(Middleware):
    """Keeps this process's Dramatiq heartbeat fresh while its only thread is busy.

    The Redis broker refreshes a consumer's heartbeat only when it fetches; with one worker
    thread and a long step, fetches can stop and another worker's maintenance would think this
    one dead and re-queue its in-flight message. A small thread refreshes it every
    heartbeat_timeout / 4 instead, so "dead" means "the process is gone".
    """

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def after_worker_boot(self, broker, worker):
        if self._thread is None:
            self._thread = threading.Thread(target=self._beat, args=(broker,), name="dramatiq-heartbeat", daemon=True)
            self._thread.start()

    def before_worker_shutdown(self, broker, worker):
        self._stop.set()

    def _beat(self, broker: RedisBroker) -> None:  # the only broker this worker builds (broker.py)
        key = f"{broker.namespace}:__heartbeats__"
        while not self._stop.wait(self.interval_s):
            try:
                broker.client.zadd(key, {broker.broker_id: int(time.time() * 1000)})
            except Exception as exc:
                log.warning("heartbeat failed: %s", exc)
