"""Placement: which GPU queue a step goes to, and what each GPU queue last ran.

A GPU engine's step goes to one of the live GPU queues, those the live workers advertise
(``{prefix}:workers:<id>``, each advert listing the queues its process consumes), chosen so
that a model loaded once is used again:

1. a queue whose card has this engine warm, unless it already has more than ``WARM_BACKLOG``
   steps more ahead of it (waiting or running) than the least busy queue: then two cards warm the
   same model rather than one card queueing every step while the others idle;
2. else the least busy queue (Dramatiq's waiting messages plus the steps running there);
3. ties go to the lowest index, so with one GPU (or none live) every step goes to ``gpu0``,
   as before placement existed.

Queues whose advert says the engine cannot run there are passed over while another can.

Each GPU queue records, in Redis, from the moment an actor starts a step on it:

- ``{prefix}:gpu-warm:<queue>``: the engine it ran last, ``<task kind>/<name>`` (no TTL; one
  key per card). The actor reads it first, to free what another engine left on the card
  (engines/gpu/vram.py).
- ``{prefix}:gpu-running:<queue>``: a set of the message ids running there, each step removing
  its own; the key lives the step time limit plus a margin, so a process killed mid-step leaves
  no lasting count.

Worker-private keys, like the owner and step-run keys (contracts.RedisKeys); the api never reads
them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import redis

from .contracts import RedisKeys, redis_text

GPU_QUEUE_RE = re.compile(r"^gpu(\d+)$")
DEFAULT_GPU_QUEUE = "gpu0"
# A warm card is preferred while it has at most this many steps more ahead than the least busy one.
WARM_BACKLOG = 1
RUNNING_MARGIN_S = 300  # past the step time limit, how long a running mark may outlive its process


def is_gpu_queue(queue: str | None) -> bool:
    return bool(queue and GPU_QUEUE_RE.match(queue))


def gpu_index(queue: str) -> int:
    m = GPU_QUEUE_RE.match(queue)
    if m is None:
        raise ValueError(f"not a GPU queue: {queue!r}")
    return int(m.group(1))


def home_queue(device: str) -> str:
    """The queue named for a device: ``cpu``, or ``gpu0`` for the GPU (the first card)."""
    return DEFAULT_GPU_QUEUE if device == "gpu" else device


def consumes(device: str, queues: Iterable[str]) -> bool:
    """Whether a process consuming ``queues`` runs steps of engines on ``device`` (any card for gpu)."""
    if device == "gpu":
        return any(is_gpu_queue(q) for q in queues)
    return device in set(queues)


def engine_id(task_kind: str, name: str) -> str:
    return f"{task_kind}/{name}"


def warm_key(keys: RedisKeys, queue: str) -> str:
    return f"{keys.prefix}:gpu-warm:{queue}"


def running_key(keys: RedisKeys, queue: str) -> str:
    return f"{keys.prefix}:gpu-running:{queue}"


def dramatiq_queue_key(keys: RedisKeys, queue: str) -> str:
    """Dramatiq's Redis list of a queue's waiting message ids (RedisBroker: ``<namespace>:<queue>``)."""
    return f"{keys.dramatiq_namespace}:{queue}"


@dataclass(frozen=True)
class GpuQueue:
    """What a dispatch knows of one live GPU queue."""

    name: str
    warm: str | None = None  # the engine it ran last, "<task kind>/<name>"
    waiting: int = 0
    running: int = 0
    runs_engine: bool = True  # its advert says the engine can run there

    @property
    def load(self) -> int:
        return self.waiting + self.running


def pick(queues: Sequence[GpuQueue], engine: str) -> str:
    """The queue for a step of ``engine`` (see the module docstring for the rule)."""
    able = [q for q in queues if q.runs_engine] or list(queues)
    if not able:
        return DEFAULT_GPU_QUEUE
    least = min(q.load for q in able)
    warm = [q for q in able if q.warm == engine and q.load <= least + WARM_BACKLOG]
    return min(warm or able, key=lambda q: (q.load, gpu_index(q.name))).name


def live_gpu_queues(client: redis.Redis, keys: RedisKeys) -> dict[str, set[str]]:
    """The GPU queues of the live adverts -> the engines ("<task kind>/<name>") healthy there."""
    ids = sorted(client.smembers(keys.workers))
    if not ids:
        return {}
    out: dict[str, set[str]] = {}
    for raw in client.mget([keys.worker(redis_text(i)) for i in ids]):
        if raw is None:  # expired: that worker is gone
            continue
        try:
            advert = json.loads(raw)
            queues = [q for q in advert.get("queues") or [] if isinstance(q, str) and is_gpu_queue(q)]
            healthy = {engine_id(e["taskKind"], e["name"]) for e in advert.get("engines") or [] if e.get("healthy")}
        except (ValueError, TypeError, KeyError, AttributeError):
            continue  # not ours to judge; the api validates adverts
        for q in queues:
            out.setdefault(q, set()).update(healthy)
    return out


def choose_gpu_queue(client: redis.Redis, keys: RedisKeys, engine: str) -> str:
    """The GPU queue for a step of ``engine`` now: reads the adverts, then each live queue's
    warm engine, waiting messages and running steps (two round trips)."""
    live = live_gpu_queues(client, keys)
    if len(live) <= 1:
        return next(iter(live), DEFAULT_GPU_QUEUE)
    names = sorted(live, key=gpu_index)
    pipe = client.pipeline(transaction=False)
    for q in names:
        pipe.get(warm_key(keys, q))
        pipe.llen(dramatiq_queue_key(keys, q))
        pipe.scard(running_key(keys, q))
    answers = pipe.execute()
    queues = []
    for i, q in enumerate(names):
        warm, waiting, running = answers[3 * i: 3 * i + 3]
        queues.append(GpuQueue(q, warm.decode() if warm else None, int(waiting), int(running), engine in live[q]))
    return pick(queues, engine)


def warm_engine(client: redis.Redis, keys: RedisKeys, queue: str) -> str | None:
    """The engine a GPU queue ran last ("<task kind>/<name>"), or None."""
    raw = client.get(warm_key(keys, queue))
    return None if raw is None else redis_text(raw)


def step_started(client: redis.Redis, keys: RedisKeys, queue: str, engine: str, message_id: str, ttl_s: int) -> None:
    """A step of ``engine`` begins on ``queue``: it is the card's warm engine now, and one more runs."""
    pipe = client.pipeline(transaction=True)
    pipe.set(warm_key(keys, queue), engine)
    pipe.sadd(running_key(keys, queue), message_id)
    pipe.expire(running_key(keys, queue), ttl_s + RUNNING_MARGIN_S)
    pipe.execute()


def step_ended(client: redis.Redis, keys: RedisKeys, queue: str, message_id: str) -> None:
    client.srem(running_key(keys, queue), message_id)
