"""BENCH/TEST-ONLY engine plugin: an engine named ``sleep`` for every task kind, whose steps sleep.

Each step sleeps LIKENESS_SLEEP_STEP_MS (default 200) and makes nothing, as ``noop`` does (the
machinery is noop_engines.py's, under this name): it stands in for a step's time on a GPU without
using the CPU, so that ``npm run bench:scale`` measures how completed jobs/s grow with worker
processes, not what the engines cost. Each step records which worker ran it and when (outputs
``ran``: worker, startedAtMs, endedAtMs).

Loaded only when named in WORKER_ENGINE_PLUGINS (``likeness_worker.bench.sleep_engines``), never by
default, and chosen per request (``engines: {image: "sleep", …}``). LIKENESS_SLEEP_PROGRESS:
progress reports per step, spread over its sleep (default 5).
"""

from __future__ import annotations

import os

from likeness_worker.engines import TASK_INTERFACES, EngineRegistry

from .noop_engines import register_as

NAME = "sleep"
STEP_S = float(os.environ.get("LIKENESS_SLEEP_STEP_MS", "200")) / 1000
PROGRESS_REPORTS = int(os.environ.get("LIKENESS_SLEEP_PROGRESS", "5"))


def register(registry: EngineRegistry) -> None:
    """The plugin's entry point (WORKER_ENGINE_PLUGINS=likeness_worker.bench.sleep_engines)."""
    register_as(registry, NAME, step_s=STEP_S, progress_reports=PROGRESS_REPORTS,
                doc="BENCH-ONLY: sleeps, standing in for GPU time (see bench/sleep_engines.py)")


SLEEP = {kind: NAME for kind in TASK_INTERFACES}
