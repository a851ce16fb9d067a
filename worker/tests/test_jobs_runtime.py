"""The runtime end to end (bridge + LangGraph DAG + Dramatiq actors in a real worker process),
with the tiny test engines so that each job takes well under a second of work.

Covers: event order, exactly one job_finished, redelivery, SIGKILL mid-step with a second
worker finishing the job, a retried attempt reusing finished steps, bad input, cancel.
"""

from __future__ import annotations

import json
import time

import pytest
from conftest import FIXTURES, new_id, now_iso
from tiny_engines import TINY

pytestmark = pytest.mark.usefixtures("redis_url", "database_url")


def command(kind: str, *, attempt: int = 1, engines: dict | None = None, pipeline: str = "svd_wav2lip") -> dict:
    cmd = json.loads((FIXTURES / f"job-command.{kind}.json").read_text())
    cmd.update(jobId=new_id(), attempt=attempt, createdAt=now_iso(), engines=TINY if engines is None else engines)
    if kind == "generate_video":
        cmd["payload"]["pipeline"] = pipeline
    return cmd


def of_type(events, type_):
    return [e for e in events if e["type"] == type_]


def step_events(events, step):
    return [e["type"] for e in events if e.get("step") == step]


def checkpoints(database_url: str, job_id: str) -> int:
    import psycopg

    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT count(*) FROM lg_worker.checkpoints WHERE thread_id LIKE %s", (job_id + ":%",)
        ).fetchone()[0]


def test_generate_video_job_runs_the_dag_in_order(bus, tiny_worker, database_url):
    w = tiny_worker()
    cmd = command("generate_video", pipeline="svd_wav2lip")
    bus.send(cmd)
    events = bus.wait_finished(cmd["jobId"], worker=w)
    types = [(e["type"], e.get("step")) for e in events]
    assert types[0] == ("job_started", None)
    done_order = [e["step"] for e in of_type(events, "step_succeeded")]
    assert set(done_order[:2]) == {"image", "tts"}  # image ∥ tts
    assert done_order[2:] == ["motion", "lipsync", "upscale", "mux", "publish"]
    for step in done_order:
        assert step_events(events, step) == ["step_started", "step_succeeded"]
    finished = of_type(events, "job_finished")
    assert len(finished) == 1 and finished[0]["state"] == "succeeded"
    assert finished[0]["result"]["tiny"] is True
    # The DAG bound each step's declared inputs to what the steps before it made.
    done = {e["step"]: e for e in of_type(events, "step_succeeded")}
    job = f"jobs/{cmd['jobId']}"
    assert done["motion"]["outputs"]["inputs"] == {
        "scene": f"{job}/image/scene.txt", "speech": f"{job}/tts/speech.txt", "timings": f"{job}/tts/timings.txt",
    }
    assert done["lipsync"]["outputs"]["inputs"]["video"] == f"{job}/motion/video.txt"
    assert done["mux"]["outputs"]["inputs"]["video"] == f"{job}/upscale/video.txt"  # the video so far
    assert finished[0]["result"]["inputs"] == ["video"]
    assert bus.storage.exists(f"jobs/{cmd['jobId']}/motion/_done.json")
    # The protocol acks the command after it has published job_finished: wait for the ack.
    deadline = time.monotonic() + 10
    while bus.pending("generate_video") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert bus.pending("generate_video") == 0

    # Redelivery of a finished attempt (a crash before XACK, or the api re-sending a command
    # whose job_finished Redis lost) reports the same job_finished again and runs nothing.
    bus.send(cmd)
    bus.wait_for(cmd["jobId"], lambda e: len(of_type(bus.events(cmd["jobId"]), "job_finished")) == 2, 30, w)
    again = bus.events(cmd["jobId"])
    first, second = of_type(again, "job_finished")
    assert second == first  # the same event, eventId included: the api keeps one
    assert len(again) == len(events) + 1
    deadline = time.monotonic() + 10
    while bus.pending("generate_video") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert bus.pending("generate_video") == 0

    # train_profile: prepare -> train_lora ∥ train_voice -> evaluate -> publish
    tp = command("train_profile")
    bus.send(tp)
    events = bus.wait_finished(tp["jobId"], worker=w)
    order = [e["step"] for e in of_type(events, "step_succeeded")]
    assert order[0] == "prepare" and set(order[1:3]) == {"train_lora", "train_voice"} and order[3:] == ["evaluate", "publish"]
    assert of_type(events, "job_finished")[0]["state"] == "succeeded"
    evaluate = next(e for e in of_type(events, "step_succeeded") if e["step"] == "evaluate")
    assert evaluate["outputs"]["inputs"] == {
        "dataset": f"jobs/{tp['jobId']}/prepare/dataset.txt",
        "voice_reference": f"jobs/{tp['jobId']}/prepare/voice_reference.txt",
        "lora": f"jobs/{tp['jobId']}/train_lora/lora.txt",
        "voice_profile": f"jobs/{tp['jobId']}/train_voice/voice_profile.txt",
        "voice_model": f"jobs/{tp['jobId']}/train_voice/voice_model.txt",
    }
    assert of_type(events, "job_finished")[0]["result"]["inputs"] == ["dataset", "lora", "portrait", "voice_model",
                                                                        "voice_profile", "voice_reference"]

    # Checkpoints live only while an attempt runs (retention), and SIGTERM exits cleanly.
    deadline = time.monotonic() + 5
    while checkpoints(database_url, tp["jobId"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert checkpoints(database_url, tp["jobId"]) == 0
    assert w.stop() == 0
    assert "bye" in w.log()


def test_invalid_command_fails_with_bad_input_and_is_acked(bus, tiny_worker):
    w = tiny_worker()
    bad = json.loads((FIXTURES / "invalid.job-command.json").read_text())
    bad["jobId"] = new_id()
    bus.send(bad)
    bus.send("{not json", kind="train_profile")  # no job id at all: logged and acked
    events = bus.wait_finished(bad["jobId"], worker=w)
    (finished,) = of_type(events, "job_finished")
    assert finished["state"] == "failed" and finished["error"]["code"] == "bad_input"
    assert finished["error"]["retryable"] is False
    assert not of_type(events, "step_started")
    time.sleep(1.0)
    assert bus.pending("train_profile") == 0


def test_a_command_from_a_newer_api(bus, tiny_worker):
    """The compatibility rule: fields this worker does not know are ignored; a newer protocol
    version is refused as retryable (upgrade the workers), not as bad input."""
    w = tiny_worker()
    newer = command("generate_video")
    newer["priority"] = "high"  # an optional field added by a newer api, at each level
    newer["payload"]["voiceStyle"] = {"warmth": 0.4}
    newer["payload"]["profile"]["loraScale"] = 0.8
    bus.send(newer)
    breaking = command("generate_video")
    breaking["v"] = 2
    bus.send(breaking)
    (finished,) = of_type(bus.wait_finished(newer["jobId"], worker=w), "job_finished")
    assert finished["state"] == "succeeded", finished
    events = bus.wait_finished(breaking["jobId"], worker=w)
    (refused,) = of_type(events, "job_finished")
    assert refused["state"] == "failed" and refused["v"] == 1
    assert refused["error"]["code"] == "engine_unavailable" and refused["error"]["retryable"] is True
    assert "protocol version 2" in refused["error"]["message"]
    assert not of_type(events, "step_started")


def test_a_result_that_breaks_its_schema_fails_the_job_instead_of_reaching_the_api(bus, tiny_worker):
    w = tiny_worker()
    cmd = command("generate_video", engines={**TINY, "publish": "tiny_bad_result"})
    bus.send(cmd)
    (finished,) = of_type(bus.wait_finished(cmd["jobId"], worker=w), "job_finished")
    assert finished["state"] == "failed" and "result" not in finished
    assert finished["error"]["code"] == "internal" and finished["error"]["step"] == "publish"
    assert finished["error"]["retryable"] is False  # its marker stays: a retry would reuse it
    assert "generate_video result" in finished["error"]["message"] and "videoKey" in finished["error"]["message"]


def test_unknown_engine_fails_the_step_with_bad_input(bus, tiny_worker):
    w = tiny_worker()
    cmd = command("generate_video", engines={**TINY, "tts": "whisper"})
    bus.send(cmd)
    events = bus.wait_finished(cmd["jobId"], worker=w)
    failed = [e for e in of_type(events, "step_failed") if e["step"] == "tts"]
    assert failed and failed[0]["error"]["code"] == "bad_input" and "whisper" in failed[0]["error"]["message"]
    (finished,) = of_type(events, "job_finished")
    assert finished["state"] == "failed" and finished["error"]["step"] == "tts"


def test_a_declared_input_nobody_made_fails_the_step_that_needs_it_by_name(bus, tiny_worker):
    # tiny_mute makes timings but no speech: motion, which takes speech, is not dispatched.
    w = tiny_worker()
    cmd = command("generate_video", engines={**TINY, "tts": "tiny_mute"})
    bus.send(cmd)
    events = bus.wait_finished(cmd["jobId"], worker=w)
    assert step_events(events, "tts") == ["step_started", "step_succeeded"]
    assert step_events(events, "motion") == ["step_failed"]  # never started
    (failed,) = [e for e in of_type(events, "step_failed") if e["step"] == "motion"]
    message = failed["error"]["message"]
    assert "step motion" in message and "input 'speech'" in message and "tts made none" in message, message
    (finished,) = of_type(events, "job_finished")
    assert finished["state"] == "failed" and finished["error"]["step"] == "motion"
    assert finished["error"]["code"] == "internal" and finished["error"]["retryable"] is False


def test_retry_attempt_reruns_only_the_failed_step(bus, tiny_worker):
    # tts fails in attempt 1 (after one in-process retry); attempt 2 succeeds.
    w = tiny_worker(LIKENESS_TEST_FAULTS="tts:1", WORKER_STEP_RETRIES="1")
    cmd = command("generate_video", pipeline="sadtalker")
    bus.send(cmd)
    events = bus.wait_finished(cmd["jobId"], worker=w)
    (finished,) = of_type(events, "job_finished")
    assert finished["state"] == "failed"
    assert finished["error"] == {**finished["error"], "code": "engine_failed", "retryable": True, "step": "tts"}
    assert step_events(events, "tts") == ["step_started", "step_failed"]
    assert "talking_head" not in {e.get("step") for e in events}  # nothing after the failure ran
    assert "injected fault" in w.log()

    retry = {**cmd, "attempt": 2, "createdAt": now_iso()}
    bus.send(retry)
    events2 = [e for e in bus.wait_finished(cmd["jobId"], attempt=2, worker=w) if e["attempt"] == 2]
    succeeded = {e["step"]: e for e in of_type(events2, "step_succeeded")}
    assert succeeded["image"]["reused"] is True  # finished in attempt 1
    assert succeeded["tts"]["reused"] is False  # the failed step runs again
    assert [e["step"] for e in of_type(events2, "step_started")].count("image") == 0
    (finished2,) = of_type(events2, "job_finished")
    assert finished2["state"] == "succeeded"
    assert finished2["eventId"] != finished["eventId"]


def test_sigkill_mid_step_then_another_worker_finishes_exactly_once(bus, tiny_worker):
    a = tiny_worker(LIKENESS_TEST_FAULTS="upscale:sleep=120")
    cmd = command("generate_video", pipeline="sadtalker")
    bus.send(cmd)
    bus.wait_for(cmd["jobId"], lambda e: e["type"] == "step_started" and e["step"] == "upscale", 60, a)
    time.sleep(0.5)  # well inside the (120 s) step
    a.sigkill()
    killed_at = time.monotonic()

    b = tiny_worker()
    events = bus.wait_finished(cmd["jobId"], timeout=60, worker=b)
    took = time.monotonic() - killed_at
    time.sleep(3)  # let the dead worker's re-queued Dramatiq message run too: it must not add events
    events = bus.events(cmd["jobId"])
    finished = of_type(events, "job_finished")
    assert len(finished) == 1 and finished[0]["state"] == "succeeded", b.log()[-3000:]
    started = of_type(events, "job_started")
    assert len(started) == 2 and started[0]["worker"] != started[1]["worker"]
    # Steps finished before the kill were not run again; upscale ran to completion once.
    for step in ("image", "tts", "talking_head"):
        assert step_events(events, step) == ["step_started", "step_succeeded"], step
    # upscale: started by A; then either B ran it again (started, succeeded) or the dead
    # worker's re-queued message finished it first and B reused its output.
    assert step_events(events, "upscale") in (
        ["step_started", "step_started", "step_succeeded"],
        ["step_started", "step_succeeded"],
    )
    assert bus.storage.exists(f"jobs/{cmd['jobId']}/upscale/_done.json")
    assert [e["step"] for e in of_type(events, "step_succeeded")][-2:] == ["mux", "publish"]
    assert bus.pending("generate_video") == 0
    assert took < 30


def test_cancel_between_and_inside_steps(bus, tiny_worker):
    w = tiny_worker(LIKENESS_TEST_FAULTS="motion:sleep=60")
    # Cancelled before it starts.
    early = command("train_profile")
    bus.cancel(early["jobId"])
    bus.send(early)
    events = bus.wait_finished(early["jobId"], worker=w)
    assert of_type(events, "job_finished")[0]["state"] == "cancelled"
    assert not of_type(events, "step_started")

    # Cancelled in the middle of a long step: the step stops, the job ends cancelled.
    cmd = command("generate_video", pipeline="svd_wav2lip")
    bus.send(cmd)
    bus.wait_for(cmd["jobId"], lambda e: e["type"] == "step_started" and e["step"] == "motion", 60, w)
    t0 = time.monotonic()
    bus.cancel(cmd["jobId"])
    events = bus.wait_finished(cmd["jobId"], timeout=30, worker=w)
    assert time.monotonic() - t0 < 10
    (finished,) = of_type(events, "job_finished")
    assert finished["state"] == "cancelled" and finished["error"]["code"] == "cancelled"
    assert finished["error"]["retryable"] is True  # the user stopped it; a retry may run it again
    assert step_events(events, "motion") == ["step_started", "step_failed"]
    assert "lipsync" not in {e.get("step") for e in events}


def test_steps_go_to_the_queue_of_their_engines_device(bus, tiny_worker):
    w = tiny_worker(WORKER_QUEUES="cpu,gpu0")
    cmd = command("generate_video", engines={**TINY, "upscale": "tiny_gpu"}, pipeline="sadtalker")
    bus.send(cmd)
    events = bus.wait_finished(cmd["jobId"], worker=w)
    queues = {e["step"]: e["outputs"]["queue"] for e in of_type(events, "step_succeeded")}
    assert queues.pop("upscale") == "gpu0"
    assert set(queues.values()) == {"cpu"}
    assert of_type(events, "job_finished")[0]["state"] == "succeeded"


def test_sigterm_mid_step_exits_cleanly_and_another_worker_takes_the_job(bus, tiny_worker):
    a = tiny_worker(LIKENESS_TEST_FAULTS="upscale:sleep=120", WORKER_SHUTDOWN_GRACE_S="1")
    cmd = command("generate_video", pipeline="sadtalker")
    bus.send(cmd)
    bus.wait_for(cmd["jobId"], lambda e: e["type"] == "step_started" and e["step"] == "upscale", 60, a)
    t0 = time.monotonic()
    assert a.stop(timeout=20) == 0  # SIGTERM in the middle of the (120 s) step
    assert time.monotonic() - t0 < 10
    log = a.log()
    assert "jobs left for other workers" in log and "Traceback" not in log, log[-3000:]
    # Not lost: the command is still pending, nothing was reported as finished.
    assert bus.pending("generate_video") == 1
    assert not of_type(bus.events(cmd["jobId"]), "job_finished")

    b = tiny_worker()
    events = bus.wait_finished(cmd["jobId"], timeout=60, worker=b)
    finished = of_type(events, "job_finished")
    assert len(finished) == 1 and finished[0]["state"] == "succeeded"
    assert len(of_type(events, "job_started")) == 2
    for step in ("image", "tts", "talking_head"):
        assert step_events(events, step) == ["step_started", "step_succeeded"], step  # reused, not re-run
    # job_finished goes out before the command is acknowledged (bridge/jobs.py): wait for the XACK.
    deadline = time.monotonic() + 10
    while bus.pending("generate_video") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert bus.pending("generate_video") == 0
