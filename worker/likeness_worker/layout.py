"""Deterministic storage keys of a job's outputs, from the contracts' templates
(``STORAGE_KEYS``, generated from packages/contracts/src/storage-keys.ts).

Because every output has a key made from (jobId, step, file), a step can be re-run, redelivered
or retried and land on the same objects; ``_done.json`` (written last) says the step finished.
"""

from __future__ import annotations

from .generated.tables import STORAGE_KEYS


def _fill(template: str, **parts: object) -> str:
    for name, value in parts.items():
        template = template.replace("{" + name + "}", str(value))
    if "{" in template:
        raise ValueError(f"storage key template left unfilled: {template}")
    return template


def job_prefix(job_id: str) -> str:
    """The folder of everything one job made (``jobs/<jobId>/``)."""
    return _fill(STORAGE_KEYS["job"], jobId=job_id)


def step_key(job_id: str, step: str, name: str) -> str:
    return _fill(STORAGE_KEYS["stepFile"], jobId=job_id, step=step, name=name)


def done_key(job_id: str, step: str) -> str:
    """Marker holding the step's step_succeeded payload (artifacts, outputs, engine)."""
    return _fill(STORAGE_KEYS["stepDone"], jobId=job_id, step=step)


def attempt_key(job_id: str, attempt: int) -> str:
    """Terminal marker of one attempt: its job_finished event was XADDed to the events stream."""
    return _fill(STORAGE_KEYS["attemptDone"], jobId=job_id, attempt=attempt)
