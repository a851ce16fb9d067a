"""The training side's GPU engines (issue 14): the ``reference`` voice trainer (the reference-audio
voice model, carried by publish as voiceModelKey) and the ``likeness`` evaluate engine, whose
renders come from the protocol-faithful fake ComfyUI (tests/fakes/comfyui.py) drawing a real face
(skimage's astronaut), through a TaskContext on local storage as the runtime runs them. Its ArcFace
path runs face_embed_host.py over the fake insightface (tests/fakes/insightface: the real API, a
Haar-cascade grey-crop vector in place of the models)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import soundfile as sf
from conftest import Recorder
from fakes.comfyui import FakeComfyUI

from likeness_worker.engines import TaskContext
from likeness_worker.engines.base import StepOutput
from likeness_worker.engines.builtin.train import BuiltinPublish, DatasetVoiceTrainer
from likeness_worker.engines.comfyui import ComfyUIImage
from likeness_worker.engines.gpu import likeness_eval
from likeness_worker.engines.gpu.likeness_eval import ARCFACE_METHOD, FACE_HOST, METHOD, LikenessEvaluate, face_descriptor
from likeness_worker.engines.gpu.voice_reference import ReferenceVoiceTrainer
from likeness_worker.engines.ports import TASK_PORTS
from likeness_worker.errors import StepFailure
from likeness_worker.storage import LocalStorage

JOB = "job"
LORA_KEY = f"jobs/{JOB}/train_lora/lora.safetensors"
DATASET_KEY = f"jobs/{JOB}/prepare/dataset.tar"
REF_KEY = f"jobs/{JOB}/prepare/voice_reference.wav"
TRIGGER = "lkperson"


def _astronaut() -> np.ndarray:
    from skimage import data

    return data.astronaut()


ASTRONAUT = _astronaut()
FACE = ASTRONAUT[20:260, 110:350]  # the face with hair and a little shoulder, 240 px


def _stretched(rgb: np.ndarray, fx: float) -> np.ndarray:
    """Another face shape: the face widened by ``fx`` and cut back to its size."""
    h, w = rgb.shape[:2]
    wide = cv2.resize(rgb, (round(w * fx), h), interpolation=cv2.INTER_CUBIC)
    x = (wide.shape[1] - w) // 2
    return np.ascontiguousarray(wide[:, x:x + w])


class FaceComfyUI(FakeComfyUI):
    """The fake ComfyUI whose text-to-image draws a portrait: ``face`` pasted on a grey canvas
    of the EmptyLatentImage's size (a trained LoRA's render of the person)."""

    face: np.ndarray | None = FACE

    def _save(self, prompt, node):
        latent = self._upstream(prompt, node, "EmptyLatentImage")
        if latent is None or self.face is None:
            return super()._save(prompt, node)
        w, h = int(latent["inputs"]["width"]), int(latent["inputs"]["height"])
        canvas = np.full((h, w, 3), 128, np.uint8)
        side = min(w, h) * 3 // 4
        face = cv2.resize(self.face, (side, side), interpolation=cv2.INTER_AREA)
        y, x = (h - side) // 2, (w - side) // 2
        canvas[y:y + side, x:x + side] = face
        return [self._write(node, canvas)]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in ("COMFYUI_URL", "COMFYUI_WORKFLOW", "COMFYUI_WORKFLOWS_DIR", "COMFYUI_CHECKPOINT", "COMFYUI_LORA",
                 "COMFYUI_LORAS_DIR", "COMFYUI_TIMEOUT_S", "COMFYUI_REQUEST_TIMEOUT_S", "LIKENESS_COMFYUI_WORKFLOWS_DIR",
                 "LIKENESS_EVAL_SAMPLES", "LIKENESS_EVAL_TTS", "LIKENESS_EVAL_SENTENCE", "LIKENESS_EVAL_FACE_PYTHON",
                 "LIKENESS_EVAL_FACE_MODELS_DIR", "LIKENESS_EVAL_FACE_TIMEOUT_S"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LIKENESS_EVAL_SAMPLES", "2")
    ComfyUIImage.health.clear()
    yield
    ComfyUIImage.health.clear()


@pytest.fixture
def fake(tmp_path, monkeypatch):
    server = FaceComfyUI(tmp_path / "comfyui").start()
    monkeypatch.setenv("COMFYUI_URL", server.url)
    monkeypatch.setenv("COMFYUI_LORAS_DIR", str(server.loras_dir))
    yield server
    server.stop()


def _speech_wav(seconds: float = 3.0, sr: int = 24000) -> bytes:
    """A voiced, speech-like clip: a 120 Hz harmonic source under a moving formant, in syllables."""
    t = np.arange(int(seconds * sr)) / sr
    f0 = 120 + 15 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    x = sum(np.sin(k * phase) / k for k in range(1, 12))
    x *= (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)) ** 2  # four syllables a second
    buf = io.BytesIO()
    sf.write(buf, (0.3 * x / np.max(np.abs(x))).astype(np.float32), sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def _dataset_tar(faces: list[np.ndarray]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for i, rgb in enumerate(faces, start=1):
            ok, png = cv2.imencode(".png", cv2.cvtColor(cv2.resize(rgb, (512, 512)), cv2.COLOR_RGB2BGR))
            assert ok
            for name, data in ((f"{i:03d}.png", png.tobytes()), (f"{i:03d}.txt", f"{TRIGGER}, a photo\n".encode())):
                info = tarfile.TarInfo(f"dataset/img/75_{TRIGGER}/{name}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _storage(tmp_path: Path) -> LocalStorage:
    storage = LocalStorage(tmp_path / "objects")
    storage.put_bytes(REF_KEY, _speech_wav(), "audio/wav")
    # Two photos of the person: the crop, and a wider framing of the same face.
    storage.put_bytes(DATASET_KEY, _dataset_tar([FACE, ASTRONAUT[0:300, 80:380]]), "application/x-tar")
    storage.put_bytes(LORA_KEY, b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ", "application/octet-stream")
    return storage


def _inputs(trained: bool = True, voice_model: str | None = None) -> dict[str, dict[str, Any]]:
    lora: dict[str, Any] = {"trained": trained}
    if trained:
        lora.update(loraKey=LORA_KEY, baseModel="sd15", triggerWord=TRIGGER)
    inputs = {
        "dataset": {"step": "prepare", "key": DATASET_KEY, "ref": None,
                    "outputs": {"acceptedImages": 2, "rejectedImages": []}},
        "voice_reference": {"step": "prepare", "key": REF_KEY, "ref": None,
                            "outputs": {"voiceDurationSec": 3.0, "voiceLoudnessLufs": -20.0}},
        "lora": {"step": "train_lora", "key": f"jobs/{JOB}/train_lora/lora.json", "ref": None, "outputs": lora},
        "voice_profile": {"step": "train_voice", "key": f"jobs/{JOB}/train_voice/voice_profile.json", "ref": None,
                          "outputs": {"voiceProfile": {"median_f0_hz": 120.0}}},
    }
    if voice_model:
        inputs["voice_model"] = {"step": "train_voice", "key": voice_model, "ref": None, "outputs": {}}
    return inputs


def _ctx(tmp_path: Path, storage: LocalStorage, rec: Recorder, task_kind: str, step: str,
         inputs: dict[str, dict[str, Any]]) -> TaskContext:
    command = {"kind": "train_profile", "payload": {"profileId": "p", "triggerWord": TRIGGER, "images": [],
                                                    "voiceSample": {"key": "uploads/v.wav", "name": "v.wav"}}}
    return TaskContext(job_id=JOB, attempt=1, step=step, task_kind=task_kind, engine="x",
                       work_dir=tmp_path / "work" / step, storage=storage, command=command, inputs=inputs,
                       _progress=rec, _cancelled=rec.cancel.is_set)


def _evaluate(tmp_path: Path, rec: Recorder | None = None, **kw: Any) -> tuple[StepOutput, LocalStorage]:
    storage = _storage(tmp_path)
    out = LikenessEvaluate().evaluate(_ctx(tmp_path, storage, rec or Recorder(), "evaluate", "evaluate", _inputs(**kw)))
    return out, storage


def _fails(tmp_path: Path, rec: Recorder | None = None, **kw: Any) -> StepFailure:
    with pytest.raises(StepFailure) as info:
        _evaluate(tmp_path, rec, **kw)
    return info.value


# --- the reference voice trainer and publish ----------------------------------------------------


def test_the_reference_voice_model_names_the_reference_and_publish_carries_it(tmp_path):
    storage = _storage(tmp_path)
    rec = Recorder()
    inputs = {"voice_reference": _inputs()["voice_reference"]}
    out = ReferenceVoiceTrainer().train(_ctx(tmp_path, storage, rec, "voice_trainer", "train_voice", inputs))
    kinds = {a["kind"]: a for a in out.artifacts}
    assert set(kinds) == {"voice_profile", "voice_model"}
    assert "voice_model" in TASK_PORTS["voice_trainer"].outputs and ReferenceVoiceTrainer.device == "cpu"

    # The measured profile is the built-in trainer's, made by its code.
    builtin = DatasetVoiceTrainer().train(_ctx(tmp_path / "b", storage, Recorder(), "voice_trainer", "builtin", inputs))
    assert out.outputs["voiceProfile"] == builtin.outputs["voiceProfile"]
    assert out.outputs["voiceProfile"]["median_f0_hz"] == pytest.approx(120, abs=15)

    model = storage.get_json_or_none(kinds["voice_model"]["key"])
    assert model["engine"] == "reference" and model["trained"] is False and model["referenceKey"] == REF_KEY
    assert model["usableBy"] == ["gpt_sovits", "f5_tts"] and model["referenceDurationSec"] == 3.0
    assert "referenceText" not in model and any("no transcript" in n for n in model["notes"])
    assert out.outputs["voiceModel"]["referenceText"] is None and rec.monotonic()

    # publish: the voice model's key in ProfileAssets.voiceModelKey; none without a voice model.
    prepared = {"portrait": {"step": "prepare", "key": "jobs/job/prepare/portrait.png", "ref": None,
                             "outputs": {"faceBox": {"x": 1, "y": 2, "w": 3, "h": 4}}},
                **{k: v for k, v in _inputs().items() if k != "lora"},
                "voice_profile": {"step": "train_voice", "key": kinds["voice_profile"]["key"], "ref": None,
                                  "outputs": out.outputs}}
    with_model = {**prepared, "voice_model": {"step": "train_voice", "key": kinds["voice_model"]["key"],
                                              "ref": kinds["voice_model"], "outputs": out.outputs}}
    result = BuiltinPublish().publish(_ctx(tmp_path, storage, Recorder(), "publish", "publish", with_model))
    assert result.outputs["result"]["voiceModelKey"] == kinds["voice_model"]["key"]
    result = BuiltinPublish().publish(_ctx(tmp_path, storage, Recorder(), "publish", "publish", prepared))
    assert "voiceModelKey" not in result.outputs["result"]


# --- the face descriptor ------------------------------------------------------------------------


def test_the_face_descriptor_tells_the_same_face_from_another_shape():
    same = face_descriptor(cv2.resize(ASTRONAUT, (384, 384)))
    photo = face_descriptor(FACE)
    other = face_descriptor(_stretched(FACE, 1.3))
    assert same is not None and photo is not None and other is not None
    assert likeness_eval.cosine(photo, same) > 0.95
    assert likeness_eval.cosine(photo, other) < likeness_eval.cosine(photo, same) - 0.05
    assert face_descriptor(np.full((256, 256, 3), 90, np.uint8)) is None  # no face: no descriptor


# --- likeness -----------------------------------------------------------------------------------


def test_likeness_renders_portraits_with_the_lora_and_scores_them_against_the_photos(tmp_path, fake):
    rec = Recorder()
    t0 = time.monotonic()
    out, storage = _evaluate(tmp_path, rec)
    assert time.monotonic() - t0 < 20

    doc = out.outputs["evaluation"]
    [ev] = [a for a in out.artifacts if a["kind"] == "evaluation"]
    assert storage.get_json_or_none(ev["key"]) == doc and ev["key"] == f"jobs/{JOB}/evaluate/evaluation.json"
    # The built-in evaluation's shape, extended.
    assert doc["faces"] == {"accepted": 2, "rejected": 0} and doc["voice"]["medianF0Hz"] == 120.0
    like = doc["likeness"]
    assert like["method"] == METHOD and "not an ArcFace" in like["methodNote"]
    assert like["arcface"]["used"] is False  # not configured: the stand-in, and why
    assert like["arcface"]["reason"].startswith("not configured: LIKENESS_EVAL_FACE_PYTHON is not set")
    assert like["reason"] is None and like["photosMeasured"] == 2 and like["photoBaseline"] > 0.8
    assert like["score"] > 0.9, like
    assert [s["faceFound"] for s in like["samples"]] == [True, True]
    assert like["triggerWord"] == TRIGGER and like["workflow"] == "txt2img_lora_sd15"

    # The renders are kept, each a real PNG with its score.
    renders = [a for a in out.artifacts if a["kind"] == "likeness_sample"]
    assert [a["key"] for a in renders] == [f"jobs/{JOB}/evaluate/likeness-0{i}.png" for i in range(2)]
    img = cv2.imread(str(storage.get_file(renders[0]["key"], tmp_path / "r.png")))
    assert img.shape == (512, 512, 3) and renders[0]["meta"]["score"] == like["samples"][0]["score"]

    # What ComfyUI was sent: the trigger word in the prompt, the profile's LoRA placed and loaded,
    # a seed per sample.
    assert len(fake.prompts) == 2
    graphs = [b["prompt"] for b in fake.prompts]
    assert all(g["6"]["inputs"]["text"].startswith(f"{TRIGGER}, ") for g in graphs)
    lora_name = graphs[0]["10"]["inputs"]["lora_name"]
    assert lora_name.startswith("likeness/") and (fake.loras_dir / lora_name).is_file()
    assert graphs[0]["3"]["inputs"]["seed"] != graphs[1]["3"]["inputs"]["seed"]

    assert rec.monotonic() and rec.progress[-1][0] == 1.0
    assert any("KSampler" in (m or "") for _, m in rec.progress)

    # No tts engine: the voice similarity is null, with the reason.
    voice = doc["voiceSimilarity"]
    assert voice["score"] is None and "LIKENESS_EVAL_TTS is not set" in voice["reason"]


def test_likeness_is_lower_for_renders_of_another_face_shape(tmp_path, fake):
    same = _evaluate(tmp_path / "same")[0].outputs["evaluation"]["likeness"]["score"]
    fake.face = _stretched(FACE, 1.3)
    other = _evaluate(tmp_path / "other")[0].outputs["evaluation"]["likeness"]["score"]
    assert other < same - 0.05, (same, other)


def test_renders_without_a_face_score_null_with_the_reason(tmp_path, fake):
    fake.face = None  # the fake's own gradient
    like = _evaluate(tmp_path)[0].outputs["evaluation"]["likeness"]
    assert like["score"] is None and like["reason"] == "no face found in any of the 2 portraits rendered with the LoRA"
    assert like["photosMeasured"] == 2


def test_without_a_trained_lora_nothing_is_rendered_and_comfyui_is_not_needed(tmp_path):
    out, _ = _evaluate(tmp_path, trained=False)
    like = out.outputs["evaluation"]["likeness"]
    assert like["score"] is None and like["reason"] == "no LoRA was trained, so there is nothing to compare"
    assert like["method"] == METHOD and like["methodNote"].startswith("face shape") and not like["arcface"]["used"]
    assert [a["kind"] for a in out.artifacts] == ["evaluation"]


def test_a_trained_lora_without_comfyui_is_engine_unavailable(tmp_path):
    failure = _fails(tmp_path)
    assert failure.code == "engine_unavailable" and not failure.retryable and "COMFYUI_URL" in failure.message
    assert LikenessEvaluate.problem() == "the renders need ComfyUI: COMFYUI_URL is not set"


def test_comfyui_out_of_memory_is_out_of_memory(tmp_path, fake):
    fake.error_message = "CUDA out of memory. Tried to allocate 2.00 GiB"
    fake.error_type = "torch.OutOfMemoryError"
    failure = _fails(tmp_path)
    assert failure.code == "out_of_memory" and failure.retryable and "out of GPU memory" in failure.message


def test_a_cancel_interrupts_the_render(tmp_path, fake):
    fake.hang = True
    rec = Recorder()

    def cancel_once_sampling() -> None:  # the first render is running on the fake's sampler
        deadline = time.monotonic() + 15
        while not fake.running_ids() and time.monotonic() < deadline:
            time.sleep(0.01)
        rec.cancel.set()

    threading.Thread(target=cancel_once_sampling, daemon=True).start()
    failure = _fails(tmp_path, rec)
    assert failure.code == "cancelled" and "interrupted" in failure.message and fake.interrupts
    assert not fake.running_ids() and len(fake.prompts) == 1


def test_bad_settings_are_bad_input(tmp_path, monkeypatch):
    monkeypatch.setenv("LIKENESS_EVAL_SAMPLES", "0")
    failure = _fails(tmp_path)
    assert failure.code == "bad_input" and "LIKENESS_EVAL_SAMPLES" in failure.message
    assert "LIKENESS_EVAL_SAMPLES" in (LikenessEvaluate.problem() or "")


# --- ArcFace (insightface buffalo_l), through the fake insightface ---------------------------------

FAKES = Path(__file__).parent / "fakes"


def _other_person() -> np.ndarray:
    """Another person's face: the first of skimage's LFW faces (25 px, grey), enlarged."""
    from skimage import data

    grey = (data.lfw_subset()[0] * 255).astype(np.uint8)
    return cv2.cvtColor(cv2.resize(grey, (240, 240), interpolation=cv2.INTER_CUBIC), cv2.COLOR_GRAY2RGB)


@pytest.fixture
def face_python(tmp_path: Path) -> Path:
    """The Python of an "insightface environment": this one, with the fake insightface importable."""
    wrapper = tmp_path / "face-env" / "python"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH="{FAKES}" exec "{sys.executable}" "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


def _models_root(tmp_path: Path, files: tuple[str, ...] = ("det_10g.onnx", "w600k_r50.onnx", "genderage.onnx")) -> Path:
    pack = tmp_path / "insightface" / "models" / "buffalo_l"
    pack.mkdir(parents=True)
    for name in files:
        (pack / name).write_bytes(b"")  # the fake knows a model by its file name
    return pack.parent.parent


@pytest.fixture
def arcface(tmp_path, monkeypatch, face_python) -> Path:
    root = _models_root(tmp_path)
    monkeypatch.setenv("LIKENESS_EVAL_FACE_PYTHON", str(face_python))
    monkeypatch.setenv("LIKENESS_EVAL_FACE_MODELS_DIR", str(root))
    return root


def test_arcface_scores_the_same_face_above_another_persons(tmp_path, fake, arcface):
    rec = Recorder()
    like = _evaluate(tmp_path / "same", rec)[0].outputs["evaluation"]["likeness"]
    assert like["method"] == ARCFACE_METHOD and "buffalo_l" in like["methodNote"]
    assert "non-commercial" in like["methodNote"]
    assert like["arcface"] == {"used": True, "reason": None, "modelPack": "buffalo_l",
                               "modelsDir": str(arcface / "models" / "buffalo_l")}
    assert like["reason"] is None and like["photosMeasured"] == 2 and like["photoBaseline"] > 0.8
    assert [s["faceFound"] for s in like["samples"]] == [True, True] and like["score"] > 0.9, like
    assert rec.monotonic() and any("ArcFace embeddings 4/4" in (m or "") for _, m in rec.progress)

    fake.face = _other_person()
    other = _evaluate(tmp_path / "other")[0].outputs["evaluation"]["likeness"]
    assert other["method"] == ARCFACE_METHOD and all(s["faceFound"] for s in other["samples"])
    assert other["score"] < like["score"] - 0.3, (like["score"], other["score"])


def test_arcface_configured_without_its_models_is_engine_unavailable_before_rendering(tmp_path, fake, face_python,
                                                                                       monkeypatch):
    monkeypatch.setenv("LIKENESS_EVAL_FACE_PYTHON", str(face_python))
    monkeypatch.setenv("LIKENESS_EVAL_FACE_MODELS_DIR", str(tmp_path / "nowhere"))
    failure = _fails(tmp_path)
    assert failure.code == "engine_unavailable" and not failure.retryable
    assert "det_10g.onnx" in failure.message and "LIKENESS_EVAL_FACE_MODELS_DIR" in failure.message
    assert not fake.prompts  # nothing rendered, and no fall back to the stand-in
    assert "ArcFace is configured" in (LikenessEvaluate.problem() or "")


def test_arcface_configured_with_a_python_without_insightface_is_engine_unavailable(tmp_path, fake, monkeypatch):
    monkeypatch.setenv("LIKENESS_EVAL_FACE_PYTHON", sys.executable)  # no insightface here
    monkeypatch.setenv("LIKENESS_EVAL_FACE_MODELS_DIR", str(_models_root(tmp_path)))
    failure = _fails(tmp_path)
    assert failure.code == "engine_unavailable" and not failure.retryable
    assert "No module named 'insightface'" in failure.message and "LIKENESS_EVAL_FACE_PYTHON" in failure.message


def test_the_host_refuses_a_missing_pack_and_the_fake_fails_like_insightface(tmp_path, face_python):
    from fakes.insightface.app import FaceAnalysis
    from fakes.insightface.utils import ConnectionError as DownloadError

    # The host never lets insightface download: a missing model file is named.
    run = subprocess.run([str(face_python), str(FACE_HOST), "--root", str(tmp_path / "none"), "x.png"],
                         capture_output=True, text=True, timeout=30, env={**os.environ})
    assert run.returncode == 1 and "FileNotFoundError: [Errno 2] No such file or directory" in run.stderr
    assert "models/buffalo_l/det_10g.onnx" in run.stderr

    # The fake, like insightface: a pack folder not there is downloaded (no network: requests fails)…
    with pytest.raises(DownloadError) as info:
        FaceAnalysis(name="buffalo_l", root=str(tmp_path / "none"), providers=["CPUExecutionProvider"])
    assert "buffalo_l.zip" in str(info.value) and type(info.value).__module__ == "requests.exceptions"
    # …and a pack without a detector fails its assert.
    with pytest.raises(AssertionError):
        FaceAnalysis(name="buffalo_l", root=str(_models_root(tmp_path, ("w600k_r50.onnx",))))
    # With the pack: the real API's attributes.
    app = FaceAnalysis(name="buffalo_l", root=str(_models_root(tmp_path / "ok")), providers=["CPUExecutionProvider"],
                       allowed_modules=["detection", "recognition"])
    app.prepare(ctx_id=0, det_size=(640, 640))
    [face] = app.get(cv2.cvtColor(ASTRONAUT, cv2.COLOR_RGB2BGR))
    assert face.bbox.shape == (4,) and 0.5 <= face.det_score <= 1
    assert abs(float(np.linalg.norm(face.normed_embedding)) - 1) < 1e-5
    assert app.get(np.full((200, 200, 3), 90, np.uint8)) == []


# --- voice similarity ---------------------------------------------------------------------------


class _SampleTts:
    """A stand-in GPU tts engine (the real ones have their own fakes and tests): it speaks the
    reference again, lower, through the tts verb and its outputs."""

    spoken: list[TaskContext] = []

    @classmethod
    def problem(cls) -> str | None:
        return None

    def synthesize(self, ctx: TaskContext) -> StepOutput:
        type(self).spoken.append(ctx)
        x, sr = sf.read(str(ctx.fetch(ctx.payload["profile"]["voiceReferenceKey"], "ref.wav")), dtype="float32")
        out = ctx.path("out/speech.wav")
        sf.write(str(out), 0.5 * x, sr, subtype="PCM_16")
        return StepOutput([ctx.upload("speech.wav", out, "speech", "audio/wav"),
                           ctx.upload_json("timings.json", {"words": [], "durationSec": len(x) / sr}, "timings")])


def _spectrum(path: Path) -> np.ndarray:
    """The test's speaker embedding (resemblyzer is the bench extra): the mean log spectrum."""
    x, _ = sf.read(str(path), dtype="float32")
    frames = np.lib.stride_tricks.sliding_window_view(x, 512)[::256]
    return np.log(np.abs(np.fft.rfft(frames * np.hanning(512))).mean(axis=0) + 1e-6) + 20


def test_voice_similarity_speaks_a_sample_with_the_voice_models_engine(tmp_path, monkeypatch):
    from likeness_worker.media import voice_similarity

    storage_probe = _storage(tmp_path)
    model_key = f"jobs/{JOB}/train_voice/voice_model.json"
    storage_probe.put_json(model_key, {"engine": "f5_tts", "trained": True, "referenceText": "hello"})
    monkeypatch.setattr(likeness_eval, "tts_engines", lambda: {"gpt_sovits": _SampleTts, "f5_tts": _SampleTts})
    monkeypatch.setattr(likeness_eval, "resemblyzer_missing", lambda: False)
    monkeypatch.setattr(voice_similarity, "speaker_embedding", _spectrum)
    _SampleTts.spoken = []
    rec = Recorder()
    ctx = _ctx(tmp_path, storage_probe, rec, "evaluate", "evaluate", _inputs(trained=False, voice_model=model_key))
    out = LikenessEvaluate().evaluate(ctx)
    voice = out.outputs["evaluation"]["voiceSimilarity"]
    assert voice["engine"] == "f5_tts" and voice["reason"] is None and voice["score"] > 0.9
    assert voice["sampleKey"] == f"jobs/{JOB}/evaluate/speech.wav"
    [spoken] = _SampleTts.spoken
    assert spoken.task_kind == "tts" and spoken.payload["profile"] == {"voiceReferenceKey": REF_KEY,
                                                                       "voiceModelKey": model_key}
    assert spoken.payload["script"]["narration"].startswith("The weather")
    assert {a["kind"] for a in out.artifacts} == {"evaluation", "voice_sample", "voice_sample_timings"}
    assert rec.monotonic()


def test_voice_similarity_is_null_when_the_engine_or_resemblyzer_is_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("LIKENESS_EVAL_TTS", "gpt_sovits")
    monkeypatch.delenv("GPT_SOVITS_URL", raising=False)
    voice = _evaluate(tmp_path / "a", trained=False)[0].outputs["evaluation"]["voiceSimilarity"]
    assert voice["score"] is None and voice["engine"] == "gpt_sovits"
    assert voice["reason"].startswith("the gpt_sovits tts engine is not available: GPT_SOVITS_URL is not set")

    monkeypatch.setattr(likeness_eval, "tts_engines", lambda: {"gpt_sovits": _SampleTts, "f5_tts": _SampleTts})
    monkeypatch.setattr(likeness_eval, "resemblyzer_missing", lambda: True)
    voice = _evaluate(tmp_path / "b", trained=False)[0].outputs["evaluation"]["voiceSimilarity"]
    assert voice["score"] is None and "resemblyzer" in voice["reason"]
    json.dumps(voice)


def test_arcface_makes_the_engine_non_commercial(monkeypatch):
    # insightface's buffalo_l models are for non-commercial research: advertised and recorded so.
    assert LikenessEvaluate.licence_terms() == (LikenessEvaluate.licence, False)
    monkeypatch.setenv("LIKENESS_EVAL_FACE_PYTHON", "python3")
    licence, non_commercial = LikenessEvaluate.licence_terms()
    assert non_commercial is True and "InsightFace" in licence and licence.startswith(LikenessEvaluate.licence)
