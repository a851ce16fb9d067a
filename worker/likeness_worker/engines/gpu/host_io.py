"""The host side of the resident-process protocol (engines/gpu/resident.py), shared by the host
scripts that run under a tool's own Python (f5_tts_host.py, wav2lip_host.py, sadtalker_host.py):
standard library only, Python 3.7 or newer. A host imports it from its own folder (Python puts a
script's folder first on ``sys.path``).

- ``start()``: the real stdout is kept for the JSON lines; fd 1 and ``sys.stdout`` become stderr,
  so whatever the tool, its C libraries or the ffmpeg it runs print goes there; the host exits by
  itself once the worker that started it is gone (that worker cannot kill it then: it holds the GPU).
- ``send(msg)``: one JSON line. ``error(exc, req_id)``: an exception as the error message.
- ``serve(run)``: a request per stdin line until ``{"quit": true}`` or the end of stdin:
  ``run(request)`` → ``{"id", "event": "done", **what it returns}``, or the error (and the card's
  cached memory given back); then ``END_MARK <id>`` on stderr, after everything printed for it.
- ``free_cuda()``: torch's cached memory back to the card (a model replaced, a run failed).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any, TextIO

END_MARK = "\x1elikeness-end"  # resident.END_MARK

_out: TextIO = sys.stdout  # the protocol stream: the real stdout, once start() has kept it apart
_out_lock = threading.Lock()


def start() -> None:
    global _out
    _out = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    threading.Thread(target=_watch_parent, name="watch-parent", daemon=True).start()


def send(msg: dict[str, Any]) -> None:
    with _out_lock:
        _out.write(json.dumps(msg) + "\n")
        _out.flush()


def error(exc: BaseException, req_id: str | None = None) -> dict[str, Any]:
    msg: dict[str, Any] = {"event": "error", "type": type(exc).__name__, "message": str(exc)[:2000],
                           "traceback": traceback.format_exc()[-6000:]}
    if req_id is not None:
        msg["id"] = req_id
    return msg


def serve(run: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            req = json.loads(line)
        except ValueError as exc:
            send(error(exc))
            continue
        if req.get("quit"):
            return
        req_id = str(req.get("id", ""))
        try:
            send({"id": req_id, "event": "done", **run(req)})
        except BaseException as exc:  # noqa: BLE001 - reported (argparse's SystemExit too); the engine decides
            send(error(exc, req_id))
            free_cuda()
        sys.stderr.flush()
        os.write(2, f"{END_MARK} {req_id}\n".encode())


def file_sha256(path: str) -> str:
    """What a host keeps its caches by (the same source under any name)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _watch_parent() -> None:
    parent = os.getppid()
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(3)


def free_cuda() -> None:
    """After a failure: what the failed run left in torch's cache goes back to the card (only when
    the tool has imported torch: an error path does not import it)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return
    try:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:  # noqa: BLE001 - best effort
        pass
