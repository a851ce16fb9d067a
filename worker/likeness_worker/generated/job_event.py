# Generated from packages/contracts/schema/job-event.json by worker/scripts/generate_contracts.py.
# Do not edit: change packages/contracts and run `npm run contracts`.

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypeAlias, TypedDict


class JobStarted(TypedDict):
    v: Literal[1]
    jobId: str
    attempt: int
    eventId: str
    at: str
    type: Literal["job_started"]
    worker: str


StepName: TypeAlias = Literal["prepare", "train_lora", "train_voice", "evaluate", "script", "image", "motion", "tts", "lipsync", "talking_head", "upscale", "mux", "publish"]


class StepStarted(TypedDict):
    v: Literal[1]
    jobId: str
    attempt: int
    eventId: str
    at: str
    type: Literal["step_started"]
    step: StepName
    engine: str
    licence: NotRequired[str]
    nonCommercial: NotRequired[bool]


class ArtifactRef(TypedDict):
    key: str
    kind: str
    contentType: str
    bytes: int
    sha256: NotRequired[str]
    meta: NotRequired[dict[str, Any]]


class StepSucceeded(TypedDict):
    v: Literal[1]
    jobId: str
    attempt: int
    eventId: str
    at: str
    type: Literal["step_succeeded"]
    step: StepName
    engine: str
    artifacts: list[ArtifactRef]
    outputs: dict[str, Any]
    durationMs: float
    reused: bool


ErrorCode: TypeAlias = Literal["bad_input", "engine_unavailable", "engine_failed", "out_of_memory", "timeout", "cancelled", "internal", "llm_unavailable"]


class StepError(TypedDict):
    code: ErrorCode
    message: str
    retryable: bool


class StepFailed(TypedDict):
    v: Literal[1]
    jobId: str
    attempt: int
    eventId: str
    at: str
    type: Literal["step_failed"]
    step: StepName
    engine: str
    error: StepError
    durationMs: float


class JobError(TypedDict):
    code: ErrorCode
    message: str
    retryable: bool
    step: NotRequired[StepName]


class JobFinished(TypedDict):
    v: Literal[1]
    jobId: str
    attempt: int
    eventId: str
    at: str
    type: Literal["job_finished"]
    state: Literal["succeeded", "failed", "cancelled"]
    result: NotRequired[dict[str, Any]]
    error: NotRequired[JobError]


JobEvent: TypeAlias = JobStarted | StepStarted | StepSucceeded | StepFailed | JobFinished
