"""What each task kind takes and makes, by name: the engines' half of the contract with the DAG.

A *port* is one named thing a step makes and a later step may take: the scene image, the speech
and its timings, the video so far, the dataset, the voice reference… ``TASK_PORTS`` says, per task
kind, which ports its engines take (``inputs``, and ``optional`` ones that some pipelines do not
provide) and which they make (``outputs``).

An engine reads an input with ``ctx.input(name)`` (an ``Input``: the object's key, its artifact
ref and the small outputs of the step that made it) and never names a step. Which upstream step
provides each input is the DAG's business (``graphs/bindings.py``): adding a step or a pipeline
changes the DAG, not the engines.

An engine makes a port by returning it: as an artifact of the port's ``artifact`` kind, or as an
object key in the port's ``field`` of its outputs (``videoKey``: the video may be an artifact of
another kind, or a video made earlier, passed through).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import StepFailure


@dataclass(frozen=True)
class Port:
    """One named thing a step makes. It is found in the step's record (its ``_done.json``
    payload: ``artifacts`` and ``outputs``) as the artifact of kind ``artifact``, or as the value
    of ``outputs[field]``. A step whose outputs say ``skipped`` made nothing."""

    doc: str
    artifact: str | None = None
    field: str | None = None

    def find(self, record: dict[str, Any]) -> tuple[Any, dict[str, Any] | None] | None:
        """``(key, artifact ref or None)`` when the step of ``record`` made this port, else None."""
        outputs = record.get("outputs") or {}
        if outputs.get("skipped"):
            return None
        artifacts = record.get("artifacts") or []
        if self.artifact is not None:
            ref = next((a for a in artifacts if a.get("kind") == self.artifact), None)
            return (ref["key"], ref) if ref is not None else None
        value = outputs.get(self.field or "")
        if not value:
            return None
        return value, next((a for a in artifacts if a.get("key") == value), None)


PORTS: dict[str, Port] = {
    # train_profile
    "dataset": Port("the kohya dataset of accepted face crops and captions (dataset.tar); its step's "
                    "outputs: acceptedImages, rejectedImages", artifact="dataset"),
    "dataset_config": Port("the kohya dataset config (dataset.toml)", artifact="dataset_config"),
    "portrait": Port("the best face, framed (portrait.png); its step's outputs: faceBox", artifact="portrait"),
    "faces": Port("per photo: accepted or rejected and why, face box (faces.json)", artifact="faces"),
    "voice_reference": Port("the voice sample trimmed and loudness-normalised (WAV, at most 12 s); its "
                            "step's outputs: voiceDurationSec, voiceLoudnessLufs", artifact="voice_reference"),
    "lora": Port("the report of the LoRA training (lora.json); its step's outputs: trained, and when it was "
                 "trained loraKey (the .safetensors), baseModel, triggerWord", artifact="lora_report"),
    "voice_profile": Port("the measured voice (voice_profile.json); its step's outputs: voiceProfile",
                          artifact="voice_profile"),
    "voice_model": Port("the profile's voice model (voice_model.json: {engine, trained, …}, what its tts engines "
                        "read through ProfileAssets.voiceModelKey); made only by voice trainers that make one",
                        artifact="voice_model"),
    "evaluation": Port("faces, voice and likeness scores (evaluation.json)", artifact="evaluation"),
    # generate_video
    "scene": Port("the scene image at the output size, framed around the face (PNG); its step's "
                  "outputs: faceBox", artifact="scene"),
    "speech": Port("the narration spoken (WAV); its step's outputs: durationSec", artifact="speech"),
    "timings": Port("word and phoneme timings of the speech (timings.json)", artifact="timings"),
    "video": Port("the video so far: the latest video made upstream by a step that was not skipped; "
                  "its step's outputs may say width, height, frames, encode, subtitlesBurned",
                  field="videoKey"),
    "subtitles": Port("soft subtitles built from the timings (SRT)", artifact="subtitles"),
    # both
    "result": Port("the job result: ProfileAssets or VideoResult (the value itself, not a key)", field="result"),
}


@dataclass(frozen=True)
class TaskPorts:
    inputs: tuple[str, ...] = ()  # every pipeline must provide these
    optional: tuple[str, ...] = ()  # some pipelines (or job kinds) do not
    outputs: tuple[str, ...] = ()

    @property
    def takes(self) -> tuple[str, ...]:
        return self.inputs + self.optional


TASK_PORTS: dict[str, TaskPorts] = {
    "prepare": TaskPorts(outputs=("dataset", "dataset_config", "portrait", "faces", "voice_reference")),
    "lora_trainer": TaskPorts(inputs=("dataset",), optional=("dataset_config",), outputs=("lora",)),
    # voice_model: only a voice trainer that makes one (a fine-tune, or the reference-audio profile).
    "voice_trainer": TaskPorts(inputs=("voice_reference",), outputs=("voice_profile", "voice_model")),
    "evaluate": TaskPorts(inputs=("dataset", "voice_reference", "lora", "voice_profile"), optional=("voice_model",),
                          outputs=("evaluation",)),
    "image": TaskPorts(outputs=("scene",)),
    "tts": TaskPorts(outputs=("speech", "timings")),
    # timings: only a motion that makes the final frames (burning subtitles in) reads them.
    "motion": TaskPorts(inputs=("scene", "speech"), optional=("timings",), outputs=("video",)),
    "talking_head": TaskPorts(inputs=("scene", "speech", "timings"), outputs=("video",)),
    "lipsync": TaskPorts(inputs=("video", "speech", "timings"), outputs=("video",)),
    "upscale": TaskPorts(inputs=("video",), outputs=("video",)),
    "mux": TaskPorts(inputs=("video", "speech", "timings"), outputs=("video", "subtitles")),
    # One task kind for both job kinds: a profile's assets, or the final video.
    "publish": TaskPorts(optional=("portrait", "dataset", "voice_reference", "lora", "voice_profile", "voice_model",
                                   "video"),
                         outputs=("result",)),
}


# The command payload fields each task kind's engines may read (dotted paths into the payload),
# besides its input ports. An engine sees only these in ``ctx.payload``; with its inputs' content,
# its engine name and version they make the step's input hash, so an edit reuses a step exactly
# when nothing it reads has changed. ``None``: the whole payload, and the step is never reused
# from another job (training, and publish, whose result names the job's own objects).
TASK_PARAMS: dict[str, tuple[str, ...] | None] = {
    "prepare": None,
    "lora_trainer": None,
    "voice_trainer": None,
    "evaluate": None,
    "image": ("profile", "script.stage", "width", "height"),
    "tts": ("profile", "script.narration"),
    # burnSubtitles: a step that makes the final frames burns them in (soft or none is mux's business).
    "motion": ("width", "height", "burnSubtitles"),
    "talking_head": ("width", "height", "burnSubtitles"),
    "lipsync": ("width", "height", "burnSubtitles"),
    "upscale": ("width", "height"),
    "mux": ("width", "height", "subtitles"),
    "publish": None,
}


def _burn_subtitles(payload: dict[str, Any]) -> bool:
    from ..media.subtitles import subtitle_mode

    return subtitle_mode(payload) == "burned"


# Params computed from the payload: what a step needs to know, not more (turning soft subtitles
# off must not make the frames again).
DERIVED_PARAMS: dict[str, Callable[[dict[str, Any]], Any]] = {"burnSubtitles": _burn_subtitles}


def params_view(task_kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The part of ``payload`` that ``task_kind`` declares (all of it when it declares ``None``)."""
    paths = TASK_PARAMS.get(task_kind)
    if paths is None:
        return payload
    view: dict[str, Any] = {}
    for path in paths:
        if path in DERIVED_PARAMS:
            view[path] = DERIVED_PARAMS[path](payload)
            continue
        *parents, leaf = path.split(".")
        src: Any = payload
        dst = view
        for name in parents:
            src = src.get(name) if isinstance(src, dict) else None
            dst = dst.setdefault(name, {})
        if isinstance(src, dict) and leaf in src:
            dst[leaf] = src[leaf]
    return view


class MissingInput(StepFailure):
    """A declared input that the pipeline does not provide, or that its step did not make. The
    message names the input and the step. Not retryable: the same markers give the same answer."""

    def __init__(self, message: str) -> None:
        super().__init__("internal", message, retryable=False)


@dataclass(frozen=True)
class Input:
    """One declared input of a step, bound by the DAG to what an upstream step made."""

    name: str
    key: Any  # the object's storage key (for ``result``, the value)
    ref: dict[str, Any] | None  # its ArtifactRef (contentType, bytes, meta) when it was uploaded as one
    outputs: dict[str, Any]  # the small structured outputs of the step that made it
    step: str  # that step: for messages and logs only, an engine never branches on it

    @property
    def meta(self) -> dict[str, Any]:
        return (self.ref or {}).get("meta") or {}

    def to_record(self) -> dict[str, Any]:
        """The JSON form carried in the step's Dramatiq message."""
        return {"step": self.step, "key": self.key, "ref": self.ref, "outputs": self.outputs}

    @classmethod
    def from_record(cls, name: str, record: dict[str, Any]) -> Input:
        return cls(name, record.get("key"), record.get("ref"), record.get("outputs") or {}, record.get("step", "?"))
