"""Resident host of F5-TTS for the ``f5_tts`` engine: loads the model once, then speaks on request.

Run with the tool's own Python (F5_TTS_PYTHON), as a plain script: it imports only the standard
library and ``f5_tts`` (``from f5_tts.api import F5TTS``, F5-TTS's documented Python API)::

    python f5_tts_host.py --model F5TTS_v1_Base [--ckpt-file …] [--vocab-file …] [--device cuda]
                          [--vocoder-local-path …] [--hf-cache-dir …]

Protocol: JSON lines. The real stdout is kept for them; everything else printed (F5-TTS prints
freely, from Python and C) goes to stderr.

- on start, one ``{"event": "ready", "sampleRate", "model", "device"}``, or ``{"event": "error",
  "type", "message", "traceback"}`` and exit status 1 when the model cannot be loaded;
- per request line ``{"id", "refFile", "refText", "genText", "fileWave", "seed"?, "nfeStep"?,
  "speed"?}``: ``F5TTS.infer(ref_file, ref_text, gen_text, …, file_wave=…, seed=…)``, with
  ``{"id", "event": "progress", "n", "total"}`` as its batches finish, then ``{"id", "event":
  "done", "fileWave", "sampleRate", "samples", "seed"}`` or ``{"id", "event": "error", "type",
  "message", "traceback"}`` (the host stays up; after an out-of-memory the engine restarts it);
- after each request, the line ``\x1elikeness-end <id>`` on stderr (engines/gpu/resident.py:
  what F5-TTS printed for it has all been written);
- ``{"quit": true}`` or the end of stdin: exit. The host also exits when its parent dies.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import traceback
from typing import TextIO

_OUT: TextIO = sys.stdout  # the protocol stream: the real stdout (kept apart at start)
_OUT_LOCK = threading.Lock()
END_MARK = "\x1elikeness-end"  # resident.END_MARK


def send(msg: dict) -> None:
    with _OUT_LOCK:
        _OUT.write(json.dumps(msg) + "\n")
        _OUT.flush()


def _keep_stdout_for_the_protocol() -> None:
    global _OUT
    _OUT = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)  # fd 1 is stderr from now on: C libraries and print() write there
    sys.stdout = sys.stderr


def _end(req_id: str) -> None:
    """After a request: what was printed for it is out, then the end mark (on stderr)."""
    sys.stderr.flush()
    os.write(2, f"{END_MARK} {req_id}\n".encode())


def _watch_parent() -> None:
    """Exit when the worker that started us is gone (it cannot kill us then: we hold the GPU)."""
    parent = os.getppid()
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(3)


def _error(exc: BaseException, req_id: str | None = None) -> dict:
    msg = {"event": "error", "type": type(exc).__name__, "message": str(exc)[:2000],
           "traceback": traceback.format_exc()[-6000:]}
    if req_id is not None:
        msg["id"] = req_id
    return msg


class _Progress:
    """What F5TTS.infer takes as ``progress`` (it calls ``progress.tqdm(iterable)`` over its batches)."""

    def __init__(self, req_id: str) -> None:
        self.req_id = req_id

    def tqdm(self, iterable, *args, **kwargs):
        items = list(iterable)
        total = len(items)
        for n, item in enumerate(items):
            yield item
            send({"id": self.req_id, "event": "progress", "n": n + 1, "total": total})


def _free_cuda() -> None:
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:  # noqa: BLE001 - best effort
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="F5-TTS resident host (JSON lines on stdin/stdout)")
    parser.add_argument("--model", default="F5TTS_v1_Base")
    parser.add_argument("--ckpt-file", default="")
    parser.add_argument("--vocab-file", default="")
    parser.add_argument("--device", default=None)
    parser.add_argument("--vocoder-local-path", default=None)
    parser.add_argument("--hf-cache-dir", default=None)
    args = parser.parse_args(argv)
    _keep_stdout_for_the_protocol()
    # Python put this script's folder first on sys.path, and the engine beside it is named
    # f5_tts.py: without this, "import f5_tts" would find the engine, not F5-TTS.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    threading.Thread(target=_watch_parent, name="watch-parent", daemon=True).start()

    try:
        from f5_tts.api import F5TTS

        tts = F5TTS(model=args.model, ckpt_file=args.ckpt_file, vocab_file=args.vocab_file, device=args.device,
                    vocoder_local_path=args.vocoder_local_path, hf_cache_dir=args.hf_cache_dir)
    except BaseException as exc:  # noqa: BLE001 - reported, then exit
        send(_error(exc))
        return 1
    send({"event": "ready", "sampleRate": int(tts.target_sample_rate), "model": args.model,
          "device": str(getattr(tts, "device", args.device))})

    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            req = json.loads(line)
        except ValueError as exc:
            send(_error(exc))
            continue
        if req.get("quit"):
            break
        req_id = str(req.get("id", ""))
        try:
            wav, sr, _spec = tts.infer(
                ref_file=req["refFile"], ref_text=req.get("refText") or "", gen_text=req["genText"],
                show_info=lambda *a: print(*a, file=sys.stderr, flush=True), progress=_Progress(req_id),
                nfe_step=int(req.get("nfeStep", 32)), speed=float(req.get("speed", 1.0)),
                file_wave=req["fileWave"], seed=req.get("seed"))
            if wav is None:
                raise ValueError("F5-TTS found no text to generate")
            send({"id": req_id, "event": "done", "fileWave": req["fileWave"], "sampleRate": int(sr),
                  "samples": int(len(wav)), "seed": getattr(tts, "seed", None)})
        except BaseException as exc:  # noqa: BLE001 - reported; the engine decides what follows
            send(_error(exc, req_id))
            _free_cuda()
        _end(req_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
