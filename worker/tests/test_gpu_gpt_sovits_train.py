"""The gpt_sovits voice trainer against a checkout-shaped fake of GPT-SoVITS (tests/fakes/GPT-SoVITS:
slice_audio.py, fasterwhisper_asr.py, the three prepare_datasets scripts, s2_train.py, s1_train.py with
the real flags, environment variables, file layout and progress lines; toy numpy training), through
a TaskContext on a local storage folder; a retried attempt gets a fresh work folder, as on another
machine. The trained weights are then loaded by the gpt_sovits tts engine through the fake api_v2.py."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import Recorder
from fakes.gpt_sovits import FakeGptSovits, espeak_samples

from likeness_worker.engines import TaskContext
from likeness_worker.engines.gpu import gpt_sovits_train
from likeness_worker.engines.gpu.gpt_sovits import GptSovitsTts
from likeness_worker.engines.gpu.gpt_sovits_train import GptSovitsVoiceTrainer
from likeness_worker.engines.ports import Input
from likeness_worker.errors import StepFailure
from likeness_worker.storage import LocalStorage

FAKE = Path(__file__).resolve().parent / "fakes" / "GPT-SoVITS"
SAMPLE_KEY = "uploads/profile/voice.wav"
REF_KEY = "jobs/job/prepare/voice_reference.wav"
STATE = "jobs/job/train_voice/state/"
HEARD = "the quick brown fox jumps over the lazy dog while my voice is recorded for the studio"
PRETRAINED = "GPT_SoVITS/pretrained_models"


@pytest.fixture(scope="module")
def voices(tmp_path_factory) -> tuple[Path, Path]:
    """A 9 s voice sample (three sentences, with pauses) at 24 kHz and its first 5 s as the reference."""
    folder = tmp_path_factory.mktemp("voice")
    gap = np.zeros(int(0.6 * 24000), np.float32)
    parts = []
    for text in ("This is a sample of my voice, recorded for the studio.", "It has a few sentences in it.",
                 "And this is the last one of them, read slowly."):
        parts += [espeak_samples(text, 24000), gap]
    x = np.concatenate(parts)
    sample, ref = folder / "voice.wav", folder / "voice_reference.wav"
    sf.write(sample, x, 24000, subtype="PCM_16")
    sf.write(ref, x[: 5 * 24000], 24000, subtype="PCM_16")
    return sample, ref


@pytest.fixture
def fake(tmp_path, monkeypatch, tools) -> Path:
    """A copy of the fake checkout with its pretrained models and the ASR model in place."""
    for name in [n for n in list(__import__("os").environ) if n.startswith(("GPT_SOVITS_", "FAKE_GPT_SOVITS"))]:
        monkeypatch.delenv(name)
    checkout = tmp_path / "GPT-SoVITS"
    shutil.copytree(FAKE, checkout, ignore=shutil.ignore_patterns("__pycache__"))
    for folder in ("chinese-roberta-wwm-ext-large", "chinese-hubert-base"):
        (checkout / PRETRAINED / folder).mkdir(parents=True)
        (checkout / PRETRAINED / folder / "config.json").write_text("{}")
    v2 = checkout / PRETRAINED / "gsv-v2final-pretrained"
    v2.mkdir()
    for name in ("s2G2333k.pth", "s2D2333k.pth", "s1bert25hz-5kh-longer-epoch=12-step=369668.ckpt"):
        (v2 / name).write_bytes(b"PK" + bytes(range(64)))
    (checkout / "tools/asr/models/faster-whisper-large-v3").mkdir(parents=True)
    (checkout / "tools/asr/models/faster-whisper-large-v3/model.bin").write_bytes(b"\0" * 16)
    env = {"GPT_SOVITS_TRAIN_DIR": str(checkout), "GPT_SOVITS_TRAIN_PYTHON": sys.executable,
           "GPT_SOVITS_TRAIN_S2_EPOCHS": "4", "GPT_SOVITS_TRAIN_S1_EPOCHS": "4", "GPT_SOVITS_TRAIN_SAVE_EVERY_EPOCH": "2",
           "FAKE_GPT_SOVITS_TRAIN_LOG": str(tmp_path / "runs.jsonl"), "FAKE_GPT_SOVITS_TRAIN_TEXT": HEARD}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr(gpt_sovits_train, "STATE_POLL_S", 0.05)
    return checkout


def _context(tmp_path: Path, rec: Recorder, voices: tuple[Path, Path], attempt: int = 1) -> TaskContext:
    storage = LocalStorage(tmp_path / "objects")
    sample, ref = voices
    if not storage.exists(SAMPLE_KEY):
        storage.put_file(SAMPLE_KEY, sample, "audio/wav")
        storage.put_file(REF_KEY, ref, "audio/wav")
    outputs = {"voiceDurationSec": 5.0, "voiceLoudnessLufs": -20.0}
    inputs = {"voice_reference": Input("voice_reference", REF_KEY, {"key": REF_KEY, "kind": "voice_reference"},
                                       outputs, "prepare").to_record()}
    command = {"kind": "train_profile", "payload": {"profileId": "00000000-0000-4000-8000-000000000000", "images": [],
                                                    "voiceSample": {"key": SAMPLE_KEY, "filename": "voice.wav"}}}
    return TaskContext(job_id="job", attempt=attempt, step="train_voice", task_kind="voice_trainer", engine="gpt_sovits",
                       work_dir=tmp_path / f"work-{attempt}", storage=storage, command=command, inputs=inputs,
                       _progress=rec, _cancelled=rec.cancel.is_set)


def _fails(tmp_path: Path, voices, rec: Recorder | None = None, attempt: int = 1) -> StepFailure:
    with pytest.raises(StepFailure) as info:
        GptSovitsVoiceTrainer().train(_context(tmp_path, rec or Recorder(), voices, attempt))
    return info.value


def _runs(tmp_path: Path) -> list[dict]:
    path = tmp_path / "runs.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _gone(pid: int) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return True
    return fields[0] in ("Z", "X")


def _npz(data: bytes) -> dict:
    import io

    with np.load(io.BytesIO(data)) as z:
        return {k: z[k] for k in z.files}


# --- a training ----------------------------------------------------------------------------------


def test_a_training_makes_weights_the_tts_engine_loads(tmp_path, fake, voices, monkeypatch):
    rec = Recorder()
    out = GptSovitsVoiceTrainer().train(_context(tmp_path, rec, voices))
    storage = LocalStorage(tmp_path / "objects")

    profile, sovits, gpt, model_ref = out.artifacts
    assert profile["kind"] == "voice_profile" and model_ref["kind"] == "voice_model"
    assert sovits["kind"] == gpt["kind"] == "voice_weights"
    assert sovits["meta"]["file"].startswith("likeness_e4_s") and sovits["meta"]["file"].endswith(".pth")
    assert gpt["meta"]["file"] == "likeness-e4.ckpt"
    model = storage.get_json(model_ref["key"])
    assert model["engine"] == "gpt_sovits" and model["trained"] is True
    assert model["gptWeightsKey"] == gpt["key"] == "jobs/job/train_voice/gpt_weights.ckpt"
    assert model["sovitsWeightsKey"] == sovits["key"] == "jobs/job/train_voice/sovits_weights.pth"
    words = model["referenceText"].split()
    assert words and all(w in HEARD.split() for w in words)  # what the ASR heard in reference.wav
    assert model["slices"] >= 2 and model["resumed"] == {}
    assert np.abs(_npz(storage.get_bytes(sovits["key"]))["weight"]).max() > 0  # trained, not the zeros it starts at
    assert out.outputs["voiceModel"]["referenceText"] == model["referenceText"] and "voiceProfile" in out.outputs

    # The stages, in order, with the real interface: positional slice arguments, ASR flags, env-configured prep.
    runs = _runs(tmp_path)
    assert [r["stage"] for r in runs] == ["slice", "asr", "text", "hubert", "semantic", "s2", "s1"]
    assert runs[0]["argv"][3:] == ["-34", "4000", "300", "10", "500", "0.9", "0.25", "0", "1"]
    root = tmp_path / "work-1" / "gpt_sovits"
    assert runs[0]["argv"][1] == str(root / "input" / "voice_sample.wav") and runs[0]["argv"][2] == str(root / "slices")
    assert runs[1]["argv"][1:] == ["-i", str(root / "slices"), "-o", str(root / "asr"), "-s", "large-v3", "-l", "en",
                                   "-p", "float16"]
    env = runs[2]["env"]
    assert env["exp_name"] == "likeness" and env["i_part"] == "0" and env["all_parts"] == "1"
    assert env["version"] == "v2" and env["is_half"] == "True" and env["_CUDA_VISIBLE_DEVICES"] == "0"
    assert env["bert_pretrained_dir"].endswith("chinese-roberta-wwm-ext-large")
    assert all(r["cwd"] == str(fake) for r in runs)
    exp = tmp_path / "work-1" / "gpt_sovits" / "logs" / "likeness"
    train_list = (tmp_path / "work-1" / "gpt_sovits" / "likeness.list").read_text().splitlines()
    assert all(line.count("|") == 3 and "|likeness|EN|" in line for line in train_list)
    assert not any("reference.wav" in line for line in train_list)
    assert (exp / "6-name2semantic.tsv").read_text().startswith("item_name\tsemantic_audio\n")
    assert len((exp / "2-name2text.txt").read_text().strip().splitlines()) == len(train_list)
    s2 = json.loads((tmp_path / "work-1" / "gpt_sovits" / "TEMP" / "tmp_s2.json").read_text())
    assert s2["train"]["epochs"] == 4 and s2["train"]["save_every_epoch"] == 2 and s2["train"]["if_save_latest"] is True
    assert s2["data"]["exp_dir"] == s2["s2_ckpt_dir"] == str(exp) and s2["model"]["version"] == "v2"
    assert s2["train"]["pretrained_s2G"].endswith("s2G2333k.pth") and s2["name"] == "likeness"
    assert s2["data"]["n_speakers"] == 300  # the rest is configs/s2.json's
    s1 = (tmp_path / "work-1" / "gpt_sovits" / "TEMP" / "tmp_s1.yaml").read_text()
    assert "exp_name: likeness" in s1 and "n_layer: 24" in s1 and "half_weights_save_dir:" in s1
    assert runs[6]["env"]["hz"] == "25hz"

    # Progress: every stage, never backwards, epochs of both trainings.
    assert rec.monotonic() and rec.progress[-1] == (1.0, "GPT-SoVITS: voice trained")
    messages = [m or "" for _, m in rec.progress]
    for what in ("slicing", "transcribing slice 1/", "HuBERT", "SoVITS epoch 4/4", "GPT epoch 4/4"):
        assert any(what in m for m in messages), what
    assert list(storage.list(STATE)) == []  # the saved states went once the weights were up

    # The tts engine speaks with these weights.
    shared = tmp_path / "shared"
    shared.mkdir()
    server = FakeGptSovits(log=open(tmp_path / "server.log", "w")).start()  # noqa: SIM115
    try:
        monkeypatch.setenv("GPT_SOVITS_URL", server.url)
        monkeypatch.setenv("GPT_SOVITS_SHARED_DIR", str(shared))
        GptSovitsTts.problems.clear()
        storage.put_file("jobs/train/voice_reference.wav", voices[1])
        profile_doc = {"portraitKey": "p.png", "voiceReferenceKey": "jobs/train/voice_reference.wav",
                       "voiceProfileKey": profile["key"], "voiceModelKey": model_ref["key"]}
        command = {"kind": "generate_video", "payload": {"profile": profile_doc, "width": 256, "height": 256,
                                                         "script": {"title": "t", "stage": "s",
                                                                    "narration": "Hello there, this is my voice."}}}
        ctx = TaskContext(job_id="job2", attempt=1, step="tts", task_kind="tts", engine="gpt_sovits",
                          work_dir=tmp_path / "tts", storage=storage, command=command)
        GptSovitsTts().synthesize(ctx)
    finally:
        server.stop()
        server._log.close()
    calls = dict(server.weight_calls)
    assert Path(calls["gpt"]).read_bytes() == storage.get_bytes(gpt["key"])
    assert Path(calls["sovits"]).read_bytes() == storage.get_bytes(sovits["key"])
    assert server.gpt_weights == calls["gpt"] and server.sovits_weights == calls["sovits"]
    assert server.tts[0]["prompt_text"] == model["referenceText"]


# --- resuming ------------------------------------------------------------------------------------


def test_a_cancelled_sovits_training_is_killed_and_the_retry_resumes_it(tmp_path, fake, voices, monkeypatch):
    monkeypatch.setenv("FAKE_GPT_SOVITS_TRAIN_FAIL", "s2:hang")
    monkeypatch.setenv("GPT_SOVITS_TRAIN_TIMEOUT_S", "60")  # a safety net: the cancel comes first
    monkeypatch.setenv("FAKE_GPT_SOVITS_TRAIN_FAIL_AT_EPOCH", "3")
    rec = Recorder()
    storage = LocalStorage(tmp_path / "objects")

    def cancel_when_saved():  # it hangs at the start of epoch 3: cancel once epoch 2's state is up
        for _ in range(400):
            state = storage.get_json_or_none(STATE + "state.json") or {}
            if (state.get("s2") or {}).get("epoch") == 2:
                rec.cancel.set()
                return
            time.sleep(0.05)

    threading.Thread(target=cancel_when_saved, daemon=True).start()
    failure = _fails(tmp_path, voices, rec)
    assert failure.code == "cancelled" and "training SoVITS at epoch 3" in failure.message
    assert "SoVITS (epoch 2)" in failure.message
    s2_run = [r for r in _runs(tmp_path) if r["stage"] == "s2"][-1]
    assert _gone(s2_run["pid"])
    state = storage.get_json(STATE + "state.json")
    assert set(state["s2"]["keys"]) == {"G_233333333333.pth", "D_233333333333.pth"}
    assert int(_npz(storage.get_bytes(state["s2"]["keys"]["G_233333333333.pth"]))["iteration"]) == 2

    monkeypatch.delenv("FAKE_GPT_SOVITS_TRAIN_FAIL")
    rec2 = Recorder()
    out = GptSovitsVoiceTrainer().train(_context(tmp_path, rec2, voices, attempt=2))
    model = storage.get_json(out.artifacts[-1]["key"])
    assert model["resumed"] == {"dataset": True, "s2FromEpoch": 2}
    assert [r["stage"] for r in _runs(tmp_path)][-2:] == ["s2", "s1"]  # no slicing or ASR again
    assert any("training SoVITS from epoch 3" in (m or "") for _, m in rec2.progress)
    assert not any("SoVITS epoch 1/4" in (m or "") for _, m in rec2.progress)
    assert out.artifacts[1]["meta"]["file"].startswith("likeness_e4_s") and rec2.monotonic()
    assert list(storage.list(STATE)) == []


def test_a_crashed_gpt_training_resumes_from_its_checkpoint_without_training_sovits_again(tmp_path, fake, voices,
                                                                                          monkeypatch):
    monkeypatch.setenv("FAKE_GPT_SOVITS_TRAIN_FAIL", "s1:crash")
    monkeypatch.setenv("FAKE_GPT_SOVITS_TRAIN_FAIL_AT_EPOCH", "3")
    failure = _fails(tmp_path, voices)
    assert failure.code == "engine_failed" and failure.retryable
    assert "illegal memory access" in failure.message and "GPT (epoch 2)" in failure.message
    storage = LocalStorage(tmp_path / "objects")
    state = storage.get_json(STATE + "state.json")
    assert list(state["s1"]["keys"]) == [name for name in state["s1"]["keys"] if name.startswith("epoch=1-step=")]
    assert state["sovits"]["ref"]["key"] == "jobs/job/train_voice/sovits_weights.pth" and "s2" not in state

    monkeypatch.delenv("FAKE_GPT_SOVITS_TRAIN_FAIL")
    out = GptSovitsVoiceTrainer().train(_context(tmp_path, Recorder(), voices, attempt=2))
    model = storage.get_json(out.artifacts[-1]["key"])
    assert model["resumed"] == {"dataset": True, "sovits": True, "s1FromEpoch": 2}
    runs = _runs(tmp_path)
    assert [r["stage"] for r in runs][7:] == ["s1"]
    assert out.artifacts[2]["meta"]["file"] == "likeness-e4.ckpt"


# --- failures ------------------------------------------------------------------------------------


def test_the_time_limit_kills_the_running_stage(tmp_path, fake, voices, monkeypatch):
    monkeypatch.setenv("FAKE_GPT_SOVITS_TRAIN_FAIL", "asr:hang")
    monkeypatch.setenv("GPT_SOVITS_TRAIN_TIMEOUT_S", "4")
    failure = _fails(tmp_path, voices)
    assert failure.code == "timeout" and failure.retryable
    assert "GPT_SOVITS_TRAIN_TIMEOUT_S (4 s) while transcribing the slices" in failure.message
    assert _gone(_runs(tmp_path)[-1]["pid"])


@pytest.mark.parametrize(("switch", "code", "retryable", "words"), [
    ("s2:oom", "out_of_memory", True, ["CUDA out of memory. Tried to allocate 256.00 MiB", "GPT_SOVITS_TRAIN_S2_BATCH_SIZE"]),
    ("s1:env", "engine_unavailable", False, ["No module named 'torch'", "training GPT"]),
    ("asr:silent", "bad_input", False, ["no speech was recognised"]),
    ("hubert:crash", "engine_failed", True, ["illegal memory access", "HuBERT features"]),
])
def test_a_stage_failing(tmp_path, fake, voices, monkeypatch, switch, code, retryable, words):
    monkeypatch.setenv("FAKE_GPT_SOVITS_TRAIN_FAIL", switch)
    failure = _fails(tmp_path, voices)
    assert failure.code == code and failure.retryable is retryable
    for w in words:
        assert w in failure.message


def test_a_sample_that_cannot_be_sliced_is_bad_input(tmp_path, fake, voices):
    storage = LocalStorage(tmp_path / "objects")
    storage.put_bytes(SAMPLE_KEY, b"not audio at all" * 10)
    storage.put_file(REF_KEY, voices[1])
    failure = _fails(tmp_path, voices)
    assert failure.code == "bad_input" and "could not slice" in failure.message and "->fail->" in failure.message


def test_too_little_speech_for_sovits_is_bad_input(tmp_path, fake, voices, monkeypatch):
    """Every slice's 5-wav32k file is filtered out (TextAudioSpeakerLoader keeps 0.6-54 s): its assertion."""
    script = fake / "GPT_SoVITS" / "s2_train.py"
    script.write_text(script.read_text().replace("if 54 > duration > 0.6:", "if 54 > duration > 60:"))
    failure = _fails(tmp_path, voices)
    assert failure.code == "bad_input" and "too little usable speech" in failure.message


@pytest.mark.parametrize(("missing", "named"), [
    (f"{PRETRAINED}/gsv-v2final-pretrained/s2G2333k.pth", "GPT_SOVITS_TRAIN_PRETRAINED_S2G"),
    (f"{PRETRAINED}/chinese-hubert-base", "GPT_SOVITS_TRAIN_CNHUBERT_DIR"),
    ("tools/asr/models/faster-whisper-large-v3", "GPT_SOVITS_TRAIN_ASR_MODEL"),
])
def test_weights_missing_fail_before_anything_runs(tmp_path, fake, voices, missing, named):
    path = fake / missing
    shutil.rmtree(path) if path.is_dir() else path.unlink()
    assert named in (GptSovitsVoiceTrainer.problem() or "")
    failure = _fails(tmp_path, voices)
    assert failure.code == "engine_unavailable" and not failure.retryable and "weights missing" in failure.message
    assert named in failure.message and _runs(tmp_path) == []


def test_not_configured(tmp_path, fake, voices, monkeypatch):
    monkeypatch.delenv("GPT_SOVITS_TRAIN_DIR")
    assert "GPT_SOVITS_TRAIN_DIR is not set" in (GptSovitsVoiceTrainer.problem() or "")
    failure = _fails(tmp_path, voices)
    assert failure.code == "engine_unavailable" and not failure.retryable
    monkeypatch.setenv("GPT_SOVITS_TRAIN_DIR", str(fake))
    monkeypatch.setenv("GPT_SOVITS_TRAIN_S1_EPOCHS", "5")  # no weights would be written at epoch 5
    failure = _fails(tmp_path, voices)
    assert failure.code == "bad_input" and "GPT_SOVITS_TRAIN_SAVE_EVERY_EPOCH" in failure.message
    assert GptSovitsVoiceTrainer.problem() is not None


def test_the_fake_keeps_the_real_command_lines(fake):
    """argparse's refusals, as the real scripts' parsers give them."""
    env = {**__import__("os").environ, "PYTHONPATH": f"{fake}:{fake / 'tools'}"}
    for script, args, expected in (("GPT_SoVITS/s2_train.py", ["--config", "x.json", "--epochs", "3"],
                                     "unrecognized arguments: --epochs 3"),
                                    ("GPT_SoVITS/s1_train.py", ["--config", "x.yaml", "--nope"], "unrecognized arguments"),
                                    ("tools/asr/fasterwhisper_asr.py", ["-i", "a", "-o", "b", "-s", "tiny"],
                                     "argument -s/--model_size: invalid choice: 'tiny'")):
        proc = subprocess.run([sys.executable, str(fake / script), *args], cwd=fake, env=env, capture_output=True,
                              text=True, timeout=30)
        assert proc.returncode == 2 and expected in proc.stderr, (script, proc.stderr)
