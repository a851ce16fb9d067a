# Generated from packages/contracts/schema/profile-assets.json by worker/scripts/generate_contracts.py.
# Do not edit: change packages/contracts and run `npm run contracts`.

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict


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
