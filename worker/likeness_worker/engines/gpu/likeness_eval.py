"""``likeness`` evaluate engine: how much the trained profile looks and sounds like its person.

It writes the built-in evaluate's ``evaluation.json`` (faces, voice, ``likeness`` and
``voiceSimilarity``, each ``{"score", "reason"}``; ``builtin.train.BuiltinEvaluate`` makes the
common part) and fills in the two scores where the models exist:

**likeness**, when the ``lora`` input says a LoRA was trained: LIKENESS_EVAL_SAMPLES portraits are
rendered by ComfyUI with the profile's LoRA and trigger word, through the comfyui image engine's
own helpers (``comfyui.image``: the workflow COMFYUI_WORKFLOW filled with ``fill``, the LoRA put
where ComfyUI reads it with ``place_lora``; ``comfyui.runner.run_graph``: checked against
/object_info, queued, followed over /ws, interrupted on cancel or COMFYUI_TIMEOUT_S), one seed per
sample. Each render and each photo of the dataset (the accepted face crops in dataset.tar) is
measured, and the score is the mean over the renders of the cosine similarity between the render's
face vector and the photos' mean vector. ``photoBaseline`` says what the photos score against each
other (leave one out): a render near it is as alike as the person's own photos are. The output's
``method`` and ``methodNote`` say which measurement made the score, and ``arcface`` whether ArcFace
was used and, when not, why.

*ArcFace* (``method`` ``arcface-buffalo_l``), when LIKENESS_EVAL_FACE_PYTHON names the Python of
an environment with insightface and onnxruntime (installed by the operator on the GPU box): the
script ``face_embed_host.py`` beside this file runs with that Python (``media.proc.stream``: killed
on cancel or LIKENESS_EVAL_FACE_TIMEOUT_S) on all the photos and renders at once, and prints for
each the L2-normalised 512-d ArcFace embedding of its largest face (insightface's ``FaceAnalysis``
with the model pack buffalo_l, read from ``<LIKENESS_EVAL_FACE_MODELS_DIR>/models/buffalo_l/``,
by default ~/.insightface/models/buffalo_l/: det_10g.onnx, w600k_r50.onnx). An identity embedding:
the same person scores high across pose and light, another person low. Configured but broken (the
Python, the script or a model file missing, insightface not importable) is engine_unavailable,
checked before anything is rendered: never a silent fall back to the stand-in. buffalo_l's models
are licensed by insightface for non-commercial research only (the output's ``methodNote`` says so).

*The stand-in* (``method`` ``mediapipe-face-mesh-geometry``), when LIKENESS_EVAL_FACE_PYTHON is
not set (``arcface.reason`` says so). It is NOT an identity embedding but a real, documented
measurement of face *shape*: the face is found with MediaPipe's
detector (``media.faces.detect_faces``), MediaPipe Face Mesh places its 468 3D landmarks (model in
the mediapipe wheel), and of ``LANDMARKS`` (30 stable points: brow, eye corners, nose, mouth
corners, lips, jaw, chin, forehead, cheeks) every pairwise 3D distance is taken, divided by their
mean (scale), logged, and the same of MediaPipe's canonical face model (``CANONICAL``, from
mediapipe/modules/face_geometry/data/canonical_face_model.obj, Apache-2.0) is subtracted: what
remains is how this face's proportions differ from the average face. It ignores skin, hair, eyes'
colour and texture, and moves with pose and expression. On skimage's astronaut it gives 0.97-0.99
for the same face re-framed, rotated or blurred, and 0.64-0.93 for the face stretched by 15-30 %.

**voiceSimilarity**, when a tts engine is available: a sentence (LIKENESS_EVAL_SENTENCE) is spoken
in the profile's voice by the GPU tts engine the voice model names (its manifest's ``engine``:
gpt_sovits or f5_tts), else by LIKENESS_EVAL_TTS, with the profile's voice reference and voice
model, through that engine's own ``synthesize`` on a context of this step; the score is the cosine
similarity of resemblyzer's speaker embeddings (``media.voice_similarity``, the ``bench`` extra:
its encoder ships in its wheel) of the reference and the sample. No engine named or configured
(its ``problem()``), or resemblyzer not installed: ``null`` with the reason. An engine that is
configured but fails fails the step with its own failure.

Failures: COMFYUI_URL not set while a LoRA needs rendering → engine_unavailable (not retried); the
LoRA's family differs from the workflow's → engine_unavailable; ComfyUI's failures as the image
engine's (out_of_memory, engine_failed, bad_input, timeout, cancelled: runner.py); ArcFace
configured but broken → engine_unavailable (not retried) naming what is missing, its script's
crash → engine_failed, its time limit → timeout, a cancel → cancelled; the dataset unreadable →
bad_input. No face found in any render or in any photo is not a failure: the score is
``null`` and the reason says so.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import shutil
import tarfile
import threading
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ...config import ConfigError, load_group
from ...errors import StepFailure
from ...media.errors import Cancelled, ToolFailed, ToolTimeout
from ...media.proc import stream
from ..base import Engine, StepOutput, TaskContext, engine
from ..builtin.train import BuiltinEvaluate
from .tooling import missing_paths, run_failure, step_settings

NAME = "likeness"
METHOD = "mediapipe-face-mesh-geometry"
METHOD_NOTE = ("face shape, not identity: log-normalised 3D distances between 30 MediaPipe Face Mesh landmarks, "
               "minus those of MediaPipe's canonical face, compared by cosine similarity; not an ArcFace/FaceNet "
               "embedding (LIKENESS_EVAL_FACE_PYTHON is not set): blind to skin, hair and texture, sensitive to pose "
               "and expression")
ARCFACE_METHOD = "arcface-buffalo_l"
ARCFACE_NOTE = ("identity: cosine similarity of insightface ArcFace embeddings (model pack buffalo_l: SCRFD det_10g "
                "detector, ArcFace ResNet-50 w600k_r50, 512-d, L2-normalised) of the largest face of each render to "
                "the photos' mean embedding; buffalo_l's models are licensed for non-commercial research only")
FACE_PACK = "buffalo_l"
FACE_PACK_FILES = ("det_10g.onnx", "w600k_r50.onnx")  # the detector and the recogniser the host loads
FACE_HOST = Path(__file__).with_name("face_embed_host.py")
VOICE_METHOD = "resemblyzer-d-vector-cosine"
PORTRAIT_STAGE = "a close-up portrait photo of a person looking at the camera, plain background, soft light"
MAX_PHOTOS = 24
CROP_MARGIN = 1.8  # the square around a detected face handed to Face Mesh: face plus a margin
MESH_SIZE = 256
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp")

# Face Mesh landmark indices: forehead, chin, jaw (4 pairs), eye corners (outer/inner, both eyes),
# brows (2 per side), nose (tip, bridge ×3, alae), mouth corners, lips (upper, lower), cheeks, chin front.
LANDMARKS = (10, 152, 234, 454, 132, 361, 172, 397, 33, 133, 362, 263, 70, 105, 300, 334, 1, 4, 6, 168, 98, 327,
             61, 291, 0, 17, 50, 280, 199, 9)
# The same vertices of canonical_face_model.obj (google/mediapipe, Apache-2.0), in its units (cm).
CANONICAL = np.array([
    [0.0, 8.262, 4.482], [0.0, -9.403, 4.264], [-7.664, 0.673, -2.436], [7.664, 0.673, -2.436],
    [-7.271, -2.891, -2.252], [7.271, -2.891, -2.252], [-5.941, -6.224, -0.631], [5.941, -6.224, -0.631],
    [-4.446, 2.664, 3.173], [-1.856, 2.585, 3.758], [1.856, 2.585, 3.758], [4.446, 2.664, 3.173],
    [-5.721, 4.255, 2.831], [-3.987, 5.109, 4.466], [5.721, 4.255, 2.831], [3.987, 5.109, 4.466],
    [0.0, -1.127, 7.476], [0.0, -0.463, 7.587], [0.0, 2.473, 5.789], [0.0, 3.271, 5.236],
    [-1.406, -1.714, 5.241], [1.406, -1.714, 5.241], [-2.456, -4.343, 4.284], [2.456, -4.343, 4.284],
    [0.0, -3.406, 5.98], [0.0, -5.365, 5.535], [-4.766, -0.702, 3.535], [4.766, -0.702, 3.535],
    [0.0, -7.942, 5.181], [0.0, 4.886, 5.385],
])

TTS_ENGINES = ("gpt_sovits", "f5_tts")


class TtsEngineClass(Protocol):
    """What of a GPU tts engine class the voice sample uses."""

    @classmethod
    def problem(cls) -> str | None: ...

    def synthesize(self, ctx: TaskContext) -> StepOutput: ...


class LikenessEvalSettings(BaseModel):
    """LIKENESS_EVAL_*: all optional. The renders also need the comfyui image engine's COMFYUI_*."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    likeness_eval_samples: int = Field(4, ge=1, le=16)  # portraits rendered with the LoRA
    # The tts engine that speaks the voice sample when the voice model names none of its own ("": none).
    likeness_eval_tts: Literal["", "gpt_sovits", "f5_tts"] = ""
    likeness_eval_sentence: str = Field(
        "The weather was calm this morning, so we walked down to the harbour and watched the boats come in.",
        min_length=1, max_length=300)
    # ArcFace: the Python of an environment with insightface + onnxruntime ("": the geometry stand-in),
    # insightface's root holding models/buffalo_l/ ("": ~/.insightface), and the run's time limit.
    likeness_eval_face_python: str = ""
    likeness_eval_face_models_dir: str = ""
    likeness_eval_face_timeout_s: int = Field(600, ge=10, le=7200)


def face_models_root(s: LikenessEvalSettings) -> Path:
    """insightface's ``root=``: the folder whose models/buffalo_l/ holds the pack."""
    return Path(os.path.expanduser(s.likeness_eval_face_models_dir or "~/.insightface"))


def arcface_missing(s: LikenessEvalSettings) -> list[str]:
    """What a configured ArcFace lacks (cheap: stat only); empty when it can run."""
    pack = face_models_root(s) / "models" / FACE_PACK
    python = shutil.which(s.likeness_eval_face_python) or s.likeness_eval_face_python  # a path, or a name on PATH
    missing = missing_paths(LIKENESS_EVAL_FACE_PYTHON=Path(python),
                            **{"the host script": FACE_HOST},
                            **{f"{FACE_PACK} model {f}": pack / f for f in FACE_PACK_FILES})
    if any(FACE_PACK in m for m in missing):
        missing.append(f"put insightface's {FACE_PACK} pack in {pack} or set LIKENESS_EVAL_FACE_MODELS_DIR "
                       "to the folder that holds models/buffalo_l/")
    return missing


def face_method(s: LikenessEvalSettings) -> dict[str, Any]:
    """The output's ``method``, ``methodNote`` and ``arcface`` (used, and why not); a configured but
    broken ArcFace fails (engine_unavailable), never falls back."""
    if not s.likeness_eval_face_python:
        return {"method": METHOD, "methodNote": METHOD_NOTE,
                "arcface": {"used": False, "reason": "not configured: LIKENESS_EVAL_FACE_PYTHON is not set (the Python "
                            "of an environment with insightface and onnxruntime and the buffalo_l models)"}}
    missing = arcface_missing(s)
    if missing:
        raise StepFailure("engine_unavailable", f"{NAME}: ArcFace is configured (LIKENESS_EVAL_FACE_PYTHON) but cannot "
                          f"run: {'; '.join(missing)}", retryable=False)
    return {"method": ARCFACE_METHOD, "methodNote": ARCFACE_NOTE,
            "arcface": {"used": True, "reason": None, "modelPack": FACE_PACK,
                        "modelsDir": str(face_models_root(s) / "models" / FACE_PACK)}}


# The face descriptor ----------------------------------------------------------------------------

_mesh_lock = threading.Lock()
_mesh: Any = None


def _distances(points: np.ndarray) -> np.ndarray:
    d = np.linalg.norm(points[:, None, :] - points[None, :, :], axis=-1)[np.triu_indices(len(points), 1)]
    return np.log(np.maximum(d, 1e-9) / d.mean())


_CANONICAL_DISTANCES = _distances(CANONICAL)


def face_descriptor(rgb: np.ndarray) -> np.ndarray | None:
    """The face-shape descriptor of the largest face in an RGB image, or None without a face."""
    import cv2
    import mediapipe as mp

    from ...media.faces import detect_faces

    global _mesh
    faces = detect_faces(rgb)
    if not faces:
        return None
    f = faces[0]
    h, w = rgb.shape[:2]
    side = int(round(min(max(w, h), CROP_MARGIN * max(f.w, f.h))))
    x = int(round(min(max(f.x + f.w / 2 - side / 2, 0), max(0, w - side))))
    y = int(round(min(max(f.y + f.h / 2 - side / 2, 0), max(0, h - side))))
    crop = cv2.resize(np.ascontiguousarray(rgb[y:y + side, x:x + side]), (MESH_SIZE, MESH_SIZE),
                      interpolation=cv2.INTER_AREA if side > MESH_SIZE else cv2.INTER_CUBIC)
    with _mesh_lock:  # a MediaPipe graph is not safe to share between threads
        if _mesh is None:
            _mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1,
                                                    min_detection_confidence=0.5)
        found = _mesh.process(np.ascontiguousarray(crop))
    if not found.multi_face_landmarks:
        return None
    marks = found.multi_face_landmarks[0].landmark
    points = np.array([[marks[i].x * MESH_SIZE, marks[i].y * MESH_SIZE, marks[i].z * MESH_SIZE] for i in LANDMARKS])
    return _distances(points) - _CANONICAL_DISTANCES


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / max(float(np.linalg.norm(a) * np.linalg.norm(b)), 1e-12))


def geometry_vectors(paths: list[Path]) -> list[np.ndarray | None]:
    """The stand-in's face-shape descriptor of each image (None: unreadable or no face)."""
    out: list[np.ndarray | None] = []
    for path in paths:
        rgb = _read_rgb(path)
        out.append(face_descriptor(rgb) if rgb is not None else None)
    return out


def arcface_vectors(ctx: TaskContext, s: LikenessEvalSettings, paths: list[Path],
                    lo: float = 0.85, hi: float = 0.95) -> list[np.ndarray | None]:
    """The ArcFace embedding of each image's largest face (None: unreadable or no face), from one
    run of face_embed_host.py with LIKENESS_EVAL_FACE_PYTHON; its progress maps onto lo..hi."""
    if not paths:
        return []
    found: dict[str, list[float] | None] = {}

    def on_line(line: str) -> None:
        if not line.startswith('{"image"'):
            return  # insightface's own prints
        row = json.loads(line)
        found[row["image"]] = row["embedding"]
        ctx.progress(lo + (hi - lo) * len(found) / len(paths), f"likeness: ArcFace embeddings {len(found)}/{len(paths)}")

    cmd = [s.likeness_eval_face_python, str(FACE_HOST), "--root", str(face_models_root(s)), "--name", FACE_PACK,
           *map(str, paths)]
    ctx.progress(lo, f"likeness: ArcFace ({FACE_PACK}) on {len(paths)} images")
    try:
        stream(cmd, s.likeness_eval_face_timeout_s, ctx.cancelled, on_line=on_line)
    except (ToolFailed, ToolTimeout, Cancelled, ValueError) as exc:
        failure = run_failure(f"{NAME} (insightface ArcFace)", exc)
        if failure.code == "timeout":
            failure = StepFailure("timeout", f"{failure.message} (LIKENESS_EVAL_FACE_TIMEOUT_S)", retryable=True)
        elif failure.code == "engine_unavailable":
            failure = StepFailure("engine_unavailable", f"{failure.message}: LIKENESS_EVAL_FACE_PYTHON must be the Python "
                                  f"of an environment with insightface and onnxruntime, and the {FACE_PACK} pack in "
                                  f"{face_models_root(s) / 'models' / FACE_PACK}", retryable=False)
        raise failure from None
    out: list[np.ndarray | None] = []
    for path in paths:
        emb = found.get(str(path))
        out.append(np.asarray(emb, np.float64) if emb else None)
    return out


def _read_rgb(path: Path) -> np.ndarray | None:
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return None if bgr is None else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _dataset_photos(ctx: TaskContext) -> list[Path]:
    """The accepted face crops of the dataset (dataset/img/<repeats>_<trigger>/NNN.png)."""
    tar = ctx.fetch_input("dataset", "dataset.tar")
    root = ctx.path("likeness/dataset")
    try:
        with tarfile.open(tar) as t:
            t.extractall(root, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise StepFailure("bad_input", f"{NAME}: the dataset (dataset.tar) cannot be unpacked: {exc}",
                          retryable=False) from None
    photos = sorted(p for p in (root / "dataset" / "img").glob("*/*") if p.suffix.lower() in IMAGE_EXTENSIONS)
    return photos[:MAX_PHOTOS]


# The engine -------------------------------------------------------------------------------------


def _scaled(ctx: TaskContext, lo: float, hi: float) -> TaskContext:
    """``ctx`` whose progress maps 0..1 onto lo..hi of this step (same storage, keys and cancel)."""
    outer = ctx.progress

    def progress(fraction: float, message: str | None = None) -> None:
        outer(lo + (hi - lo) * max(0.0, min(1.0, fraction)), message)

    return dataclasses.replace(ctx, _progress=progress)


@engine("evaluate", NAME)
class LikenessEvaluate(Engine):
    """Likeness of the LoRA's portraits to the photos (face-shape similarity) and of the cloned voice to
    the reference (speaker-embedding similarity), beside the built-in evaluation."""

    # ComfyUI: GPL-3.0 (the renders; the default SD 1.5 checkpoint: CreativeML OpenRAIL-M); MediaPipe
    # (face detection, Face Mesh, the canonical face): Apache-2.0; resemblyzer: Apache-2.0. insightface's
    # code is MIT, but its buffalo_l models (used only when LIKENESS_EVAL_FACE_PYTHON is set, installed by
    # the operator) are for non-commercial research only: licence_terms() says so then.
    licence = "GPL-3.0-only AND Apache-2.0 AND CreativeML-OpenRAIL-M"
    device = "gpu"
    version = "1"
    settings_group = LikenessEvalSettings
    uses_comfyui = True  # the renders

    @classmethod
    def release(cls) -> None:
        """The voice sample's tts engine may have left its resident process on the card."""
        from .f5_tts import F5Tts

        F5Tts.release()  # gpt_sovits's server is not ours to stop

    @classmethod
    def licence_terms(cls) -> tuple[str, bool]:
        try:
            arcface = bool(load_group(LikenessEvalSettings).likeness_eval_face_python)
        except ConfigError:
            arcface = False
        if arcface:
            return f"{cls.licence} AND MIT AND LicenseRef-InsightFace-buffalo_l-NonCommercial", True
        return cls.licence, cls.non_commercial

    @classmethod
    def problem(cls) -> str | None:
        from ..comfyui.image import ComfyUIImage

        try:
            s = load_group(LikenessEvalSettings)
        except ConfigError as exc:
            return str(exc)
        if s.likeness_eval_face_python and (missing := arcface_missing(s)):
            return f"ArcFace is configured (LIKENESS_EVAL_FACE_PYTHON) but cannot run: {'; '.join(missing)}"
        found = ComfyUIImage.problem()  # cached 30 s: the image workflow on the ComfyUI server
        return f"the renders need ComfyUI: {found}" if found else None

    @classmethod
    def settings_key(cls) -> str:
        from ..comfyui.image import ComfyUIImage

        try:
            s = load_group(LikenessEvalSettings)
        except ConfigError:
            return ""
        face = f"{s.likeness_eval_face_python}|{face_models_root(s)}" if s.likeness_eval_face_python else ""
        return (f"{s.likeness_eval_samples}|{s.likeness_eval_tts}|{s.likeness_eval_sentence}|{face}|"
                f"{ComfyUIImage.settings_key()}")

    def evaluate(self, ctx: TaskContext) -> StepOutput:
        s = step_settings(LikenessEvalSettings)
        doc = BuiltinEvaluate().evaluate(ctx).outputs["evaluation"]  # faces, voice: the common part
        artifacts: list[dict[str, Any]] = []
        lora = ctx.input("lora").outputs
        if lora.get("trained") and lora.get("loraKey"):
            likeness, renders = self._likeness(_scaled(ctx, 0.0, 0.8), s, lora)
            artifacts += renders
        else:
            likeness = {**doc["likeness"], **face_method(s)}
        doc["likeness"] = likeness
        voice, sample = self._voice(_scaled(ctx, 0.8, 0.98), s)
        doc["voiceSimilarity"] = voice
        artifacts += sample
        artifacts.insert(0, ctx.upload_json("evaluation.json", doc, "evaluation"))
        ctx.progress(1.0, "evaluated")
        return StepOutput(artifacts, {"evaluation": doc})

    # Likeness -----------------------------------------------------------------------------------
    def _likeness(self, ctx: TaskContext, s: LikenessEvalSettings,
                  lora: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        from ..comfyui.client import ComfyClient
        from ..comfyui.image import build_prompt, fill, place_lora
        from ..comfyui.runner import comfy_errors, download, output_images, run_graph, seed_for, server_url
        from ..comfyui.runner import settings as comfy_settings
        from ..comfyui.runner import workflow as comfy_workflow

        cs = comfy_settings()
        url = server_url(cs, f"{NAME} evaluate")
        wf = comfy_workflow(cs.comfyui_workflow, cs)
        family = lora.get("baseModel")
        if family and wf.family and family != wf.family:
            raise StepFailure("engine_unavailable", f"{NAME}: the LoRA was trained on {family}, but workflow {wf.name} "
                              f"is {wf.family}: set COMFYUI_WORKFLOW to a {family} workflow", retryable=False)
        method = face_method(s)  # a configured but broken ArcFace fails here, before anything is rendered
        trigger = lora.get("triggerWord") or ctx.payload.get("triggerWord")
        prompt = build_prompt(PORTRAIT_STAGE, trigger)
        gen_w, gen_h = wf.generation_size(512, 512)
        ctx.progress(0.0, "likeness: placing the LoRA where ComfyUI reads it")
        lora_name = place_lora(ctx, cs, str(lora["loraKey"]))

        n = s.likeness_eval_samples
        renders: list[tuple[Path, int]] = []
        artifacts = []
        with ComfyClient(url, timeout_s=cs.comfyui_request_timeout_s) as client, comfy_errors(wf):
            for i in range(n):
                if ctx.cancelled():
                    raise StepFailure("cancelled", f"{NAME}: cancelled after {i}/{n} renders")
                seed = seed_for(NAME, ctx.job_id, i)
                graph = fill(wf, cs, {"prompt": prompt, "width": gen_w, "height": gen_h, "seed": seed}, lora_name)
                history = run_graph(_scaled(ctx, 0.02 + 0.8 * i / n, 0.02 + 0.8 * (i + 1) / n), client, graph, wf, cs)
                png = ctx.path(f"out/likeness-{i:02d}.png")
                png.write_bytes(download(client, output_images(history, wf)[0]))
                renders.append((png, seed))
        ctx.progress(0.85, f"likeness: {n} portraits rendered; measuring the faces")

        images = _dataset_photos(ctx) + [png for png, _ in renders]
        vectors = arcface_vectors(ctx, s, images) if method["arcface"]["used"] else geometry_vectors(images)
        photos = [v for v in vectors[:len(images) - len(renders)] if v is not None]
        samples = []
        for i, ((png, seed), desc) in enumerate(zip(renders, vectors[len(images) - len(renders):], strict=True)):
            score = round(cosine(desc, np.mean(photos, axis=0)), 4) if desc is not None and photos else None
            meta = {"seed": seed, "faceFound": desc is not None, "score": score, "prompt": prompt, "workflow": wf.name}
            ref = ctx.upload(f"likeness-{i:02d}.png", png, "likeness_sample", "image/png", meta)
            artifacts.append(ref)
            samples.append({"key": ref["key"], "seed": seed, "faceFound": desc is not None, "score": score})
        scores = [x["score"] for x in samples if x["score"] is not None]
        baseline = None
        if len(photos) >= 2:
            baseline = round(float(np.mean([cosine(p, np.mean(photos[:j] + photos[j + 1:], axis=0))
                                            for j, p in enumerate(photos)])), 4)
        reason = None
        if not photos:
            reason = "no face could be measured in the dataset's photos"
        elif not scores:
            reason = f"no face found in any of the {n} portraits rendered with the LoRA"
        result = {"score": round(float(np.mean(scores)), 4) if scores else None, "reason": reason,
                  **method, "photoBaseline": baseline,
                  "photosMeasured": len(photos), "samples": samples, "loraKey": lora["loraKey"],
                  "triggerWord": trigger, "workflow": wf.name}
        return result, artifacts

    # Voice similarity ---------------------------------------------------------------------------
    def _voice(self, ctx: TaskContext, s: LikenessEvalSettings) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        base: dict[str, Any] = {"score": None, "method": VOICE_METHOD, "engine": None}
        model_key = ctx.input("voice_model").key if ctx.has_input("voice_model") else None
        model = ctx.storage.get_json_or_none(model_key) if model_key else None
        named = model.get("engine") if isinstance(model, dict) else None
        name = named if named in TTS_ENGINES else s.likeness_eval_tts
        if not name:
            return {**base, "reason": "no tts engine to speak a sample in the profile's voice: the voice model names "
                    "none and LIKENESS_EVAL_TTS is not set"}, []
        cls = tts_engines()[name]
        base["engine"] = name
        unavailable = cls.problem()
        if unavailable:
            return {**base, "reason": f"the {name} tts engine is not available: {unavailable}"}, []
        if resemblyzer_missing():
            return {**base, "reason": "resemblyzer (the worker's bench extra: speaker embeddings) is not installed"}, []

        from ...media import voice_similarity

        ref = ctx.input("voice_reference")
        profile: dict[str, Any] = {"voiceReferenceKey": ref.key}
        if model_key:
            profile["voiceModelKey"] = model_key
        command = {"kind": "generate_video",
                   "payload": {"profile": profile, "script": {"title": "voice sample", "stage": "",
                                                              "narration": s.likeness_eval_sentence}}}
        tts_ctx = dataclasses.replace(ctx, task_kind="tts", engine=name, command=command, inputs={},
                                      work_dir=ctx.work_dir / "voice-sample")
        ctx.progress(0.0, f"voice similarity: {name} speaks a sample")
        made = cls().synthesize(tts_ctx)
        speech = next(a for a in made.artifacts if a["kind"] == "speech")
        sample = ctx.fetch(speech["key"], "voice-sample.wav")
        reference = ctx.fetch(ref.key, "voice-reference.wav")
        ctx.progress(0.9, "voice similarity: speaker embeddings")
        embed = voice_similarity.speaker_embedding
        score = round(cosine(embed(reference), embed(sample)), 4)
        kept = [{**a, "kind": "voice_sample" if a["kind"] == "speech" else "voice_sample_timings"}
                for a in made.artifacts]
        return {**base, "score": score, "reason": None, "sampleKey": speech["key"],
                "voiceModel": named or "the reference (zero-shot)"}, kept


def resemblyzer_missing() -> bool:
    return importlib.util.find_spec("resemblyzer") is None


def tts_engines() -> dict[str, type[TtsEngineClass]]:
    """The GPU tts engines a voice sample may be spoken by (imported when needed)."""
    from .f5_tts import F5Tts
    from .gpt_sovits import GptSovitsTts

    return {"gpt_sovits": GptSovitsTts, "f5_tts": F5Tts}
