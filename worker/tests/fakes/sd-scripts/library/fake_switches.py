"""The fake's own knobs (not sd-scripts'): which documented failure to play, how slow to be, and
what to leave behind for a test. All environment variables, all optional.

FAKE_KOHYA_FAIL
    ``oom``           torch's ``OutOfMemoryError: CUDA out of memory. Tried to allocate …`` at a step
    ``crash``         a ``RuntimeError: CUDA error: an illegal memory access was encountered`` at a step
    ``hang``          stops moving at a step (or, without FAKE_KOHYA_FAIL_AT_STEP, once the model is loaded)
    ``hang_in_save``  stops in the middle of writing the state folder of a step (half its files written)
    ``weights``       the base model is not there, as diffusers says it (even when the file exists)
    ``dataset``       every image folder of the dataset reads as missing (sd-scripts: "No data found")
    ``env``           its Python lacks torch: ``ModuleNotFoundError: No module named 'torch'``
FAKE_KOHYA_FAIL_AT_STEP   the step (1-based, global) that fails; default 1 (hang_in_save: the first save)
FAKE_KOHYA_STEP_S         seconds each step takes (default 0)
FAKE_KOHYA_SAVE_S         seconds between two files of a state folder (default 0)
FAKE_KOHYA_PID_FILE       the training process writes its pid there (for a test that it is gone)
FAKE_KOHYA_ARGV_FILE      each run appends its argv there as one JSON line
"""

from __future__ import annotations

import json
import os
import sys
import time


def fail() -> str:
    return os.environ.get("FAKE_KOHYA_FAIL", "")


def fail_at_step() -> int | None:
    value = os.environ.get("FAKE_KOHYA_FAIL_AT_STEP")
    return int(value) if value else None


def step_s() -> float:
    return float(os.environ.get("FAKE_KOHYA_STEP_S") or 0)


def save_s() -> float:
    return float(os.environ.get("FAKE_KOHYA_SAVE_S") or 0)


def hang() -> None:
    while True:
        time.sleep(3600)


def record_start() -> None:
    pid_file = os.environ.get("FAKE_KOHYA_PID_FILE")
    if pid_file:
        with open(pid_file, "w") as f:
            f.write(str(os.getpid()))
    argv_file = os.environ.get("FAKE_KOHYA_ARGV_FILE")
    if argv_file:
        with open(argv_file, "a") as f:
            f.write(json.dumps(sys.argv) + "\n")
