"""BENCH-ONLY: the CPU floor of the worker's chosen machinery, with nothing of ours around it.

``npm run bench:control`` runs ``python -m likeness_worker.bench.floor`` and prints what it finds
(``… floor JOBS``, default 200) next to the control-plane figures: what one job costs at the very least in LangGraph (the video
DAG's shape, with and without the Postgres checkpointer) and in Dramatiq (a message sent, run by
an actor and its result read back), measured as this process's CPU time per job or per message.
Everything runs in this one process (both sides of Dramatiq included), on throwaway thread ids
and a throwaway Dramatiq namespace. Prints one JSON object.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.results import Results
from dramatiq.results.backends import RedisBackend

from ..graphs.build import compile_dag
from ..graphs.checkpointer import open_checkpointer
from ..graphs.dag import DAGS

PIPELINE = "sadtalker"  # the default video DAG: 6 steps, one fan-in


def _cpu_ms_per(n: int, fn) -> float:
    c0 = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - c0) * 1000 / n


def _graph(checkpointer: Any):
    """The video DAG as the worker compiles it, each node an empty step."""
    return compile_dag(
        DAGS[PIPELINE],
        lambda step: lambda _state: {"steps": {step: {"engine": "noop", "artifacts": [], "outputs": {}}}},
        checkpointer,
    )


def langgraph_floor(database_url: str, jobs: int) -> dict[str, float]:
    command = {"jobId": str(uuid.uuid4()), "attempt": 1, "kind": "generate_video", "payload": {"pipeline": PIPELINE}}
    start = {"command": command, "steps": {}, "error": None, "cancelled": False}
    bare = _graph(None)
    saver, pool = open_checkpointer(database_url, max_size=4)
    kept = _graph(saver)
    threads: list[str] = []

    def checkpointed(durability: str):
        def run() -> None:
            thread = f"floor-{uuid.uuid4()}"
            threads.append(thread)
            kept.invoke(start, {"configurable": {"thread_id": thread}}, durability=durability)

        return run

    try:
        for _ in range(10):  # warm-up
            bare.invoke(start)
            checkpointed("async")()
        return {
            "langgraph_py_bare_ms": _cpu_ms_per(jobs, lambda: bare.invoke(start)),
            "langgraph_py_async_ms": _cpu_ms_per(jobs, checkpointed("async")),
            "langgraph_py_exit_ms": _cpu_ms_per(jobs, checkpointed("exit")),
        }
    finally:
        for thread in threads:
            saver.delete_thread(thread)
        pool.close()


def dramatiq_floor(redis_url: str, messages: int) -> dict[str, float]:
    namespace = f"likeness-floor-{uuid.uuid4().hex[:8]}"
    broker = RedisBroker(url=redis_url, namespace=namespace)
    backend = RedisBackend(url=redis_url, namespace=f"{namespace}-results", use_namespace_prefix_keys=True)
    broker.add_middleware(Results(backend=backend))

    def run(request: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "done": request}

    actor = dramatiq.Actor(
        run, broker=broker, actor_name="floor", queue_name="floor", priority=0, options={"store_results": True}
    )
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=50)
    worker.start()
    request = {"jobId": str(uuid.uuid4()), "attempt": 1, "step": "image", "payload": {"narration": "x" * 300}}

    def round_trip() -> None:
        message = actor.send(request)
        message.get_result(backend=backend, block=True, timeout=10_000)
        backend.client.delete(backend.build_message_key(message))

    try:
        for _ in range(20):
            round_trip()
        return {"dramatiq_round_trip_ms": _cpu_ms_per(messages, round_trip)}
    finally:
        worker.stop()
        for key in broker.client.scan_iter(f"{namespace}*"):
            broker.client.delete(key)
        broker.close()


def main() -> None:
    jobs = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    out = {
        "pipeline": PIPELINE,
        "steps": len(DAGS[PIPELINE]),
        **langgraph_floor(os.environ["DATABASE_URL"], jobs),
        **dramatiq_floor(os.environ["REDIS_URL"], jobs),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
