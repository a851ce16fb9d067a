"""One Dramatiq actor per task kind (named after it); all share ``execute_step``.

An actor runs one step of one job: it skips the work when the step's ``_done.json`` exists (a
redelivered or duplicated message), runs the engine, uploads the outputs, writes the marker last
and returns a small dict that the graph node awaits through the Results backend:
``{"ok": true, "done": <marker>, "reused": bool}``, ``{"ok": false, "error": StepError}``, or
``{"ok": false, "fenced": true}`` when another worker has taken the job over (see fence.py).
"""

from __future__ import annotations

import logging
import shutil
import time
import uuid
from typing import TYPE_CHECKING, Any

import dramatiq
from dramatiq.middleware import CurrentMessage
from dramatiq.middleware.time_limit import TimeLimitExceeded

from .. import metrics
from ..contracts import WORKER_TASK_KINDS
from ..engines import TASK_INTERFACES, TaskContext, UnknownEngine
from ..errors import RETRY_POLICY, StepFailure, classify
from ..fence import Fenced
from ..layout import done_key
from . import gpu, poison
from .broker import RetryStep

if TYPE_CHECKING:
    from ..runtime import Runtime

log = logging.getLogger(__name__)


def execute_step(rt: Runtime, request: dict[str, Any]) -> dict[str, Any]:
    job_id, attempt, step = request["jobId"], int(request["attempt"]), request["step"]
    task_kind, engine_name = request["taskKind"], request["engine"]
    started = time.monotonic()

    marker = rt.storage.get_json_or_none(done_key(job_id, step))
    if marker is not None:
        return {"ok": True, "done": marker, "reused": True}
    owner = request.get("owner")
    if owner:
        # A message of a worker that lost the job (it was paused, or died and was re-queued
        # after another took over): the new owner runs the step.
        owner_key = rt.keys.owner(job_id, attempt)
        try:
            rt.outages.call(lambda: rt.fences.check(owner_key, owner), "check the job's owner")
        except Fenced as exc:
            log.warning("step %s of job %s: %s; not run", step, job_id, exc)
            return {"ok": False, "fenced": True}
    runs = poison.count_run(rt, job_id, attempt, step)
    if runs > rt.settings.worker_max_deliveries:
        return {"ok": False, "error": poison.dead_letter(rt, request, runs).to_dict(), "durationMs": 0}

    # One flat scratch folder per run of a step, removed afterwards (nothing per job is left behind).
    work_dir = rt.settings.worker_work_dir / f"{job_id}-{step}-{uuid.uuid4().hex[:8]}"
    on_gpu: gpu.GpuStep | None = None
    try:
        try:
            cls = rt.registry.resolve(task_kind, {task_kind: engine_name})[1]
        except UnknownEngine as exc:
            raise StepFailure("bad_input", str(exc)) from None

        def report_progress(fraction: float, message: str | None = None) -> None:
            rt.events.progress(job_id, attempt, step, fraction, message)

        ctx = TaskContext(
            job_id=job_id,
            attempt=attempt,
            step=step,
            task_kind=task_kind,
            engine=engine_name,
            work_dir=work_dir,
            storage=rt.storage,
            command=request["command"],
            inputs=request.get("inputs", {}),  # bound by the graph node (graphs/bindings.py)
            _progress=report_progress,
            _cancelled=rt.cancel_probe(job_id),
        )
        if ctx.cancelled():
            raise StepFailure("cancelled", "cancelled before the step started")
        rt.faults.before_step(step, attempt, ctx.cancelled, ctx.command)
        work_dir.mkdir(parents=True, exist_ok=True)
        # On a GPU queue: free what another engine left on the card, and say this one is warm there.
        current = CurrentMessage.get_current_message()
        if current is not None:
            on_gpu = gpu.before_step(rt, current.queue_name, current.message_id, task_kind, engine_name)
        out = getattr(cls(), TASK_INTERFACES[task_kind][1])(ctx)
        done = {
            "step": step,
            "engine": engine_name,
            "artifacts": out.artifacts,
            "outputs": out.outputs,
            "durationMs": round((time.monotonic() - started) * 1000, 1),
            "attempt": attempt,
            # What went in (graphs/reuse.py): an edit of this job reuses the step when it matches.
            "inputHash": request.get("inputHash"),
        }
        if owner:
            # Paused past the reclaim time while it ran? Then the marker is the new owner's to write.
            rt.outages.call(lambda: rt.fences.check(owner_key, owner), "check the job's owner")
        # Written LAST: its presence means every output above is complete.
        rt.storage.put_json(done_key(job_id, step), done)
        return {"ok": True, "done": done, "reused": False}
    except Fenced as exc:
        log.warning("step %s of job %s: %s; its marker is not written", step, job_id, exc)
        return {"ok": False, "fenced": True}
    except (Exception, TimeLimitExceeded) as exc:  # TimeLimitExceeded is a BaseException
        failure = classify(exc)
        if failure.code == "internal":
            log.exception("step %s of job %s failed", step, job_id)
        else:
            log.warning("step %s of job %s failed: %s: %s", step, job_id, failure.code, failure.message)
        message = CurrentMessage.get_current_message()
        retries = message.options.get("retries", 0) if message is not None else 0
        if RETRY_POLICY[failure.code].in_process and retries < rt.settings.worker_step_retries:
            metrics.STEP_RETRIES.labels(task_kind, engine_name, failure.code).inc()
            raise RetryStep(failure) from exc
        return {"ok": False, "error": failure.to_dict(), "durationMs": round((time.monotonic() - started) * 1000, 1)}
    finally:
        gpu.after_step(rt, on_gpu)
        shutil.rmtree(work_dir, ignore_errors=True)
        # Ended here, failed or not: this run did not kill the process.
        poison.clear_runs(rt, job_id, attempt, step)


def declare_actors(rt: Runtime) -> dict[str, dramatiq.Actor]:
    """One actor per task kind the worker runs. The queue is chosen per message (engine device)."""
    assert rt.broker is not None, "wire_actors builds the broker before it declares the actors"
    actors: dict[str, dramatiq.Actor] = {}
    for kind in WORKER_TASK_KINDS:

        def run(request: dict[str, Any], _rt: Runtime = rt) -> dict[str, Any]:
            return execute_step(_rt, request)

        run.__name__ = kind
        actors[kind] = dramatiq.Actor(
            run,
            broker=rt.broker,
            actor_name=kind,
            queue_name="cpu",
            priority=0,
            options={"store_results": True, "max_retries": rt.settings.worker_step_retries},
        )
    return actors
