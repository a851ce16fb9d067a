"""The bridge: consumes job commands (XREADGROUP, group ``workers``) and drives their DAGs.

- One consumer name per process (hostname-pid). Up to WORKER_MAX_JOBS jobs run at once.
- A live bridge re-claims its own in-flight entries every WORKER_RECLAIM_IDLE_MS / 3 (XCLAIM to
  itself, JUSTID), which resets their idle time: only a dead consumer's entries grow idle.
- Entries idle longer than WORKER_RECLAIM_IDLE_MS are taken over with XAUTOCLAIM and resumed
  from the checkpoint (finished steps reused).
- SIGTERM: stop taking new jobs, let running ones finish for a grace period; what is left stays
  pending and another worker reclaims it.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, cast

import redis

from .. import metrics
from ..contracts import JOB_KINDS, redis_text
from .jobs import JobRunner

if TYPE_CHECKING:
    from redis.typing import StreamIdT

    from ..runtime import Runtime

log = logging.getLogger(__name__)

READ_BLOCK_MS = 1_000


class Bridge:
    def __init__(self, rt: Runtime, runner: JobRunner) -> None:
        self.rt = rt
        self.runner = runner
        self.group = rt.keys.worker_group
        self.streams = {rt.keys.job_stream(k): k for k in JOB_KINDS}
        self.max_jobs = rt.settings.worker_max_jobs
        self.pool = ThreadPoolExecutor(max_workers=self.max_jobs, thread_name_prefix="job")
        self.inflight: dict[tuple[str, str], Future] = {}
        self.stop_event = threading.Event()
        idle = rt.settings.worker_reclaim_idle_ms
        self.touch_every_s = idle / 3000
        self.reclaim_every_s = max(0.2, idle / 2000)

    def ensure_groups(self) -> None:
        for stream in self.streams:
            try:
                # From id 0, not $: commands XADDed before the first worker ever started count.
                self.rt.redis.xgroup_create(stream, self.group, id="0", mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    # ------------------------------------------------------------------------------------------
    def run(self) -> None:
        log.info("bridge %s consuming %s", self.rt.consumer_name, ", ".join(self.streams))
        last_touch = last_reclaim = 0.0
        need_groups = True
        while not self.stop_event.is_set():
            try:
                if need_groups:
                    self.ensure_groups()
                    need_groups = False
                self._reap()
                now = time.monotonic()
                if now - last_touch >= self.touch_every_s:
                    self._touch()
                    last_touch = now
                if now - last_reclaim >= self.reclaim_every_s and self._free():
                    self._reclaim()
                    last_reclaim = now
                if self._free():
                    self._read()
                else:
                    self.stop_event.wait(0.2)
                self.rt.outages.recovered("redis")
                # The heartbeat: a turn of the loop went round, Redis answering. Also while every
                # job slot is taken (no read then): a busy worker is not a stalled one.
                metrics.BRIDGE_LAST_READ.set_to_current_time()
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                self.rt.outages.failed("redis", exc)
                self.stop_event.wait(1.0)
            except redis.ResponseError as exc:
                if "NOGROUP" in str(exc):  # a stream or group was deleted under us: recreate
                    need_groups = True
                else:
                    log.exception("bridge: redis error")
                    self.stop_event.wait(1.0)
            except Exception:  # never let one bad turn of the loop kill the bridge
                log.exception("bridge loop error")
                self.stop_event.wait(1.0)
        log.info("bridge stopping: %d job(s) in flight", len(self.inflight))

    def stop(self, grace_s: float) -> None:
        self.stop_event.set()
        deadline = time.monotonic() + grace_s
        while self.inflight and time.monotonic() < deadline:
            self._touch()
            self._reap()
            time.sleep(0.2)
        if self.inflight:
            log.warning("%d job(s) left pending for another worker to reclaim", len(self.inflight))
        self.pool.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------------------------------
    def _free(self) -> int:
        return self.max_jobs - len(self.inflight)

    def _submit(self, stream: str, entry_id: str, fields) -> None:
        key = (stream, entry_id)
        if key in self.inflight:
            return
        metrics.BRIDGE_LAST_JOB.set_to_current_time()
        metrics.JOBS_RUNNING.inc()
        self.inflight[key] = self.pool.submit(self._run_one, stream, entry_id, fields)

    def _run_one(self, stream: str, entry_id: str, fields) -> None:
        try:
            self.runner.handle(stream, entry_id, fields)
        except Exception:
            # Not acked: the entry stays pending and is reclaimed (and retried) after the idle time.
            log.exception("job command %s on %s could not be settled", entry_id, stream)
        finally:
            metrics.JOBS_RUNNING.dec()

    def _reap(self) -> None:
        for key in [k for k, f in self.inflight.items() if f.done()]:
            del self.inflight[key]

    def _read(self) -> None:
        # The client speaks RESP2 (runtime.py): [[stream, [(id, fields), ...]], ...], or None when
        # the block times out; redis-py's type also covers RESP3's dict.
        resp = cast(
            "list[list[Any]] | None",
            self.rt.redis.xreadgroup(
                self.group,
                self.rt.consumer_name,
                {s: ">" for s in self.streams},
                count=self._free(),
                block=READ_BLOCK_MS,
            ),
        )
        for stream, entries in resp or []:
            for entry_id, fields in entries:
                self._submit(redis_text(stream), redis_text(entry_id), fields)

    def _touch(self) -> None:
        """Reset the idle time of our own in-flight entries, so nobody reclaims a live job; but not
        of a job another worker has taken over while this one was paused (its XCLAIM would take
        the entry back from its new owner)."""
        entries = list(self.inflight)
        fences = [self.runner.owned.get(e) for e in entries]
        held = [f for f in fences if f is not None and not f.lost]
        for fence, owner in zip(held, self.rt.redis.mget([f.key for f in held]) if held else [], strict=True):
            if owner is not None and owner != fence.token.encode():
                fence.lost = True  # its job thread stops at its next event
        by_stream: dict[str, list[StreamIdT]] = {}
        for (stream, entry_id), entry_fence in zip(entries, fences, strict=True):
            if entry_fence is None or not entry_fence.lost:
                by_stream.setdefault(stream, []).append(entry_id)
        for stream, ids in by_stream.items():
            self.rt.redis.xclaim(stream, self.group, self.rt.consumer_name, 0, ids, justid=True)

    def _reclaim(self) -> None:
        """Take over commands left pending by dead consumers (idle > WORKER_RECLAIM_IDLE_MS)."""
        for stream, kind in self.streams.items():
            free = self._free()
            if free <= 0:
                return
            resp = self.rt.redis.xautoclaim(
                stream, self.group, self.rt.consumer_name, self.rt.settings.worker_reclaim_idle_ms, "0-0", count=free
            )
            entries = resp[1] if resp else []
            for entry_id, fields in entries:
                if fields is None:  # the entry was trimmed away; nothing to run
                    self.rt.redis.xack(stream, self.group, entry_id)
                    continue
                log.warning("reclaimed job command %s from a dead consumer on %s", redis_text(entry_id), stream)
                metrics.JOBS_RECLAIMED.labels(kind).inc()
                self._submit(stream, redis_text(entry_id), fields)
