"""Worker scale-out, the short version of ``npm run bench:scale``: two worker processes with the
bench-only ``sleep`` engines (one step at a time each, as a worker with one GPU) share the steps of
a handful of jobs: every job succeeds, both workers run steps, neither takes the lion's share
(a worker that held queued steps while the other was free would), and no worker ever runs two
steps at once. Behaviour, not timings: the figures are the bench's."""

from __future__ import annotations

import json
import socket
import time
from collections import Counter, defaultdict

import pytest
from conftest import FIXTURES, new_id, now_iso

from likeness_worker.bench.sleep_engines import SLEEP

JOBS = 8
STEPS = ("image", "tts", "talking_head", "upscale", "mux", "publish")


def _advertising(bus) -> set[str]:
    ids = [i.decode() for i in bus.r.smembers(bus.keys.workers)]
    return {i for i in ids if bus.r.exists(f"{bus.keys.prefix}:workers:{i}")}


@pytest.mark.usefixtures("database_url")
def test_two_workers_share_the_steps_of_queued_jobs_one_step_at_a_time_each(bus, start_worker):
    env = {"WORKER_ENGINE_PLUGINS": "likeness_worker.bench.sleep_engines", "LIKENESS_SLEEP_STEP_MS": "100",
           "WORKER_STEP_THREADS": "1", "WORKER_MAX_JOBS": "4"}
    workers = [start_worker(**env), start_worker(**env)]
    names = {f"{socket.gethostname()}-{w.proc.pid}" for w in workers}
    # Both consume before the first job comes, so that neither is late by its start-up alone.
    deadline = time.monotonic() + 60
    while _advertising(bus) != names:
        for w in workers:
            assert w.proc.poll() is None, f"worker exited:\n{w.log()[-4000:]}"
        assert time.monotonic() < deadline, f"advertising: {_advertising(bus)}, want {names}"
        time.sleep(0.1)

    template = json.loads((FIXTURES / "job-command.generate_video.json").read_text())
    ids = []
    for _ in range(JOBS):
        cmd = {**template, "jobId": new_id(), "attempt": 1, "createdAt": now_iso(), "engines": SLEEP}
        cmd["payload"] = {**template["payload"], "pipeline": "sadtalker"}
        bus.send(cmd)
        ids.append(cmd["jobId"])

    runs: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for job_id in ids:
        events = bus.wait_finished(job_id, timeout=60, worker=workers[0])
        (finished,) = [e for e in events if e["type"] == "job_finished"]
        assert finished["state"] == "succeeded", finished
        done = {e["step"]: e for e in events if e["type"] == "step_succeeded"}
        assert set(done) == set(STEPS)
        for e in done.values():
            assert e["engine"] == "sleep" and not e["reused"]
            ran = e["outputs"]["ran"]
            runs[ran["worker"]].append((ran["startedAtMs"], ran["endedAtMs"]))

    steps = Counter({w: len(r) for w, r in runs.items()})
    assert set(steps) == names, f"steps per worker: {dict(steps)}"
    assert sum(steps.values()) == JOBS * len(STEPS)
    # An even share is 24 each; a worker that hoarded queued steps would run far more than 3/4.
    assert max(steps.values()) <= 0.75 * JOBS * len(STEPS), f"steps per worker: {dict(steps)}"
    for worker, spans in runs.items():
        spans.sort()
        overlaps = [(a, b) for a, b in zip(spans, spans[1:], strict=False) if b[0] < a[1]]
        assert not overlaps, f"{worker} ran two steps at once (WORKER_STEP_THREADS=1): {overlaps[:3]}"
        for start, end in spans:
            assert end - start >= 100, f"a sleep step took {end - start:.0f} ms, under its 100 ms"
