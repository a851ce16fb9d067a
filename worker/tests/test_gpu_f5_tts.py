"""The f5_tts tts engine with its resident host (engines/gpu/f5_tts_host.py) over a protocol-faithful
fake of F5-TTS's Python API (tests/fakes/f5_tts/src/f5_tts/api.py: espeak-ng speech at 24 kHz, no
torch), through a TaskContext on a local storage folder, as the runtime would run it."""

from __future__ import annotations

import inspect
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from likeness_worker.engines import TaskContext
from likeness_worker.engines.gpu import f5_tts
from likeness_worker.engines.gpu.f5_tts import HOST_SCRIPT, F5Tts
from likeness_worker.errors import StepFailure
from likeness_worker.media import align
from likeness_worker.storage import LocalStorage

FAKE_SRC = Path(__file__).parent / "fakes" / "f5_tts" / "src"
NARRATION = "Hello there, this is my voice. It was made by a flow model."
REF_KEY = "jobs/train/prepare/voice_reference.wav"
ENV = ("F5_TTS_PYTHON", "F5_TTS_MODEL", "F5_TTS_CKPT_FILE", "F5_TTS_VOCAB_FILE", "F5_TTS_VOCODER_DIR",
       "F5_TTS_HF_CACHE_DIR", "F5_TTS_DEVICE", "F5_TTS_NFE_STEP", "F5_TTS_TIMEOUT_S", "FAKE_F5_TTS_FAIL")


@pytest.fixture(scope="module")
def tool_python(tmp_path_factory) -> Path:
    """The "tool's Python": this interpreter with the fake f5_tts on its path (as a venv would have it)."""
    path = tmp_path_factory.mktemp("f5env") / "python"
    path.write_text(f'#!/bin/sh\nPYTHONPATH="{FAKE_SRC}" exec "{sys.executable}" "$@"\n')
    path.chmod(0o755)
    return path


@pytest.fixture(scope="module")
def voice_wav(tmp_path_factory) -> Path:
    from fakes.gpt_sovits import espeak_samples

    path = tmp_path_factory.mktemp("voice") / "voice_reference.wav"
    sf.write(path, espeak_samples("This is a sample of my voice, recorded for the studio.", 24000) * 0.5, 24000)
    return path


@pytest.fixture(autouse=True)
def _env(monkeypatch, tools, tool_python):
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("F5_TTS_PYTHON", str(tool_python))
    F5Tts.release()
    F5Tts.problems.clear()
    yield
    F5Tts.release()
    F5Tts.problems.clear()


class Recorder:
    def __init__(self) -> None:
        self.progress: list[tuple[float, str | None]] = []
        self.cancel = threading.Event()

    def __call__(self, fraction: float, message: str | None = None) -> None:
        self.progress.append((fraction, message))


def _context(tmp_path: Path, rec: Recorder, voice: Path, *, narration: str = NARRATION, model: dict | None = None,
             job: str = "job") -> TaskContext:
    storage = LocalStorage(tmp_path / "objects")
    storage.put_file(REF_KEY, voice, "audio/wav")
    profile = {"portraitKey": "p.png", "voiceReferenceKey": REF_KEY, "voiceProfileKey": "vp.json"}
    if model is not None:
        storage.put_json("jobs/train/voice/voice_model.json", model)
        profile["voiceModelKey"] = "jobs/train/voice/voice_model.json"
    command = {"kind": "generate_video", "payload": {"profile": profile, "width": 256, "height": 256,
                                                     "script": {"title": "t", "stage": "s", "narration": narration}}}
    return TaskContext(job_id=job, attempt=1, step="tts", task_kind="tts", engine="f5_tts",
                       work_dir=tmp_path / job, storage=storage, command=command, _progress=rec,
                       _cancelled=rec.cancel.is_set)


def _fails(tmp_path: Path, voice: Path, rec: Recorder | None = None, **kw) -> StepFailure:
    with pytest.raises(StepFailure) as info:
        F5Tts().synthesize(_context(tmp_path, rec or Recorder(), voice, **kw))
    return info.value


def _gone(pid: int, timeout: float = 5.0) -> bool:
    """The process has ended (a zombie not yet reaped by its parent counts as ended)."""
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


def _host_pid() -> int:
    assert F5Tts._resident.host is not None
    return F5Tts._resident.host.proc.pid


# --- speech -----------------------------------------------------------------------------------


def test_the_narration_is_spoken_in_chunks_by_one_resident_host(tmp_path, voice_wav, monkeypatch):
    monkeypatch.setattr(f5_tts, "CHUNK_CHARS", 40)  # one request per sentence
    rec = Recorder()
    out = F5Tts().synthesize(_context(tmp_path, rec, voice_wav))
    speech, timings = out.artifacts
    assert speech["key"] == "jobs/job/tts/speech.wav" and timings["kind"] == "timings"
    storage = LocalStorage(tmp_path / "objects")
    wav = storage.get_file(speech["key"], tmp_path / "speech.wav")
    probe = json.loads(subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json",
                                       str(wav)], check=True, capture_output=True, text=True).stdout)
    [stream] = probe["streams"]
    assert stream["codec_name"] == "pcm_s16le" and int(stream["sample_rate"]) == 24000 and stream["channels"] == 1
    duration = float(probe["format"]["duration"])
    assert 2.5 < duration < 8 and out.outputs["durationSec"] == pytest.approx(duration, abs=0.01)

    doc = storage.get_json(timings["key"])
    words = doc["words"]
    assert " ".join(w["word"] for w in words) == NARRATION
    assert [w["start"] for w in words] == sorted(w["start"] for w in words)
    assert all(0 <= w["start"] <= w["end"] <= duration for w in words)
    assert words[6]["start"] > words[5]["end"] + 0.2  # the pause between the two sentences
    assert doc["alignment"]["chunks"] == 2 and len(doc["phonemes"]) > len(words)
    assert "F5-TTS transcribed it" in " ".join(doc["shaping"]["notes"])  # no referenceText in the profile

    # the two chunks were brought to one speech level
    x, sr = sf.read(wav, dtype="float32")
    cut = int((words[5]["end"] + words[6]["start"]) / 2 * sr)
    levels = [align.speech_rms(x[:cut], sr), align.speech_rms(x[cut:], sr)]
    assert abs(20 * np.log10(levels[0] / levels[1])) < 2.0

    fractions = [f for f, _ in rec.progress]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert rec.progress[0][1] == "F5-TTS: starting"
    assert any(m == "F5-TTS: sentence 2/2, batch 1/1" for _, m in rec.progress)

    # resident: the next step talks to the same process, which loaded the model once
    pid = _host_pid()
    rec2 = Recorder()
    F5Tts().synthesize(_context(tmp_path, rec2, voice_wav, narration="Again.", job="job2"))
    assert _host_pid() == pid and rec2.progress[0][1] == "F5-TTS: ready"

    F5Tts.release()  # another engine needs the card
    assert F5Tts._resident.host is None and _gone(pid)


def test_a_host_that_died_is_started_again_by_the_next_request(tmp_path, voice_wav):
    F5Tts().synthesize(_context(tmp_path, Recorder(), voice_wav, narration="One."))
    pid = _host_pid()
    os.killpg(pid, signal.SIGKILL)
    assert _gone(pid)
    # its other threads may still be ending when the main one shows as a zombie: wait until it can be reaped
    assert F5Tts._resident.host is not None and F5Tts._resident.host.proc.wait(timeout=5) == -signal.SIGKILL
    out = F5Tts().synthesize(_context(tmp_path, Recorder(), voice_wav, narration="Two.", job="job2"))
    assert out.outputs["words"] == 1 and _host_pid() != pid


def test_the_profiles_transcript_and_checkpoint_go_to_f5_tts(tmp_path, voice_wav):
    storage = LocalStorage(tmp_path / "objects")
    storage.put_file("jobs/train/voice/f5.safetensors", voice_wav)  # any bytes: the fake only checks it exists
    model = {"engine": "f5_tts", "referenceText": "This is a sample of my voice.",
             "ckptKey": "jobs/train/voice/f5.safetensors"}
    out = F5Tts().synthesize(_context(tmp_path, Recorder(), voice_wav, narration="Hi there.", model=model))
    assert F5Tts._resident.host is not None
    cmd = F5Tts._resident.host.cmd
    ckpt = Path(cmd[cmd.index("--ckpt-file") + 1])
    assert ckpt.suffix == ".safetensors" and ckpt.read_bytes() == voice_wav.read_bytes()
    assert "Using custom reference text..." in "\n".join(F5Tts._resident.host.errors)  # F5-TTS's own log, on stderr
    assert out.outputs["words"] == 2


# --- failures ---------------------------------------------------------------------------------


def test_not_configured_is_unavailable_and_names_the_variable(tmp_path, voice_wav, monkeypatch):
    monkeypatch.delenv("F5_TTS_PYTHON")
    assert "F5_TTS_PYTHON is not set" in F5Tts.problem()
    err = _fails(tmp_path, voice_wav)
    assert err.code == "engine_unavailable" and not err.retryable and "F5_TTS_PYTHON" in err.message
    monkeypatch.setenv("F5_TTS_PYTHON", sys.executable)  # a Python without f5-tts
    assert "f5-tts is not installed" in F5Tts.problem()


def test_health_is_good_with_the_tools_python(tool_python):
    assert F5Tts.problem() is None


def test_a_checkpoint_file_that_is_missing_is_weights_missing(tmp_path, voice_wav, monkeypatch):
    monkeypatch.setenv("F5_TTS_CKPT_FILE", str(tmp_path / "model_1250000.safetensors"))
    assert "weights missing: F5_TTS_CKPT_FILE" in F5Tts.problem()
    err = _fails(tmp_path, voice_wav)
    assert err.code == "engine_unavailable" and not err.retryable and "model_1250000.safetensors" in err.message


def test_a_checkpoint_missing_from_the_hub_cache_is_weights_missing(tmp_path, voice_wav, monkeypatch):
    monkeypatch.setenv("FAKE_F5_TTS_FAIL", "checkpoint")
    err = _fails(tmp_path, voice_wav)
    assert err.code == "engine_unavailable" and not err.retryable
    assert "weights missing" in err.message and "Hugging Face cache" in err.message
    assert F5Tts._resident.host is None or not F5Tts._resident.host.alive()


def test_out_of_memory_restarts_the_host(tmp_path, voice_wav, monkeypatch):
    monkeypatch.setenv("FAKE_F5_TTS_FAIL", "oom")
    err = _fails(tmp_path, voice_wav)
    assert err.code == "out_of_memory" and err.retryable and "CUDA out of memory" in err.message
    assert F5Tts._resident.host is None  # killed: the next request starts a fresh process


def test_an_error_in_the_model_is_engine_failed_and_the_host_stays(tmp_path, voice_wav, monkeypatch):
    monkeypatch.setenv("FAKE_F5_TTS_FAIL", "error")
    err = _fails(tmp_path, voice_wav)
    assert err.code == "engine_failed" and err.retryable and "RuntimeError: shape" in err.message
    assert F5Tts._resident.host is not None and F5Tts._resident.host.alive()


def test_a_host_crash_is_engine_failed(tmp_path, voice_wav, monkeypatch):
    monkeypatch.setenv("FAKE_F5_TTS_FAIL", "crash")
    err = _fails(tmp_path, voice_wav)
    assert err.code == "engine_failed" and err.retryable and "crashed" in err.message


def test_cancel_kills_the_host(tmp_path, voice_wav, monkeypatch):
    monkeypatch.setenv("FAKE_F5_TTS_FAIL", "hang")
    rec = Recorder()
    pids: list[int] = []

    def cancel_when_busy() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            host = F5Tts._resident.host
            if host is not None and any("Generating audio" in e for e in list(host.errors)):
                pids.append(host.proc.pid)
                rec.cancel.set()
                return
            time.sleep(0.02)

    threading.Thread(target=cancel_when_busy, daemon=True).start()
    t0 = time.monotonic()
    err = _fails(tmp_path, voice_wav, rec)
    assert err.code == "cancelled" and time.monotonic() - t0 < 8
    assert pids and _gone(pids[0])  # the host's process is gone


def test_the_time_limit_kills_a_hanging_host(tmp_path, voice_wav, monkeypatch):
    monkeypatch.setenv("FAKE_F5_TTS_FAIL", "hang")
    monkeypatch.setenv("F5_TTS_TIMEOUT_S", "2")
    t0 = time.monotonic()
    err = _fails(tmp_path, voice_wav)
    assert err.code == "timeout" and err.retryable and "F5_TTS_TIMEOUT_S" in err.message
    assert time.monotonic() - t0 < 8
    assert F5Tts._resident.host is not None and _gone(F5Tts._resident.host.proc.pid)


# --- the host and the fake against F5-TTS's API -----------------------------------------------


def test_the_host_keeps_stdout_for_json_lines(tmp_path, tool_python, voice_wav):
    bad = subprocess.run([str(tool_python), str(HOST_SCRIPT), "--no-such-flag"], capture_output=True, timeout=30)
    assert bad.returncode == 2  # argparse
    req = {"id": "a", "refFile": str(voice_wav), "refText": "This is a sample of my voice.", "genText": "Hi there.",
           "fileWave": str(tmp_path / "a.wav"), "seed": 7}
    res = subprocess.run([str(tool_python), str(HOST_SCRIPT)], input=json.dumps(req) + "\n", capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0
    lines = [json.loads(line) for line in res.stdout.splitlines()]  # every line is JSON: F5-TTS's prints went to stderr
    assert lines[0]["event"] == "ready" and lines[0]["sampleRate"] == 24000
    assert [m["event"] for m in lines[1:]] == ["progress", "done"]
    assert lines[-1]["seed"] == 7 and sf.info(lines[-1]["fileWave"]).samplerate == 24000
    assert "model :" in res.stderr and "gen_text 0 Hi there." in res.stderr


def test_the_fake_has_f5_tts_signatures():
    sys.path.insert(0, str(FAKE_SRC))
    try:
        from f5_tts.api import F5TTS
    finally:
        sys.path.remove(str(FAKE_SRC))
    init = inspect.signature(F5TTS.__init__)
    assert [(p.name, p.default) for p in list(init.parameters.values())[1:]] == [
        ("model", "F5TTS_v1_Base"), ("ckpt_file", ""), ("vocab_file", ""), ("ode_method", "euler"), ("use_ema", True),
        ("vocoder_local_path", None), ("device", None), ("hf_cache_dir", None)]
    infer = inspect.signature(F5TTS.infer)
    assert [p.name for p in list(infer.parameters.values())[1:]] == [
        "ref_file", "ref_text", "gen_text", "show_info", "progress", "target_rms", "cross_fade_duration",
        "sway_sampling_coef", "cfg_strength", "nfe_step", "speed", "fix_duration", "remove_silence", "file_wave",
        "file_spec", "seed"]
