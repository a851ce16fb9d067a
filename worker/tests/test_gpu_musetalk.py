"""The musetalk lipsync engine against a fake MuseTalk checkout (tests/fakes/MuseTalk: its
``python -m scripts.inference`` command line, YAML tasks, prints, bars, file layout and failures,
including the ones it prints and exits 0 for; Haar cascade for DWPose + S3FD, a drawn mouth for
the UNet). The engine runs through a TaskContext on a local storage folder, as the runtime would
run it, on a real face video and speech; the fake runs as a real process."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from pathlib import Path

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

from likeness_worker.engines.gpu.musetalk import MODELS, UNET, MuseTalkLipsync
from likeness_worker.errors import StepFailure
from likeness_worker.media.video import probe
from likeness_worker.storage import LocalStorage

FAKE = TESTS_DIR / "fakes" / "MuseTalk"
FRAMES = 40  # MuseTalk: floor(1.6 s x 25 fps)


@pytest.fixture(scope="module", autouse=True)
def _ffmpeg() -> None:
    if shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None:
        skip_or_fail("ffmpeg and ffprobe are needed (apt-get install ffmpeg)")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in ("MUSETALK_DIR", "MUSETALK_PYTHON", "MUSETALK_VERSION", "MUSETALK_TIMEOUT_S", "MUSETALK_BATCH_SIZE",
                 "MUSETALK_FLOAT16", "FAKE_MUSETALK_FAIL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def checkout(tmp_path, monkeypatch) -> Path:
    weights = tuple(f"models/{p}" for p in (*MODELS.values(), *UNET["v15"]))
    co = copy_checkout(FAKE, tmp_path / "MuseTalk", weights)
    (co / "models" / UNET["v15"][1]).write_text('{"sample_size": 64, "in_channels": 8, "out_channels": 4}')
    monkeypatch.setenv("MUSETALK_DIR", str(co))
    monkeypatch.setenv("MUSETALK_PYTHON", sys.executable)
    return co


@pytest.fixture(scope="module")
def face_video(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("musetalk") / "motion.mkv", astronaut_face())


@pytest.fixture(scope="module")
def short_video(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("musetalk") / "motion.mkv", astronaut_face(), frames=6)


def _sync(tmp_path: Path, face: Path, rec: Recorder | None = None):
    return MuseTalkLipsync().sync(context(tmp_path, rec or Recorder(), "lipsync", "musetalk", face))


def _fails(tmp_path: Path, face: Path, rec: Recorder | None = None) -> StepFailure:
    with pytest.raises(StepFailure) as info:
        _sync(tmp_path, face, rec)
    return info.value


# --- success -----------------------------------------------------------------------------------


def test_musetalk_makes_the_face_speak_and_hands_the_video_to_mux(tmp_path, checkout, face_video):
    rec = Recorder()
    out = _sync(tmp_path, face_video, rec)

    [ref] = out.artifacts
    assert ref["key"] == "jobs/job/lipsync/lipsync.mp4" and ref["kind"] == "video"
    assert out.outputs["encode"] == "musetalk output (re-encoded by mux)"
    assert out.outputs["subtitlesBurned"] is False and out.outputs["lipSync"] is True
    assert (out.outputs["width"], out.outputs["height"], out.outputs["frames"]) == (SIZE, SIZE, FRAMES)

    video = LocalStorage(tmp_path / "objects").get_file(ref["key"], tmp_path / "got.mp4")
    info = probe(video, count_frames=True)
    assert info["has_video"] and info["has_audio"] and info["video_codec"] == "h264" and info["pix_fmt"] == "yuv420p"
    assert info["nb_frames"] == FRAMES and info["audio_duration_sec"] == pytest.approx(1.6, abs=0.05)

    mouth, forehead = mouth_motion(read_frames(video))
    voiced = np.array([speech_level(i) for i in range(FRAMES)])
    assert np.corrcoef(mouth, voiced)[0, 1] < -0.6 and mouth.std() > 5 and forehead.std() < 1

    # MuseTalk's layout: <result_dir>/v15/<video>_<audio>.mp4 of the task file we wrote; its
    # frames, its temp video and its face-box pickle (<result_dir>/../face.pkl) cleaned up.
    run = tmp_path / "work" / "musetalk"
    assert (run / "results" / "v15" / "face_speech.mp4").is_file()
    assert sorted(p.name for p in (run / "results" / "v15").iterdir()) == ["face_speech.mp4"]
    assert not (run / "face.pkl").exists()
    assert (run / "tasks.yaml").read_text().startswith(f'task_0:\n  video_path: "{run / "face.mkv"}"\n')

    fractions = [f for f, _ in rec.progress]
    assert fractions == sorted(fractions) and fractions[-1] >= 0.95
    messages = [m or "" for _, m in rec.progress]
    order = ["MuseTalk: reading frames 30/30", "MuseTalk: finding the face 30/30", "MuseTalk: lip sync 5/5",
             "MuseTalk: blending 40/40"]
    assert [messages.index(m) for m in order] == sorted(messages.index(m) for m in order)


# --- the user's input ---------------------------------------------------------------------------


def test_a_video_without_a_face_is_the_users_input(tmp_path, checkout):
    # MuseTalk prints "Error occurred during processing: division by zero" and exits 0.
    err = _fails(tmp_path, write_video(tmp_path / "noface.mkv", faceless(), frames=6))
    assert err.code == "bad_input" and err.retryable is False and "no face in any frame" in err.message


# --- the box -------------------------------------------------------------------------------------


def test_not_configured_is_unhealthy(tmp_path, face_video):
    assert MuseTalkLipsync.problem() == "MUSETALK_DIR is not set (the MuseTalk checkout)"
    err = _fails(tmp_path, face_video)
    assert err.code == "engine_unavailable" and err.retryable is False


def test_missing_weights_are_named_and_nothing_runs(tmp_path, checkout, face_video):
    (checkout / "models" / UNET["v15"][0]).unlink()
    (checkout / "models" / MODELS["DWPose"]).unlink()
    problem = MuseTalkLipsync.problem() or ""
    assert problem.startswith("MuseTalk weights missing: the UNet (")
    assert "musetalkV15/unet.pth) does not exist" in problem and "dw-ll_ucoco_384.pth) does not exist" in problem
    err = _fails(tmp_path, face_video)
    assert err.code == "engine_unavailable" and err.retryable is False and "unet.pth" in err.message


def test_the_unet_failing_to_load_is_weights_missing(tmp_path, checkout, short_video, monkeypatch):
    monkeypatch.setenv("FAKE_MUSETALK_FAIL", "weights")  # outside the task's try: a traceback, exit 1
    err = _fails(tmp_path, short_video)
    assert err.code == "engine_unavailable" and err.retryable is False
    assert "weights missing" in err.message and "unet.pth" in err.message


def test_out_of_memory_that_musetalk_only_prints_may_be_retried(tmp_path, checkout, short_video, monkeypatch):
    monkeypatch.setenv("FAKE_MUSETALK_FAIL", "oom")  # inside the task's try: printed, exit 0, no video
    err = _fails(tmp_path, short_video)
    assert err.code == "out_of_memory" and err.retryable is True and "CUDA out of memory" in err.message


def test_a_crash_that_musetalk_only_prints_is_engine_failed(tmp_path, checkout, short_video, monkeypatch):
    monkeypatch.setenv("FAKE_MUSETALK_FAIL", "crash")
    err = _fails(tmp_path, short_video)
    assert err.code == "engine_failed" and err.retryable is True
    assert "MuseTalk exited without an error but made no video (face_speech.mp4)" in err.message
    assert "Error occurred during processing: CUDA error: an illegal memory access was encountered" in err.message


def test_a_work_folder_a_shell_would_split_is_refused(tmp_path, monkeypatch, face_video):
    spaced = tmp_path / "my work"
    co = copy_checkout(FAKE, spaced / "MuseTalk", tuple(f"models/{p}" for p in (*MODELS.values(), *UNET["v15"])))
    monkeypatch.setenv("MUSETALK_DIR", str(co))
    monkeypatch.setenv("MUSETALK_PYTHON", sys.executable)
    err = _fails(spaced, face_video)
    assert err.code == "engine_unavailable" and "WORKER_WORK_DIR" in err.message


# --- stopping it ---------------------------------------------------------------------------------


def test_cancel_kills_musetalk(tmp_path, checkout, short_video, monkeypatch):
    monkeypatch.setenv("FAKE_MUSETALK_FAIL", "hang")
    monkeypatch.setenv("MUSETALK_TIMEOUT_S", "30")  # should the cancel not come, the test still ends
    rec = Recorder()
    seen = threading.Event()
    rec.on_progress = lambda f, m: seen.set() if m and "finding the face 6/6" in m else None
    threading.Thread(target=lambda: seen.wait(20) and rec.cancel.set(), daemon=True).start()
    err = _fails(tmp_path, short_video, rec)
    assert err.code == "cancelled" and seen.is_set()
    assert processes_mentioning(str(tmp_path)) == []


def test_the_time_limit_kills_musetalk(tmp_path, checkout, short_video, monkeypatch):
    monkeypatch.setenv("FAKE_MUSETALK_FAIL", "hang")
    monkeypatch.setenv("MUSETALK_TIMEOUT_S", "2")
    err = _fails(tmp_path, short_video)
    assert err.code == "timeout" and "MUSETALK_TIMEOUT_S (2 s)" in err.message
    assert processes_mentioning(str(tmp_path)) == []


# --- the fake's command line is MuseTalk's -------------------------------------------------------


def test_the_fake_refuses_what_musetalks_argparse_refuses(tmp_path):
    base = [sys.executable, "-m", "scripts.inference"]
    co = copy_checkout(FAKE, tmp_path / "MuseTalk", ())
    unknown = subprocess.run([*base, "--skip_save_images"], capture_output=True, text=True, cwd=co, timeout=30)
    assert unknown.returncode == 2 and "error: unrecognized arguments: --skip_save_images" in unknown.stderr
    version = subprocess.run([*base, "--version", "v2"], capture_output=True, text=True, cwd=co, timeout=30)
    assert version.returncode == 2 and "argument --version: invalid choice: 'v2'" in version.stderr
