"""Run one job command from the stream to its job_finished event.

Exactly-once, as seen by the api:
  1. A command whose attempt marker ``jobs/<jobId>/_attempts/<attempt>.json`` exists has
     already finished: its job_finished (the marker holds it) is XADDed again, with the same
     eventId, and the entry is XACKed. A job_finished lost with Redis is thus rebuilt when the
     api re-sends the command; the api drops a copy it already has by eventId.
  2. Otherwise this worker takes the attempt (a fresh fencing token, see fence.py) and the DAG
     runs or resumes from its checkpoint; finished steps are reused. Redis or Postgres going away
     meanwhile is waited out (outage.py): the DAG resumes from its last checkpoint once they are back.
  3. job_finished is XADDed, THEN the attempt marker is written, THEN the command is XACKed.
The one window left is a crash between XADD (3) and the marker: the redelivered command finds
the graph ended, XADDs job_finished again with the SAME eventId (uuid5 of jobId:attempt), and
the api drops the copy by eventId (and by the job's state).
A worker that lost the attempt to another (it was paused past the reclaim time) stops at its
next event or marker, silently: the attempt is the other worker's now.
After the XACK the attempt's LangGraph checkpoints are deleted (retention): the attempt marker
is what later redeliveries look at.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from typing import TYPE_CHECKING, Any

import redis

from .. import metrics
from ..contracts import NewerProtocol, ProtocolError, validate_command, validate_result
from ..errors import StepFailure
from ..events import job_finished_event_id
from ..fence import OWNER_TTL_S, Fence, Fenced
from ..layout import attempt_key
from ..outage import transient_dependency

if TYPE_CHECKING:
    from ..graphs import JobGraphs
    from ..runtime import Runtime

log = logging.getLogger(__name__)

_UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[1-8][0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}$")


class JobRunner:
    def __init__(self, rt: Runtime, graphs: JobGraphs) -> None:
        self.rt = rt
        self.graphs = graphs
        # (stream, entry id) -> the fence of the job it runs; the bridge keeps only these alive.
        self.owned: dict[tuple[str, str], Fence] = {}

    def handle(self, stream: str, entry_id: str, fields: dict[bytes, bytes] | None) -> None:
        """Process one stream entry; XACK it when (and only when) it is settled."""
        raw = (fields or {}).get(self.rt.keys.field.encode())
        command: Any = None
        try:
            command = json.loads(raw) if raw is not None else None
            validate_command(command)
        except NewerProtocol as exc:
            self._refuse(command, str(exc), StepFailure("engine_unavailable", str(exc)))
            self._ack(stream, entry_id)
            return
        except (ValueError, ProtocolError) as exc:
            self._refuse(command if isinstance(command, dict) else None, str(exc))
            self._ack(stream, entry_id)
            return
        job_id, attempt = command["jobId"], command["attempt"]
        finished = self.rt.storage.get_json_or_none(attempt_key(job_id, attempt))
        if finished is not None:
            log.info("job %s attempt %s already finished: reporting it again and acknowledging", job_id, attempt)
            self.rt.events.send(finished)
            self._ack(stream, entry_id)
            return

        fence = Fence(job_id, attempt, self.rt.keys.owner(job_id, attempt), f"{self.rt.consumer_name}:{uuid.uuid4().hex[:12]}")
        if not self.rt.fences.hold(fence):
            # A copy of a command this process is running (the api re-sent it): the running one
            # reports and acknowledges its own entry.
            log.info("job %s attempt %s already runs here: acknowledging the copy", job_id, attempt)
            self._ack(stream, entry_id)
            return
        self.owned[(stream, entry_id)] = fence
        try:
            self.rt.outages.call(lambda: self.rt.redis.set(fence.key, fence.token, ex=OWNER_TTL_S), "take a job")
            log.info("job %s attempt %s (%s) started", job_id, attempt, command["kind"])
            self.rt.events.emit(job_id, attempt, "job_started", worker=self.rt.consumer_name[:200])
            self._finish(command, self._run(command))
        except Fenced:
            # No XACK either: the entry is the new owner's now.
            log.warning("job %s attempt %s was taken over by another worker: dropping it here", job_id, attempt)
            metrics.JOBS_FENCED.labels(command["kind"]).inc()
            return
        finally:
            self.rt.fences.release(fence)
            self.owned.pop((stream, entry_id), None)
        self._ack(stream, entry_id)
        try:
            self.graphs.forget(command)
        except Exception as exc:  # retention only: never fail a finished job for it
            log.warning("could not delete the checkpoints of job %s: %s", job_id, exc)

    def _run(self, command: dict) -> dict[str, Any]:
        """The DAG to its end. An outage interrupts it; it resumes from the last checkpoint once
        Redis and Postgres are back (Outages.call), for up to WORKER_OUTAGE_MAX_S."""
        job_id = command["jobId"]
        try:
            return self.rt.outages.call(lambda: self.graphs.run(command), f"job {job_id}")
        except Fenced:
            raise
        except Exception as exc:  # a bug, or an outage longer than allowed: fail the job, do not loop on it
            log.exception("job %s crashed", job_id)
            dependency = transient_dependency(exc)
            if dependency is not None:
                message = f"{dependency} unavailable for more than {self.rt.settings.worker_outage_max_s:.0f} s: {exc}"
                return {"error": StepFailure("internal", message).to_dict()}
            return {"error": StepFailure("internal", f"{type(exc).__name__}: {exc}").to_dict()}

    def _finish(self, command: dict, final: dict[str, Any]) -> None:
        job_id, attempt = command["jobId"], command["attempt"]
        fields: dict[str, Any]
        if final.get("cancelled"):
            fields = {"state": "cancelled", "error": StepFailure("cancelled", "cancelled by the user").to_dict()}
        elif final.get("error"):
            fields = {"state": "failed", "error": final["error"]}
        else:
            result = final["steps"]["publish"]["outputs"]["result"]
            try:
                fields = {"state": "succeeded", "result": validate_result(command["kind"], result)}
            except ProtocolError as exc:
                log.error("job %s attempt %s made an invalid result: %s", job_id, attempt, exc)
                # publish's marker stays, so a retry would reuse the same result: it cannot help.
                failure = StepFailure("internal", f"{exc} (the publish engine's result breaks its schema)", retryable=False)
                fields = {"state": "failed", "error": {**failure.to_dict(), "step": "publish"}}
        self._report_finished(job_id, attempt, command["kind"], fields)
        log.info("job %s attempt %s %s", job_id, attempt, fields["state"])

    def _report_finished(self, job_id: str, attempt: int, kind: str, fields: dict[str, Any]) -> None:
        """job_finished on the events stream, THEN the attempt marker (see the module docstring)."""
        event = self.rt.events.emit(
            job_id, attempt, "job_finished", event_id=job_finished_event_id(job_id, attempt), **fields
        )
        self.rt.storage.put_json(attempt_key(job_id, attempt), event)
        metrics.JOBS_FINISHED.labels(kind, fields["state"]).inc()

    def _refuse(self, command: dict | None, reason: str, failure: StepFailure | None = None) -> None:
        """An invalid command: tell the api (job_finished failed, bad_input unless ``failure``
        says otherwise) when it names a job."""
        job_id = (command or {}).get("jobId")
        if not isinstance(job_id, str) or not _UUID_RE.match(job_id):
            log.error("dropping a job command without a usable jobId: %s", reason)
            return
        attempt = command.get("attempt")  # type: ignore[union-attr]
        # An event needs attempt >= 1; a command with a broken attempt is reported as attempt 1.
        attempt = attempt if isinstance(attempt, int) and not isinstance(attempt, bool) and attempt >= 1 else 1
        log.warning("job %s refused: %s", job_id, reason)
        error = (failure or StepFailure("bad_input", reason)).to_dict()
        kind = str(command.get("kind", "unknown"))[:32]  # type: ignore[union-attr]
        self._report_finished(job_id, attempt, kind, {"state": "failed", "error": error})

    def _ack(self, stream: str, entry_id: str) -> None:
        def ack() -> None:
            try:
                self.rt.redis.xack(stream, self.rt.keys.worker_group, entry_id)
            except redis.ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                # Redis lost the stream with our entry: there is nothing left to acknowledge.

        self.rt.outages.call(ack, "acknowledge a command")
