# Generated from packages/contracts/schema/job-command.json by worker/scripts/generate_contracts.py.
# Do not edit: change packages/contracts and run `npm run contracts`.

from __future__ import annotations

from typing import Literal, NotRequired, TypeAlias, TypedDict

EngineOverrides: TypeAlias = dict[Literal["llm", "prepare", "lora_trainer", "voice_trainer", "evaluate", "image", "motion", "tts", "lipsync", "talking_head", "upscale", "mux", "publish"], str]


class UploadRef(TypedDict):
    key: str
    name: str


class TrainProfilePayload(TypedDict):
    profileId: str
    triggerWord: str
    images: list[UploadRef]
    voiceSample: UploadRef


class TrainProfileCommand(TypedDict):
    v: Literal[1]
    jobId: str
    attempt: int
    userId: str
    engines: EngineOverrides
    createdAt: str
    kind: Literal["train_profile"]
    payload: TrainProfilePayload


class FaceBox(TypedDict):
    x: float
    y: float
    w: float
    h: float


class RejectedImage(TypedDict):
    name: str
    reason: str
    index: NotRequired[int]


class ProfileAssets(TypedDict):
    portraitKey: str
    faceBox: FaceBox
    datasetKey: str
    voiceReferenceKey: str
    voiceProfileKey: str
    loraKey: NotRequired[str]
    loraBaseModel: NotRequired[Literal["sd15", "sdxl"]]
    voiceModelKey: NotRequired[str]
    triggerWord: NotRequired[str]
    acceptedImages: int
    rejectedImages: list[RejectedImage]


class Script(TypedDict):
    title: str
    stage: str
    narration: str


Pipeline: TypeAlias = Literal["sadtalker", "svd_wav2lip"]


SubtitleMode: TypeAlias = Literal["soft", "burned", "none"]


class GenerateVideoPayload(TypedDict):
    profileId: str
    profile: ProfileAssets
    script: Script
    pipeline: Pipeline
    width: int
    height: int
    fps: Literal[25]
    subtitles: SubtitleMode | bool
    reuseFrom: NotRequired[str]


class GenerateVideoCommand(TypedDict):
    v: Literal[1]
    jobId: str
    attempt: int
    userId: str
    engines: EngineOverrides
    createdAt: str
    kind: Literal["generate_video"]
    payload: GenerateVideoPayload


JobCommand: TypeAlias = TrainProfileCommand | GenerateVideoCommand
