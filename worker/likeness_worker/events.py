"""What the worker tells the api: durable events (stream) and lossy progress (Pub/Sub).

Every message is validated against the exported JSON Schema before it leaves: a worker that
would write something the api cannot read fails loudly here, in its own logs.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime, timezone
from typing import Any

import redis

from .fence import Fences
from .contracts import PROTOCOL_VERSION, RedisKeys, validate_event, validate_progress
from .outage import Outages

log = logging.getLogger(__name__)

# Namespace of the deterministic job_finished eventId (see job_finished_event_id).
_FINISHED_NS = uuid.UUID("6c1b3d52-6f0e-4d6b-9a56-0c7f3c1d2e11")


def now_iso() -> str:
    """UTC with millisecond precision and a Z, the only form the contracts accept."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


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
        msg: dict[str, Any] = {
            "v": PROTOCOL_VERSION,
            "jobId": job_id,
            "attempt": attempt,
            "step": step,
            "fraction": min(1.0, max(0.0, float(fraction))),
            "at": now_iso(),
        }
        if message:
            msg["message"] = message[:500]
        validate_progress(msg)
        fence = self.fences.get(job_id, attempt)
        if fence is not None and fence.lost:
            return
        try:
            self.client.publish(self.keys.progress(job_id), json.dumps(msg, separators=(",", ":")))
        except redis.RedisError as exc:  # progress is lossy by contract: never fail a step for it
            log.warning("progress publish failed: %s", exc)
