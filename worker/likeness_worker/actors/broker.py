"""The Dramatiq broker: Redis, under the key prefix, with the worker's middleware stack."""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import AgeLimit, Callbacks, CurrentMessage, Pipelines, Retries, ShutdownNotifications, TimeLimit
from dramatiq.results import Results
from dramatiq.results.backends import RedisBackend

from ..config import Settings
from ..contracts import RedisKeys
from ..errors import RETRY_POLICY
from .middleware import BrokerHeartbeat, StepMetrics, StepProgress, StepStarted


class RetryStep(Exception):
    """Raised by an actor to ask Dramatiq for another try (policy already applied, see tasks.py)."""

    def __init__(self, failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


def _retry_when(retries: int, exc: BaseException) -> bool:
    # The decision (code in RETRY_POLICY, count < WORKER_STEP_RETRIES) is made in the actor,
    # which knows the code; anything else escaping an actor is not retried blindly.
    return isinstance(exc, RetryStep) and RETRY_POLICY[exc.failure.code].in_process


def build_broker(settings: Settings, keys: RedisKeys, publish_progress) -> tuple[RedisBroker, RedisBackend]:
    url = settings.redis_url.get_secret_value()
    # Result keys under our prefix (not md5 hashes), so a deployment's or a test's keys stay together.
    backend = RedisBackend(url=url, namespace=keys.results_namespace, use_namespace_prefix_keys=True)
    middleware = [
        AgeLimit(),
        TimeLimit(time_limit=settings.worker_step_timeout_s * 1000),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        Retries(
            retry_when=_retry_when,
            min_backoff=settings.worker_retry_backoff_ms,
            max_backoff=settings.worker_retry_backoff_ms * 30,
        ),
        CurrentMessage(),
        Results(backend=backend, store_results=True, result_ttl=24 * 3600 * 1000),
        StepMetrics(),
        StepStarted(keys.step_started, ttl_s=settings.worker_step_timeout_s + 300),
        StepProgress(publish_progress),
        BrokerHeartbeat(interval_s=max(0.2, settings.worker_heartbeat_timeout_ms / 4000)),
    ]
    broker = RedisBroker(
        url=url,
        namespace=keys.dramatiq_namespace,
        middleware=middleware,
        heartbeat_timeout=settings.worker_heartbeat_timeout_ms,
        dead_message_ttl=settings.worker_dead_message_ttl_ms,
        maintenance_chance=settings.worker_maintenance_chance,
    )
    dramatiq.set_broker(broker)
    return broker, backend
