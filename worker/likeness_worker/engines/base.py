"""What every engine sees (TaskContext) and returns (StepOutput), and one Protocol per task kind.

An engine does one task kind with one tool. It reads the request from the command payload and
its declared inputs with ``ctx.input(name)`` (the names of ``ports.TASK_PORTS``: scene, speech,
timings, video so far, dataset, voice reference…), which the DAG has bound to what upstream steps
made; it never names a step. It writes its outputs under ``jobs/<jobId>/<step>/`` through
``ctx.upload*`` and returns them. The runtime writes ``_done.json`` after the engine returns, so
the marker is always the last object of a step.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel

from ..generated.tables import LIKENESS_LICENCE
from ..layout import step_key
from ..storage import Storage
from .ports import PORTS, TASK_PORTS, Input, MissingInput, params_view


@dataclass
class StepOutput:
    artifacts: list[dict[str, Any]] = field(default_factory=list)  # ArtifactRef dicts
    outputs: dict[str, Any] = field(default_factory=dict)  # small structured results


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _no_progress(fraction: float, message: str | None = None) -> None:
    """A context's progress when nobody listens to it."""


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
    # input name -> Input.to_record(): this task kind's declared inputs, bound by the DAG
    # (graphs/bindings.py) to what upstream steps made. Read them with input().
    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    _progress: Callable[[float, str | None], None] = _no_progress
    _cancelled: Callable[[], bool] = lambda: False

    @property
    def payload(self) -> dict[str, Any]:
        """The payload fields this task kind declares (ports.TASK_PARAMS): what the step's input
        hash covers. Reading another field is a KeyError, not a silent wrong reuse."""
        return params_view(self.task_kind, self.command["payload"])

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

    def input(self, name: str) -> Input:
        """A declared input of this task kind; MissingInput (naming it and this step) when the
        pipeline did not provide it."""
        ports = TASK_PORTS.get(self.task_kind)
        if ports is None or name not in ports.takes:
            takes = ", ".join(ports.takes) if ports and ports.takes else "nothing"
            raise ValueError(f"task kind {self.task_kind} declares no input {name!r} (it takes: {takes})")
        record = self.inputs.get(name)
        if record is None:
            raise MissingInput(
                f"step {self.step} ({self.task_kind}) has no input {name!r} ({PORTS[name].doc}): "
                "no step before it in this pipeline provided one"
            )
        return Input.from_record(name, record)

    def has_input(self, name: str) -> bool:
        return name in self.inputs

    def fetch_input(self, name: str, filename: str | None = None) -> Path:
        """Download a declared input into the work dir (as ``filename``, else ``<name>.<ext>``)."""
        key = self.input(name).key
        if filename is None:
            tail = key.rsplit("/", 1)[-1]
            ext = "".join(c for c in tail.rsplit(".", 1)[-1] if c.isalnum())[:8] if "." in tail else ""
            filename = f"{name}.{ext}" if ext else name
        return self.fetch(key, filename)

    # Outputs ----------------------------------------------------------------------------------
    def key(self, name: str) -> str:
        return step_key(self.job_id, self.step, name)

    def upload(
        self, name: str, path: Path, kind: str, content_type: str | None = None, meta: dict | None = None
    ) -> dict[str, Any]:
        content_type = content_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
        size = self.storage.put_file(self.key(name), path, content_type)
        ref: dict[str, Any] = {"key": self.key(name), "kind": kind, "contentType": content_type, "bytes": size,
                               "sha256": file_sha256(path)}
        if meta:
            ref["meta"] = meta
        return ref

    def upload_json(self, name: str, doc: Any, kind: str, meta: dict | None = None) -> dict[str, Any]:
        p = self.path("out/" + name)
        p.write_text(json.dumps(doc, indent=2, default=str))
        return self.upload(name, p, kind, "application/json", meta)




class Engine:
    """Base of every engine: which task kind, its name, the device (hence the Dramatiq queue), the
    licence that binds whoever runs it (advertised to the api, GET /v1/engines) and the command-line
    tools it needs."""

    task_kind: ClassVar[str]
    name: ClassVar[str]
    # The engine a worker runs for its task kind when a command names none.
    is_default: ClassVar[bool] = False
    # SPDX expression: the licence of the tool or model the engine runs (ours when there is none).
    licence: ClassVar[str] = LIKENESS_LICENCE
    # The licence (of the code or of the weights it needs) forbids commercial use: it may still run,
    # but the job and its step say so (Job.licenceNotices, JobStep.nonCommercial).
    non_commercial: ClassVar[bool] = False
    # Programs it runs; an engine whose tool is missing is advertised as not healthy.
    tools: ClassVar[tuple[str, ...]] = ()
    device: ClassVar[str] = "cpu"  # "cpu" or "gpu" (which card's queue: placement.py)
    # It runs its models on the ComfyUI server (COMFYUI_URL): when another engine takes the card,
    # ComfyUI is asked to unload them (engines/gpu/vram.py).
    uses_comfyui: ClassVar[bool] = False
    # Its own settings (a pydantic group read with config.load_group, e.g. REALESRGAN_*): the worker
    # validates every registered engine's group at start-up, and deploy/.env.example lists them.
    settings_group: ClassVar[type[BaseModel] | None] = None
    # Part of every step's input hash: bump it when the engine would make other outputs from the
    # same inputs, so that an edit does not reuse what the old version made.
    version: ClassVar[str] = "1"

    @classmethod
    def problem(cls) -> str | None:
        """Why this engine cannot run on this machine now, or None. Default: a tool missing."""
        import shutil

        missing = [t for t in cls.tools if shutil.which(t) is None]
        return f"not installed: {', '.join(missing)}" if missing else None

    @classmethod
    def licence_terms(cls) -> tuple[str, bool]:
        """(licence, non-commercial) of what this engine runs as configured now: advertised, and
        recorded on each step it starts. Most engines: their class's; one whose settings bring in
        other models (an optional face-recognition model) says so here."""
        return cls.licence, cls.non_commercial

    @classmethod
    def settings_key(cls) -> str:
        """What of this worker's settings changes the engine's output (a workflow, a model file),
        as a short string; part of every step's input hash beside ``version``, so that an edit
        made after the operator switched models does not reuse what the old ones made."""
        return ""

    @classmethod
    def warm(cls) -> None:
        """Load what the first job would otherwise wait for (a model); the worker calls it once
        per default engine at start-up, in the background. Most engines need nothing."""

    @classmethod
    def release(cls) -> None:
        """Free what this engine holds on its card (a resident process, a loaded model) for another
        engine: a GPU actor calls it, in the same process, before it runs a step of another engine
        on the card this one ran on last (engines/gpu/vram.py). An error is logged, never fails
        that step. Most engines hold nothing between steps: their tool exits with the step."""


E = TypeVar("E", bound=type[Engine])


def engine(task_kind: str, name: str, *, default: bool = False) -> Callable[[E], E]:
    """Class decorator that names an engine: ``@engine("tts", "espeak")``. It registers nothing:
    a registry adds the classes it is given (engines/registry.py, ``load_engines``)."""

    def name_it(cls: E) -> E:
        cls.task_kind = task_kind
        cls.name = name
        cls.is_default = default
        return cls

    return name_it


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
