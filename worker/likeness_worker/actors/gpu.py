"""What an actor does around a step it takes from a GPU queue (``gpu0``, ``gpu1``…).

Before: reads the engine the queue ran last (placement.py), frees what that engine left on the
card (engines/gpu/vram.py), then records this engine as the card's warm one and the step as
running there, so that the next dispatches see both. After: the step no longer runs there.
Nothing here fails a step: a Redis error costs only the placement hint, and is logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import redis

from .. import placement
from ..engines import Engine, UnknownEngine
from ..engines.gpu.vram import make_room

if TYPE_CHECKING:
    from ..runtime import Runtime

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GpuStep:
    queue: str
    message_id: str


def before_step(rt: Runtime, queue: str | None, message_id: str, task_kind: str, name: str) -> GpuStep | None:
    """Called by the actor just before it runs an engine; None when the step is not on a GPU queue."""
    if not placement.is_gpu_queue(queue):
        return None
    assert queue is not None
    current = placement.engine_id(task_kind, name)
    try:
        previous = placement.warm_engine(rt.redis, rt.keys, queue)
    except redis.RedisError as exc:
        log.warning("%s: could not read the engine it ran last: %s", queue, exc)
        previous = None
    s = rt.settings
    make_room(
        previous,
        _engine_class(rt, previous),
        task_kind,
        name,
        current_cls=_engine_class(rt, current),
        comfyui_url=s.comfyui_url,
        ollama_url=s.worker_ollama_url,
        comfyui_timeout_s=s.comfyui_request_timeout_s,
    )
    try:
        placement.step_started(rt.redis, rt.keys, queue, current, message_id, s.worker_step_timeout_s)
    except redis.RedisError as exc:
        log.warning("%s: could not record %s as its warm engine: %s", queue, current, exc)
    return GpuStep(queue, message_id)


def after_step(rt: Runtime, step: GpuStep | None) -> None:
    if step is None:
        return
    try:
        placement.step_ended(rt.redis, rt.keys, step.queue, step.message_id)
    except redis.RedisError as exc:  # the mark expires with the step time limit
        log.warning("%s: could not clear a finished step's running mark: %s", step.queue, exc)


def _engine_class(rt: Runtime, engine: str | None) -> type[Engine] | None:
    if not engine:
        return None
    task_kind, _, name = engine.partition("/")
    try:
        return rt.registry.resolve(task_kind, {task_kind: name})[1]
    except UnknownEngine:  # an engine this worker does not have
        return None
