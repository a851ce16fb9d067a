"""The f5_tts voice trainer over a protocol-faithful fake of F5-TTS's training code
(tests/fakes/f5_tts: utils_infer.transcribe, train/datasets/prepare_csv_wavs.py, train/finetune_cli.py
with its trainer: torch-zip checkpoints, tqdm bars, no torch), through a TaskContext on a local
storage folder; then the f5_tts tts engine speaking with what it made."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import soundfile as sf

from likeness_worker.engines import TaskContext
from likeness_worker.engines.gpu import f5_tts_train
from likeness_worker.engines.gpu.f5_tts import F5Tts
from likeness_worker.engines.gpu.f5_tts_train import F5TtsFinetune, _checkpoint_update
from likeness_worker.errors import StepFailure
from likeness_worker.storage import LocalStorage

FAKE = Path(__file__).parent / "fakes" / "f5_tts"
REF_KEY = "jobs/train/prepare/voice_reference.wav"
SAID = "This is a sample of my voice, recorded for the studio."
ENV = ("F5_TTS_PYTHON", "F5_TTS_MODEL", "F5_TTS_CKPT_FILE", "F5_TTS_VOCAB_FILE", "F5_TTS_VOCODER_DIR",
       "F5_TTS_HF_CACHE_DIR", "F5_TTS_DEVICE", "F5_TTS_NFE_STEP", "F5_TTS_TIMEOUT_S", "FAKE_F5_TTS_FAIL",
       "FAKE_F5_TTS_UPDATE_S", "FAKE_F5_TTS_TRANSCRIPT", "HF_HOME", "HF_HUB_CACHE",
       *(f.upper() for f in f5_tts_train.F5TtsFinetuneSettings.model_fields))


def _tool_python(root: Path, checkout: Path) -> Path:
    path = root / "python"
    path.write_text(f'#!/bin/sh\nPYTHONPATH="{checkout / "src"}" exec "{sys.executable}" "$@"\n')
    path.chmod(0o755)
    return path


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    """A copy of the fake's checkout: F5-TTS writes data/ and ckpts/ beside its package."""
    dest = tmp_path_factory.mktemp("f5") / "F5-TTS"
    shutil.copytree(FAKE, dest, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


@pytest.fixture(scope="module")
def tool_python(checkout, tmp_path_factory) -> Path:
    return _tool_python(tmp_path_factory.mktemp("f5env"), checkout)


@pytest.fixture(scope="module")
def voice_wav(tmp_path_factory) -> Path:
    from fakes.gpt_sovits import espeak_samples

    path = tmp_path_factory.mktemp("voice") / "voice_reference.wav"
    sf.write(path, espeak_samples(SAID, 24000) * 0.5, 24000)
    return path


@pytest.fixture(scope="module")
def pretrain(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("weights") / "model_1250000.safetensors"
    header = b'{"__metadata__":{"format":"pt"}}'
    path.write_bytes(len(header).to_bytes(8, "little") + header)
    return path


@pytest.fixture(autouse=True)
def _env(monkeypatch, tools, tool_python, pretrain, tmp_path):
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("F5_TTS_PYTHON", str(tool_python))
    monkeypatch.setenv("F5_TTS_FINETUNE_PRETRAIN", str(pretrain))
    monkeypatch.setenv("F5_TTS_FINETUNE_EPOCHS", "12")
    monkeypatch.setenv("F5_TTS_FINETUNE_WARMUP_UPDATES", "2")
    monkeypatch.setenv("F5_TTS_FINETUNE_SAVE_PER_UPDATES", "4")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty Hugging Face cache
    monkeypatch.setattr(f5_tts_train, "KEEP_POLL_S", 0.05)
    F5TtsFinetune.problems.clear()
    yield
    F5TtsFinetune.problems.clear()


class Recorder:
    def __init__(self, cancel_at: int | None = None) -> None:
        self.progress: list[tuple[float, str | None]] = []
        self.cancel = threading.Event()
        self.cancel_at = cancel_at

    def __call__(self, fraction: float, message: str | None = None) -> None:
        self.progress.append((fraction, message))
        if self.cancel_at is not None and (message or "").startswith(f"F5-TTS: update {self.cancel_at}/"):
            self.cancel.set()

    def messages(self) -> list[str]:
        return [m or "" for _, m in self.progress]


def _context(storage: LocalStorage, work: Path, rec: Recorder, voice: Path, *, job: str = "job",
             transcript: str | None = None) -> TaskContext:
    storage.put_file(REF_KEY, voice, "audio/wav")
    outputs: dict[str, Any] = {"voiceDurationSec": 3.0, "voiceLoudnessLufs": -20.0}
    if transcript is not None:
        outputs["voiceTranscript"] = transcript
    inputs = {"voice_reference": {"step": "prepare", "key": REF_KEY, "ref": None, "outputs": outputs}}
    command = {"kind": "train_profile", "payload": {"profileId": "p", "triggerWord": "ohwx", "images": [],
                                                    "voiceSample": {"key": "uploads/v.wav", "name": "v.wav"}}}
    return TaskContext(job_id=job, attempt=1, step="train_voice", task_kind="voice_trainer", engine="f5_tts",
                       work_dir=work, storage=storage, command=command, inputs=inputs, _progress=rec,
                       _cancelled=rec.cancel.is_set)


def _train(tmp_path: Path, voice: Path, rec: Recorder | None = None, work: str = "work", **kw: Any):
    storage = LocalStorage(tmp_path / "objects")
    return F5TtsFinetune().train(_context(storage, tmp_path / work, rec or Recorder(), voice, **kw)), storage


def _fails(tmp_path: Path, voice: Path, rec: Recorder | None = None, **kw: Any) -> StepFailure:
    with pytest.raises(StepFailure) as info:
        _train(tmp_path, voice, rec, **kw)
    return info.value


def _dataset_name(job: str = "job") -> str:
    return "likeness_" + hashlib.sha256(f"{job}\x1ftrain_voice".encode()).hexdigest()[:16]


def _trainers(job: str = "job") -> list[int]:
    """The pids of the fake trainer running for ``job``'s step (none left: it was killed)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes()
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if b"finetune_cli" in cmd and _dataset_name(job).encode() in cmd and state not in ("Z", "X"):
            found.append(int(proc.name))
    return found


def _state(storage: LocalStorage, job: str = "job") -> dict | None:
    return storage.get_json_or_none(f"jobs/{job}/train_voice/ckpt/state.json")


# --- success -------------------------------------------------------------------------------------


def test_the_voice_is_fine_tuned_and_the_tts_engine_speaks_with_it(tmp_path, voice_wav, checkout):
    rec = Recorder()
    out, storage = _train(tmp_path, voice_wav, rec)
    kinds = {a["kind"]: a for a in out.artifacts}
    assert set(kinds) == {"voice_profile", "voice_checkpoint", "voice_model"}

    model = storage.get_json(kinds["voice_model"]["key"])
    assert model["engine"] == "f5_tts" and model["trained"] is True and model["model"] == "F5TTS_v1_Base"
    assert model["ckptKey"] == kinds["voice_checkpoint"]["key"] == "jobs/job/train_voice/f5_tts_model.pt"
    assert model["referenceText"] == "Some call me nature, others call me mother nature."  # the fake Whisper's
    assert model["transcribedBy"] == "openai/whisper-large-v3-turbo" and model["referenceKey"] == REF_KEY
    assert model["updates"] == 12 and model["resumedFromUpdate"] is None and 0 < model["finalLoss"] < 1
    ckpt = storage.get_file(model["ckptKey"], tmp_path / "ckpt.pt")
    assert _checkpoint_update(ckpt) == 12  # the trainer's own model_last.pt, a whole torch zip
    assert out.outputs["voiceModel"]["ckptKey"] == model["ckptKey"]
    assert out.outputs["voiceProfile"]["median_f0_hz"] > 50  # measured like the other voice trainers

    # progress: monotonic, per update from the trainer's epoch bars, to the end
    fractions = [f for f, _ in rec.progress]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    updates = [m for m in rec.messages() if m.startswith("F5-TTS: update ")]
    assert updates[0].startswith("F5-TTS: update 0/12") or updates[0].startswith("F5-TTS: update 1/12")
    assert any(m.startswith("F5-TTS: update 12/12, loss ") for m in updates)
    assert "F5-TTS: transcribing the voice reference (openai/whisper-large-v3-turbo)" in rec.messages()

    # nothing left behind: the saved checkpoints in storage, the dataset and checkpoints in F5-TTS's checkout
    assert list(storage.list("jobs/job/train_voice/ckpt/")) == []
    assert not (checkout / "ckpts" / _dataset_name()).exists()
    assert not (checkout / "data" / f"{_dataset_name()}_pinyin").exists()

    # the f5_tts tts engine reads the voice model: the fine-tuned checkpoint, the transcript
    profile = {"portraitKey": "p.png", "voiceReferenceKey": REF_KEY, "voiceProfileKey": kinds["voice_profile"]["key"],
               "voiceModelKey": kinds["voice_model"]["key"]}
    command = {"kind": "generate_video", "payload": {"profile": profile, "width": 256, "height": 256,
                                                     "script": {"title": "t", "stage": "s", "narration": "Hello there."}}}
    tts = TaskContext(job_id="video", attempt=1, step="tts", task_kind="tts", engine="f5_tts",
                      work_dir=tmp_path / "video", storage=storage, command=command)
    try:
        spoken = F5Tts().synthesize(tts)
    finally:
        F5Tts.release()
    speech = next(a for a in spoken.artifacts if a["kind"] == "speech")
    wav = storage.get_file(speech["key"], tmp_path / "speech.wav")
    probe = json.loads(subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json",
                                       str(wav)], check=True, capture_output=True, text=True).stdout)
    assert probe["streams"][0]["codec_type"] == "audio" and 0.3 < float(probe["format"]["duration"]) < 5
    timings = storage.get_json(next(a for a in spoken.artifacts if a["kind"] == "timings")["key"])
    assert timings["shaping"]["notes"][0] == "the profile's fine-tuned checkpoint"
    assert not any("transcribed it" in n for n in timings["shaping"]["notes"])  # referenceText was used


def test_a_transcript_given_with_the_reference_is_used_without_the_speech_recogniser(tmp_path, voice_wav,
                                                                                       monkeypatch):
    monkeypatch.setenv("FAKE_F5_TTS_FAIL", "no-asr-model")  # Whisper would fail: it is not run
    rec = Recorder()
    out, storage = _train(tmp_path, voice_wav, rec, transcript=f"  {SAID} ")
    model = storage.get_json(next(a for a in out.artifacts if a["kind"] == "voice_model")["key"])
    assert model["referenceText"] == SAID and model["transcribedBy"] is None
    assert not any("transcribing" in m for m in rec.messages())


# --- resuming ------------------------------------------------------------------------------------


def test_a_killed_training_resumes_from_its_uploaded_checkpoint_in_a_fresh_work_dir(tmp_path, voice_wav,
                                                                                      monkeypatch, checkout):
    monkeypatch.setenv("FAKE_F5_TTS_FAIL", "crash-at-update-10")  # SIGKILLed; model_last.pt saved at 4 and 8
    failure = _fails(tmp_path, voice_wav)
    assert failure.code == "engine_failed" and failure.retryable
    assert "at update 9/12" in failure.message and "update 8 is kept: a retry resumes from it" in failure.message
    storage = LocalStorage(tmp_path / "objects")
    state = _state(storage)
    assert state["update"] == 8 and state["key"] == "jobs/job/train_voice/ckpt/model_8.pt"
    assert list(storage.list("jobs/job/train_voice/ckpt/")) == ["jobs/job/train_voice/ckpt/model_8.pt",
                                                                "jobs/job/train_voice/ckpt/state.json"]
    assert not (checkout / "ckpts" / _dataset_name()).exists()  # nothing local is trusted

    monkeypatch.delenv("FAKE_F5_TTS_FAIL")
    rec = Recorder()
    out, storage = _train(tmp_path, voice_wav, rec, work="fresh")
    model = storage.get_json(next(a for a in out.artifacts if a["kind"] == "voice_model")["key"])
    assert model["updates"] == 12 and model["resumedFromUpdate"] == 8
    updates = [m for m in rec.messages() if m.startswith("F5-TTS: update ")]
    assert updates[0].startswith("F5-TTS: update 8/12") and "F5-TTS: resuming from update 8" in rec.messages()
    assert list(storage.list("jobs/job/train_voice/ckpt/")) == []


def test_a_checkpoint_made_with_other_settings_is_not_resumed(tmp_path, voice_wav, monkeypatch):
    monkeypatch.setenv("FAKE_F5_TTS_FAIL", "crash-at-update-6")
    assert _fails(tmp_path, voice_wav).code == "engine_failed"
    monkeypatch.delenv("FAKE_F5_TTS_FAIL")
    monkeypatch.setenv("F5_TTS_FINETUNE_LEARNING_RATE", "2e-5")
    out, storage = _train(tmp_path, voice_wav, work="fresh")
    assert out.outputs["voiceModel"]["resumedFromUpdate"] is None
    assert "other settings" in out.outputs["voiceModel"]["resumeNote"]
    assert list(storage.list("jobs/job/train_voice/ckpt/")) == []  # the stale one deleted too


# --- cancel and time limit -----------------------------------------------------------------------


def test_a_cancel_kills_the_trainer_and_keeps_its_last_checkpoint(tmp_path, voice_wav, monkeypatch):
    monkeypatch.setenv("FAKE_F5_TTS_UPDATE_S", "0.15")
    rec = Recorder(cancel_at=6)
    started = time.monotonic()
    failure = _fails(tmp_path, voice_wav, rec)
    assert failure.code == "cancelled" and time.monotonic() - started < 10
    assert "update 4 is kept" in failure.message
    assert _trainers() == []
    assert _state(LocalStorage(tmp_path / "objects"))["update"] == 4


def test_the_time_limit_kills_a_hanging_trainer(tmp_path, voice_wav, monkeypatch):
    monkeypatch.setenv("FAKE_F5_TTS_FAIL", "hang")
    monkeypatch.setenv("F5_TTS_FINETUNE_TIMEOUT_S", "3")
    failure = _fails(tmp_path, voice_wav)
    assert failure.code == "timeout" and "F5_TTS_FINETUNE_TIMEOUT_S (3 s)" in failure.message
    assert "fine-tuning" in failure.message and _trainers() == []


# --- failures ------------------------------------------------------------------------------------


def test_out_of_memory(tmp_path, voice_wav, monkeypatch):
    monkeypatch.setenv("FAKE_F5_TTS_FAIL", "oom")
    failure = _fails(tmp_path, voice_wav)
    assert failure.code == "out_of_memory" and failure.retryable
    assert "CUDA out of memory" in failure.message and "F5_TTS_FINETUNE_BATCH_SIZE" in failure.message


def test_the_speech_recogniser_missing_from_the_cache(tmp_path, voice_wav, monkeypatch):
    monkeypatch.setenv("FAKE_F5_TTS_FAIL", "no-asr-model")
    failure = _fails(tmp_path, voice_wav)
    assert failure.code == "engine_unavailable" and not failure.retryable
    assert "openai/whisper-large-v3-turbo" in failure.message and "Hugging Face cache" in failure.message


def test_the_pretrained_checkpoint_missing(tmp_path, voice_wav, monkeypatch):
    monkeypatch.delenv("F5_TTS_FINETUNE_PRETRAIN")  # the hub's, through an empty cache on an offline box
    failure = _fails(tmp_path, voice_wav)
    assert failure.code == "engine_unavailable" and not failure.retryable
    assert "model_1250000.safetensors" in failure.message and "F5_TTS_FINETUNE_PRETRAIN" in failure.message

    monkeypatch.setenv("F5_TTS_FINETUNE_PRETRAIN", str(tmp_path / "nope.safetensors"))
    assert "weights missing: F5_TTS_FINETUNE_PRETRAIN" in (F5TtsFinetune.problem() or "")
    failure = _fails(tmp_path, voice_wav)
    assert failure.code == "engine_unavailable" and "nope.safetensors" in failure.message


def test_health_and_configuration(tmp_path, voice_wav, monkeypatch, checkout):
    assert F5TtsFinetune.problem() is None
    assert F5TtsFinetune.non_commercial and F5TtsFinetune.device == "gpu" and "CC-BY-NC-4.0" in F5TtsFinetune.licence

    monkeypatch.delenv("F5_TTS_PYTHON")
    assert "F5_TTS_PYTHON is not set" in (F5TtsFinetune.problem() or "")
    failure = _fails(tmp_path, voice_wav)
    assert failure.code == "engine_unavailable" and "F5_TTS_PYTHON" in failure.message and not failure.retryable

    # F5-TTS installed as a wheel, not from its checkout: no data/ beside the package
    wheel = tmp_path / "wheel"
    shutil.copytree(checkout / "src", wheel / "src", ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setenv("F5_TTS_PYTHON", str(_tool_python(tmp_path, wheel)))
    F5TtsFinetune.problems.clear()
    assert "not installed from its checkout" in (F5TtsFinetune.problem() or "")
    failure = _fails(tmp_path, voice_wav)
    assert failure.code == "engine_unavailable" and "pip install -e" in failure.message

    monkeypatch.setenv("F5_TTS_FINETUNE_WARMUP_UPDATES", "12")
    failure = _fails(tmp_path, voice_wav)
    assert failure.code == "bad_input" and "F5_TTS_FINETUNE_WARMUP_UPDATES" in failure.message


# --- the fake against F5-TTS's command lines -----------------------------------------------------


def test_the_fake_speaks_f5_tts_command_lines(tool_python, tmp_path):
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(tool_python), "-m", *args], capture_output=True, text=True, timeout=30,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"})

    res = run("f5_tts.train.finetune_cli", "--dataset_name", "x", "--max_train_steps", "3")
    assert res.returncode == 2 and "error: unrecognized arguments: --max_train_steps 3" in res.stderr
    res = run("f5_tts.train.finetune_cli", "--exp_name", "F5TTS_Small")
    assert res.returncode == 2 and "invalid choice: 'F5TTS_Small'" in res.stderr
    res = run("f5_tts.train.datasets.prepare_csv_wavs", str(tmp_path / "m.csv"))
    assert res.returncode == 2 and "the following arguments are required: out_dir" in res.stderr
    (tmp_path / "m.csv").write_text("audio_file|text\nrelative.wav|hello there\n")
    res = run("f5_tts.train.datasets.prepare_csv_wavs", str(tmp_path / "m.csv"), str(tmp_path / "out"))
    assert res.returncode == 1 and "ValueError: audio_file must be an absolute path (row 2): relative.wav" in res.stderr
    res = run("f5_tts.train.finetune_cli", "--dataset_name", "not_prepared", "--finetune", "--pretrain",
              str(tmp_path / "m.csv"))
    assert res.returncode == 1 and "FileNotFoundError" in res.stderr and "not_prepared_pinyin/vocab.txt" in res.stderr
