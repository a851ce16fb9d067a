"""The job protocol, from packages/contracts (the single source of truth).

The TypeScript zod schemas are exported as JSON Schema (packages/contracts/schema/) and the
worker's types and tables are generated from them (likeness_worker/generated/, see
worker/scripts/generate_contracts.py). The worker validates every message it reads (job commands)
and every message it writes (events, progress, job results, its advertisement) against the same
JSON Schemas, so the two planes cannot drift apart silently. Redis key names come from the
exported templates too.

Compatibility (packages/contracts/src/json-schema.ts): unknown fields are ignored, so the api may
add an optional field without a new version; a command of a protocol version this worker does
not speak is refused with ``engine_unavailable`` (retryable: retry once the workers run the new
version), not as bad input.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError

from .generated.tables import (
    API_STEPS,
    GENERATE_VIDEO_STEPS,
    JOB_KINDS,
    JOB_RESULT_SCHEMA,
    PROTOCOL_VERSION,
    STEP_TASK,
    TRAIN_PROFILE_STEPS,
    JobKind,
    TaskKind,
)

_DEFAULT_DIR = Path(__file__).resolve().parents[2] / "packages" / "contracts"

# Task kinds the worker runs (llm runs in the api).
WORKER_TASK_KINDS: tuple[TaskKind, ...] = tuple(sorted({t for s, t in STEP_TASK.items() if s not in API_STEPS}))


class ProtocolError(ValueError):
    """A message does not match its schema. ``str()`` says where and why."""


class NewerProtocol(ProtocolError):
    """A command of a protocol version this worker does not speak (an api newer than it)."""


def contracts_dir() -> Path:
    override = os.environ.get("LIKENESS_CONTRACTS_DIR")
    return Path(override) if override else _DEFAULT_DIR


@dataclass(frozen=True)
class Schemas:
    job_command: Draft202012Validator
    job_event: Draft202012Validator
    progress: Draft202012Validator
    worker_advert: Draft202012Validator
    results: dict[str, Draft202012Validator]  # per job kind: its job_finished.result
    redis: dict[str, Any]


@lru_cache(maxsize=4)
def load_schemas(directory: Path | None = None) -> Schemas:
    base = (directory or contracts_dir()) / "schema"
    if not base.is_dir():
        raise FileNotFoundError(f"contract schemas not found at {base} (set LIKENESS_CONTRACTS_DIR)")

    def validator(name: str) -> Draft202012Validator:
        schema = json.loads((base / f"{name}.json").read_text())
        Draft202012Validator.check_schema(schema)
        return Draft202012Validator(schema, format_checker=FormatChecker())

    return Schemas(
        job_command=validator("job-command"),
        job_event=validator("job-event"),
        progress=validator("progress"),
        worker_advert=validator("worker-advert"),
        results={kind: validator(name) for kind, name in JOB_RESULT_SCHEMA.items()},
        redis=json.loads((base / "redis-keys.json").read_text()),
    )


def _check(v: Draft202012Validator, message: Any, what: str) -> None:
    errors = sorted(v.iter_errors(message), key=lambda e: list(e.absolute_path))
    if errors:
        # oneOf errors are vague on their own; the best_match context names the field.
        from jsonschema.exceptions import best_match

        best = best_match(errors)
        where = "/".join(str(p) for p in best.absolute_path) or "(root)"
        raise ProtocolError(f"invalid {what} at {where}: {best.message[:300]}")


def validate_command(message: Any) -> dict:
    version = message.get("v") if isinstance(message, dict) else None
    if isinstance(version, int) and not isinstance(version, bool) and version > PROTOCOL_VERSION:
        raise NewerProtocol(
            f"job command of protocol version {version}; this worker speaks version {PROTOCOL_VERSION}: "
            "upgrade the workers, then retry the job"
        )
    _check(load_schemas().job_command, message, "job command")
    return message


def validate_advert(message: Any) -> dict:
    _check(load_schemas().worker_advert, message, "worker advert")
    return message


def validate_result(kind: JobKind, result: Any) -> dict:
    """A job's result, before job_finished reports it: a wrong one fails the job here, naming the
    field, instead of being refused by the api after the whole run."""
    _check(load_schemas().results[kind], result, f"{kind} result")
    return result


def validate_event(message: Any) -> dict:
    _check(load_schemas().job_event, message, "job event")
    return message


def validate_progress(message: Any) -> dict:
    _check(load_schemas().progress, message, "progress message")
    return message


def redis_text(v: bytes | str) -> str:
    """A key, id or name as redis-py returns it (bytes: the worker's clients do not decode)."""
    return v.decode() if isinstance(v, bytes) else v


class RedisKeys:
    """Key names from schema/redis-keys.json, under one prefix."""

    def __init__(self, prefix: str, spec: dict[str, Any] | None = None) -> None:
        spec = spec or load_schemas().redis
        self.prefix = prefix
        self._t = spec["templates"]
        self.worker_group: str = spec["groups"]["worker"]
        self.field: str = spec["messageField"]
        self.maxlen: int = int(spec["streamMaxlen"])
        self.advert_ttl_heartbeats: int = int(spec["workerAdvertTtlHeartbeats"])

    def _fill(self, name: str, **parts: str) -> str:
        out = self._t[name].replace("{prefix}", self.prefix)
        for k, v in parts.items():
            out = out.replace("{" + k + "}", v)
        return out

    def job_stream(self, kind: str) -> str:
        return self._fill("jobStream", kind=kind)

    @property
    def events(self) -> str:
        return self._fill("events")

    def progress(self, job_id: str) -> str:
        return self._fill("progress", jobId=job_id)

    def cancel(self, job_id: str) -> str:
        return self._fill("cancel", jobId=job_id)

    def worker(self, worker_id: str) -> str:
        """This worker's engine advert (see advertise.py)."""
        return self._fill("worker", workerId=worker_id)

    @property
    def workers(self) -> str:
        """The set of advertising worker ids."""
        return self._fill("workers")

    # Worker-private keys (not shared with the api), under the same prefix.
    @property
    def dramatiq_namespace(self) -> str:
        return f"{self.prefix}:dramatiq"

    @property
    def results_namespace(self) -> str:
        return f"{self.prefix}:dramatiq-results"

    def owner(self, job_id: str, attempt: int) -> str:
        """The token of the worker that holds this job attempt (see fence.py)."""
        return f"{self.prefix}:owner:{job_id}:{attempt}"

    def step_runs(self, job_id: str, attempt: int, step: str) -> str:
        """How many times an actor began this step of this attempt (see actors/poison.py)."""
        return f"{self.prefix}:step-runs:{job_id}:{attempt}:{step}"

    @property
    def dead_letters(self) -> str:
        """Stream of the job commands given up as poison (see actors/poison.py)."""
        return f"{self.prefix}:jobs:dead"

    def step_started(self, message_id: str) -> str:
        """Set by an actor when it picks a step's message up (see graphs/nodes.py, _await)."""
        return f"{self.prefix}:dramatiq-started:{message_id}"



__all__ = [
    "redis_text",
    "API_STEPS",
    "GENERATE_VIDEO_STEPS",
    "JOB_KINDS",
    "PROTOCOL_VERSION",
    "STEP_TASK",
    "TRAIN_PROFILE_STEPS",
    "NewerProtocol",
    "ProtocolError",
    "RedisKeys",
    "ValidationError",
    "validate_command",
    "validate_event",
    "validate_advert",
    "validate_progress",
    "validate_result",
]
