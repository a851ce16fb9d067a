"""BENCH/TEST-ONLY engine plugin: an engine named ``noop`` for every task kind, doing nothing.

Loaded only when named in WORKER_ENGINE_PLUGINS (``likeness_worker.bench.noop_engines``), never by
default, so no production worker advertises or runs it. ``npm run bench:control`` loads it and
selects it per request (``engines: {image: "noop", tts: "noop", …}``) to measure the control
plane alone: api, Redis, the bridge, the DAG, Dramatiq, events and progress, without media work.

Each noop step declares the ports its task kind makes (``engines/ports.py``) as artifacts of
0 bytes that are never written (``meta.noop: true``), so the DAG binds the next steps as it
would for real engines; publish returns a ProfileAssets or VideoResult made of such keys. Nothing
is uploaded: the only object a noop step leaves is its runtime marker.

Environment (read at import): LIKENESS_NOOP_PROGRESS, progress reports per step (default 5, as an
engine that reports its frames would, to exercise the coalescing of progress); LIKENESS_NOOP_STEP_MS,
how long each step pretends to work (default 0).
"""

from __future__ import annotations

import hashlib
import os
import time
from typing import Any

from likeness_worker.engines import TASK_INTERFACES, Engine, EngineRegistry, StepOutput, TaskContext, engine
from likeness_worker.engines.base import LIKENESS_LICENCE
from likeness_worker.engines.ports import PORTS, TASK_PORTS

NAME = "noop"
PROGRESS_REPORTS = int(os.environ.get("LIKENESS_NOOP_PROGRESS", "5"))
STEP_S = float(os.environ.get("LIKENESS_NOOP_STEP_MS", "0")) / 1000


def _result(ctx: TaskContext, made: dict[str, str]) -> dict[str, Any]:
    p = ctx.payload
    if ctx.command["kind"] == "train_profile":
        return {
            "portraitKey": made.get("portrait", ctx.key("portrait.noop")),
            "faceBox": {"x": 0, "y": 0, "w": 1, "h": 1},
            "datasetKey": made.get("dataset", ctx.key("dataset.noop")),
            "voiceReferenceKey": made.get("voice_reference", ctx.key("voice_reference.noop")),
            "voiceProfileKey": made.get("voice_profile", ctx.key("voice_profile.noop")),
            "acceptedImages": len(p.get("images", [])),
            "rejectedImages": [],
        }
    return {"videoKey": ctx.key("video.noop"), "durationSec": 1.0, "width": p["width"], "height": p["height"], "fps": p["fps"]}


# The SHA-256 of no bytes: what a noop "object" is made of.
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def _run(self: Engine, ctx: TaskContext) -> StepOutput:
    for i in range(PROGRESS_REPORTS):
        ctx.progress((i + 1) / (PROGRESS_REPORTS + 1), f"noop {i + 1} of {PROGRESS_REPORTS}")
    if STEP_S > 0:
        time.sleep(STEP_S)
    artifacts: list[dict[str, Any]] = []
    outputs: dict[str, Any] = {"noop": True}
    made: dict[str, str] = {}
    for port_name in TASK_PORTS[ctx.task_kind].outputs:
        port = PORTS[port_name]
        if port.artifact is not None:
            key = ctx.key(f"{port_name}.noop")
            artifacts.append({"key": key, "kind": port.artifact, "contentType": "application/octet-stream",
                              "bytes": 0, "sha256": EMPTY_SHA256, "meta": {"noop": True}})
            made[port_name] = key
        elif port_name == "result":
            # Takes nothing it needs from the inputs: their keys, when bound, name the assets.
            for name, record in (getattr(ctx, "inputs", None) or {}).items():
                made.setdefault(name, record.get("key"))
            outputs["result"] = _result(ctx, made)
        elif port.field:
            # Its ref too, as a real engine's upload: the next step's input hash reads its sha256.
            outputs[port.field] = ctx.key(f"{port_name}.noop")
            artifacts.append({"key": outputs[port.field], "kind": port_name, "contentType": "application/octet-stream",
                              "bytes": 0, "sha256": EMPTY_SHA256, "meta": {"noop": True}})
    return StepOutput(artifacts, outputs)


def register(registry: EngineRegistry) -> None:
    """The plugin's entry point (WORKER_ENGINE_PLUGINS=likeness_worker.bench.noop_engines)."""
    for kind, (_protocol, verb) in TASK_INTERFACES.items():
        cls = type(f"Noop_{kind}", (Engine,), {verb: _run, "licence": LIKENESS_LICENCE,
                                                 "__doc__": "BENCH-ONLY: does nothing (see bench/noop_engines.py)"})
        registry.add(engine(kind, NAME)(cls))


NOOP = {kind: NAME for kind in TASK_INTERFACES}
