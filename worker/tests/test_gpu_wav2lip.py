"""The wav2lip engines (lipsync on the video so far, talking_head on the scene still) against a
fake Wav2Lip checkout (tests/fakes/Wav2Lip: its inference.py's command line, prints, bars, files
and failures; Haar cascade for S3FD, a drawn mouth for the model). The engine runs through a
TaskContext on a local storage folder, as the runtime would run it, on a real face video and
speech; the fake runs as a real process, killed on cancel and on the time limit."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
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

from likeness_worker.engines.gpu.wav2lip import Wav2LipLipsync, Wav2LipTalkingHead
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
                 "WAV2LIP_FACE_DET_BATCH_SIZE", "WAV2LIP_PADS", "FAKE_WAV2LIP_FAIL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def checkout(tmp_path, monkeypatch) -> Path:
    co = copy_checkout(FAKE, tmp_path / "Wav2Lip", (CHECKPOINT, S3FD))
    monkeypatch.setenv("WAV2LIP_DIR", str(co))
    monkeypatch.setenv("WAV2LIP_PYTHON", sys.executable)
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


def test_missing_weights_are_named_and_nothing_runs(tmp_path, checkout, face_video):
    (checkout / CHECKPOINT).unlink()
    (checkout / S3FD).unlink()
    problem = Wav2LipLipsync.problem() or ""
    assert f"WAV2LIP_CHECKPOINT ({checkout / CHECKPOINT}) does not exist" in problem
    assert f"the S3FD face detector ({checkout / S3FD}) does not exist" in problem
    err = _fails(tmp_path, face_video)
    assert err.code == "engine_unavailable" and err.retryable is False and "wav2lip_gan.pth" in err.message
    assert not (tmp_path / "work" / "wav2lip").exists()


def test_a_bad_setting_is_named(tmp_path, checkout, face_video, monkeypatch):
    monkeypatch.setenv("WAV2LIP_PADS", "0 ten 0 0")
    assert "WAV2LIP_PADS" in (Wav2LipLipsync.problem() or "")
    assert _fails(tmp_path, face_video).code == "bad_input"


def test_the_checkpoint_failing_to_load_is_weights_missing(tmp_path, checkout, short_video, monkeypatch):
    monkeypatch.setenv("FAKE_WAV2LIP_FAIL", "weights")
    err = _fails(tmp_path, short_video)
    assert err.code == "engine_unavailable" and err.retryable is False
    assert "weights missing" in err.message and str(checkout / CHECKPOINT) in err.message


def test_out_of_memory_may_be_retried(tmp_path, checkout, short_video, monkeypatch):
    monkeypatch.setenv("FAKE_WAV2LIP_FAIL", "oom")
    err = _fails(tmp_path, short_video)
    assert err.code == "out_of_memory" and err.retryable is True
    assert "wav2lip ran out of GPU memory" in err.message and "CUDA out of memory. Tried to allocate" in err.message


def test_a_crash_is_engine_failed_with_its_error(tmp_path, checkout, short_video, monkeypatch):
    monkeypatch.setenv("FAKE_WAV2LIP_FAIL", "crash")
    err = _fails(tmp_path, short_video)
    assert err.code == "engine_failed" and err.retryable is True
    assert "wav2lip crashed (exit 1)" in err.message and "an illegal memory access" in err.message


# --- stopping it ---------------------------------------------------------------------------------


def test_cancel_kills_wav2lip(tmp_path, checkout, short_video, monkeypatch):
    monkeypatch.setenv("FAKE_WAV2LIP_FAIL", "hang")
    monkeypatch.setenv("WAV2LIP_TIMEOUT_S", "30")  # should the cancel not come, the test still ends
    rec = Recorder()
    seen = threading.Event()
    rec.on_progress = lambda f, m: seen.set() if m and "detecting the face 1/1" in m else None
    threading.Thread(target=lambda: seen.wait(20) and rec.cancel.set(), daemon=True).start()
    err = _fails(tmp_path, short_video, rec)
    assert err.code == "cancelled" and seen.is_set()
    assert processes_mentioning(str(tmp_path)) == []


def test_the_time_limit_kills_wav2lip(tmp_path, checkout, short_video, monkeypatch):
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
