"""Full jobs through the real worker with the built-in engines and real media: a profile trained
from skimage's astronaut photo and espeak-ng speech, then talking-avatar MP4s from it, probed with
ffprobe (H.264 25 fps + AAC, as long as the speech within one frame)."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
import urllib.request
import wave

import pytest
from conftest import FIXTURES, free_port, new_id, now_iso

pytestmark = pytest.mark.usefixtures("redis_url", "database_url", "tools")

FRAME = 1 / 25


def _upload_inputs(bus, tmp_path, user: str, profile: str) -> dict:
    import cv2
    from skimage import data

    base = f"uploads/{user}/{profile}"
    face = tmp_path / "astronaut.png"
    cv2.imwrite(str(face), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    no_face = tmp_path / "coffee.jpg"
    cv2.imwrite(str(no_face), cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR))
    voice = tmp_path / "voice.wav"
    subprocess.run(
        ["espeak-ng", "-v", "en-us", "-w", str(voice),
         "Hello, this is a voice sample for the Likeness studio. I am reading a few sentences "
         "so that the system can learn how I sound."],
        check=True, capture_output=True,
    )
    bus.storage.put_file(f"{base}/images/00.png", face)
    bus.storage.put_file(f"{base}/images/01.jpg", no_face)
    bus.storage.put_file(f"{base}/voice/sample.wav", voice)
    return {
        "profileId": profile,
        "triggerWord": "lkperson",
        "images": [
            {"key": f"{base}/images/00.png", "name": "astronaut.png"},
            {"key": f"{base}/images/01.jpg", "name": "coffee.jpg"},
        ],
        "voiceSample": {"key": f"{base}/voice/sample.wav", "name": "hello.wav"},
    }


def ffprobe(path) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_streams", "-show_format", str(path)],
        check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(out)


def wav_seconds(path) -> float:
    with wave.open(str(path)) as w:
        return w.getnframes() / w.getframerate()


def test_train_profile_then_generate_videos(bus, start_worker, tmp_path, prefix, redis_url):
    from likeness_worker.contracts import validate_progress

    port = free_port()
    w = start_worker(WORKER_METRICS_PORT=str(port))
    user, profile = new_id(), new_id()

    # Live progress: Pub/Sub, validated against the contract.
    progress: list[dict] = []
    sub = bus.r.pubsub()
    sub.psubscribe(f"{prefix}:progress:*")
    stop = threading.Event()

    def listen():
        while not stop.is_set():
            m = sub.get_message(timeout=0.2)
            if m and m["type"] == "pmessage":
                progress.append(json.loads(m["data"]))

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()

    # ---- train_profile -------------------------------------------------------------------------
    train = json.loads((FIXTURES / "job-command.train_profile.json").read_text())
    train.update(jobId=new_id(), userId=user, createdAt=now_iso(), payload=_upload_inputs(bus, tmp_path, user, profile))
    bus.send(train)
    events = bus.wait_finished(train["jobId"], timeout=180, worker=w)
    finished = [e for e in events if e["type"] == "job_finished"]
    assert len(finished) == 1 and finished[0]["state"] == "succeeded", finished
    assets = finished[0]["result"]
    assert assets["acceptedImages"] == 1
    assert [r["name"] for r in assets["rejectedImages"]] == ["coffee.jpg"]
    for key in ("portraitKey", "datasetKey", "voiceReferenceKey", "voiceProfileKey"):
        assert bus.storage.exists(assets[key]), key
    voice_profile = bus.storage.get_json(assets["voiceProfileKey"])
    assert 60 < voice_profile["median_f0_hz"] < 400
    lora = bus.storage.get_json(f"jobs/{train['jobId']}/train_lora/lora.json")
    assert lora["trained"] is False and lora["reason"]
    evaluation = bus.storage.get_json(f"jobs/{train['jobId']}/evaluate/evaluation.json")
    assert evaluation["likeness"]["score"] is None and evaluation["likeness"]["reason"]
    prep = next(e for e in events if e["type"] == "step_succeeded" and e["step"] == "prepare")
    assert {a["kind"] for a in prep["artifacts"]} >= {"dataset", "portrait", "faces", "voice_reference"}

    # ---- generate_video, both pipelines ---------------------------------------------------------
    for pipeline, width, height in (("sadtalker", 256, 320), ("svd_wav2lip", 320, 256)):
        gen = json.loads((FIXTURES / "job-command.generate_video.json").read_text())
        gen.update(jobId=new_id(), userId=user, attempt=1, createdAt=now_iso(), engines={})
        gen["payload"].update(
            profileId=profile, profile=assets, pipeline=pipeline, width=width, height=height, subtitles=True
        )
        gen["payload"]["script"]["narration"] = "Hello, and welcome to Likeness. This video was made on a laptop."
        bus.send(gen)
        events = bus.wait_finished(gen["jobId"], timeout=180, worker=w)
        finished = [e for e in events if e["type"] == "job_finished"]
        assert len(finished) == 1 and finished[0]["state"] == "succeeded", (pipeline, finished)
        result = finished[0]["result"]
        engines = {e["step"]: e["engine"] for e in events if e["type"] == "step_succeeded"}
        expected = {"image": "portrait", "tts": "piper", "upscale": "lanczos", "mux": "ffmpeg", "publish": "builtin"}
        expected.update(
            {"talking_head": "landmarks"} if pipeline == "sadtalker" else {"motion": "kenburns", "lipsync": "landmarks"}
        )
        assert engines == expected
        # One encode: the talking step made the final stream, upscale had nothing to do, mux copied it.
        outputs = {e["step"]: e.get("outputs", {}) for e in events if e["type"] == "step_succeeded"}
        assert outputs["upscale"]["skipped"] is True and "already" in outputs["upscale"]["reason"]
        assert outputs["mux"]["video"].startswith("copied"), outputs["mux"]

        video = bus.storage.get_file(result["videoKey"], tmp_path / f"{pipeline}.mp4")
        speech = bus.storage.get_file(f"jobs/{gen['jobId']}/tts/speech.wav", tmp_path / f"{pipeline}.wav")
        info = ffprobe(video)
        v = next(s for s in info["streams"] if s["codec_type"] == "video")
        a = next(s for s in info["streams"] if s["codec_type"] == "audio")
        assert v["codec_name"] == "h264" and v["pix_fmt"] == "yuv420p"
        assert v["r_frame_rate"] == "25/1" and (v["width"], v["height"]) == (width, height)
        assert a["codec_name"] == "aac"
        assert any(s["codec_type"] == "subtitle" for s in info["streams"])
        speech_s = wav_seconds(speech)
        assert speech_s > 1.5
        assert abs(float(v["duration"]) - speech_s) <= FRAME + 1e-6, (v["duration"], speech_s)
        assert abs(result["durationSec"] - speech_s) <= FRAME + 1e-6
        assert (result["width"], result["height"], result["fps"]) == (width, height, 25)
        # faststart: the moov atom comes before the media data.
        head = video.read_bytes()[:200_000]
        assert 0 <= head.find(b"moov") < head.find(b"mdat")

    stop.set()
    listener.join(2)
    assert progress, "no progress message was published"
    for m in progress:
        validate_progress(m)
    assert any(m["step"] in ("motion", "talking_head") and 0 < m["fraction"] < 1 for m in progress)

    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert 'likeness_worker_step_duration_seconds_count{engine="piper",outcome="succeeded",task="tts"}' in body
    assert "likeness_worker_real_time_factor_count" in body
    assert 'likeness_worker_jobs_finished_total{kind="generate_video",state="succeeded"} 2.0' in body
    # Both jobs were taken: no command waits in the stream (its group's lag), none is in flight.
    for state in ("lag", "pending"):
        assert re.search(rf'likeness_worker_queue_depth{{queue="[^"]+:jobs:generate_video",state="{state}"}} 0\.0', body), state
    assert 'likeness_worker_jobs_dead_lettered_total{kind="train_profile"} 0.0' in body
    # A CPU worker reports gpu0 too: where GPU steps wait when no GPU worker is live.
    assert 'likeness_worker_queue_depth{queue="gpu0",state="waiting"} 0.0' in body
    # Health: the bridge read the job streams and took a job moments ago.
    for gauge in ("bridge_last_read", "bridge_last_job"):
        line = next(ln for ln in body.splitlines() if ln.startswith(f"likeness_worker_{gauge}_timestamp_seconds "))
        assert time.time() - float(line.split()[1]) < 120
