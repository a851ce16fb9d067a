"""The bridge's heartbeat (likeness_worker_bridge_last_read_timestamp_seconds, what the alert rules
LikenessWorkerStalled and LikenessNoWorkerHeartbeat read) keeps advancing while every job slot of
the worker is taken: a worker busy with a long job is not a stalled one."""

from __future__ import annotations

import json
import time
import urllib.request

from conftest import FIXTURES, free_port, new_id, now_iso


def heartbeat(port: int) -> float:
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    line = next(ln for ln in body.splitlines() if ln.startswith("likeness_worker_bridge_last_read_timestamp_seconds "))
    return float(line.split()[1])


def test_the_heartbeat_advances_while_all_job_slots_are_busy(bus, start_worker):
    port = free_port()
    # One job slot, held for 6 s by the job's first step (a test fault sleeps before it runs).
    w = start_worker(WORKER_METRICS_PORT=str(port), WORKER_MAX_JOBS="1", LIKENESS_TEST_FAULTS="prepare:sleep=6")
    command = json.loads((FIXTURES / "job-command.train_profile.json").read_text())
    command.update(jobId=new_id(), userId=new_id(), createdAt=now_iso())
    bus.send(command)
    bus.wait_for(command["jobId"], lambda e: e["type"] == "step_started" and e["step"] == "prepare", timeout=60, worker=w)
    assert bus.pending("train_profile") == 1  # the slot is taken: the bridge no longer reads
    first = heartbeat(port)
    time.sleep(2.0)
    second = heartbeat(port)
    assert second - first >= 1.0, (first, second)
    assert time.time() - second < 1.5
