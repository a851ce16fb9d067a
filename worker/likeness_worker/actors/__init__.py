"""Dramatiq: the broker, one actor per task kind, and middleware for cross-cutting concerns."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .broker import build_broker
from .tasks import declare_actors

if TYPE_CHECKING:
    from ..runtime import Runtime


def wire_actors(rt: Runtime) -> None:
    """Give the runtime its broker, queues and one actor per task kind."""

    def publish_progress(request: dict, fraction: float, message: str | None) -> None:
        rt.events.progress(request["jobId"], int(request["attempt"]), request["step"], fraction, message)

    rt.broker, rt.results = build_broker(rt.settings, rt.keys, publish_progress)
    for q in rt.settings.worker_queues:
        rt.broker.declare_queue(q)
    rt.actors = declare_actors(rt)
