"""What the fake F5-TTS's training pieces share (not a module of the real package): tqdm's bar as it
prints it, torch's checkpoint file format, the failure switch, and the Hugging Face errors.

- ``Bar``: tqdm's default format on stderr, ``{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt}
  [{elapsed}<{remaining}, {rate_fmt}{postfix}]``, redrawn with ``\\r``; ``set_postfix`` sorts its
  keys and formats floats with ``.3g`` as tqdm does.
- ``save_checkpoint``: what ``torch.save`` writes (its zip format: ``<stem>/data.pkl``,
  ``<stem>/byteorder``, ``<stem>/data/0``, ``<stem>/version``, ``<stem>/.data/serialization_id``),
  with a pickle of plain values and no tensors: ``torch.load(path, weights_only=True)`` reads it.
- FAKE_F5_TTS_FAIL: ``oom`` (torch.OutOfMemoryError at the first update), ``crash-at-update-N``
  (the trainer is killed, SIGKILL, on reaching update N), ``hang`` (the trainer stops at its first
  update), ``no-asr-model`` (Whisper is not in the Hugging Face cache), ``checkpoint`` (the
  pretrained checkpoint is not in the Hugging Face cache). FAKE_F5_TTS_UPDATE_S: the seconds one
  update takes (default 0.02). FAKE_F5_TTS_TRANSCRIPT: what the fake Whisper hears.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import sys
import time
import zipfile


def fail() -> str:
    return os.environ.get("FAKE_F5_TTS_FAIL", "")


class OutOfMemoryError(RuntimeError):
    pass


OutOfMemoryError.__module__ = "torch"
OutOfMemoryError.__qualname__ = "OutOfMemoryError"


class LocalEntryNotFoundError(FileNotFoundError):
    pass


LocalEntryNotFoundError.__module__ = "huggingface_hub.errors"


def offline_entry_missing() -> LocalEntryNotFoundError:
    """huggingface_hub's hf_hub_download with HF_HUB_OFFLINE=1 and the file not in the cache."""
    return LocalEntryNotFoundError(
        "Cannot find the requested files in the disk cache and outgoing traffic has been disabled. To enable "
        "hf.co look-ups and downloads online, set 'HF_HUB_OFFLINE=0' as environment variable.")


def _fmt_time(t: float) -> str:
    m, s = divmod(int(t), 60)
    h, m = divmod(m, 60)
    return f"{h:d}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def _fmt_num(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


class Bar:
    """tqdm(iterable_or_range, desc=…, unit=…, initial=…) as far as F5-TTS uses it."""

    def __init__(self, iterable=None, total=None, desc="", unit="it", initial=0, disable=False):
        self.iterable = iterable
        self.total = total if total is not None else (len(iterable) if iterable is not None else None)
        self.desc, self.unit, self.n, self.disable = desc, unit, initial, disable
        self.postfix = ""
        self.start = time.monotonic()
        self.initial = initial
        self._draw()

    def __iter__(self):
        for x in self.iterable:
            yield x
            self.update(1)
        self.close()

    def update(self, n=1):
        self.n += n
        self._draw()

    def set_postfix(self, **kwargs):
        self.postfix = ", ".join(f"{k}={_fmt_num(kwargs[k])}" for k in sorted(kwargs))
        self._draw()

    def close(self):
        if not self.disable:
            sys.stderr.write("\n")
            sys.stderr.flush()

    def _draw(self):
        if self.disable:
            return
        elapsed = time.monotonic() - self.start
        done = self.n - self.initial
        rate = done / elapsed if elapsed > 0 and done > 0 else None
        total = self.total or 0
        pct = 100.0 * self.n / total if total else 0.0
        width = 10
        filled = int(width * self.n / total) if total else 0
        bar = "█" * filled + " " * (width - filled)
        remaining = _fmt_time((total - self.n) / rate) if rate else "?"
        rate_fmt = f"{rate:5.2f}{self.unit}/s" if rate else f"?{self.unit}/s"
        post = f", {self.postfix}" if self.postfix else ""
        prefix = f"{self.desc}: " if self.desc else ""
        sys.stderr.write(f"\r{prefix}{pct:3.0f}%|{bar}| {self.n}/{total} [{_fmt_time(elapsed)}<{remaining}, "
                         f"{rate_fmt}{post}]")
        sys.stderr.flush()


def save_checkpoint(path: str, doc: dict) -> None:
    """torch.save(doc, path) in torch's zip format (no tensors in ``doc``)."""
    stem = os.path.splitext(os.path.basename(path))[0]
    blob = hashlib.sha256(repr(sorted(doc.items())).encode()).digest() * 64  # a few KB standing for the weights
    with open(path, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_STORED) as z:
        z.writestr(f"{stem}/data.pkl", pickle.dumps(doc, protocol=2))
        z.writestr(f"{stem}/.format_version", "1")
        z.writestr(f"{stem}/.storage_alignment", "64")
        z.writestr(f"{stem}/byteorder", "little")
        z.writestr(f"{stem}/data/0", blob)
        z.writestr(f"{stem}/version", "3\n")
        z.writestr(f"{stem}/.data/serialization_id", hashlib.sha1(blob).hexdigest())


def load_checkpoint(path: str) -> dict:
    """torch.load(path, weights_only=True) of a checkpoint ``save_checkpoint`` wrote; a .safetensors
    file (the released pretrained weights) is its ``ema_model_state_dict``."""
    if path.endswith(".safetensors"):
        with open(path, "rb") as f:
            head = f.read(8)
        if len(head) != 8:
            raise RuntimeError(f"Error while deserializing header: HeaderTooSmall ({path})")
        return {"ema_model_state_dict": {}}
    with zipfile.ZipFile(path) as z:
        name = next(n for n in z.namelist() if n.endswith("/data.pkl"))
        return pickle.load(io.BytesIO(z.read(name)))
