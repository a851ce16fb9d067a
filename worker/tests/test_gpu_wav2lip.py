"""The wav2lip engines (lipsync on the video so far, talking_head on the scene still) against a
fake Wav2Lip checkout (tests/fakes/Wav2Lip: its inference.py's command line, module, prints, bars,
files and failures; Haar cascade for S3FD, a drawn mouth for the model). The engine runs through a
TaskContext on a local storage folder, as the runtime would run it, on a real face video and
speech; the fake runs as a real process, killed on cancel and on the time limit. Each test of a
run goes both ways: inference.py in the resident host (wav2lip_host.py, the default) and as a
script once per step (WAV2LIP_RESIDENT=false); the host's own tests are at the end."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import TESTS_DIR, read_frames, skip_or_fail
from fakes.face_media import (
    SIZE,
    Recorder,
    astronaut_face,
    context,
    copy_checkout,
    faceless,
    mouth_motion,
    processes_mentioning,
    speech_level,
    write_video,
)

from likeness_worker.engines.gpu.wav2lip import Wav2LipLipsync, Wav2LipTalkingHead, _Wav2Lip
from likeness_worker.errors import StepFailure
from likeness_worker.media.video import probe
from likeness_worker.storage import LocalStorage

FAKE = TESTS_DIR / "fakes" / "Wav2Lip"
CHECKPOINT = "checkpoints/wav2lip_gan.pth"
S3FD = "face_detection/detection/sfd/s3fd.pth"
# 1.6 s of speech: 1 + 25600 // 200 = 129 mel frames, chunks every 3.2 of them while 16 fit: 37.
FRAMES = 37



@pytest.fixture(scope="module", autouse=True)
def _ffmpeg() -> None:
    if shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None:
        skip_or_fail("ffmpeg and ffprobe are needed (apt-get install ffmpeg)")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in ("WAV2LIP_DIR", "WAV2LIP_PYTHON", "WAV2LIP_CHECKPOINT", "WAV2LIP_TIMEOUT_S", "WAV2LIP_BATCH_SIZE",
                 "WAV2LIP_FACE_DET_BATCH_SIZE", "WAV2LIP_PADS", "WAV2LIP_RESIDENT", "FAKE_WAV2LIP_FAIL",
                 "FAKE_WAV2LIP_CALLS"):
        monkeypatch.delenv(name, raising=False)
    _Wav2Lip.release()
    yield
    _Wav2Lip.release()  # no host outlives its test (its checkout is the test's)


@pytest.fixture(params=["resident", "per-step"])
def checkout(request, tmp_path, monkeypatch) -> Path:
    co = copy_checkout(FAKE, tmp_path / "Wav2Lip", (CHECKPOINT, S3FD))
    monkeypatch.setenv("WAV2LIP_DIR", str(co))
    monkeypatch.setenv("WAV2LIP_PYTHON", sys.executable)
    monkeypatch.setenv("WAV2LIP_RESIDENT", "true" if request.param == "resident" else "false")
    return co


@pytest.fixture
def per_step(tmp_path, monkeypatch) -> Path:
    """A checkout whose inference.py runs once per step (the resident host's runs: the tests at the end)."""
    co = copy_checkout(FAKE, tmp_path / "Wav2Lip", (CHECKPOINT, S3FD))
    monkeypatch.setenv("WAV2LIP_DIR", str(co))
    monkeypatch.setenv("WAV2LIP_PYTHON", sys.executable)
    monkeypatch.setenv("WAV2LIP_RESIDENT", "false")
    return co


@pytest.fixture
def resident(tmp_path, monkeypatch) -> Path:
    """A checkout run by the resident host; FAKE_WAV2LIP_CALLS: the fake's load_model and face_detect calls."""
    co = copy_checkout(FAKE, tmp_path / "Wav2Lip", (CHECKPOINT, S3FD))
    monkeypatch.setenv("WAV2LIP_DIR", str(co))
    monkeypatch.setenv("WAV2LIP_PYTHON", sys.executable)
    monkeypatch.setenv("FAKE_WAV2LIP_CALLS", str(tmp_path / "calls.txt"))
    return co


@pytest.fixture(scope="module")
def face_video(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("wav2lip") / "motion.mkv", astronaut_face())


@pytest.fixture(scope="module")
def short_video(tmp_path_factory) -> Path:
    """For the failures: 6 frames (one face detection batch)."""
    return write_video(tmp_path_factory.mktemp("wav2lip") / "motion.mkv", astronaut_face(), frames=6)


def _sync(tmp_path: Path, face: Path, rec: Recorder | None = None):
    return Wav2LipLipsync().sync(context(tmp_path, rec or Recorder(), "lipsync", "wav2lip", face))


def _calls(tmp_path: Path) -> list[str]:
    path = tmp_path / "calls.txt"
    return [line.split()[0] for line in path.read_text().splitlines()] if path.exists() else []


def _host_pid() -> int:
    assert _Wav2Lip.resident is not None and _Wav2Lip.resident.host is not None
    return _Wav2Lip.resident.host.proc.pid


def _gone(pid: int, timeout: float = 5.0) -> bool:
    """The process has ended (a zombie not yet reaped counts as ended)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.02)
    return False


def _fails(tmp_path: Path, face: Path, rec: Recorder | None = None) -> StepFailure:
    with pytest.raises(StepFailure) as info:
        _sync(tmp_path, face, rec)
    return info.value


# --- success -----------------------------------------------------------------------------------


def test_lipsync_makes_the_face_speak_and_hands_the_video_to_mux(tmp_path, checkout, face_video):
    rec = Recorder()
    out = _sync(tmp_path, face_video, rec)

    [ref] = out.artifacts
    assert ref["key"] == "jobs/job/lipsync/lipsync.mp4" and ref["kind"] == "video" and ref["contentType"] == "video/mp4"
    assert out.outputs["videoKey"] == ref["key"]
    # Wav2Lip's own encode: mux must encode it once more (burning subtitles in when asked).
    assert out.outputs["encode"] == "wav2lip output (re-encoded by mux)" and out.outputs["encode"] != "final H.264"
    assert out.outputs["subtitlesBurned"] is False and out.outputs["lipSync"] is True
    assert (out.outputs["width"], out.outputs["height"], out.outputs["frames"]) == (SIZE, SIZE, FRAMES)
    assert ref["meta"] == {k: v for k, v in out.outputs.items() if k != "videoKey"}

    video = LocalStorage(tmp_path / "objects").get_file(ref["key"], tmp_path / "got.mp4")
    info = probe(video, count_frames=True)
    assert info["has_video"] and info["has_audio"] and (info["width"], info["height"]) == (SIZE, SIZE)
    assert info["nb_frames"] == FRAMES and info["fps"] == pytest.approx(25.0)
    assert info["audio_duration_sec"] == pytest.approx(1.6, abs=0.05)  # the speech, muxed by Wav2Lip's ffmpeg
    assert out.outputs["durationSec"] == pytest.approx(FRAMES / 25, abs=0.05)

    # The mouth opens on the voiced bursts and closes in the pauses; the forehead does not move.
    mouth, forehead = mouth_motion(read_frames(video))
    voiced = np.array([speech_level(i) for i in range(FRAMES)])
    assert np.corrcoef(mouth, voiced)[0, 1] < -0.6  # darker (open) when voiced
    assert mouth.std() > 5 and forehead.std() < 1

    # Wav2Lip's files went to the run folder (its cwd), never into the checkout.
    run = tmp_path / "work" / "wav2lip"
    assert (run / "temp" / "result.avi").is_file() and (run / "results" / "result_voice.mp4").is_file()
    assert not (checkout / "temp" / "result.avi").exists()

    # Progress: the face detection bar, then the generation bar; never backwards.
    fractions = [f for f, _ in rec.progress]
    assert fractions == sorted(fractions) and all(0 <= f <= 1 for f in fractions) and fractions[-1] >= 0.95
    messages = [m or "" for _, m in rec.progress]
    assert "Wav2Lip: detecting the face 2/2" in messages  # 30 frames, batches of 16
    assert "Wav2Lip: lip sync 1/1" in messages  # 37 chunks, batches of 128
    assert messages.index("Wav2Lip: detecting the face 2/2") < messages.index("Wav2Lip: lip sync 1/1")


def test_talking_head_animates_the_scene_still(tmp_path, checkout):
    still = tmp_path / "scene.png"
    cv2.imwrite(str(still), astronaut_face())
    out = Wav2LipTalkingHead().animate(context(tmp_path, Recorder(), "talking_head", "wav2lip", still))
    assert out.artifacts[0]["key"] == "jobs/job/talking_head/talking_head.mp4"
    assert (out.outputs["width"], out.outputs["height"], out.outputs["frames"]) == (SIZE, SIZE, FRAMES)
    video = LocalStorage(tmp_path / "objects").get_file(out.outputs["videoKey"], tmp_path / "got.mp4")
    mouth, _ = mouth_motion(read_frames(video))
    assert mouth.std() > 5  # one still, a moving mouth


# --- the user's input ---------------------------------------------------------------------------


def test_a_video_without_a_face_is_the_users_input(tmp_path, checkout):
    err = _fails(tmp_path, write_video(tmp_path / "noface.mkv", faceless(), frames=6))
    assert err.code == "bad_input" and err.retryable is False
    assert "Face not detected! Ensure the video contains a face in all the frames." in err.message
    assert (tmp_path / "work" / "wav2lip" / "temp" / "faulty_frame.jpg").is_file()  # as Wav2Lip leaves it


# --- the box -------------------------------------------------------------------------------------


def test_not_configured_is_unhealthy_and_the_step_says_which_variable(tmp_path, face_video):
    assert Wav2LipLipsync.problem() == "WAV2LIP_DIR is not set (the Wav2Lip checkout)"
    err = _fails(tmp_path, face_video)
    assert err.code == "engine_unavailable" and err.retryable is False and "WAV2LIP_DIR is not set" in err.message


def test_missing_weights_are_named_and_nothing_runs(tmp_path, resident, face_video):
    (resident / CHECKPOINT).unlink()
    (resident / S3FD).unlink()
    problem = Wav2LipLipsync.problem() or ""
    assert f"WAV2LIP_CHECKPOINT ({resident / CHECKPOINT}) does not exist" in problem
    assert f"the S3FD face detector ({resident / S3FD}) does not exist" in problem
    err = _fails(tmp_path, face_video)
    assert err.code == "engine_unavailable" and err.retryable is False and "wav2lip_gan.pth" in err.message
    assert not (tmp_path / "work" / "wav2lip").exists()


def test_a_bad_setting_is_named(tmp_path, resident, face_video, monkeypatch):
    monkeypatch.setenv("WAV2LIP_PADS", "0 ten 0 0")
    assert "WAV2LIP_PADS" in (Wav2LipLipsync.problem() or "")
    assert _fails(tmp_path, face_video).code == "bad_input"


def test_the_checkpoint_failing_to_load_is_weights_missing(tmp_path, checkout, short_video, monkeypatch):
    monkeypatch.setenv("FAKE_WAV2LIP_FAIL", "weights")
    err = _fails(tmp_path, short_video)
    assert err.code == "engine_unavailable" and err.retryable is False
    assert "weights missing" in err.message and str(checkout / CHECKPOINT) in err.message


def test_out_of_memory_may_be_retried(tmp_path, per_step, short_video, monkeypatch):
    monkeypatch.setenv("FAKE_WAV2LIP_FAIL", "oom")
    err = _fails(tmp_path, short_video)
    assert err.code == "out_of_memory" and err.retryable is True
    assert "wav2lip ran out of GPU memory" in err.message and "CUDA out of memory. Tried to allocate" in err.message


def test_a_crash_is_engine_failed_with_its_error(tmp_path, per_step, short_video, monkeypatch):
    monkeypatch.setenv("FAKE_WAV2LIP_FAIL", "crash")
    err = _fails(tmp_path, short_video)
    assert err.code == "engine_failed" and err.retryable is True
    assert "wav2lip crashed (exit 1)" in err.message and "an illegal memory access" in err.message


# --- stopping it ---------------------------------------------------------------------------------


def test_cancel_kills_wav2lip(tmp_path, per_step, short_video, monkeypatch):
    monkeypatch.setenv("FAKE_WAV2LIP_FAIL", "hang")
    monkeypatch.setenv("WAV2LIP_TIMEOUT_S", "30")  # should the cancel not come, the test still ends
    rec = Recorder()
    seen = threading.Event()
    rec.on_progress = lambda f, m: seen.set() if m and "detecting the face 1/1" in m else None
    threading.Thread(target=lambda: seen.wait(20) and rec.cancel.set(), daemon=True).start()
    err = _fails(tmp_path, short_video, rec)
    assert err.code == "cancelled" and seen.is_set()
    assert processes_mentioning(str(tmp_path)) == []


def test_the_time_limit_kills_wav2lip(tmp_path, per_step, short_video, monkeypatch):
    monkeypatch.setenv("FAKE_WAV2LIP_FAIL", "hang")
    monkeypatch.setenv("WAV2LIP_TIMEOUT_S", "2")
    err = _fails(tmp_path, short_video)
    assert err.code == "timeout" and "WAV2LIP_TIMEOUT_S (2 s)" in err.message
    assert processes_mentioning(str(tmp_path)) == []


# --- the fake's command line is Wav2Lip's ----------------------------------------------------------


def test_the_fake_refuses_what_wav2lips_argparse_refuses(tmp_path):
    base = [sys.executable, str(FAKE / "inference.py")]
    unknown = subprocess.run([*base, "--checkpoint_path", "x.pth", "--face", "f.mp4", "--audio", "a.wav", "--quality", "hd"],
                             capture_output=True, text=True, cwd=tmp_path, timeout=30)
    assert unknown.returncode == 2 and "error: unrecognized arguments: --quality hd" in unknown.stderr
    missing = subprocess.run([*base, "--face", "f.mp4"], capture_output=True, text=True, cwd=tmp_path, timeout=30)
    assert missing.returncode == 2
    assert "the following arguments are required: --checkpoint_path, --audio" in missing.stderr


# --- the resident host ---------------------------------------------------------------------------


def test_the_host_loads_the_model_once_and_detects_each_source_once(tmp_path, resident, face_video, short_video):
    first, again = Recorder(), Recorder()
    one = _sync(tmp_path / "a", face_video, first)
    pid = _host_pid()
    two = _sync(tmp_path / "b", face_video, again)
    assert _host_pid() == pid
    assert _calls(tmp_path) == ["load_model", "face_detect"]  # the second step: neither
    assert first.progress[0][1] == "Wav2Lip: starting its resident host"
    assert again.progress[0][1] == "Wav2Lip: ready (resident)"
    assert "Wav2Lip: lip sync 1/1" in [m for _, m in again.progress]

    # the boxes found before make the same video
    assert one.outputs["frames"] == two.outputs["frames"] == FRAMES
    storage = LocalStorage(tmp_path / "a" / "objects"), LocalStorage(tmp_path / "b" / "objects")
    videos = [st.get_file(out.outputs["videoKey"], tmp_path / f"{i}.mp4")
              for i, (st, out) in enumerate(zip(storage, (one, two), strict=True))]
    a, b = (np.array(read_frames(v), dtype=np.float32) for v in videos)
    assert a.shape == b.shape and np.abs(a - b).mean() < 1.0

    # another source: detected; a still through the talking_head engine: the same host
    _sync(tmp_path / "c", short_video)
    still = tmp_path / "scene.png"
    cv2.imwrite(str(still), astronaut_face())
    Wav2LipTalkingHead().animate(context(tmp_path / "d", Recorder(), "talking_head", "wav2lip", still))
    assert _host_pid() == pid
    assert _calls(tmp_path) == ["load_model", "face_detect", "face_detect", "face_detect"]
    assert (tmp_path / "c" / "work" / "wav2lip" / "temp" / "result.avi").is_file()  # each run in its own folder

    _Wav2Lip.release()  # another engine needs the card
    assert _Wav2Lip.resident is not None and _Wav2Lip.resident.host is None and _gone(pid)
    _sync(tmp_path / "e", short_video)  # a fresh host: loads again, its face cache is new
    assert _host_pid() != pid and _calls(tmp_path)[4:] == ["load_model", "face_detect"]


def test_no_face_is_not_kept_and_the_host_stays(tmp_path, resident, short_video):
    err = _fails(tmp_path / "a", write_video(tmp_path / "noface.mkv", faceless(), frames=6))
    assert err.code == "bad_input" and "Face not detected!" in err.message
    pid = _host_pid()  # the user's input: the host is fine
    _sync(tmp_path / "b", short_video)
    assert _host_pid() == pid and _calls(tmp_path) == ["load_model", "face_detect", "face_detect"]


@pytest.mark.parametrize("fail", ["crash", "segfault", "oom"])
def test_a_failure_in_the_host_stops_it_and_the_next_step_starts_a_fresh_one(tmp_path, resident, short_video,
                                                                            monkeypatch, fail):
    monkeypatch.setenv("FAKE_WAV2LIP_FAIL", fail)
    err = _fails(tmp_path / "a", short_video)
    expected = {"crash": ("engine_failed", "wav2lip crashed (exit 1): RuntimeError: CUDA error: an illegal memory access"),
                "segfault": ("engine_failed", "wav2lip crashed (exit -11)"),
                "oom": ("out_of_memory", "CUDA out of memory. Tried to allocate")}[fail]
    assert err.code == expected[0] and expected[1] in err.message and err.retryable is True
    assert _Wav2Lip.resident is not None and _Wav2Lip.resident.host is None
    assert processes_mentioning(str(tmp_path)) == []
    monkeypatch.delenv("FAKE_WAV2LIP_FAIL")
    out = _sync(tmp_path / "b", short_video)
    assert out.outputs["frames"] > 0 and _calls(tmp_path).count("load_model") == 2


def test_cancel_and_the_time_limit_kill_the_host_and_the_next_step_starts_a_fresh_one(tmp_path, resident,
                                                                                     short_video, monkeypatch):
    monkeypatch.setenv("FAKE_WAV2LIP_FAIL", "hang")
    monkeypatch.setenv("WAV2LIP_TIMEOUT_S", "30")
    rec = Recorder()
    seen = threading.Event()
    rec.on_progress = lambda f, m: seen.set() if m and "detecting the face 1/1" in m else None
    threading.Thread(target=lambda: seen.wait(20) and rec.cancel.set(), daemon=True).start()
    err = _fails(tmp_path / "a", short_video, rec)
    assert err.code == "cancelled" and "the Wav2Lip host was stopped" in err.message
    assert processes_mentioning(str(tmp_path)) == []

    monkeypatch.setenv("WAV2LIP_TIMEOUT_S", "2")  # the host from the start: the hang again
    t0 = time.monotonic()
    err = _fails(tmp_path / "b", short_video)
    assert err.code == "timeout" and "WAV2LIP_TIMEOUT_S (2 s)" in err.message and time.monotonic() - t0 < 6
    assert processes_mentioning(str(tmp_path)) == []

    monkeypatch.delenv("FAKE_WAV2LIP_FAIL")
    monkeypatch.setenv("WAV2LIP_TIMEOUT_S", "60")
    assert _sync(tmp_path / "c", short_video).outputs["frames"] > 0
    assert _calls(tmp_path).count("load_model") == 3  # a fresh host each time


def test_the_host_runs_inference_py_and_keeps_stdout_for_json_lines(tmp_path, resident, short_video):
    from likeness_worker.engines.gpu.wav2lip import Wav2LipLipsync as engine

    folder = tmp_path / "run"
    (folder / "temp").mkdir(parents=True)
    (folder / "results").mkdir()
    shutil.copy(short_video, folder / "face.mkv")
    from fakes.face_media import write_speech

    write_speech(folder / "speech.wav")
    argv = ["--checkpoint_path", str(resident / CHECKPOINT), "--face", "face.mkv", "--audio", "speech.wav"]
    requests = [{"id": "a", "cwd": str(folder), "argv": argv}, {"id": "b", "cwd": str(folder), "argv": argv},
                {"id": "c", "cwd": str(folder), "argv": [*argv, "--quality", "hd"]}]
    res = subprocess.run([sys.executable, str(engine.host_script), "--checkpoint_path", str(resident / CHECKPOINT)],
                         input="".join(json.dumps(r) + "\n" for r in requests), capture_output=True, text=True,
                         cwd=resident, timeout=60, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert res.returncode == 0, res.stderr
    lines = [json.loads(line) for line in res.stdout.splitlines()]  # every line is JSON: Wav2Lip's prints went to stderr
    assert [m["event"] for m in lines] == ["ready", "done", "done", "error"]
    assert lines[1]["outfile"] == str(folder / "results" / "result_voice.mp4") and lines[1]["faceCached"] is False
    assert lines[2]["faceCached"] is True
    assert lines[3]["type"] == "SystemExit"  # inference.py's argparse refuses the unknown flag
    assert "error: unrecognized arguments: --quality hd" in res.stderr
    assert "Using cuda for inference." in res.stderr and "\x1elikeness-end b" in res.stderr
    assert _calls(tmp_path) == ["load_model", "face_detect"]
