"""Prometheus metrics of the worker (/metrics on WORKER_METRICS_PORT)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

log = logging.getLogger(__name__)

STEP_SECONDS = Histogram(
    "likeness_worker_step_duration_seconds",
    "Wall time of one step run by an actor",
    ["task", "engine", "outcome"],
    buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 1800, 3600),
)
STEP_FAILURES = Counter("likeness_worker_step_failures_total", "Steps that failed for good", ["task", "engine", "code"])
STEP_RETRIES = Counter("likeness_worker_step_retries_total", "In-process retries of a step", ["task", "engine", "code"])
STEPS_REUSED = Counter("likeness_worker_steps_reused_total", "Steps whose outputs already existed", ["step"])
JOBS_FINISHED = Counter("likeness_worker_jobs_finished_total", "Jobs finished by this worker", ["kind", "state"])
JOBS_RECLAIMED = Counter("likeness_worker_jobs_reclaimed_total", "Job commands reclaimed from dead consumers", ["kind"])
# Health is "the bridge's loop went round recently", not "process alive" (a wedged bridge keeps its
# pid). A GPU child has no bridge: its value stays 0, which the alert rules leave out.
BRIDGE_LAST_READ = Gauge(
    "likeness_worker_bridge_last_read_timestamp_seconds",
    "When the bridge's loop last went round: it read the job streams, or all its job slots were busy",
)
BRIDGE_LAST_JOB = Gauge("likeness_worker_bridge_last_job_timestamp_seconds", "When the bridge last took a job command")
DEPENDENCY_OUTAGES = Counter(
    "likeness_worker_dependency_outages_total", "Outages of Redis or Postgres this worker waited through", ["dependency"]
)
DEPENDENCY_UP = Gauge(
    "likeness_worker_dependency_up", "0 while this worker waits for Redis or Postgres to come back", ["dependency"]
)
JOBS_FENCED = Counter(
    "likeness_worker_jobs_fenced_total", "Jobs this worker gave up because another worker took them over", ["kind"]
)
JOBS_DEAD_LETTERED = Counter(
    "likeness_worker_jobs_dead_lettered_total", "Job commands whose worker died WORKER_MAX_DELIVERIES times", ["kind"]
)
JOBS_RUNNING = Gauge("likeness_worker_jobs_running", "Jobs whose DAG this process is driving")
ENGINES_WARM = Gauge(
    "likeness_worker_engines_warm", "1 once the default engines' models are loaded (they load in the background at start-up)"
)
REAL_TIME_FACTOR = Histogram(
    "likeness_worker_real_time_factor",
    "Processing seconds per second of media produced (lower is faster)",
    ["task", "engine"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 100),
)


def init_series(job_kinds: Iterable[str]) -> None:
    """Creates the series whose label values are known at start-up, at 0 (1 for "up"): a counter
    first seen at 1 hides that increase from rate() and increase(), and the alert rules
    (deploy/prometheus/rules) and the dashboard need the series before anything went wrong."""
    for dependency in ("redis", "postgres"):  # start-up checked both (main.check_services)
        DEPENDENCY_UP.labels(dependency).set(1)
        DEPENDENCY_OUTAGES.labels(dependency)
    for kind in job_kinds:
        for counter in (JOBS_RECLAIMED, JOBS_FENCED, JOBS_DEAD_LETTERED):
            counter.labels(kind)


class QueueDepthCollector(Collector):
    """Reads queue depths from Redis at scrape time (job streams and Dramatiq queues)."""

    def __init__(self, depths: Callable[[], Iterable[tuple[str, str, float]]]) -> None:
        self._depths = depths

    def collect(self):
        g = GaugeMetricFamily("likeness_worker_queue_depth", "Messages waiting or in flight", labels=["queue", "state"])
        try:
            for queue, state, value in self._depths():
                g.add_metric([queue, state], value)
        except Exception as exc:  # a scrape must not crash because Redis blinked
            log.warning("queue depth unavailable: %s", exc)
        yield g


def register_queue_depths(depths: Callable[[], Iterable[tuple[str, str, float]]]) -> None:
    REGISTRY.register(QueueDepthCollector(depths))
