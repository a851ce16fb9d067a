"""Deterministic storage keys of a job's outputs (docs/foundation.md, "Steps and storage keys").

Because every output has a key made from (jobId, step, file), a step can be re-run, redelivered
or retried and land on the same objects; ``_done.json`` (written last) says the step finished.
"""

from __future__ import annotations


def step_key(job_id: str, step: str, name: str) -> str:
    return f"jobs/{job_id}/{step}/{name}"


def done_key(job_id: str, step: str) -> str:
    """Marker holding the step's step_succeeded payload (artifacts, outputs, engine)."""
    return f"jobs/{job_id}/{step}/_done.json"


def attempt_key(job_id: str, attempt: int) -> str:
    """Terminal marker of one attempt: its job_finished event was XADDed to the events stream."""
    return f"jobs/{job_id}/_attempts/{attempt}.json"
