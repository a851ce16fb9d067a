"""Run one job command from the stream to its job_finished event.

Exactly-once, as seen by the api:
  1. A command whose attempt marker ``jobs/<jobId>/_attempts/<attempt>.json`` exists has
     already finished: it is only XACKed again (redelivery after a crash is harmless).
  2. Otherwise the DAG runs (or resumes from its checkpoint); finished steps are reused.
  3. job_finished is XADDed, THEN the attempt marker is written, THEN the command is XACKed.
The one window left is a crash between XADD (3) and the marker: the redelivered command finds
the graph ended, XADDs job_finished again with the SAME eventId (uuid5 of jobId:attempt), and
the api drops the copy by eventId (and by the job's state).
After the XACK the attempt's LangGraph checkpoints are deleted (retention): the attempt marker
is what later redeliveries look at.
"""

from __future__ import annotations

import json
import logging
import re
from typing import TYPE_CHECKING, Any

from .. import metrics
from ..contracts import ProtocolError, validate_command
from ..errors import StepFailure
from ..events import job_finished_event_id
from ..layout import attempt_key

if TYPE_CHECKING:
    from ..graphs import JobGraphs
    from ..runtime import Runtime

log = logging.getLogger(__name__)

_UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[1-8][0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}$")


class JobRunner:
    def __init__(self, rt: "Runtime", graphs: "JobGraphs") -> None:
        self.rt = rt
        self.graphs = graphs

    def handle(self, stream: str, entry_id: str, fields: dict[bytes, bytes] | None) -> None:
        """Process one stream entry; XACK it when (and only when) it is settled."""
        raw = (fields or {}).get(self.rt.keys.field.encode())
        command: Any = None
        try:
            command = json.loads(raw) if raw is not None else None
            validate_command(command)
        except (ValueError, ProtocolError) as exc:
            self._refuse(command if isinstance(command, dict) else None, str(exc))
            self._ack(stream, entry_id)
            return
        job_id, attempt = command["jobId"], command["attempt"]
        if self.rt.storage.exists(attempt_key(job_id, attempt)):
            log.info("job %s attempt %s already finished: acknowledging the redelivery", job_id, attempt)
            self._ack(stream, entry_id)
            return

        log.info("job %s attempt %s (%s) started", job_id, attempt, command["kind"])
        self.rt.events.emit(job_id, attempt, "job_started", worker=self.rt.consumer_name[:200])
        try:
            final = self.graphs.run(command)
        except Exception as exc:  # a bug or Postgres gone: fail the job, do not loop on it
            log.exception("job %s crashed", job_id)
            final = {"error": StepFailure("internal", f"{type(exc).__name__}: {exc}").to_dict()}
        self._finish(command, final)
        self._ack(stream, entry_id)
        try:
            self.graphs.forget(command)
        except Exception as exc:  # retention only: never fail a finished job for it
            log.warning("could not delete the checkpoints of job %s: %s", job_id, exc)

    def _finish(self, command: dict, final: dict[str, Any]) -> None:
        job_id, attempt = command["jobId"], command["attempt"]
        fields: dict[str, Any]
        if final.get("cancelled"):
            fields = {"state": "cancelled", "error": StepFailure("cancelled", "cancelled by the user").to_dict()}
        elif final.get("error"):
            fields = {"state": "failed", "error": final["error"]}
        else:
            result = final["steps"]["publish"]["outputs"]["result"]
            fields = {"state": "succeeded", "result": result}
        self._report_finished(job_id, attempt, command["kind"], fields)
        log.info("job %s attempt %s %s", job_id, attempt, fields["state"])

    def _report_finished(self, job_id: str, attempt: int, kind: str, fields: dict[str, Any]) -> None:
        """job_finished on the events stream, THEN the attempt marker (see the module docstring)."""
        event = self.rt.events.emit(
            job_id, attempt, "job_finished", event_id=job_finished_event_id(job_id, attempt), **fields
        )
        self.rt.storage.put_json(attempt_key(job_id, attempt), event)
        metrics.JOBS_FINISHED.labels(kind, fields["state"]).inc()

    def _refuse(self, command: dict | None, reason: str) -> None:
        """An invalid command: tell the api (job_finished failed, bad_input) when it names a job."""
        job_id = (command or {}).get("jobId")
        if not isinstance(job_id, str) or not _UUID_RE.match(job_id):
            log.error("dropping a job command without a usable jobId: %s", reason)
            return
        attempt = command.get("attempt")  # type: ignore[union-attr]
        # An event needs attempt >= 1; a command with a broken attempt is reported as attempt 1.
        attempt = attempt if isinstance(attempt, int) and not isinstance(attempt, bool) and attempt >= 1 else 1
        log.warning("job %s refused: %s", job_id, reason)
        error = StepFailure("bad_input", reason).to_dict()
        kind = str(command.get("kind", "unknown"))[:32]  # type: ignore[union-attr]
        self._report_finished(job_id, attempt, kind, {"state": "failed", "error": error})

    def _ack(self, stream: str, entry_id: str) -> None:
        self.rt.redis.xack(stream, self.rt.keys.worker_group, entry_id)
