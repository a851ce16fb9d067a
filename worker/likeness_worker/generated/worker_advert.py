# Generated from packages/contracts/schema/worker-advert.json by worker/scripts/generate_contracts.py.
# Do not edit: change packages/contracts and run `npm run contracts`.

from __future__ import annotations

from typing import Literal, NotRequired, TypeAlias, TypedDict

Queue: TypeAlias = str


TaskKind: TypeAlias = Literal["llm", "prepare", "lora_trainer", "voice_trainer", "evaluate", "image", "motion", "tts", "lipsync", "talking_head", "upscale", "mux", "publish"]


class Engine(TypedDict):
    taskKind: TaskKind
    name: str
    device: Literal["cpu", "gpu"]
    licence: str
    nonCommercial: NotRequired[bool]
    healthy: bool
    problem: NotRequired[str]
    default: bool


class Model(TypedDict):
    v: Literal[1]
    workerId: str
    at: str
    heartbeatMs: int
    queues: list[Queue]
    engines: list[Engine]
