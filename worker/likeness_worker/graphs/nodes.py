"""A graph node = one step: check cancel, reuse a finished step, or bind its declared inputs
(graphs/bindings.py) to what the steps before it made, dispatch it and await it.

Nodes never raise: a failed step becomes ``state.error`` and the later nodes skip themselves, so
the graph always reaches END and the bridge reports one job_finished.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, cast

from dramatiq.results import ResultFailure, ResultTimeout

from .. import metrics
from ..contracts import STEP_TASK
from ..engines import UnknownEngine
from ..errors import StepFailure
from ..fence import Fence, Fenced
from ..layout import done_key
from ..outage import RedisLost
from .bindings import Binding, bind_inputs
from .reuse import copy_outputs, input_hash, reusable
from .state import JobState

if TYPE_CHECKING:
    from dramatiq.results.backends import RedisBackend

    from ..generated.tables import StepName
    from ..runtime import Runtime

log = logging.getLogger(__name__)

WAIT_SLICE_MS = 1_000  # how often a waiting node looks at the cancel key
CANCEL_GRACE_S = 15.0  # after a cancel, how long to wait for the actor to stop by itself
RESULT_MARGIN_S = 60.0  # past the step time limit, how long the actor has to report it
MARKER_EVERY_SLICES = 5  # how often (in wait slices) a waiting node looks for the step's marker


class StepNode:
    def __init__(self, rt: Runtime, step: str, binding: Binding) -> None:
        self.rt = rt
        self.step = step
        # The DAGs' steps are the contracts' step names (tests/test_contracts.py checks it).
        self.task_kind = STEP_TASK[cast("StepName", step)]
        self.binding = binding  # input -> candidate steps, latest first (this DAG's table)

    def __call__(self, state: JobState) -> dict[str, Any]:
        if state.get("error") or state.get("cancelled"):
            return {}
        cmd = state["command"]
        job_id, attempt = cmd["jobId"], cmd["attempt"]
        ev = self.rt.events
        if self.rt.cancel_requested(job_id):
            return {"cancelled": True}

        try:
            engine, cls = self.rt.registry.resolve(self.task_kind, cmd.get("engines"))
        except UnknownEngine as exc:
            engine = (cmd.get("engines") or {}).get(self.task_kind, "?")[:64]
            error = StepFailure("bad_input", str(exc)).to_dict()
            ev.emit(job_id, attempt, "step_failed", step=self.step, engine=engine, error=error, durationMs=0)
            return {"error": {**error, "step": self.step}}

        marker = self.rt.storage.get_json_or_none(done_key(job_id, self.step))
        if marker is not None:
            return self._succeeded(cmd, marker, reused=True, duration_ms=0)

        try:
            inputs = bind_inputs(self.step, self.task_kind, self.binding, state.get("steps", {}))
        except StepFailure as exc:  # MissingInput: names the input and this step
            error = exc.to_dict()
            ev.emit(job_id, attempt, "step_failed", step=self.step, engine=engine, error=error, durationMs=0)
            return {"error": {**error, "step": self.step}}

        fence = self.rt.fences.get(job_id, attempt)
        settings_key = cls.settings_key()
        version = f"{cls.version}/{settings_key}" if settings_key else cls.version
        ihash = input_hash(self.task_kind, engine, version, cmd["payload"], inputs, self.rt.storage)
        source_job = cmd["payload"].get("reuseFrom")  # an edit's (generate_video only)
        if ihash is not None and source_job:
            marker = reusable(self.rt.storage, source_job, self.step, ihash)
            if marker is not None:
                return self._reuse(cmd, fence, marker, source_job)

        licence, non_commercial = cls.licence_terms()
        ev.emit(job_id, attempt, "step_started", step=self.step, engine=engine, licence=licence,
                nonCommercial=non_commercial)
        started = time.monotonic()
        request = {
            "jobId": job_id,
            "attempt": attempt,
            "step": self.step,
            "taskKind": self.task_kind,
            "engine": engine,
            "command": cmd,
            "inputs": inputs,  # the engine's declared inputs, bound here: it never names a step
            "inputHash": ihash,  # recorded in the marker: what an edit of this job compares
            # The actor runs the step, and writes its marker, only while this token owns the attempt.
            "owner": fence.token if fence else None,
        }
        queue = self.rt.queue_for(cls.device, self.task_kind, engine)
        result = self._await(self.rt.dispatch(self.task_kind, queue, request), job_id, attempt)
        duration_ms = round((time.monotonic() - started) * 1000, 1)
        if result.get("fenced"):  # the job is another worker's now: this run of it stops here
            raise fence.fenced() if fence else Fenced(f"job {job_id} attempt {attempt} was taken over")
        if result.get("ok"):
            return self._succeeded(cmd, result["done"], reused=bool(result.get("reused")), duration_ms=duration_ms)
        error = result["error"]
        ev.emit(job_id, attempt, "step_failed", step=self.step, engine=engine, error=error, durationMs=duration_ms)
        if error["code"] == "cancelled":
            return {"cancelled": True}
        return {"error": {**error, "step": self.step}}

    def _reuse(self, cmd: dict, fence: Fence | None, marker: dict[str, Any], source_job: str) -> dict[str, Any]:
        """An edit's step whose inputs are those of its source's step: that step's outputs, copied."""
        job_id, attempt = cmd["jobId"], cmd["attempt"]
        done = {**copy_outputs(self.rt.storage, marker, source_job, job_id), "attempt": attempt}
        if fence is not None:  # the marker is the owner's to write, as an actor's is
            self.rt.outages.call(lambda: self.rt.fences.check(fence.key, fence.token, fence), "check the job's owner")
        self.rt.storage.put_json(done_key(job_id, self.step), done)
        log.info("step %s of job %s: inputs unchanged since job %s, its outputs reused", self.step, job_id, source_job)
        return self._succeeded(cmd, done, reused=True, duration_ms=0)

    def _succeeded(self, cmd: dict, done: dict, *, reused: bool, duration_ms: float) -> dict[str, Any]:
        if reused:
            metrics.STEPS_REUSED.labels(self.step).inc()
        self.rt.events.emit(
            cmd["jobId"],
            cmd["attempt"],
            "step_succeeded",
            step=self.step,
            engine=done["engine"],
            artifacts=done["artifacts"],
            outputs=done.get("outputs", {}),
            durationMs=duration_ms if not reused else 0,
            reused=reused,
        )
        return {"steps": {self.step: done}}

    @property
    def _results(self) -> RedisBackend:
        results = self.rt.results
        assert results is not None, "wire_actors gives the runtime its result backend before any job runs"
        return results

    def _await(self, message, job_id: str, attempt: int) -> dict[str, Any]:
        try:
            return self._wait_for_result(message, job_id, attempt)
        finally:
            # Read or given up on, the result has served: without this its list (a key outside
            # our prefix, named by a hash) would sit in Redis for the whole result TTL.
            self.rt.redis.delete(
                self._results.build_message_key(message), self.rt.keys.step_started(message.message_id)
            )

    def _wait_for_result(self, message, job_id: str, attempt: int) -> dict[str, Any]:
        """Block on the actor's result, looking at the cancel key and two time limits.

        A step may wait WORKER_QUEUE_WAIT_S for an actor to pick it up (jobs piling up on one
        queue is not a step timing out); from then on (the actor marks the message started,
        see actors/middleware.py StepStarted) it has WORKER_STEP_TIMEOUT_S, the actor's own
        time limit, plus a margin for the actor to report that itself. A retry or a redelivery
        marks the message again and restarts the step's clock.
        """
        settings = self.rt.settings
        started_key = self.rt.keys.step_started(message.message_id)
        fence = self.rt.fences.get(job_id, attempt)
        owner_key = fence.key if fence else self.rt.keys.owner(job_id, attempt)
        queued_at = time.monotonic()
        started_at: float | None = None
        last_mark = None
        cancelled_at: float | None = None
        marker_seen = 0
        slices = 0
        while True:
            try:
                return self._results.get_result(message, block=True, timeout=WAIT_SLICE_MS)
            except ResultTimeout:
                pass
            except ResultFailure as exc:  # an exception escaped the actor (should not happen)
                return {"ok": False, "error": StepFailure("internal", str(exc)).to_dict()}
            now = time.monotonic()
            cancel, mark, owner = self.rt.redis.mget(self.rt.keys.cancel(job_id), started_key, owner_key)
            if fence is not None and owner != fence.token.encode():
                if owner is not None:
                    raise fence.fenced()
                # Our token is gone: Redis restarted without its data, and with it this step's
                # message and result. The DAG resumes from its checkpoint and sends the step again.
                raise RedisLost("Redis lost its data (the job's owner key is gone)")
            slices += 1
            if slices % MARKER_EVERY_SLICES == 0:
                # The marker is written before the result: a result lost in an outage would
                # otherwise leave this node waiting for the whole step time limit.
                marker_seen = marker_seen + 1 if self.rt.storage.exists(done_key(job_id, self.step)) else 0
                if marker_seen >= 2:
                    log.warning("step %s of job %s: finished (marker) but its result never came; going on", self.step, job_id)
                    return {"ok": True, "done": self.rt.storage.get_json(done_key(job_id, self.step)), "reused": False}
            if cancelled_at is None and cancel is not None:
                cancelled_at = now  # the actor sees the key too and stops its tool; give it a moment
            if cancelled_at is not None and now - cancelled_at > CANCEL_GRACE_S:
                return {"ok": False, "error": StepFailure("cancelled", "cancelled while running").to_dict()}
            if mark is not None and mark != last_mark:
                started_at, last_mark = now, mark
            if started_at is None and now - queued_at > settings.worker_queue_wait_s:
                return self._timeout(
                    f"step {self.step} waited {settings.worker_queue_wait_s} s on queue "
                    f"{message.queue_name} and no worker picked it up"
                )
            if started_at is not None and now - started_at > settings.worker_step_timeout_s + RESULT_MARGIN_S:
                return self._timeout(f"step {self.step} got no result within its time limit")

    @staticmethod
    def _timeout(message: str) -> dict[str, Any]:
        return {"ok": False, "error": StepFailure("timeout", message).to_dict()}
