"""`likeness-worker`: the bridge, the Dramatiq workers for WORKER_QUEUES, and /metrics.

One process, plus one child process per GPU of WORKER_GPUS (gpus.py: each consumes only its
card's queue ``gpu<i>``, with CUDA_VISIBLE_DEVICES=<i>; ``--gpu-child`` runs one). Each queue gets
one Dramatiq worker with ONE thread (GPU rule: one model per card, no thread pool fighting over
VRAM). The bridge runs in its own thread; the main thread waits for a signal and starts again a
GPU child that died. SIGTERM stops the bridge taking new jobs, lets running jobs (and the GPU
children's steps) go on for WORKER_SHUTDOWN_GRACE_S, then exits 0; a job still running then stays
pending (its command is not acked) and another worker reclaims it, reusing the steps that finished.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time

from .config import ConfigError, load_settings
from .contracts import JOB_KINDS, WORKER_TASK_KINDS, load_schemas
from .engines import load_engines
from .log import setup_logging

log = logging.getLogger("likeness_worker")

CONNECT_TIMEOUT_S = 10


def _refuse(message: str) -> int:
    print(f"likeness-worker: {message}", file=sys.stderr)
    return 2


def _without(secret: str | None, text: str) -> str:
    return text.replace(secret, "***") if secret else text


def check_services(settings, *, postgres: bool = True) -> str | None:
    """Reach Redis and Postgres once before anything starts; a message naming the variable if not.

    Driver messages name host, port and user, never the password (removed here all the same).
    """
    from urllib.parse import urlsplit

    import psycopg
    import redis

    url = settings.redis_url.get_secret_value()
    try:
        redis.Redis.from_url(url, socket_connect_timeout=CONNECT_TIMEOUT_S, socket_timeout=CONNECT_TIMEOUT_S).ping()
    except (redis.RedisError, ValueError, OSError) as exc:
        return _without(urlsplit(url).password, f"REDIS_URL: cannot use Redis: {exc}")
    if not postgres:  # a GPU child: it runs steps, never a job's DAG
        return None
    url = settings.database_url.get_secret_value()
    try:
        psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S).close()
    except (psycopg.Error, ValueError, OSError) as exc:
        return _without(urlsplit(url).password, f"DATABASE_URL: cannot use Postgres: {str(exc).strip()}")
    return None


def _warm(engines: list, advertiser=None) -> None:
    """Load the default engines' models while the worker starts taking jobs, so that the first
    video does not wait for them; a failure here only costs that time later, in the step (and the
    engine is advertised as not healthy, with the reason)."""
    from . import metrics

    failed = 0
    for cls in dict.fromkeys(engines):
        try:
            t0 = time.monotonic()
            cls.warm()
            log.debug("warmed %s/%s in %.2f s", cls.task_kind, cls.name, time.monotonic() - t0)
        except Exception as exc:  # noqa: BLE001 — the step will load it again and report a real error
            failed += 1
            log.warning("warming %s/%s failed", cls.task_kind, cls.name, exc_info=True)
            if advertiser is not None:
                advertiser.mark_problem(cls.task_kind, cls.name, f"its model did not load: {type(exc).__name__}: {exc}")
                advertiser.publish_soon()
    if not failed:
        metrics.ENGINES_WARM.set(1)


def _arguments(argv: list[str] | None):
    import argparse

    parser = argparse.ArgumentParser(prog="likeness-worker", description="The Likeness worker (configured by its "
                                     "environment: see deploy/.env.example).")
    # Internal: how a worker with WORKER_GPUS starts its GPU children (gpus.py).
    parser.add_argument("--gpu-child", type=int, metavar="INDEX", help=argparse.SUPPRESS)
    parser.add_argument("--parent-pid", type=int, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _consume(broker, settings, queues: tuple[str, ...]) -> list:
    import dramatiq

    workers = []
    for queue in queues:
        # worker_timeout caps the idle poll's back-off: at 500 ms every step of a job waited
        # ~0.3 s to be picked up (2 s on a 15 s video); 50 ms costs 20 light Redis calls a second.
        threads = settings.worker_step_threads
        w = dramatiq.Worker(broker, queues={queue}, worker_threads=threads, worker_timeout=50)
        w.queue_prefetch = threads  # a waiting step stays in Redis for any idle worker, not in our cache
        w.start()
        workers.append(w)
    return workers


def _engines_to_warm(registry, queues: tuple[str, ...]) -> list:
    """The default engines whose steps this process runs (a GPU engine's model loads in its GPU child)."""
    from .placement import consumes

    return [cls for cls in registry.defaults(WORKER_TASK_KINDS) if consumes(cls.device, queues)]


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    if args.gpu_child is not None:
        from .gpus import die_with_parent

        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops its children itself
        if args.parent_pid is None or not die_with_parent(args.parent_pid):
            return 0
    try:
        settings = load_settings()
    except ConfigError as exc:
        return _refuse(str(exc))
    setup_logging(settings.log_level)
    try:
        load_schemas()
        registry = load_engines(settings.worker_engine_plugins)
        registry.check_settings()  # each engine's own group (REALESRGAN_*, KOHYA_*…), once, at start-up
    except (FileNotFoundError, ImportError, ConfigError) as exc:
        return _refuse(str(exc))
    missing = registry.missing_defaults(WORKER_TASK_KINDS)
    if missing:
        return _refuse(f"no default engine registered for task kind(s): {', '.join(missing)}")
    if args.gpu_child is not None:
        return gpu_child(settings, registry, args.gpu_child, args.parent_pid)
    problem = check_services(settings)
    if problem:
        return _refuse(problem)
    if settings.likeness_test_faults:
        log.warning("LIKENESS_TEST_FAULTS is set (%s): TEST-ONLY fault injection is active", settings.likeness_test_faults)

    from prometheus_client import start_http_server

    from . import metrics
    from .actors import wire_actors
    from .advertise import Advertiser
    from .bridge import Bridge, JobRunner
    from .gpus import GpuChildren
    from .graphs import JobGraphs
    from .graphs.checkpointer import open_checkpointer
    from .runtime import build_runtime

    try:
        rt = build_runtime(settings, registry)
        wire_actors(rt)
        broker = rt.broker
        assert broker is not None  # wire_actors set it
        saver, pg_pool = open_checkpointer(settings.database_url.get_secret_value(), max_size=settings.worker_max_jobs + 2)
        bridge = Bridge(rt, JobRunner(rt, JobGraphs(rt, saver)))
        if settings.worker_metrics_port:
            metrics.register_queue_depths(rt.queue_depths)
            metrics.init_series(JOB_KINDS)
            start_http_server(settings.worker_metrics_port)
            log.info("metrics on :%d/metrics", settings.worker_metrics_port)
    except Exception as exc:  # e.g. no right to create the checkpoint schema, metrics port taken
        log.debug("start-up failed", exc_info=True)
        from urllib.parse import urlsplit

        message = f"cannot start: {type(exc).__name__}: {exc}"
        for url in (settings.database_url, settings.redis_url):
            message = _without(urlsplit(url.get_secret_value()).password, message)
        return _refuse(message)

    workers = _consume(broker, settings, settings.own_queues)
    children = GpuChildren(settings)
    children.start()
    log.info("worker %s: queues %s%s", rt.consumer_name, ", ".join(settings.own_queues) or "none",
             f"; GPU children on {', '.join(settings.gpu_queues)}" if settings.gpu_queues else "")
    # The api offers (GET /v1/engines) and accepts (a request's `engines`) what the live workers
    # advertise: written now, then every heartbeat; withdrawn on the way out.
    advertiser = Advertiser.for_runtime(rt)
    advertiser.start()
    # Only now, with start-up done: a model loading in native code must not be interrupted by an
    # exit (it is joined on the way out).
    warm = threading.Thread(target=_warm, args=(_engines_to_warm(registry, settings.own_queues), advertiser),
                            name="warm-engines", daemon=True)
    warm.start()

    stop = threading.Event()

    def on_signal(signum, _frame):
        log.info("signal %d: shutting down", signum)
        stop.set()
        bridge.stop_event.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    bridge_thread = threading.Thread(target=bridge.run, name="bridge", daemon=True)
    bridge_thread.start()
    while not stop.wait(0.5):
        if not bridge_thread.is_alive():
            log.error("bridge thread died; exiting")
            break
        children.supervise()

    advertiser.stop()  # no new job should count on this worker's engines
    children.terminate()  # they stop their steps in the same grace period
    # One grace period for everything: jobs first, then the step an actor may still be running.
    deadline = time.monotonic() + settings.worker_shutdown_grace_s
    bridge.stop(settings.worker_shutdown_grace_s)
    for w in workers:
        w.stop(timeout=max(100, int((deadline - time.monotonic()) * 1000)))
    children.wait(deadline)
    broker.close()
    pg_pool.close()
    warm.join(timeout=30)
    if bridge.inflight:
        # Job threads still wait on steps; their commands stay pending and are reclaimed
        # elsewhere. Exit now instead of joining them.
        log.info("bye (jobs left for other workers)")
        logging.shutdown()
        os._exit(0)
    log.info("bye")
    return 0


def gpu_child(settings, registry, index: int, parent_pid: int) -> int:
    """One GPU's process (``--gpu-child``, started by gpus.GpuChildren): Dramatiq actors on its
    queue, its own advert and /metrics, no bridge. Stops on SIGTERM, or when its parent is gone."""
    problem = check_services(settings, postgres=False)
    if problem:
        return _refuse(problem)

    from prometheus_client import start_http_server

    from .actors import wire_actors
    from .advertise import Advertiser
    from .runtime import build_runtime

    try:
        rt = build_runtime(settings, registry)
        wire_actors(rt)
        assert rt.broker is not None
        if settings.worker_metrics_port:
            start_http_server(settings.worker_metrics_port)
    except Exception as exc:  # e.g. its metrics port taken
        log.debug("start-up failed", exc_info=True)
        from urllib.parse import urlsplit

        message = f"GPU {index}: cannot start: {type(exc).__name__}: {exc}"
        for url in (settings.database_url, settings.redis_url):
            message = _without(urlsplit(url.get_secret_value()).password, message)
        return _refuse(message)

    workers = _consume(rt.broker, settings, settings.own_queues)
    log.info("GPU %d: worker %s consumes %s; parent %d", index, rt.consumer_name, ", ".join(settings.own_queues),
             parent_pid)
    advertiser = Advertiser.for_runtime(rt)
    advertiser.start()
    threading.Thread(target=_warm, args=(_engines_to_warm(registry, settings.own_queues), advertiser),
                     name="warm-engines", daemon=True).start()

    stop = threading.Event()

    def on_signal(signum, _frame):
        log.info("GPU %d: signal %d: shutting down", index, signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    while not stop.wait(0.5):
        if os.getppid() != parent_pid:  # PR_SET_PDEATHSIG's backstop
            log.warning("GPU %d: parent %d is gone; shutting down", index, parent_pid)
            break
    advertiser.stop()
    deadline = time.monotonic() + settings.worker_shutdown_grace_s
    for w in workers:
        w.stop(timeout=max(100, int((deadline - time.monotonic()) * 1000)))
    rt.broker.close()
    log.info("GPU %d: bye", index)
    logging.shutdown()
    os._exit(0)  # a step still running in native code is not waited for: its message is redelivered


if __name__ == "__main__":
    sys.exit(main())
