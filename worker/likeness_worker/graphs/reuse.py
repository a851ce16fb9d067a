"""Edit and re-render: a step of an edit's job takes the outputs of its source job's step instead
of running, when exactly the same inputs went into it.

A step's *input hash* covers everything its engine can read: the task kind, the engine's name
and version, the payload fields its task kind declares (``ports.TASK_PARAMS``, all an engine sees
of the payload) and the content (SHA-256) of each input bound to it. The actor records it in the
step's ``_done.json``. An edit's command names its source job (``payload.reuseFrom``); the graph
node computes the hash of its own step and, when the source's marker records the same one, copies
the source's objects into this job's folder (the source stays as it was, and either can be
deleted without the other) and writes this step's marker, saying where it came from.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..engines.base import file_sha256
from ..engines.ports import TASK_PARAMS, params_view
from ..layout import done_key, job_prefix
from ..storage import ObjectMissing

if TYPE_CHECKING:
    from ..storage import Storage


def input_hash(
    task_kind: str, engine: str, version: str, payload: dict[str, Any], inputs: dict[str, dict[str, Any]], storage: Storage
) -> str | None:
    """The step's input hash; None for a task kind that is never reused across jobs, or when an
    input's object is missing (the step then runs, and its engine says what is missing)."""
    if TASK_PARAMS.get(task_kind) is None:
        return None
    try:
        contents = {name: _content(rec, storage) for name, rec in sorted(inputs.items())}
    except ObjectMissing:
        return None
    doc = {
        "taskKind": task_kind,
        "engine": engine,
        "version": version,
        "params": params_view(task_kind, payload),
        "inputs": contents,
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _content(record: dict[str, Any], storage: Storage) -> str:
    """What an input is: its recorded SHA-256, else (an object made before artifacts carried one)
    the hash of the object itself."""
    ref = record.get("ref") or {}
    if ref.get("sha256"):
        return str(ref["sha256"])
    key = record.get("key")
    if not isinstance(key, str):  # a value, not an object
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
    with tempfile.TemporaryDirectory(prefix="likeness-hash-") as tmp:
        return file_sha256(storage.get_file(key, Path(tmp) / "object"))


def reusable(storage: Storage, source_job: str, step: str, ihash: str) -> dict[str, Any] | None:
    """The source job's marker of ``step`` when it recorded the same input hash."""
    marker = storage.get_json_or_none(done_key(source_job, step))
    return marker if marker is not None and marker.get("inputHash") == ihash else None


def copy_outputs(storage: Storage, marker: dict[str, Any], source_job: str, job_id: str) -> dict[str, Any]:
    """The source step's record with its keys moved into this job's folder, and each object it
    names there (its artifacts, and a key in its outputs such as a video passed through) copied."""
    src, dst = job_prefix(source_job), job_prefix(job_id)
    moved_keys: set[str] = set()

    def moved(value: Any) -> Any:
        if isinstance(value, str) and value.startswith(src):
            moved_keys.add(value)
            return dst + value[len(src):]
        if isinstance(value, dict):
            return {k: moved(v) for k, v in value.items()}
        if isinstance(value, list):
            return [moved(v) for v in value]
        return value

    artifacts, outputs = moved(marker.get("artifacts") or []), moved(marker.get("outputs") or {})
    types = {ref["key"]: ref.get("contentType") for ref in marker.get("artifacts") or []}
    for key in sorted(moved_keys):
        storage.copy(key, dst + key[len(src):], types.get(key) or "application/octet-stream")
    return {**marker, "artifacts": artifacts, "outputs": {**outputs, "reusedFrom": source_job}}
