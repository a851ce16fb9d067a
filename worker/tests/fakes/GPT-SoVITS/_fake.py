# ruff: noqa: UP031, SIM112, SIM115, SIM105, B007  (the real script's own style, kept)
"""What the fake GPT-SoVITS scripts share (not a file of the real checkout): the failure switches,
a tqdm bar as tqdm draws it, the invocation log, and numpy stand-ins for torch.save / torch.load.

Switches (environment): FAKE_GPT_SOVITS_TRAIN_FAIL="<stage>:<mode>" (stage: slice, asr, text, hubert,
semantic, s2, s1; mode: oom, crash, hang, env; the training stages fail at the first batch of epoch
FAKE_GPT_SOVITS_TRAIN_FAIL_AT_EPOCH, default 1; ``asr:silent`` hears nothing);
FAKE_GPT_SOVITS_TRAIN_LOG (a JSON line per run: script, argv, the GPT-SoVITS variables, pid);
FAKE_GPT_SOVITS_TRAIN_STEP_S (seconds per batch); FAKE_GPT_SOVITS_TRAIN_TEXT (what the ASR hears).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ENV_NAMES = ("inp_text", "inp_wav_dir", "exp_name", "i_part", "all_parts", "opt_dir", "bert_pretrained_dir",
             "cnhubert_base_dir", "pretrained_s2G", "s2config_path", "is_half", "version", "_CUDA_VISIBLE_DEVICES",
             "hz", "TEMP")
OOM = ("CUDA out of memory. Tried to allocate 256.00 MiB. GPU 0 has a total capacity of 23.64 GiB of which 118.06 MiB "
       "is free. Of the allocated memory 21.86 GiB is allocated by PyTorch, and 1.02 GiB is reserved by PyTorch but "
       "unallocated.")


class OutOfMemoryError(RuntimeError):
    pass


OutOfMemoryError.__module__ = "torch"


def begin(stage: str) -> None:
    log = os.environ.get("FAKE_GPT_SOVITS_TRAIN_LOG")
    if log:
        with open(log, "a") as f:
            f.write(json.dumps({"stage": stage, "argv": sys.argv, "pid": os.getpid(), "cwd": os.getcwd(),
                                "env": {k: os.environ[k] for k in ENV_NAMES if k in os.environ}}) + "\n")
    if _mode(stage) == "env":
        raise ModuleNotFoundError("No module named 'torch'", name="torch")
    if _mode(stage) == "hang" and stage not in ("s1", "s2"):
        hang()
    fail_at(stage, None)


def _mode(stage: str) -> str | None:
    where, _, mode = os.environ.get("FAKE_GPT_SOVITS_TRAIN_FAIL", "").partition(":")
    return mode if where == stage else None


def silent_asr() -> bool:
    return _mode("asr") == "silent"


def fail_at(stage: str, epoch: int | None) -> None:
    mode = _mode(stage)
    at = int(os.environ.get("FAKE_GPT_SOVITS_TRAIN_FAIL_AT_EPOCH", "1"))
    if mode is None or (stage in ("s1", "s2")) != (epoch is not None) or (epoch is not None and epoch != at):
        return
    if mode == "oom":
        raise OutOfMemoryError(OOM)
    if mode == "crash":
        raise RuntimeError("CUDA error: an illegal memory access was encountered\nCUDA kernel errors might be "
                           "asynchronously reported at some other API call, so the stacktrace below might be incorrect.")
    if mode == "hang":
        hang()


def hang() -> None:
    print("(fake: hanging)", flush=True)
    while True:
        time.sleep(1)


def step_sleep() -> None:
    time.sleep(float(os.environ.get("FAKE_GPT_SOVITS_TRAIN_STEP_S", "0") or 0))


def bar(n: int, total: int, desc: str = "", postfix: str = "", started: float | None = None) -> None:
    """One redraw of a tqdm bar on stderr (\\r before it, no newline), as tqdm writes it."""
    elapsed = time.monotonic() - (started or time.monotonic())
    frac = n / total if total else 1.0
    filled = int(frac * 10)
    body = "█" * filled + (" " * (10 - filled))
    rate = n / elapsed if elapsed > 0 else 0.0
    text = (f"{desc}: " if desc else "") + f"{int(frac * 100):3d}%|{body}| {n}/{total} [00:{int(elapsed):02d}<00:00, " \
        f"{rate:5.2f}it/s{(', ' + postfix) if postfix else ''}]"
    sys.stderr.write("\r" + text)
    if n >= total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def save(obj: dict, path: str | Path) -> None:
    """torch.save's stand-in: the arrays and values in an .npz (a zip, as torch's format is)."""
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in obj.items()})
    Path(path).write_bytes(buf.getvalue())


def load(path: str | Path) -> dict:
    if not os.path.exists(path):
        raise FileNotFoundError(2, "No such file or directory", str(path))
    with np.load(str(path), allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def my_save(obj: dict, path: str, i_part: str = "") -> None:
    """GPT-SoVITS' my_save: torch.save to a temp file in the cwd, then shutil.move."""
    tmp_path = "%s%s.pth" % (time.time(), i_part)
    save(obj, tmp_path)
    shutil.move(tmp_path, path)
