"""How long a graph node waits for its step: the step time limit counts from when an actor picks
the message up, not from when it was queued (a deep queue is not a slow step)."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from dramatiq.results import ResultTimeout

from likeness_worker.contracts import RedisKeys
from likeness_worker.fence import Fence, Fenced
from likeness_worker.graphs import nodes
from likeness_worker.graphs.nodes import StepNode
from likeness_worker.outage import RedisLost

KEYS = RedisKeys("lkt")
MESSAGE = SimpleNamespace(message_id="m1", queue_name="gpu0")


class FakeRuntime:
    """Redis and the results backend on a script: (seconds after start -> started mark), result time."""

    def __init__(self, *, queue_wait_s, step_timeout_s, marks=(), result_at=None, owner=b"me", marker=None):
        self.settings = SimpleNamespace(worker_queue_wait_s=queue_wait_s, worker_step_timeout_s=step_timeout_s)
        self.keys = KEYS
        self.marks = sorted(marks)
        self.result_at = result_at
        self.owner = owner  # what Redis holds under the job's owner key
        self.marker = marker  # the step's _done.json, if written
        self.t0 = time.monotonic()
        self.redis = self.results = self.storage = self.fences = self
        self.fence = Fence("job", 1, KEYS.owner("job", 1), "me")
        self.deleted: list[str] = []

    def mget(self, cancel_key, started_key, owner_key):
        assert started_key == KEYS.step_started("m1") and owner_key == KEYS.owner("job", 1)
        elapsed = time.monotonic() - self.t0
        seen = [value for at, value in self.marks if at <= elapsed]
        return None, (seen[-1] if seen else None), self.owner

    def get(self, job_id, attempt):
        return self.fence

    def exists(self, key):
        return self.marker is not None

    def get_json(self, key):
        return self.marker

    def build_message_key(self, message):
        return f"result-of-{message.message_id}"

    def delete(self, *keys):
        self.deleted.extend(keys)

    def get_result(self, message, block, timeout):
        elapsed = time.monotonic() - self.t0
        if self.result_at is not None and elapsed >= self.result_at:
            return {"ok": True, "done": {}}
        time.sleep(timeout / 1000)
        raise ResultTimeout("not yet")


@pytest.fixture(autouse=True)
def fast(monkeypatch):
    monkeypatch.setattr(nodes, "WAIT_SLICE_MS", 20)
    monkeypatch.setattr(nodes, "RESULT_MARGIN_S", 0.0)


def wait(rt):
    node = StepNode.__new__(StepNode)
    node.rt, node.step = rt, "upscale"
    t0 = time.monotonic()
    return node._await(MESSAGE, "job", 1), time.monotonic() - t0


def test_time_in_the_queue_does_not_count_against_the_step():
    # Queued 0.6 s, longer than the 0.3 s step limit; then it runs for 0.2 s and succeeds.
    rt = FakeRuntime(queue_wait_s=5, step_timeout_s=0.3, marks=[(0.6, b"1")], result_at=0.8)
    result, took = wait(rt)
    # It waited for the result (0.8 s after the fake's clock started, a moment before ours).
    assert result["ok"] is True and took >= 0.75
    # The result list and the started mark are removed once read, not left for their TTL.
    assert rt.deleted == ["result-of-m1", KEYS.step_started("m1")]


def test_a_step_nobody_picks_up_times_out_after_the_queue_wait():
    rt = FakeRuntime(queue_wait_s=0.3, step_timeout_s=60)
    result, took = wait(rt)
    assert result["error"]["code"] == "timeout" and "no worker picked it up" in result["error"]["message"]
    assert "gpu0" in result["error"]["message"] and 0.3 <= took < 2
    assert "result-of-m1" in rt.deleted


def test_a_started_step_times_out_after_the_step_limit():
    rt = FakeRuntime(queue_wait_s=60, step_timeout_s=0.3, marks=[(0.0, b"1")])
    result, took = wait(rt)
    assert result["error"]["code"] == "timeout" and "time limit" in result["error"]["message"]
    assert 0.3 <= took < 2


def test_a_retry_restarts_the_step_clock():
    # Started at 0, retried (marked again) at 0.25 s, result at 0.45 s: past 0.3 s from the first
    # start, within 0.3 s of the second.
    rt = FakeRuntime(queue_wait_s=60, step_timeout_s=0.3, marks=[(0.0, b"1"), (0.25, b"2")], result_at=0.45)
    result, _ = wait(rt)
    assert result["ok"] is True


def test_a_worker_whose_job_was_taken_over_stops_waiting():
    rt = FakeRuntime(queue_wait_s=60, step_timeout_s=60, marks=[(0.0, b"1")], owner=b"someone-else")
    with pytest.raises(Fenced):
        wait(rt)
    assert rt.fence.lost and "result-of-m1" in rt.deleted


def test_a_redis_that_lost_its_data_interrupts_the_wait():
    # The owner key is gone with the step's message: waiting on would wait for nothing.
    rt = FakeRuntime(queue_wait_s=60, step_timeout_s=60, marks=[(0.0, b"1")], owner=None)
    with pytest.raises(RedisLost):
        wait(rt)


def test_a_finished_step_whose_result_was_lost_is_taken_from_its_marker():
    done = {"step": "upscale", "engine": "lanczos", "artifacts": [], "outputs": {}}
    rt = FakeRuntime(queue_wait_s=60, step_timeout_s=60, marks=[(0.0, b"1")], marker=done)
    result, took = wait(rt)
    assert result == {"ok": True, "done": done, "reused": False}
    assert took < 2
