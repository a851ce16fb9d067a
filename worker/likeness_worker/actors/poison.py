"""Poison jobs: a step that kills its worker process (a segfault, the OOM killer, a hard exit).

Every time an actor begins a step of a job attempt it counts the run in Redis, BEFORE running
it, under ``{prefix}:step-runs:{jobId}:{attempt}:{step}``; the count goes when the run ends in
the process, succeeded or failed (a failure that is only an error is retried by the usual rules).
Whichever way the step comes back after a death (the job command reclaimed by
another worker, the dead worker's Dramatiq message re-queued, the api re-sending the command),
it is counted again, so a kill loop cannot get around the limit. Past WORKER_MAX_DELIVERIES runs
the step is not run again: its job command goes to ``{prefix}:jobs:dead`` and the step fails,
which fails the job with a message that says so.

A worker killed for another reason (a deploy, a chaos drill) costs each job only the one step
that was running on it, so an innocent job does not reach the limit by bad luck.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from .. import metrics
from ..errors import StepFailure
from ..fence import OWNER_TTL_S

if TYPE_CHECKING:
    from redis.typing import EncodableT, FieldT

    from ..runtime import Runtime

log = logging.getLogger(__name__)


def count_run(rt: Runtime, job_id: str, attempt: int, step: str) -> int:
    """This run's number (1 for the first)."""
    key = rt.keys.step_runs(job_id, attempt, step)

    def incr() -> int:
        pipe = rt.redis.pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, OWNER_TTL_S)
        return int(pipe.execute()[0])

    return rt.outages.call(incr, "count a step run")


def clear_runs(rt: Runtime, job_id: str, attempt: int, step: str) -> None:
    key = rt.keys.step_runs(job_id, attempt, step)
    rt.outages.call(lambda: rt.redis.delete(key), "clear a step's runs")


def dead_letter(rt: Runtime, request: dict[str, Any], runs: int) -> StepFailure:
    """Sets the job's command aside and returns the failure to report for the step."""
    command, step = request["command"], request["step"]
    keys, limit = rt.keys, rt.settings.worker_max_deliveries
    entry: dict[FieldT, EncodableT] = {
        keys.field: json.dumps(command, separators=(",", ":")),
        "step": step,
        "deaths": str(runs - 1),
        "worker": rt.consumer_name,
    }
    if runs == limit + 1:  # once: a stale copy of the message fails the same way, silently
        rt.outages.call(lambda: rt.redis.xadd(keys.dead_letters, entry, maxlen=10_000, approximate=True), "dead-letter")
        metrics.JOBS_DEAD_LETTERED.labels(command["kind"]).inc()
    message = (
        f"dead-lettered: step {step} never ended in {runs - 1} runs, its worker process died each time "
        f"(WORKER_MAX_DELIVERIES={limit}); it is not run again and the job's command is kept on "
        f"{keys.dead_letters}. Retry the job once the cause is fixed."
    )
    log.error("job %s attempt %s: %s", request["jobId"], request["attempt"], message)
    return StepFailure("internal", message)
