"""train_profile engines: dataset (prepare, lora_trainer, voice_trainer) and builtin (evaluate,
publish). No LoRA and no voice model are trained on the CPU; the outputs say so by name.

They read their declared inputs (``dataset``, ``portrait``, ``voice_reference``, ``lora``,
``voice_profile``, ``voice_model`` when a voice trainer made one; publish of a video: ``video``) with
``ctx.input``, never by step."""

from __future__ import annotations

import tarfile
from pathlib import Path

from ...errors import StepFailure
from ..base import Engine, StepOutput, TaskContext, engine


def ext_of(name: str, default: str = "bin") -> str:
    """The extension of a storage key, letters and digits only (for the local copy's name)."""
    tail = name.rsplit(".", 1)[-1].lower() if "." in name else default
    return "".join(c for c in tail if c.isalnum())[:8] or default


@engine("prepare", "dataset", default=True)
class DatasetPrepare(Engine):
    # MediaPipe (faces); ffmpeg and praat-parselmouth (the voice sample)
    licence = "Apache-2.0 AND GPL-3.0-or-later"
    tools = ("ffmpeg", "ffprobe")

    def prepare(self, ctx: TaskContext) -> StepOutput:
        from ...media.faces import prepare_faces
        from ...media.voice import prepare_voice

        p = ctx.payload
        images = []
        for i, img in enumerate(p["images"]):
            path = ctx.fetch(img["key"], f"image-{i:02d}.{ext_of(img['key'], 'img')}")
            images.append((img["name"], path))
        ctx.progress(0.05, f"{len(images)} photos downloaded")
        if ctx.cancelled():
            raise StepFailure("cancelled", "cancelled after the downloads")

        faces = prepare_faces(images, ctx.path("faces"), p["triggerWord"])
        ctx.progress(0.6, f"{len(faces.accepted)} faces accepted, {len(faces.rejected)} rejected")

        voice_src = ctx.fetch(p["voiceSample"]["key"], "voice-sample." + ext_of(p["voiceSample"]["key"], "wav"))
        clip = prepare_voice(voice_src, ctx.path("out/voice_reference.wav"), 12.0, cancelled=ctx.cancelled)
        ctx.progress(0.85, f"voice reference {clip.duration_sec:.1f} s")

        tar_path = ctx.path("out/dataset.tar")
        with tarfile.open(tar_path, "w") as tar:
            tar.add(faces.dataset_dir, arcname="dataset")
        face_box = {k: float(v) for k, v in faces.portrait_face_box.items() if k in ("x", "y", "w", "h")}
        faces_doc = {
            "accepted": [{k: v for k, v in a.items() if k != "crop_path"} for a in faces.accepted],
            "rejected": [{"name": r["name"], "reason": r["reason"], "index": r["index"]} for r in faces.rejected],
        }
        artifacts = [
            ctx.upload("dataset.tar", tar_path, "dataset", "application/x-tar", {"images": len(faces.accepted)}),
            ctx.upload("dataset.toml", Path(faces.dataset_toml), "dataset_config", "application/toml"),
            ctx.upload("portrait.png", Path(faces.portrait_path), "portrait", "image/png", {"faceBox": face_box}),
            ctx.upload_json("faces.json", faces_doc, "faces"),
            ctx.upload(
                "voice_reference.wav",
                Path(clip.path),
                "voice_reference",
                "audio/wav",
                {"durationSec": round(clip.duration_sec, 3), "loudnessLufs": round(clip.loudness_lufs, 2)},
            ),
        ]
        return StepOutput(
            artifacts,
            {
                "faceBox": face_box,
                "acceptedImages": len(faces.accepted),
                "rejectedImages": faces_doc["rejected"],
                "voiceDurationSec": round(clip.duration_sec, 3),
                "voiceLoudnessLufs": round(clip.loudness_lufs, 2),
                "durationSec": round(clip.duration_sec, 3),
            },
        )


@engine("lora_trainer", "dataset", default=True)
class DatasetLoraTrainer(Engine):
    REASON = (
        "no LoRA is trained on the CPU: the kohya-ready dataset is prepared; "
        "a GPU trainer engine (kohya sd-scripts) trains from it"
    )

    def train(self, ctx: TaskContext) -> StepOutput:
        dataset = ctx.input("dataset")
        doc = {"trained": False, "reason": self.REASON, "datasetKey": dataset.key, "engine": "dataset"}
        return StepOutput([ctx.upload_json("lora.json", doc, "lora_report")], {"trained": False, "reason": self.REASON})


@engine("voice_trainer", "dataset", default=True)
class DatasetVoiceTrainer(Engine):
    # praat-parselmouth
    licence = "GPL-3.0-or-later"

    def train(self, ctx: TaskContext) -> StepOutput:
        from ...media.voice import measure_voice

        ref = ctx.input("voice_reference")
        profile = measure_voice(ctx.fetch(ref.key, "voice_reference.wav"))
        profile = {**profile, "trained": False, "engine": "dataset", "referenceKey": ref.key}
        return StepOutput([ctx.upload_json("voice_profile.json", profile, "voice_profile")], {"voiceProfile": profile})


@engine("evaluate", "builtin", default=True)
class BuiltinEvaluate(Engine):
    def evaluate(self, ctx: TaskContext) -> StepOutput:
        faces = ctx.input("dataset").outputs
        reference = ctx.input("voice_reference").outputs
        lora = ctx.input("lora").outputs
        voice = ctx.input("voice_profile").outputs.get("voiceProfile", {})
        no_lora = None if lora.get("trained") else "no LoRA was trained, so there is nothing to compare"
        doc = {
            "faces": {"accepted": faces["acceptedImages"], "rejected": len(faces["rejectedImages"])},
            "voice": {
                "durationSec": reference["voiceDurationSec"],
                "loudnessLufs": reference["voiceLoudnessLufs"],
                "medianF0Hz": voice.get("median_f0_hz"),
            },
            "likeness": {"score": None, "reason": no_lora},
            "voiceSimilarity": {"score": None, "reason": "no voice model was trained, so there is nothing to compare"},
        }
        return StepOutput([ctx.upload_json("evaluation.json", doc, "evaluation")], {"evaluation": doc})


@engine("publish", "builtin", default=True)
class BuiltinPublish(Engine):
    """Assembles the job result: ProfileAssets (train_profile) or VideoResult (generate_video)."""

    def publish(self, ctx: TaskContext) -> StepOutput:
        if ctx.command["kind"] == "train_profile":
            portrait, dataset = ctx.input("portrait"), ctx.input("dataset")
            result = {
                "portraitKey": portrait.key,
                "faceBox": portrait.outputs["faceBox"],
                "datasetKey": dataset.key,
                "voiceReferenceKey": ctx.input("voice_reference").key,
                "voiceProfileKey": ctx.input("voice_profile").key,
                "acceptedImages": dataset.outputs["acceptedImages"],
                "rejectedImages": dataset.outputs["rejectedImages"],
            }
            lora = ctx.input("lora").outputs if ctx.has_input("lora") else {}
            if lora.get("trained") and lora.get("loraKey"):
                result["loraKey"] = lora["loraKey"]
                if lora.get("baseModel") in ("sd15", "sdxl"):
                    result["loraBaseModel"] = lora["baseModel"]
            if ctx.has_input("voice_model"):  # made only by a voice trainer that makes one
                result["voiceModelKey"] = ctx.input("voice_model").key
            return StepOutput([ctx.upload_json("profile.json", result, "profile")], {"result": result})
        final = ctx.input("video").outputs  # the finished MP4's step (mux) says what it is
        fields = ("videoKey", "subtitlesKey", "durationSec", "width", "height", "fps")
        result = {k: final[k] for k in fields if final.get(k) is not None}
        return StepOutput([ctx.upload_json("video.json", result, "video_result")], {"result": result})
