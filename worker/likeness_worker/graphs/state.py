"""The state of one job's DAG, checkpointed in Postgres after every superstep.

Parallel branches (image ∥ tts, train_lora ∥ train_voice) write in the same superstep, so every
key a node writes has a reducer.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict


def merge(a: dict | None, b: dict | None) -> dict:
    return {**(a or {}), **(b or {})}


def first_error(a: dict | None, b: dict | None) -> dict | None:
    return a or b


class JobState(TypedDict, total=False):
    command: dict[str, Any]
    # step -> its _done.json payload (engine, artifacts, outputs): what the inputs of later steps
    # are bound to (graphs/bindings.py).
    steps: Annotated[dict[str, Any], merge]
    # The first step error ({code, message, retryable, step}); later steps are skipped.
    error: Annotated[dict[str, Any] | None, first_error]
    cancelled: Annotated[bool, operator.or_]
