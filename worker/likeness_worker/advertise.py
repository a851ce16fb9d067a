"""The worker's engine registry, advertised to the api through Redis (contracts ``WorkerAdvert``).

At start and then every heartbeat (WORKER_HEARTBEAT_TIMEOUT_MS / 4, as Dramatiq's own heartbeat)
the worker writes, in one MULTI: its advert at ``{prefix}:workers:{workerId}`` with a TTL of
``workerAdvertTtlHeartbeats`` heartbeats, and its id in the index set ``{prefix}:workers``. A
worker that dies drops out when its key expires (the api drops its id then); one that stops
cleanly removes both at once. The api merges the live adverts for ``GET /v1/engines`` and checks
a request's ``engines`` against them before it queues the job.

Each engine says its task kind, name, device, licence, whether it is the default of its kind, and
whether this worker can run it now: its tools are installed (``Engine.problem()``), this worker
consumes a queue of its device (any ``gpu<i>`` for a GPU engine), and warming its model did not
fail. With WORKER_GPUS each GPU child process advertises itself, with its one ``gpu<i>`` queue;
the parent advertises the queues it consumes itself (placement.py reads the GPU queues from here).
"""

from __future__ import annotations

import json
import logging
import threading
from typing import TYPE_CHECKING, Any

import redis

from .contracts import PROTOCOL_VERSION, WORKER_TASK_KINDS, RedisKeys, validate_advert
from .events import now_iso
from .placement import consumes, home_queue
from .runtime import Runtime

if TYPE_CHECKING:
    from .engines import EngineRegistry

log = logging.getLogger(__name__)


class Advertiser:
    def __init__(
        self,
        client: redis.Redis,
        keys: RedisKeys,
        worker_id: str,
        registry: EngineRegistry,
        queues: tuple[str, ...],
        heartbeat_s: float,
    ) -> None:
        self.client = client
        self.worker_id = worker_id
        self.key = keys.worker(worker_id)
        self.index = keys.workers
        self.ttl_s = heartbeat_s * keys.advert_ttl_heartbeats
        self.registry = registry
        self.queues = queues
        self.heartbeat_s = heartbeat_s
        # (task kind, name) -> why it cannot run (e.g. its model failed to load while warming).
        self._problems: dict[tuple[str, str], str] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def for_runtime(cls, rt: Runtime) -> Advertiser:
        s = rt.settings
        return cls(
            rt.redis,
            rt.keys,
            rt.consumer_name,
            rt.registry,
            s.own_queues,  # WORKER_GPUS' children advertise their own
            heartbeat_s=max(0.2, s.worker_heartbeat_timeout_ms / 4000),
        )

    def mark_problem(self, task_kind: str, name: str, problem: str) -> None:
        self._problems[(task_kind, name)] = problem[:500]

    def advert(self) -> dict[str, Any]:
        engines = []
        for kind, name, cls, default in self.registry.entries(WORKER_TASK_KINDS):
            problem = self._problems.get((kind, name)) or cls.problem()
            if problem is None and not consumes(cls.device, self.queues):
                problem = f"this worker does not consume the {home_queue(cls.device)} queue"
            licence, non_commercial = cls.licence_terms()
            entry: dict[str, Any] = {
                "taskKind": kind,
                "name": name,
                "device": cls.device,
                "licence": licence,
                "nonCommercial": non_commercial,
                "healthy": problem is None,
                "default": default,
            }
            if problem is not None:
                entry["problem"] = problem[:500]
            engines.append(entry)
        return validate_advert({
            "v": PROTOCOL_VERSION,
            "workerId": self.worker_id[:200],
            "at": now_iso(),
            "heartbeatMs": round(self.heartbeat_s * 1000),
            "queues": list(self.queues),
            "engines": engines,
        })

    def publish(self) -> dict[str, Any]:
        """Writes the advert and its index entry once (validated first)."""
        advert = self.advert()
        pipe = self.client.pipeline(transaction=True)
        pipe.set(self.key, json.dumps(advert, separators=(",", ":")), px=max(1, round(self.ttl_s * 1000)))
        pipe.sadd(self.index, self.worker_id)
        pipe.execute()
        return advert

    def publish_soon(self) -> None:
        """Something changed (an engine's health): write the advert now, not at the next heartbeat."""
        self._beat_once()

    def start(self) -> None:
        """Publish now (a failure is logged: the heartbeat tries again), then every heartbeat."""
        self._beat_once()
        self._thread = threading.Thread(target=self._run, name="advertise", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stops the heartbeat and withdraws the advert: the api stops offering this worker's engines."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            pipe = self.client.pipeline(transaction=True)
            pipe.delete(self.key)
            pipe.srem(self.index, self.worker_id)
            pipe.execute()
        except redis.RedisError as exc:
            log.warning("could not withdraw the engine advert: %s", exc)

    def _run(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            self._beat_once()

    def _beat_once(self) -> None:
        try:
            self.publish()
        except redis.RedisError as exc:  # an outage: the next heartbeat writes it again
            log.warning("could not advertise the engines: %s", exc)
        except Exception:
            log.exception("could not advertise the engines")
