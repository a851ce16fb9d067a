"""What the worker tells the api: durable events (stream) and lossy progress (Pub/Sub).

Every message is validated against the exported JSON Schema before it leaves: a worker that
would write something the api cannot read fails loudly here, in its own logs.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import redis

from .contracts import PROTOCOL_VERSION, RedisKeys, validate_event, validate_progress
from .fence import Fences
from .outage import Outages

log = logging.getLogger(__name__)

# Live progress goes out at most this often per job (10 messages a second).
PROGRESS_INTERVAL_S = 0.1

# Namespace of the deterministic job_finished eventId (see job_finished_event_id).
_FINISHED_NS = uuid.UUID("6c1b3d52-6f0e-4d6b-9a56-0c7f3c1d2e11")


def now_iso() -> str:
    """UTC with millisecond precision and a Z, the only form the contracts accept."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def job_finished_event_id(job_id: str, attempt: int) -> str:
    """The same id every time this attempt finishes: if the worker dies between XADD and XACK
    the redelivered command may XADD job_finished again, and the api drops the copy by eventId."""
    return str(uuid.uuid5(_FINISHED_NS, f"{job_id}:{attempt}:job_finished"))


class EventWriter:
    """XADDs events through Redis outages (see outage.py). An event of a job attempt this process
    holds goes out only while it still owns the attempt (see fence.py)."""

    def __init__(self, client: redis.Redis, keys: RedisKeys, outages: Outages, fences: Fences) -> None:
        self.client = client
        self.keys = keys
        self.outages = outages
        self.fences = fences
        self._coalescer = ProgressCoalescer(self._publish_progress)

    def emit(self, job_id: str, attempt: int, type_: str, *, event_id: str | None = None, **fields: Any) -> dict:
        event = {
            "v": PROTOCOL_VERSION,
            "eventId": event_id or str(uuid.uuid4()),
            "jobId": job_id,
            "attempt": attempt,
            "at": now_iso(),
            "type": type_,
            **{k: v for k, v in fields.items() if v is not None},
        }
        return self.send(event)

    def send(self, event: dict) -> dict:
        """Validates and XADDs one event; a retry after a lost reply may add a copy, which the
        api drops by eventId."""
        validate_event(event)
        data = json.dumps(event, separators=(",", ":"))
        fence = self.fences.get(event["jobId"], event["attempt"])

        def xadd() -> Any:
            if fence is not None:
                return self.fences.xadd(fence, self.keys.events, self.keys.maxlen, self.keys.field, data)
            return self.client.xadd(self.keys.events, {self.keys.field: data}, maxlen=self.keys.maxlen, approximate=True)

        self.outages.call(xadd, f"event {event['type']}")
        log.debug("event %s %s %s", event["type"], event["jobId"], event.get("step", ""))
        return event

    def progress(self, job_id: str, attempt: int, step: str, fraction: float, message: str | None = None) -> None:
        """Live progress, coalesced to at most one message per PROGRESS_INTERVAL_S per job: a
        report that comes sooner is held and only the latest held one goes out when the interval
        is up. Its ``at`` is when it is published."""
        msg: dict[str, Any] = {
            "v": PROTOCOL_VERSION,
            "jobId": job_id,
            "attempt": attempt,
            "step": step,
            "fraction": min(1.0, max(0.0, float(fraction))),
        }
        if message:
            msg["message"] = message[:500]
        self._coalescer.offer(job_id, msg)

    def _publish_progress(self, msg: dict[str, Any]) -> None:
        msg = {**msg, "at": now_iso()}
        validate_progress(msg)
        fence = self.fences.get(msg["jobId"], msg["attempt"])
        if fence is not None and fence.lost:
            return
        try:
            self.client.publish(self.keys.progress(msg["jobId"]), json.dumps(msg, separators=(",", ":")))
        except redis.RedisError as exc:  # progress is lossy by contract: never fail a step for it
            log.warning("progress publish failed: %s", exc)


class ProgressCoalescer:
    """At most one send per ``interval_s`` per key (a job): the first message goes out at once,
    later ones within the interval are held, per step, the latest replacing the one before, and
    sent by one flusher thread when the interval is up. Progress is lossy by contract; a step's
    last report is never lost (the next step's first one does not replace it), only an
    intermediate one."""

    def __init__(self, send: Callable[[dict[str, Any]], None], interval_s: float = PROGRESS_INTERVAL_S) -> None:
        self.send = send
        self.interval_s = interval_s
        self._cond = threading.Condition()
        self._last: dict[str, float] = {}  # key -> when its last message went out (monotonic)
        self._held: dict[str, dict[str, dict[str, Any]]] = {}  # key -> step -> its latest message held back
        self._flusher: threading.Thread | None = None

    def offer(self, key: str, msg: dict[str, Any]) -> None:
        now = time.monotonic()
        with self._cond:
            if key not in self._held and now - self._last.get(key, -1e9) >= self.interval_s:
                self._last[key] = now
                if len(self._last) > 1024:
                    self._prune(now)
            else:
                fresh = key not in self._held
                self._held.setdefault(key, {})[str(msg.get("step", ""))] = msg
                if self._flusher is None:
                    self._flusher = threading.Thread(target=self._flush_loop, name="progress-flush", daemon=True)
                    self._flusher.start()
                if fresh:  # a new due time: the flusher may have to wake sooner
                    self._cond.notify()
                return
        self.send(msg)

    def _flush_loop(self) -> None:
        while True:
            with self._cond:
                while not self._held:
                    self._cond.wait()
                now = time.monotonic()
                due = {k: self._last.get(k, 0.0) + self.interval_s for k in self._held}
                ready = [k for k, t in due.items() if t <= now]
                if not ready:
                    self._cond.wait(min(due.values()) - now)
                    continue
                out = [m for k in ready for m in self._held.pop(k).values()]
                for k in ready:
                    self._last[k] = now
            for msg in out:
                try:
                    self.send(msg)
                except Exception:  # lossy by contract: a failed publish must not stop the flusher
                    log.warning("progress publish failed", exc_info=True)

    def _prune(self, now: float) -> None:
        for k in [k for k, t in self._last.items() if k not in self._held and now - t > 10 * self.interval_s]:
            del self._last[k]
