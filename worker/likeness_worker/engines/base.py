"""What every engine sees (TaskContext) and returns (StepOutput), and one Protocol per task kind.

An engine does one task kind with one tool. It reads its inputs from the command payload and the
outputs of the upstream steps, writes its outputs under ``jobs/<jobId>/<step>/`` through
``ctx.upload*`` and returns them. The runtime writes ``_done.json`` after the engine returns, so
the marker is always the last object of a step.
"""

from __future__ import annotations

import json
import mimetypes
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Protocol, runtime_checkable

from ..layout import step_key
from ..storage import Storage


@dataclass
class StepOutput:
    artifacts: list[dict[str, Any]] = field(default_factory=list)  # ArtifactRef dicts
    outputs: dict[str, Any] = field(default_factory=dict)  # small structured results


@dataclass
class TaskContext:
    job_id: str
    attempt: int
    step: str
    task_kind: str
    engine: str
    work_dir: Path
    storage: Storage
    command: dict[str, Any]
    # step name -> that step's _done.json payload ({"engine", "artifacts", "outputs", ...}).
    upstream: dict[str, dict[str, Any]]
    _progress: Callable[[float, str | None], None] = lambda f, m=None: None
    _cancelled: Callable[[], bool] = lambda: False

    @property
    def payload(self) -> dict[str, Any]:
        return self.command["payload"]

    def progress(self, fraction: float, message: str | None = None) -> None:
        self._progress(fraction, message)

    def cancelled(self) -> bool:
        return self._cancelled()

    # Inputs -----------------------------------------------------------------------------------
    def path(self, name: str) -> Path:
        p = self.work_dir / name
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def fetch(self, key: str, name: str | None = None) -> Path:
        """Download an object into the work dir (under inputs/) and return its path."""
        return self.storage.get_file(key, self.path("inputs/" + (name or key.rsplit("/", 1)[-1])))

    def _upstream(self, step: str) -> dict[str, Any]:
        if step not in self.upstream:
            raise KeyError(f"step {self.step} needs the outputs of {step}, which did not run")
        return self.upstream[step]

    def upstream_outputs(self, step: str) -> dict[str, Any]:
        return self._upstream(step).get("outputs", {})

    def upstream_artifact(self, step: str, kind: str) -> dict[str, Any]:
        for a in self._upstream(step).get("artifacts", []):
            if a["kind"] == kind:
                return a
        raise KeyError(f"step {step} produced no {kind!r} artifact")

    # Outputs ----------------------------------------------------------------------------------
    def key(self, name: str) -> str:
        return step_key(self.job_id, self.step, name)

    def upload(
        self, name: str, path: Path, kind: str, content_type: str | None = None, meta: dict | None = None
    ) -> dict[str, Any]:
        content_type = content_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
        size = self.storage.put_file(self.key(name), path, content_type)
        ref: dict[str, Any] = {"key": self.key(name), "kind": kind, "contentType": content_type, "bytes": size}
        if meta:
            ref["meta"] = meta
        return ref

    def upload_json(self, name: str, doc: Any, kind: str, meta: dict | None = None) -> dict[str, Any]:
        p = self.path("out/" + name)
        p.write_text(json.dumps(doc, indent=2, default=str))
        return self.upload(name, p, kind, "application/json", meta)


class Engine:
    """Base of every engine: which task kind, its name, the device (hence the Dramatiq queue)."""

    task_kind: ClassVar[str]
    name: ClassVar[str]
    device: ClassVar[str] = "cpu"  # "cpu" or "gpu" (queue gpu0: placement on more cards is not built yet)

    @classmethod
    def warm(cls) -> None:
        """Load what the first job would otherwise wait for (a model); the worker calls it once
        per default engine at start-up, in the background. Most engines need nothing."""


# One Protocol per task kind, one verb each. ---------------------------------------------------
@runtime_checkable
class PrepareEngine(Protocol):
    def prepare(self, ctx: TaskContext) -> StepOutput: ...


@runtime_checkable
class TrainerEngine(Protocol):  # lora_trainer, voice_trainer
    def train(self, ctx: TaskContext) -> StepOutput: ...


@runtime_checkable
class EvaluateEngine(Protocol):
    def evaluate(self, ctx: TaskContext) -> StepOutput: ...


@runtime_checkable
class ImageEngine(Protocol):
    def render(self, ctx: TaskContext) -> StepOutput: ...


@runtime_checkable
class AnimateEngine(Protocol):  # motion, talking_head
    def animate(self, ctx: TaskContext) -> StepOutput: ...


@runtime_checkable
class TtsEngine(Protocol):
    def synthesize(self, ctx: TaskContext) -> StepOutput: ...


@runtime_checkable
class LipsyncEngine(Protocol):
    def sync(self, ctx: TaskContext) -> StepOutput: ...


@runtime_checkable
class UpscaleEngine(Protocol):
    def upscale(self, ctx: TaskContext) -> StepOutput: ...


@runtime_checkable
class MuxEngine(Protocol):
    def mux(self, ctx: TaskContext) -> StepOutput: ...


@runtime_checkable
class PublishEngine(Protocol):
    def publish(self, ctx: TaskContext) -> StepOutput: ...


# task kind -> (Protocol, verb). The runtime calls getattr(engine, verb)(ctx).
TASK_INTERFACES: dict[str, tuple[type, str]] = {
    "prepare": (PrepareEngine, "prepare"),
    "lora_trainer": (TrainerEngine, "train"),
    "voice_trainer": (TrainerEngine, "train"),
    "evaluate": (EvaluateEngine, "evaluate"),
    "image": (ImageEngine, "render"),
    "motion": (AnimateEngine, "animate"),
    "tts": (TtsEngine, "synthesize"),
    "lipsync": (LipsyncEngine, "sync"),
    "talking_head": (AnimateEngine, "animate"),
    "upscale": (UpscaleEngine, "upscale"),
    "mux": (MuxEngine, "mux"),
    "publish": (PublishEngine, "publish"),
}
