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

The machinery is shared, under another name and step time, by ``sleep_engines`` (``npm run
bench:scale``): ``register_as``. Each step records in its outputs which worker process ran it and
when (``ran``), so a bench can tell from the step rows how the work was spread.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from typing import Any

from likeness_worker.engines import TASK_INTERFACES, Engine, EngineRegistry, StepOutput, TaskContext, engine
from likeness_worker.engines.base import LIKENESS_LICENCE
from likeness_worker.engines.ports import PORTS, TASK_PORTS

NAME = "noop"
PROGRESS_REPORTS = int(os.environ.get("LIKENESS_NOOP_PROGRESS", "5"))
STEP_S = float(os.environ.get("LIKENESS_NOOP_STEP_MS", "0")) / 1000


def _result(ctx: TaskContext, made: dict[str, str], name: str) -> dict[str, Any]:
    p = ctx.payload
    if ctx.command["kind"] == "train_profile":
        return {
            "portraitKey": made.get("portrait", ctx.key(f"portrait.{name}")),
            "faceBox": {"x": 0, "y": 0, "w": 1, "h": 1},
            "datasetKey": made.get("dataset", ctx.key(f"dataset.{name}")),
            "voiceReferenceKey": made.get("voice_reference", ctx.key(f"voice_reference.{name}")),
            "voiceProfileKey": made.get("voice_profile", ctx.key(f"voice_profile.{name}")),
            "acceptedImages": len(p.get("images", [])),
            "rejectedImages": [],
        }
    return {"videoKey": ctx.key(f"video.{name}"), "durationSec": 1.0, "width": p["width"], "height": p["height"], "fps": p["fps"]}


# The SHA-256 of no bytes: what a noop "object" is made of.
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def _worker_id() -> str:
    """The worker process that runs the step, named as its bridge's consumer (runtime.py)."""
    return f"{socket.gethostname()}-{os.getpid()}"


def _runner(name: str, step_s: float, progress_reports: int):
    """A step that reports its progress evenly over ``step_s`` of sleep and makes empty outputs."""

    def run(self: Engine, ctx: TaskContext) -> StepOutput:
        started_ms = time.time() * 1000
        pause = step_s / (progress_reports + 1)
        for i in range(progress_reports):
            if pause > 0:
                time.sleep(pause)
            ctx.progress((i + 1) / (progress_reports + 1), f"{name} {i + 1} of {progress_reports}")
        if pause > 0:
            time.sleep(pause)
        artifacts: list[dict[str, Any]] = []
        # Wall-clock ms (not monotonic): a bench lines them up across processes and with Postgres.
        outputs: dict[str, Any] = {name: True, "ran": {"worker": _worker_id(), "startedAtMs": round(started_ms, 1),
                                                      "endedAtMs": round(time.time() * 1000, 1)}}
        made: dict[str, str] = {}
        for port_name in TASK_PORTS[ctx.task_kind].outputs:
            port = PORTS[port_name]
            if port.artifact is not None:
                key = ctx.key(f"{port_name}.{name}")
                artifacts.append({"key": key, "kind": port.artifact, "contentType": "application/octet-stream",
                                  "bytes": 0, "sha256": EMPTY_SHA256, "meta": {name: True}})
                made[port_name] = key
            elif port_name == "result":
                # Takes nothing it needs from the inputs: their keys, when bound, name the assets.
                for input_name, record in (getattr(ctx, "inputs", None) or {}).items():
                    made.setdefault(input_name, record.get("key"))
                outputs["result"] = _result(ctx, made, name)
            elif port.field:
                # Its ref too, as a real engine's upload: the next step's input hash reads its sha256.
                outputs[port.field] = ctx.key(f"{port_name}.{name}")
                artifacts.append({"key": outputs[port.field], "kind": port_name, "contentType": "application/octet-stream",
                                  "bytes": 0, "sha256": EMPTY_SHA256, "meta": {name: True}})
        return StepOutput(artifacts, outputs)

    return run


def register_as(registry: EngineRegistry, name: str, *, step_s: float, progress_reports: int, doc: str) -> None:
    """Registers an engine called ``name`` for every task kind, each step ``step_s`` long."""
    run = _runner(name, step_s, progress_reports)
    for kind, (_protocol, verb) in TASK_INTERFACES.items():
        cls = type(f"{name.capitalize()}_{kind}", (Engine,), {verb: run, "licence": LIKENESS_LICENCE, "__doc__": doc})
        registry.add(engine(kind, name)(cls))


def register(registry: EngineRegistry) -> None:
    """The plugin's entry point (WORKER_ENGINE_PLUGINS=likeness_worker.bench.noop_engines)."""
    register_as(registry, NAME, step_s=STEP_S, progress_reports=PROGRESS_REPORTS,
                doc="BENCH-ONLY: does nothing (see bench/noop_engines.py)")


NOOP = {kind: NAME for kind in TASK_INTERFACES}
