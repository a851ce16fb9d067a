# Generated from packages/contracts/schema/progress.json by worker/scripts/generate_contracts.py.
# Do not edit: change packages/contracts and run `npm run contracts`.

from __future__ import annotations

from typing import Literal, NotRequired, TypeAlias, TypedDict

StepName: TypeAlias = Literal["prepare", "train_lora", "train_voice", "evaluate", "script", "image", "motion", "tts", "lipsync", "talking_head", "upscale", "mux", "publish"]


class Progress(TypedDict):
    v: Literal[1]
    jobId: str
    attempt: int
    step: StepName
    fraction: float
    message: NotRequired[str]
    at: str
