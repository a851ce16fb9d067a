"""Everything a worker process shares: settings, Redis, storage, events, engines, broker, actors.

Built once in main(); the bridge (graph nodes) and the actors both take it as their context.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.results.backends import RedisBackend

from . import placement
from .config import Settings
from .contracts import JOB_KINDS, RedisKeys, redis_text
from .engines import EngineRegistry
from .events import EventWriter
from .faults import FaultPlan
from .fence import Fences
from .outage import Outages
from .storage import Storage, make_storage

CANCEL_POLL_S = 0.5


@dataclass
class Runtime:
    settings: Settings
    keys: RedisKeys
    redis: redis.Redis
    storage: Storage
    events: EventWriter
    registry: EngineRegistry
    faults: FaultPlan
    consumer_name: str
    outages: Outages
    fences: Fences
    broker: RedisBroker | None = None
    results: RedisBackend | None = None
    actors: dict[str, dramatiq.Actor] = field(default_factory=dict)

    def cancel_requested(self, job_id: str) -> bool:
        return bool(self.redis.exists(self.keys.cancel(job_id)))

    def cancel_probe(self, job_id: str) -> Callable[[], bool]:
        """A cheap ``cancelled()`` for long steps: asks Redis at most every 0.5 s, sticky once true."""
        at, value = 0.0, False

        def probe() -> bool:
            nonlocal at, value
            if not value and time.monotonic() - at >= CANCEL_POLL_S:
                at = time.monotonic()
                with contextlib.suppress(redis.RedisError):
                    value = self.cancel_requested(job_id)
            return value

        return probe

    def queue_for(self, device: str, task_kind: str, engine: str) -> str:
        """The Dramatiq queue for a step of an engine on ``device``: ``cpu``, or for the GPU the
        live card queue that placement.py picks (the engine's model warm there, else the least
        busy, else gpu0; GPU rule: one queue per card)."""
        if device != "gpu":
            return device
        return placement.choose_gpu_queue(self.redis, self.keys, placement.engine_id(task_kind, engine))

    def dispatch(self, task_kind: str, queue: str, request: dict[str, Any]) -> dramatiq.Message:
        assert self.broker is not None
        message = self.actors[task_kind].message(request).copy(queue_name=queue)
        self.broker.declare_queue(queue)
        return self.broker.enqueue(message)

    def queue_depths(self):
        """(queue, state, n) for the metrics collector: job streams and Dramatiq queues."""
        for kind in JOB_KINDS:
            stream = self.keys.job_stream(kind)
            yield stream, "length", float(self.redis.xlen(stream))
            try:
                groups = self.redis.xinfo_groups(stream)
            except redis.ResponseError:  # no stream yet
                continue
            group = next((g for g in groups if redis_text(g["name"]) == self.keys.worker_group), None)
            if group is None:
                continue
            # pending: the jobs being run; lag: commands no worker has taken yet (Redis 7+), what
            # the backlog alert and KEDA's scaler read.
            yield stream, "pending", float(group["pending"])
            if group.get("lag") is not None:
                yield stream, "lag", float(group["lag"])
        s = self.settings
        # Its own queues and its GPU children's; also every live card's and gpu0, where a GPU step
        # goes when no card is live, so that steps waiting for a GPU worker that is not there show
        # (every worker reports them: they are taken with max, not summed).
        gpu = [*placement.live_gpu_queues(self.redis, self.keys), placement.DEFAULT_GPU_QUEUE]
        for q in dict.fromkeys([*s.worker_queues, *s.gpu_queues, *sorted(gpu, key=placement.gpu_index)]):
            yield q, "waiting", float(self.redis.llen(placement.dramatiq_queue_key(self.keys, q)))


def build_runtime(settings: Settings, registry: EngineRegistry) -> Runtime:
    """The worker's shared state, without its actors: actors.wire_actors(rt) adds the broker and
    the actors (they depend on the runtime, not the other way round)."""
    keys = RedisKeys(settings.redis_key_prefix)
    client = redis.Redis.from_url(settings.redis_url.get_secret_value(), health_check_interval=30)
    outages = Outages(settings.worker_outage_max_s)
    fences = Fences(client)
    events = EventWriter(client, keys, outages, fences)
    rt = Runtime(
        settings=settings,
        keys=keys,
        redis=client,
        storage=make_storage(settings),
        events=events,
        registry=registry,
        faults=FaultPlan.parse(settings.likeness_test_faults),
        consumer_name=f"{socket.gethostname()}-{os.getpid()}",
        outages=outages,
        fences=fences,
    )
    return rt
