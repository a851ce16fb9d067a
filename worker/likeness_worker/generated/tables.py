# Generated from packages/contracts/schema/tables.json by worker/scripts/generate_contracts.py.
# Do not edit: change packages/contracts and run `npm run contracts`.

from __future__ import annotations

from typing import Final, Literal, TypeAlias

PROTOCOL_VERSION: Final = 1

JobKind: TypeAlias = Literal["train_profile", "generate_video"]
Pipeline: TypeAlias = Literal["sadtalker", "svd_wav2lip"]
TaskKind: TypeAlias = Literal["llm", "prepare", "lora_trainer", "voice_trainer", "evaluate", "image", "motion", "tts", "lipsync", "talking_head", "upscale", "mux", "publish"]
StepName: TypeAlias = Literal["prepare", "train_lora", "train_voice", "evaluate", "script", "image", "motion", "tts", "lipsync", "talking_head", "upscale", "mux", "publish"]
ErrorCode: TypeAlias = Literal["bad_input", "engine_unavailable", "engine_failed", "out_of_memory", "timeout", "cancelled", "internal", "llm_unavailable"]

JOB_KINDS: Final[tuple[JobKind, ...]] = ('train_profile', 'generate_video')
PIPELINES: Final[tuple[Pipeline, ...]] = ('sadtalker', 'svd_wav2lip')
TASK_KINDS: Final[tuple[TaskKind, ...]] = ('llm', 'prepare', 'lora_trainer', 'voice_trainer', 'evaluate', 'image', 'motion', 'tts', 'lipsync', 'talking_head', 'upscale', 'mux', 'publish')
ERROR_CODES: Final[tuple[ErrorCode, ...]] = ('bad_input', 'engine_unavailable', 'engine_failed', 'out_of_memory', 'timeout', 'cancelled', 'internal', 'llm_unavailable')
# The task kind each step runs.
STEP_TASK: Final[dict[StepName, TaskKind]] = {'prepare': 'prepare', 'train_lora': 'lora_trainer', 'train_voice': 'voice_trainer', 'evaluate': 'evaluate', 'script': 'llm', 'image': 'image', 'motion': 'motion', 'tts': 'tts', 'lipsync': 'lipsync', 'talking_head': 'talking_head', 'upscale': 'upscale', 'mux': 'mux', 'publish': 'publish'}
# The steps of each workflow, in an order that respects their dependencies.
TRAIN_PROFILE_STEPS: Final[tuple[StepName, ...]] = ('prepare', 'train_lora', 'train_voice', 'evaluate', 'publish')
GENERATE_VIDEO_STEPS: Final[dict[Pipeline, tuple[StepName, ...]]] = {'svd_wav2lip': ('script', 'image', 'motion', 'tts', 'lipsync', 'upscale', 'mux', 'publish'), 'sadtalker': ('script', 'image', 'tts', 'talking_head', 'upscale', 'mux', 'publish')}
# Steps that run in the api (the LLM), not on the worker.
API_STEPS: Final[tuple[StepName, ...]] = ('script',)
# The schema file (under schema/) of job_finished.result, per job kind.
JOB_RESULT_SCHEMA: Final[dict[JobKind, str]] = {'train_profile': 'profile-assets', 'generate_video': 'video-result'}
# Storage key templates: `{name}` parts are filled in; a template ending in '/' is a prefix.
STORAGE_KEYS: Final[dict[str, str]] = {'uploads': 'uploads/{userId}/{profileId}/', 'uploadImage': 'uploads/{userId}/{profileId}/images/{index}.{ext}', 'uploadVoice': 'uploads/{userId}/{profileId}/voice/sample.{ext}', 'job': 'jobs/{jobId}/', 'stepFile': 'jobs/{jobId}/{step}/{name}', 'stepDone': 'jobs/{jobId}/{step}/_done.json', 'attemptDone': 'jobs/{jobId}/_attempts/{attempt}.json'}
# The licence of engines that are Likeness's own code, with no third-party tool or model.
LIKENESS_LICENCE: Final = 'LicenseRef-Likeness'
