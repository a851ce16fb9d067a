"""The Dramatiq broker: Redis, under the key prefix, with the worker's middleware stack."""

from __future__ import annotations

import threading

import dramatiq
import redis
from dramatiq.broker import MessageProxy
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.common import compute_backoff, dq_name
from dramatiq.errors import ConnectionClosed
from dramatiq.message import Message
from dramatiq.middleware import AgeLimit, Callbacks, CurrentMessage, Pipelines, Retries, ShutdownNotifications, TimeLimit
from dramatiq.results import Results
from dramatiq.results.backends import RedisBackend

from ..config import Settings
from ..contracts import RedisKeys
from ..errors import RETRY_POLICY
from .middleware import BrokerHeartbeat, StepMetrics, StepProgress, StepStarted

# A delay queue (<queue>.DQ) holds only steps waiting out a retry's backoff (WORKER_RETRY_BACKOFF_MS,
# 1 s by default, doubling): polling it as often as a step queue (50 ms) cost each idle worker a
# Redis script call every 50 ms for nothing (about 2.5 % of a core; eight workers on two cores lost
# a tenth of the machine to it). What this process delays wakes its delay consumer at once; a
# retry's start may be late by up to this much.
DELAY_QUEUE_POLL_MS = 250


class _WakingConsumer(_RedisConsumer):
    """Dramatiq's Redis consumer, whose idle wait ends as soon as there may be a step to take.

    Upstream, a consumer that found nothing sleeps a growing backoff (up to WORKER's 50 ms), and
    with one message in flight (prefetch 1) it finds nothing until that message is acked: every
    step waited up to 50 ms to be picked up, and the next one as long again after it ended (a
    noop job of six steps took ~150 ms, its actor idle 40 % of the time under load). Here the wait
    ends when this process enqueues on the queue or acks one of its messages; a step sent by
    another process is still found by the polling.
    """

    def __init__(self, broker, queue_name, prefetch, timeout) -> None:
        if queue_name.endswith(".DQ"):
            timeout = max(timeout, DELAY_QUEUE_POLL_MS)
        super().__init__(broker, queue_name, prefetch, timeout)
        self._wake = broker.wake_event(queue_name)

    def ack(self, message):
        try:
            return super().ack(message)
        finally:
            self._wake.set()

    def nack(self, message):
        try:
            return super().nack(message)
        finally:
            self._wake.set()

    def __next__(self):  # dramatiq 2.x's _RedisConsumer.__next__, with the sleep made wakeable
        try:
            while True:
                try:
                    data = self.message_cache.pop(0)
                    if data is None:
                        continue
                    self.misses = 0
                    message = Message.decode(data)
                    self.queued_message_ids.add(message.message_id)
                    return MessageProxy(message)
                except IndexError:
                    # Cleared before looking: an enqueue or an ack from now on ends the wait below.
                    self._wake.clear()
                    messages = []
                    if self.outstanding_message_count < self.prefetch:
                        self.message_cache = messages = self.broker.do_fetch(
                            self.queue_name, self.prefetch - self.outstanding_message_count
                        )
                    if not messages:
                        self.misses, backoff_ms = compute_backoff(self.misses, max_backoff=self.timeout)
                        if self._wake.wait(backoff_ms / 1000):
                            self.misses = 0
                        return None
        except redis.ConnectionError as e:
            raise ConnectionClosed(e) from None


class WakingRedisBroker(RedisBroker):
    """RedisBroker whose consumers wake up for what this process enqueues (see _WakingConsumer)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._wakes: dict[str, threading.Event] = {}

    def wake_event(self, queue_name: str) -> threading.Event:
        return self._wakes.setdefault(queue_name, threading.Event())

    @property
    def consumer_class(self):
        return _WakingConsumer

    def enqueue(self, message, *, delay=None):
        enqueued = super().enqueue(message, delay=delay)
        self.wake_event(dq_name(message.queue_name) if delay else message.queue_name).set()
        return enqueued


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
    broker = WakingRedisBroker(
        url=url,
        namespace=keys.dramatiq_namespace,
        middleware=middleware,
        heartbeat_timeout=settings.worker_heartbeat_timeout_ms,
        dead_message_ttl=settings.worker_dead_message_ttl_ms,
        maintenance_chance=settings.worker_maintenance_chance,
    )
    dramatiq.set_broker(broker)
    return broker, backend
