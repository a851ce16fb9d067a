"""What every adapter over a GPU tool's script shares: its settings check, its progress lines,
and one mapping of how the tool died to a step failure.

A GPU tool (Wav2Lip, SadTalker, Real-ESRGAN, kohya…) lives in its own checkout with its own
Python; the engine runs its documented script with ``media.proc.stream`` (its own process group,
killed on cancel or time limit, so VRAM is freed for real), turns its tqdm bar into step progress
and, when it fails, reads the tail of what it printed to say why: out of memory, weights missing,
its environment broken, or a crash.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel

from ...config import ConfigError, load_group
from ...errors import StepFailure
from ...media.errors import Cancelled, ToolTimeout
from ...media.proc import ToolExited

# tqdm: "desc:  42%|████▏     | 21/50 [00:03<00:04,  6.1it/s, avr_loss=0.0812]"
_TQDM = re.compile(r"(?:(?P<desc>[^|\r\n]*?):?\s*)?(?P<pct>\d{1,3})%\|[^|]*\|\s*(?P<n>\d+)/(?P<total>\d+)")
_POSTFIX = re.compile(r",\s*([A-Za-z_][\w]*)=([-+0-9.eE]+|nan|inf)")

_OOM = re.compile(r"out of memory|OutOfMemoryError|CUBLAS_STATUS_ALLOC_FAILED|cudaErrorMemoryAllocation"
                  r"|vkAllocateMemory failed|VK_ERROR_OUT_OF_DEVICE_MEMORY", re.I)
_WEIGHTS = re.compile(
    r"(?:No such file or directory|FileNotFoundError|does not exist|not found)[^\n]*"
    r"\.(?:pth|pt|ckpt|safetensors|tar|bin|onnx)\b", re.I)
_ENV = re.compile(r"ModuleNotFoundError|ImportError|No module named|command not found")


M = TypeVar("M", bound=BaseModel)


def step_settings(group: type[M]) -> M:
    """An engine's settings group read for a step (engines are built without Settings): a bad value
    fails the step as bad_input naming the variable (the worker refuses to start with one anyway)."""
    try:
        return load_group(group)
    except ConfigError as exc:
        raise StepFailure("bad_input", str(exc)) from None


class TqdmLine:
    """One parsed tqdm bar: ``n`` of ``total`` with its description and postfix values."""

    def __init__(self, desc: str, n: int, total: int, postfix: dict[str, float]) -> None:
        self.desc, self.n, self.total, self.postfix = desc.strip(), n, total, postfix

    @property
    def fraction(self) -> float:
        return min(1.0, self.n / self.total) if self.total > 0 else 0.0


def parse_tqdm(line: str) -> TqdmLine | None:
    m = _TQDM.search(line)
    if m is None:
        return None
    postfix: dict[str, float] = {}
    for key, value in _POSTFIX.findall(line[m.end():]):
        try:
            postfix[key] = float(value)
        except ValueError:
            continue
    return TqdmLine(m.group("desc") or "", int(m.group("n")), int(m.group("total")), postfix)


def missing_paths(**paths: Path | None) -> list[str]:
    """``NAME (path)`` of each configured path that does not exist; a path left unset is named too."""
    out = []
    for name, path in paths.items():
        if path is None:
            out.append(f"{name} is not set")
        elif not Path(path).exists():
            out.append(f"{name} ({path}) does not exist")
    return out


def run_failure(engine: str, exc: BaseException, *, hint: Callable[[str], StepFailure | None] | None = None) -> StepFailure:
    """The step failure for a tool run that did not end well.

    ``hint`` sees the tool's output first, for the failures only that tool names (Wav2Lip's "Face
    not detected" is the user's photo, not a crash). Then: out of memory (retryable: a fresh
    process on a freer GPU may fit), weights missing or the tool's environment broken (not
    retryable: the box must be fixed first), anything else a crash (retryable).
    """
    if isinstance(exc, StepFailure):
        return exc
    if isinstance(exc, Cancelled):
        return StepFailure("cancelled", f"{engine}: {exc}")
    if isinstance(exc, ToolTimeout):
        return StepFailure("timeout", f"{engine}: {exc}")
    if not isinstance(exc, ToolExited):
        return StepFailure("engine_failed", f"{engine}: {exc}")
    output = exc.output
    if hint is not None:
        hinted = hint(output)
        if hinted is not None:
            return hinted
    last = _last_error_line(output)
    if _OOM.search(output):
        return StepFailure("out_of_memory", f"{engine} ran out of GPU memory: {last}", retryable=True)
    weights = _WEIGHTS.search(output)
    if weights:
        return StepFailure("engine_unavailable", f"{engine}: weights missing: {weights.group(0)[:300]}",
                           retryable=False)
    if _ENV.search(output):
        return StepFailure("engine_unavailable", f"{engine}: its environment is broken: {last}", retryable=False)
    return StepFailure("engine_failed", f"{engine} crashed (exit {exc.returncode}): {last}")


def _last_error_line(output: str) -> str:
    """The line that says what went wrong: the last ``SomeError: …`` of a traceback, else the last line."""
    lines = [line for line in output.splitlines() if line.strip()]
    for line in reversed(lines):
        if re.match(r"^\s*[A-Za-z_][\w.]*(Error|Exception)\b", line):
            return line.strip()[:500]
    return (lines[-1].strip() if lines else "no output")[:500]
