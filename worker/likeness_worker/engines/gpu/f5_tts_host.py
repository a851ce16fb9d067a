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
import os
import sys

import host_io  # beside this script: the protocol (engines/gpu/host_io.py)


class _Progress:
    """What F5TTS.infer takes as ``progress`` (it calls ``progress.tqdm(iterable)`` over its batches)."""

    def __init__(self, req_id: str) -> None:
        self.req_id = req_id

    def tqdm(self, iterable, *args, **kwargs):
        items = list(iterable)
        total = len(items)
        for n, item in enumerate(items):
            yield item
            host_io.send({"id": self.req_id, "event": "progress", "n": n + 1, "total": total})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="F5-TTS resident host (JSON lines on stdin/stdout)")
    parser.add_argument("--model", default="F5TTS_v1_Base")
    parser.add_argument("--ckpt-file", default="")
    parser.add_argument("--vocab-file", default="")
    parser.add_argument("--device", default=None)
    parser.add_argument("--vocoder-local-path", default=None)
    parser.add_argument("--hf-cache-dir", default=None)
    args = parser.parse_args(argv)
    host_io.start()
    # Python put this script's folder first on sys.path, and the engine beside it is named
    # f5_tts.py: without this, "import f5_tts" would find the engine, not F5-TTS.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]

    try:
        from f5_tts.api import F5TTS

        tts = F5TTS(model=args.model, ckpt_file=args.ckpt_file, vocab_file=args.vocab_file, device=args.device,
                    vocoder_local_path=args.vocoder_local_path, hf_cache_dir=args.hf_cache_dir)
    except BaseException as exc:  # noqa: BLE001 - reported, then exit
        host_io.send(host_io.error(exc))
        return 1
    host_io.send({"event": "ready", "sampleRate": int(tts.target_sample_rate), "model": args.model,
          "device": str(getattr(tts, "device", args.device))})

    def run(req: dict) -> dict:
        wav, sr, _spec = tts.infer(
            ref_file=req["refFile"], ref_text=req.get("refText") or "", gen_text=req["genText"],
            show_info=lambda *a: print(*a, file=sys.stderr, flush=True), progress=_Progress(str(req.get("id", ""))),
            nfe_step=int(req.get("nfeStep", 32)), speed=float(req.get("speed", 1.0)),
            file_wave=req["fileWave"], seed=req.get("seed"))
        if wav is None:
            raise ValueError("F5-TTS found no text to generate")
        return {"fileWave": req["fileWave"], "sampleRate": int(sr), "samples": int(len(wav)),
                "seed": getattr(tts, "seed", None)}

    host_io.serve(run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
