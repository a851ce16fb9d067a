"""Settings: parsed and validated once, at start-up, from the environment.

The names are the same on both planes (see docs/foundation.md, "Configuration"). A worker with a
missing or invalid setting refuses to start and names the variable; secrets are never echoed.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

REPO_ROOT = Path(__file__).resolve().parents[2]

_QUEUE_RE = re.compile(r"^(cpu|gpu\d+)$")
_PREFIX_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_GPU_RE = re.compile(r"^[0-9]{1,3}$")


class ConfigError(Exception):
    """The environment cannot make a working worker; the message names every culprit."""


class ComfyUISettings(BaseModel):
    """The ComfyUI image engine's group (engines/comfyui): all optional, the engine is advertised
    unhealthy until COMFYUI_URL is set. Settings has them too (validated at start-up); the engine,
    which is built without Settings, reads this group alone with ``load_comfyui_settings``."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    comfyui_url: str | None = None
    # A workflow of deploy/comfyui/workflows or COMFYUI_WORKFLOWS_DIR, by name (file name without .json).
    comfyui_workflow: str = Field("txt2img_lora_sd15", pattern=r"^[A-Za-z0-9_.\-]{1,100}$")
    comfyui_workflows_dir: Path | None = None
    comfyui_checkpoint: str | None = None  # overrides the workflow's checkpoint
    # A file of ComfyUI's models/loras used when the profile has no trained LoRA; none: the LoRA
    # node is bypassed (the scene is the stage alone, not the person).
    comfyui_lora: str | None = None
    # A folder ComfyUI reads LoRAs from (its models/loras, mounted in both): a profile's trained
    # LoRA is copied there before the render.
    comfyui_loras_dir: Path | None = None
    # The image-to-video workflow of the comfyui motion engine, and its checkpoint override.
    comfyui_motion_workflow: str = Field("img2vid_svd", pattern=r"^[A-Za-z0-9_.\-]{1,100}$")
    comfyui_motion_checkpoint: str | None = None
    comfyui_timeout_s: float = Field(900.0, gt=0)  # one image, from queueing to the saved PNG
    comfyui_request_timeout_s: float = Field(10.0, gt=0)  # one HTTP request

    @field_validator("comfyui_url")
    @classmethod
    def _comfyui_url(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not v.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return v.rstrip("/")


class Settings(ComfyUISettings):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # Shared with the api.
    database_url: SecretStr
    redis_url: SecretStr
    redis_key_prefix: str = "lk"
    storage_driver: Literal["local", "s3"] = "local"
    storage_dir: Path = REPO_ROOT / ".data" / "objects"
    s3_endpoint: str | None = None
    s3_region: str = "us-east-1"
    s3_bucket: str | None = None
    s3_access_key_id: SecretStr | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_force_path_style: bool = True
    # The same values as the api's LOG_LEVEL (a test compares them); `warn` and `warning` agree.
    log_level: Literal["trace", "debug", "info", "warn", "warning", "error", "fatal", "silent"] = "info"

    # Worker only.
    worker_queues: tuple[str, ...] = ("cpu",)
    worker_reclaim_idle_ms: int = Field(30_000, ge=200)
    worker_metrics_port: int = Field(9101, ge=0, le=65535)  # 0: no /metrics endpoint
    worker_max_jobs: int = Field(4, ge=1, le=256)  # jobs whose DAG this process drives at once
    # Steps one process runs at once on each of its queues. 1 for real engines, which use the
    # whole device; light engines (the control-plane bench's noop) can run many side by side.
    worker_step_threads: int = Field(1, ge=1, le=64)
    worker_step_retries: int = Field(2, ge=0, le=20)  # in-process retries of a retryable step error
    worker_retry_backoff_ms: int = Field(1_000, ge=10)
    # Dramatiq: a worker whose heartbeat is older than this is dead and its in-flight messages
    # are re-queued by the next maintenance run (maintenance_chance per million commands).
    worker_heartbeat_timeout_ms: int = Field(15_000, ge=500)
    worker_dead_message_ttl_ms: int = Field(7 * 86_400_000, ge=1_000)
    worker_maintenance_chance: int = Field(1_000, ge=1, le=1_000_000)
    worker_step_timeout_s: int = Field(3_600, ge=1)  # from the moment an actor starts the step
    worker_queue_wait_s: int = Field(6 * 3_600, ge=1)  # how long a step may wait for an actor
    # Redis or Postgres unreachable: wait (capped backoff) this long before a job fails for it.
    worker_outage_max_s: float = Field(300.0, gt=0)
    # A job command whose worker died this many times without finishing a step is dead-lettered.
    worker_max_deliveries: int = Field(5, ge=1, le=1000)
    worker_shutdown_grace_s: float = Field(30.0, ge=0)  # SIGTERM: how long running jobs may go on
    worker_work_dir: Path = Path(tempfile.gettempdir()) / "likeness-worker"
    worker_engine_plugins: tuple[str, ...] = ()
    # Placement (main.py, gpus.py, placement.py). GPU indexes as CUDA numbers them, e.g. (0, 1):
    # one child process per index consumes queue gpu<i> with CUDA_VISIBLE_DEVICES=<i>. Empty: none.
    worker_gpus: tuple[int, ...] = ()
    # The LLM server sharing this worker's GPUs (Ollama): its models are unloaded before an SD or
    # SVD step (engines/gpu/vram.py). Unset: nothing is unloaded.
    worker_ollama_url: str | None = None
    # LIKENESS_CONTRACTS_DIR is read by contracts.contracts_dir(): the schemas are needed before
    # (and without) Settings, e.g. to validate test fixtures.
    # Test-only fault injection (see faults.py). Never set in production.
    likeness_test_faults: str = ""

    @field_validator("redis_key_prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        if not _PREFIX_RE.match(v):
            raise ValueError("letters, digits, '_', '-', '.' only (1-64 characters)")
        return v

    @field_validator("worker_queues", "worker_engine_plugins", mode="before")
    @classmethod
    def _comma_list(cls, v: object) -> object:
        if isinstance(v, str):
            return tuple(item.strip() for item in v.split(",") if item.strip())
        return v

    @field_validator("worker_queues")
    @classmethod
    def _queues(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for q in v:
            if not _QUEUE_RE.match(q):
                raise ValueError(f"unknown queue {q!r}: use cpu, gpu0, gpu1, ...")
        if not v:
            raise ValueError("at least one queue")
        return v

    @field_validator("worker_gpus", mode="before")
    @classmethod
    def _gpus(cls, v: object) -> object:
        if not isinstance(v, str):
            return v
        items = [item.strip() for item in v.split(",")]
        bad = [item for item in items if not _GPU_RE.match(item)]
        if bad:
            raise ValueError(f"{', '.join(map(repr, bad))}: GPU indexes are digits separated by commas (e.g. 0,1)")
        indexes = [int(item) for item in items]
        twice = sorted({i for i in indexes if indexes.count(i) > 1})
        if twice:
            raise ValueError(f"GPU {', '.join(map(str, twice))} listed twice")
        return tuple(indexes)

    @field_validator("worker_ollama_url")
    @classmethod
    def _ollama_url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return v.rstrip("/") if v else v

    @field_validator("database_url")
    @classmethod
    def _pg(cls, v: SecretStr) -> SecretStr:
        if not v.get_secret_value().startswith(("postgres://", "postgresql://")):
            raise ValueError("must be a postgres:// or postgresql:// URL")
        return v

    @field_validator("redis_url")
    @classmethod
    def _redis(cls, v: SecretStr) -> SecretStr:
        if not v.get_secret_value().startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis:// URL")
        return v

    @model_validator(mode="after")
    def _s3(self) -> Settings:
        if self.storage_driver == "s3" and not self.s3_bucket:
            raise ValueError("STORAGE_DRIVER=s3 needs S3_BUCKET")
        return self

    @model_validator(mode="after")
    def _placement(self) -> Settings:
        if not self.worker_gpus:
            return self
        gpus = ",".join(map(str, self.worker_gpus))
        stray = [q for q in self.worker_queues if q.startswith("gpu") and q not in self.gpu_queues]
        if stray:
            raise ValueError(
                f"WORKER_QUEUES lists {', '.join(stray)} but WORKER_GPUS ({gpus}) does not: with WORKER_GPUS each "
                "GPU queue is consumed by its own GPU's process; add the index to WORKER_GPUS or drop the queue"
            )
        if self.worker_metrics_port and self.worker_metrics_port + 1 + max(self.worker_gpus) > 65535:
            raise ValueError(f"WORKER_METRICS_PORT + 1 + GPU index must be a port: GPU processes serve "
                             f"/metrics there (WORKER_GPUS {gpus})")
        return self

    @property
    def gpu_queues(self) -> tuple[str, ...]:
        """The queues of WORKER_GPUS (gpu<i>), each consumed by its GPU's own child process."""
        return tuple(f"gpu{i}" for i in self.worker_gpus)

    @property
    def own_queues(self) -> tuple[str, ...]:
        """The queues this process consumes itself: WORKER_QUEUES without those of WORKER_GPUS
        (possibly none: a process that only drives jobs and its GPU children)."""
        return tuple(q for q in self.worker_queues if q not in self.gpu_queues)


_M = TypeVar("_M", bound=BaseModel)


def _load(model: type[_M], env: Mapping[str, str] | None) -> _M:
    env = os.environ if env is None else env
    raw: dict[str, object] = {}
    for name in model.model_fields:
        value = env.get(name.upper())
        if value is not None and value != "":
            raw[name] = value
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "settings"
            what = "missing" if err["type"] == "missing" else err["msg"]
            problems.append(f"{where.upper()}: {what}")
        raise ConfigError("invalid worker configuration: " + "; ".join(problems)) from None


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read every setting from ``env`` (default: os.environ); raise ConfigError naming problems."""
    return _load(Settings, env)


def load_comfyui_settings(env: Mapping[str, str] | None = None) -> ComfyUISettings:
    """The COMFYUI_* group alone (the same parsing and messages as load_settings)."""
    return _load(ComfyUISettings, env)


def load_group(model: type[_M], env: Mapping[str, str] | None = None) -> _M:
    """One engine's settings group alone (an engine is built without Settings), parsed like
    load_settings: each field is read from its upper-case name; ConfigError names the culprits."""
    return _load(model, env)
