"""Faults a worker must ride through (a real worker process, the tiny engines):

- Redis restarting mid-step, with and without its data: a wait, never a failed job;
- a worker paused past the reclaim time, then resumed: fenced, its successor's outputs stand;
- a poison step that kills its worker every time: dead-lettered after WORKER_MAX_DELIVERIES deaths.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import Bus, free_port, skip_or_fail
from test_jobs_runtime import command, of_type, step_events

pytestmark = pytest.mark.usefixtures("redis_url", "database_url")


class PrivateRedis:
    """A redis-server of this test's own, to restart at will (the shared one is never touched)."""

    def __init__(self, data_dir: Path) -> None:
        self.dir = data_dir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        import redis

        self.dir.mkdir(exist_ok=True)
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
             "--appendfsync", "always", "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis.from_url(self.url, socket_connect_timeout=0.5).ping()
                return
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self, *, lose_data: bool = False) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL if lose_data else signal.SIGTERM)  # SIGTERM writes the AOF
        self.proc.wait(10)
        if lose_data:
            shutil.rmtree(self.dir)


@pytest.fixture
def private_redis(tmp_path):
    if shutil.which("redis-server") is None:
        skip_or_fail("redis-server not installed (apt-get install redis-server)")
    r = PrivateRedis(tmp_path / "redis")
    r.start()
    yield r
    if r.proc and r.proc.poll() is None:
        r.proc.kill()
        r.proc.wait(10)


@pytest.mark.parametrize("lose_data", [False, True], ids=["restart", "restart-losing-data"])
def test_a_redis_restart_mid_step_costs_time_not_the_job(private_redis, prefix, storage_dir, tiny_worker, lose_data):
    bus = Bus(private_redis.url, prefix, storage_dir)
    w = tiny_worker(REDIS_URL=private_redis.url, LIKENESS_TEST_FAULTS="upscale:sleep=3")
    cmd = command("generate_video", pipeline="sadtalker")
    bus.send(cmd)
    bus.wait_for(cmd["jobId"], lambda e: e["type"] == "step_started" and e["step"] == "upscale", 60, w)
    private_redis.stop(lose_data=lose_data)
    time.sleep(1.5)
    private_redis.start()
    if lose_data:
        # The command went with Redis; the api's reconciler sends it again (here: the test).
        bus.send(cmd)
    events = bus.wait_finished(cmd["jobId"], timeout=60, worker=w)
    time.sleep(2)  # anything still to come would come now
    finished = of_type(bus.events(cmd["jobId"]), "job_finished")
    assert finished and all(f["state"] == "succeeded" for f in finished), w.log()[-4000:]
    assert len({f["eventId"] for f in finished}) == 1  # copies, if any, are the same event
    assert bus.storage.exists(f"jobs/{cmd['jobId']}/publish/_done.json")
    assert "redis unavailable" in w.log()
    if not lose_data:
        # Events before the outage are still there: each step succeeded once (upscale maybe
        # reported again as reused once the DAG resumed).
        for step in ("image", "tts", "talking_head", "mux", "publish"):
            assert step_events(events, step) == ["step_started", "step_succeeded"], step
    assert w.proc.poll() is None


def test_a_paused_worker_that_wakes_up_after_a_takeover_writes_nothing(bus, tiny_worker):
    a = tiny_worker(LIKENESS_TEST_FAULTS="upscale:sleep=6")
    cmd = command("generate_video", pipeline="sadtalker")
    bus.send(cmd)
    bus.wait_for(cmd["jobId"], lambda e: e["type"] == "step_started" and e["step"] == "upscale", 60, a)
    os.killpg(a.proc.pid, signal.SIGSTOP)  # frozen mid-step, past the reclaim time (1.5 s)
    try:
        b = tiny_worker()
        bus.wait_finished(cmd["jobId"], timeout=60, worker=b)
        before = bus.events(cmd["jobId"])
    finally:
        os.killpg(a.proc.pid, signal.SIGCONT)
    # A wakes up: its job thread notices the takeover and drops the job; its actor, if it had
    # begun the 6 s step, finishes it without writing the marker.
    def a_done() -> bool:
        log = a.log()
        return "dropping it here" in log and ("upscale sleeps" not in log or "its marker is not written" in log)

    deadline = time.monotonic() + 30
    while not a_done():
        assert time.monotonic() < deadline, a.log()[-3000:]
        time.sleep(0.2)
    time.sleep(1)
    events = bus.events(cmd["jobId"])
    assert events == before, [(e["type"], e.get("step")) for e in events[len(before):]]
    assert len(of_type(events, "job_finished")) == 1 and of_type(events, "job_finished")[0]["state"] == "succeeded"
    for step in ("image", "tts", "talking_head", "upscale", "mux", "publish"):
        # At most one run reported each. A step that A had just finished is reported again,
        # reused, by B; so is upscale when B's actor ran A's step message (Dramatiq requeues the
        # messages of a worker whose heartbeat stopped) before B took the job over: it ran once,
        # for the owner of the moment, and B found its marker.
        succeeded = [e for e in of_type(events, "step_succeeded") if e["step"] == step]
        assert succeeded and len([e for e in succeeded if not e["reused"]]) <= 1, (step, succeeded)
    assert a.proc.poll() is None  # A goes on serving other jobs
    assert bus.pending("generate_video") == 0


def test_a_step_that_kills_every_worker_is_dead_lettered(bus, tiny_worker):
    # tts hard-exits the worker process in every attempt; the limit is 2 deaths.
    env = {"LIKENESS_TEST_FAULTS": "tts:exit=99", "WORKER_MAX_DELIVERIES": "2"}
    cmd = command("generate_video", pipeline="sadtalker")
    bus.send(cmd)
    workers = []
    for _ in range(6):
        w = tiny_worker(**env)
        workers.append(w)
        deadline = time.monotonic() + 30
        while w.proc.poll() is None and not of_type(bus.events(cmd["jobId"]), "job_finished"):
            assert time.monotonic() < deadline, w.log()[-3000:]
            time.sleep(0.1)
        if of_type(bus.events(cmd["jobId"]), "job_finished"):
            break
    (finished,) = of_type(bus.wait_finished(cmd["jobId"], timeout=30, worker=workers[-1]), "job_finished")
    assert finished["state"] == "failed"
    assert finished["error"]["code"] == "internal" and "dead-lettered" in finished["error"]["message"]
    assert "step tts never ended" in finished["error"]["message"]
    assert "its worker process died each time (WORKER_MAX_DELIVERIES=2)" in finished["error"]["message"]
    assert sum(1 for w in workers if w.proc.poll() is not None) == 2  # then the step is not run again
    assert workers[-1].proc.poll() is None
    dead = bus.r.xrange(bus.keys.dead_letters)
    assert len(dead) == 1 and cmd["jobId"].encode() in dead[0][1][b"data"] and dead[0][1][b"step"] == b"tts"
    deadline = time.monotonic() + 10
    while bus.pending("generate_video") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert bus.pending("generate_video") == 0


def test_a_copy_of_a_command_this_worker_runs_is_acknowledged_not_run_again(bus, tiny_worker):
    # The api re-sends a command whose entry Redis lost while this worker still runs the job.
    w = tiny_worker(LIKENESS_TEST_FAULTS="upscale:sleep=2")
    cmd = command("generate_video", pipeline="sadtalker")
    bus.send(cmd)
    bus.wait_for(cmd["jobId"], lambda e: e["type"] == "step_started" and e["step"] == "upscale", 60, w)
    bus.send(cmd)
    events = bus.wait_finished(cmd["jobId"], timeout=60, worker=w)
    time.sleep(1)
    events = bus.events(cmd["jobId"])
    assert len(of_type(events, "job_started")) == 1 and len(of_type(events, "job_finished")) == 1
    assert of_type(events, "job_finished")[0]["state"] == "succeeded"
    assert "already runs here: acknowledging the copy" in w.log()
    assert bus.pending("generate_video") == 0
