"""The gpt_sovits tts engine against a protocol-faithful fake GPT-SoVITS api_v2.py server
(tests/fakes/gpt_sovits.py: a real HTTP server speaking espeak-ng at 32 kHz), through a TaskContext
on a local storage folder, as the runtime would run it."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf
from conftest import Recorder, free_port
from fakes.gpt_sovits import REF_RANGE_MESSAGE, FakeGptSovits, espeak_samples

from likeness_worker.engines import TaskContext
from likeness_worker.engines.gpu import gpt_sovits
from likeness_worker.engines.gpu.gpt_sovits import GptSovitsTts
from likeness_worker.errors import StepFailure
from likeness_worker.storage import LocalStorage

NARRATION = "Hello there, this is my voice. It was made by a server."
REF_KEY = "jobs/train/prepare/voice_reference.wav"
ENV = ("GPT_SOVITS_URL", "GPT_SOVITS_SHARED_DIR", "GPT_SOVITS_SERVER_DIR", "GPT_SOVITS_TEXT_LANG",
       "GPT_SOVITS_PROMPT_LANG", "GPT_SOVITS_GPT_WEIGHTS", "GPT_SOVITS_SOVITS_WEIGHTS", "GPT_SOVITS_TIMEOUT_S",
       "GPT_SOVITS_REQUEST_TIMEOUT_S", "FAKE_GPT_SOVITS_FAIL")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch, tools):
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    GptSovitsTts.problems.clear()
    yield
    GptSovitsTts.problems.clear()


@pytest.fixture(scope="module")
def voice_wav(tmp_path_factory) -> Path:
    """A 5 s voice sample at 24 kHz (what prepare writes: WAV, at most 12 s)."""
    path = tmp_path_factory.mktemp("voice") / "voice_reference.wav"
    x = espeak_samples("This is a sample of my voice, recorded for the studio to learn from.", 24000)
    sf.write(path, x, 24000, subtype="PCM_16")
    return path


@pytest.fixture
def fake(tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    shared.mkdir()
    server = FakeGptSovits(log=open(tmp_path / "fake.log", "w")).start()  # noqa: SIM115 - closed with the test
    monkeypatch.setenv("GPT_SOVITS_URL", server.url)
    monkeypatch.setenv("GPT_SOVITS_SHARED_DIR", str(shared))
    yield server
    server.stop()
    server._log.close()


def _context(tmp_path: Path, rec: Recorder, voice: Path, *, narration: str = NARRATION,
             model: dict | None = None) -> TaskContext:
    storage = LocalStorage(tmp_path / "objects")
    storage.put_file(REF_KEY, voice, "audio/wav")
    profile = {"portraitKey": "p.png", "voiceReferenceKey": REF_KEY, "voiceProfileKey": "vp.json"}
    if model is not None:
        storage.put_json("jobs/train/voice/voice_model.json", model)
        profile["voiceModelKey"] = "jobs/train/voice/voice_model.json"
    command = {"kind": "generate_video", "payload": {"profile": profile, "width": 256, "height": 256,
                                                     "script": {"title": "t", "stage": "s", "narration": narration}}}
    return TaskContext(job_id="job", attempt=1, step="tts", task_kind="tts", engine="gpt_sovits",
                       work_dir=tmp_path / "work", storage=storage, command=command, _progress=rec,
                       _cancelled=rec.cancel.is_set)


def _fails(tmp_path: Path, voice: Path, rec: Recorder | None = None, **kw) -> StepFailure:
    with pytest.raises(StepFailure) as info:
        GptSovitsTts().synthesize(_context(tmp_path, rec or Recorder(), voice, **kw))
    return info.value


def _ffprobe(path: Path) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


# --- speech -----------------------------------------------------------------------------------


def test_the_narration_is_spoken_by_the_server_in_sentences_with_aligned_timings(tmp_path, fake, voice_wav,
                                                                                 monkeypatch):
    monkeypatch.setattr(gpt_sovits, "CHUNK_CHARS", 40)  # two requests, one per sentence
    rec = Recorder()
    out = GptSovitsTts().synthesize(_context(tmp_path, rec, voice_wav))

    speech, timings = out.artifacts
    assert speech["kind"] == "speech" and speech["key"] == "jobs/job/tts/speech.wav"
    assert timings["kind"] == "timings" and timings["key"] == "jobs/job/tts/timings.json"
    storage = LocalStorage(tmp_path / "objects")
    wav = storage.get_file(speech["key"], tmp_path / "speech.wav")
    probe = _ffprobe(wav)
    [stream] = probe["streams"]
    assert stream["codec_type"] == "audio" and stream["codec_name"] == "pcm_s16le"
    assert int(stream["sample_rate"]) == 32000 and stream["channels"] == 1
    duration = float(probe["format"]["duration"])
    assert 2.5 < duration < 8 and out.outputs["durationSec"] == pytest.approx(duration, abs=0.01)
    x, _ = sf.read(wav)
    assert np.sqrt(np.mean(x**2)) > 0.02  # speech, not the silent placeholder

    # What the server was asked: one /tts per sentence, with the reference it can read.
    assert [r["text"] for r in fake.tts] == ["Hello there, this is my voice.", "It was made by a server."]
    first = fake.tts[0]
    assert first["text_lang"] == "en" and first["prompt_lang"] == "en" and first["media_type"] == "wav"
    assert first["streaming_mode"] is False and first["text_split_method"] == "cut5"
    shared = Path(str(fake.tts[0]["ref_audio_path"]))
    assert shared.parent == tmp_path / "shared" / "likeness" / "refs" and shared.is_file()
    assert sf.info(shared).duration == pytest.approx(sf.info(voice_wav).duration, abs=0.01)
    assert fake.tts[1]["seed"] != first["seed"] and 0 <= first["seed"] < 2**31
    assert not fake.weight_calls  # no voice model and no default weights set: the server's own

    # timings.json: the built-in engines' shape, every word in order inside the audio.
    doc = storage.get_json(timings["key"])
    assert doc["durationSec"] == pytest.approx(duration, abs=0.01)
    words = doc["words"]
    assert " ".join(w["word"] for w in words) == NARRATION
    starts = [w["start"] for w in words]
    assert starts == sorted(starts) and all(0 <= w["start"] <= w["end"] <= duration for w in words)
    assert words[-1]["end"] > duration - 1.0  # the last word ends near the end of the speech
    assert len(doc["phonemes"]) > len(words) and doc["alignment"]["method"] == "dtw-mfcc"
    assert doc["alignment"]["chunks"] == 2 and doc["engine"] == "gpt_sovits"
    assert out.outputs["words"] == len(words) and "GPT-SoVITS" in out.outputs["voice"]
    # The second sentence starts after the first one's pause.
    assert words[6]["start"] > words[5]["end"] + 0.2

    fractions = [f for f, _ in rec.progress]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any(m == "GPT-SoVITS: sentence 2/2" for _, m in rec.progress)


def test_a_long_reference_is_cut_under_ten_seconds_at_a_quiet_point(tmp_path, fake, voice_wav):
    x, sr = sf.read(voice_wav, dtype="float32")
    long = tmp_path / "long.wav"
    sf.write(long, np.concatenate([x, np.zeros(sr // 2, np.float32), x, x]), sr)  # ~16 s
    GptSovitsTts().synthesize(_context(tmp_path, Recorder(), long, narration="Short."))
    ref = Path(fake.tts[0]["ref_audio_path"])
    assert 3 <= sf.info(ref).duration <= 9.5


def test_a_reference_under_three_seconds_is_refused_before_the_server_is_asked(tmp_path, fake, voice_wav):
    x, sr = sf.read(voice_wav, dtype="float32")
    short = tmp_path / "short.wav"
    sf.write(short, x[: 2 * sr], sr)
    err = _fails(tmp_path, short)
    assert err.code == "bad_input" and not err.retryable and "3 to 10 s" in err.message
    assert fake.tts == []


def test_the_profiles_trained_weights_are_shared_and_loaded(tmp_path, fake, voice_wav):
    storage = LocalStorage(tmp_path / "objects")
    storage.put_file("jobs/train/voice/gpt.ckpt", voice_wav)  # any bytes: the fake only reads them
    storage.put_file("jobs/train/voice/sovits.pth", voice_wav)
    model = {"engine": "gpt_sovits", "trained": True, "gptWeightsKey": "jobs/train/voice/gpt.ckpt",
             "sovitsWeightsKey": "jobs/train/voice/sovits.pth", "referenceText": "This is a sample of my voice."}
    out = GptSovitsTts().synthesize(_context(tmp_path, Recorder(), voice_wav, narration="Hi.", model=model))
    [(w1, gpt), (w2, sovits)] = fake.weight_calls
    assert (w1, w2) == ("gpt", "sovits") and fake.gpt_weights == gpt and fake.sovits_weights == sovits
    assert gpt.endswith(".ckpt") and sovits.endswith(".pth") and Path(gpt).parent == tmp_path / "shared/likeness/weights"
    assert fake.tts[0]["prompt_text"] == "This is a sample of my voice."
    assert "profile" in out.outputs["voice"]


def test_default_weights_missing_on_the_server_is_not_retried(tmp_path, fake, voice_wav, monkeypatch):
    monkeypatch.setenv("GPT_SOVITS_GPT_WEIGHTS", "/nowhere/s1.ckpt")
    err = _fails(tmp_path, voice_wav)
    assert err.code == "engine_unavailable" and not err.retryable
    assert "weights missing" in err.message and "/nowhere/s1.ckpt" in err.message
    assert fake.tts == []


# --- failures ---------------------------------------------------------------------------------


def test_not_configured_is_unavailable_and_names_the_variable(tmp_path, voice_wav, monkeypatch):
    assert "GPT_SOVITS_URL is not set" in GptSovitsTts.problem()
    err = _fails(tmp_path, voice_wav)
    assert err.code == "engine_unavailable" and not err.retryable and "GPT_SOVITS_URL" in err.message
    monkeypatch.setenv("GPT_SOVITS_URL", "http://127.0.0.1:9")
    GptSovitsTts.problems.clear()
    assert "GPT_SOVITS_SHARED_DIR is not set" in GptSovitsTts.problem()
    monkeypatch.setenv("GPT_SOVITS_URL", "ftp://x")
    err = _fails(tmp_path, voice_wav)
    assert err.code == "bad_input" and "GPT_SOVITS_URL" in err.message


def test_health_asks_the_server_and_caches_the_answer(tmp_path, fake, monkeypatch):
    assert GptSovitsTts.problem() is None
    assert fake.requests == [("GET", "/control")]
    assert GptSovitsTts.problem() is None and len(fake.requests) == 1  # cached
    GptSovitsTts.problems.clear()
    monkeypatch.setenv("GPT_SOVITS_URL", f"http://127.0.0.1:{free_port()}")
    assert "unreachable" in GptSovitsTts.problem()


def test_an_unreachable_server_is_unavailable_and_retryable(tmp_path, fake, voice_wav, monkeypatch):
    monkeypatch.setenv("GPT_SOVITS_URL", f"http://127.0.0.1:{free_port()}")
    err = _fails(tmp_path, voice_wav)
    assert err.code == "engine_unavailable" and err.retryable and "cannot be reached" in err.message


def test_a_parameter_the_server_refuses_is_bad_input_naming_the_setting(tmp_path, fake, voice_wav, monkeypatch):
    monkeypatch.setenv("GPT_SOVITS_TEXT_LANG", "xx")
    err = _fails(tmp_path, voice_wav)
    assert err.code == "bad_input" and not err.retryable
    assert "text_lang: xx is not supported in version v2" in err.message and "GPT_SOVITS_TEXT_LANG" in err.message


def test_a_server_that_cannot_see_the_shared_folder_is_unavailable(tmp_path, fake, voice_wav, monkeypatch):
    monkeypatch.setenv("GPT_SOVITS_SERVER_DIR", "/data/elsewhere")
    err = _fails(tmp_path, voice_wav)
    assert err.code == "engine_unavailable" and not err.retryable
    assert "/data/elsewhere/likeness/refs/" in err.message and "GPT_SOVITS_SERVER_DIR" in err.message


def test_out_of_memory_during_inference_is_caught_in_the_silent_placeholder(tmp_path, fake, voice_wav):
    fake.fail = "oom"
    err = _fails(tmp_path, voice_wav)
    assert err.code == "engine_failed" and err.retryable
    assert "placeholder" in err.message and "16000 Hz" in err.message
    assert "CUDA out of memory" in (tmp_path / "fake.log").read_text()  # the server's console


def test_out_of_memory_loading_the_reference_is_out_of_memory(tmp_path, fake, voice_wav, monkeypatch):
    monkeypatch.setenv("FAKE_GPT_SOVITS_FAIL", "oom_ref")
    err = _fails(tmp_path, voice_wav)
    assert err.code == "out_of_memory" and err.retryable and "CUDA out of memory" in err.message


def test_tts_failed_is_engine_failed_with_the_exception(tmp_path, fake, voice_wav):
    fake.fail = "error"
    err = _fails(tmp_path, voice_wav)
    assert err.code == "engine_failed" and err.retryable and "expanded size of the tensor" in err.message


def test_a_dropped_connection_is_engine_failed(tmp_path, fake, voice_wav):
    fake.fail = "crash"
    err = _fails(tmp_path, voice_wav)
    assert err.code == "engine_failed" and err.retryable and "dropped the connection" in err.message


def test_cancel_drops_the_request_at_once(tmp_path, fake, voice_wav):
    fake.fail = "hang"
    rec = Recorder()
    threading.Thread(target=lambda: (fake.hanging.wait(10), rec.cancel.set()), daemon=True).start()
    t0 = time.monotonic()
    err = _fails(tmp_path, voice_wav, rec)
    assert err.code == "cancelled" and time.monotonic() - t0 < 5
    deadline = time.monotonic() + 5
    while fake.dropped == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert fake.dropped == 1  # the server saw the client go


def test_the_time_limit_stops_a_hanging_server(tmp_path, fake, voice_wav, monkeypatch):
    fake.fail = "hang"
    monkeypatch.setenv("GPT_SOVITS_TIMEOUT_S", "1")
    t0 = time.monotonic()
    err = _fails(tmp_path, voice_wav)
    assert err.code == "timeout" and err.retryable and "GPT_SOVITS_TIMEOUT_S" in err.message
    assert time.monotonic() - t0 < 5


# --- the fake against api_v2.py's contract ----------------------------------------------------


def test_the_fake_answers_like_api_v2(tmp_path, fake, voice_wav):
    url = fake.url
    assert httpx.get(f"{url}/control").json() == {"message": "command is required"}
    r = httpx.get(f"{url}/tts", params={"text": "hi", "ref_audio_path": str(voice_wav), "prompt_lang": "en"})
    assert r.status_code == 500  # text_lang.lower() on None
    r = httpx.get(f"{url}/tts", params={"text": "hi", "text_lang": "en", "prompt_lang": "en",
                                        "ref_audio_path": str(voice_wav), "batch_size": "two"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "batch_size"]
    r = httpx.post(f"{url}/tts", json={"text": "hi", "text_lang": "en"})
    assert r.status_code == 400 and r.json() == {"message": "ref_audio_path is required"}
    r = httpx.post(f"{url}/tts", json={"text": "hi", "text_lang": "en", "ref_audio_path": "/x.wav", "prompt_lang": "en",
                                       "text_split_method": "cut9"})
    assert r.json() == {"message": "text_split_method:cut9 is not supported"}
    r = httpx.post(f"{url}/tts", json={"text": "hi", "text_lang": "en", "ref_audio_path": "/x.wav", "prompt_lang": "en",
                                       "streaming_mode": 7})
    assert r.json()["message"].startswith("the value of streaming_mode must be 0, 1, 2, 3(int)")
    r = httpx.post(f"{url}/tts", json={"text": "hi", "text_lang": "en", "ref_audio_path": "/x.wav", "prompt_lang": "en"})
    assert r.json() == {"message": "tts failed", "Exception": "/x.wav not exists"}
    short = tmp_path / "short.wav"
    sf.write(short, np.zeros(24000, np.float32), 24000)
    r = httpx.post(f"{url}/tts", json={"text": "hi", "text_lang": "en", "ref_audio_path": str(short), "prompt_lang": "en"})
    assert r.json() == {"message": "tts failed", "Exception": REF_RANGE_MESSAGE}
    r = httpx.get(f"{url}/set_sovits_weights", params={"weights_path": "/no/s2G.pth"})
    assert r.status_code == 400 and r.json()["message"] == "change sovits weight failed"
    assert "No such file or directory" in r.json()["Exception"]
    assert httpx.get(f"{url}/set_gpt_weights").json() == {"message": "gpt weight path is required"}
    # streaming: a WAV header with the rate, then raw int16 chunks
    with httpx.stream("GET", f"{url}/tts", params={"text": "Hi. Bye.", "text_lang": "en", "prompt_lang": "en",
                                                   "ref_audio_path": str(voice_wav), "streaming_mode": "2"}) as r:
        data = r.read()
    assert r.status_code == 200 and data[:4] == b"RIFF" and int.from_bytes(data[24:28], "little") == 32000
    assert len(data) > 44 + 32000  # more than a second of speech after the header


def test_the_fake_runs_alone_with_api_v2s_flags(tmp_path):
    fakes = Path(__file__).parent / "fakes" / "gpt_sovits.py"
    bad = subprocess.run([sys.executable, str(fakes), "--port", "x"], capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and "invalid int value" in bad.stderr
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(fakes), "-a", "127.0.0.1", "-p", str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        assert "Uvicorn running" in proc.stdout.readline()
        assert httpx.get(f"http://127.0.0.1:{port}/control").status_code == 400
    finally:
        proc.kill()
        proc.wait()
