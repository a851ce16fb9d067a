"""Fixtures for the worker tests: real Redis and Postgres, isolated per test, and worker processes.

Services come from REDIS_URL / DATABASE_URL (default: the local ones). A missing service skips
the tests that need it on a laptop and fails them when CI is set. Isolation: a fresh database
for the session (CREATE DATABASE lk_test_<random>), a random REDIS_KEY_PREFIX and a fresh
STORAGE_DIR per test; no FLUSHDB, no truncation of shared tables.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

WORKER_DIR = Path(__file__).resolve().parents[1]
REPO = WORKER_DIR.parent
FIXTURES = REPO / "packages" / "contracts" / "fixtures"
TESTS_DIR = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


MEDIA_TOOLS = ("ffmpeg", "ffprobe", "espeak-ng")
ASTRONAUT_FACE = {"x": 174, "y": 68, "w": 104, "h": 104}  # MediaPipe's box on skimage's astronaut


def skip_or_fail(msg: str) -> None:
    """A missing service or tool: skip on a laptop, fail when CI is set."""
    if os.environ.get("CI"):
        pytest.fail(msg)
    pytest.skip(msg)


def _unavailable(what: str, exc: Exception) -> None:
    skip_or_fail(f"{what} unavailable: {exc}")


@pytest.fixture(scope="session")
def tools() -> None:
    """The command-line tools the built-in engines run."""
    missing = [t for t in MEDIA_TOOLS if shutil.which(t) is None]
    if missing:
        skip_or_fail(f"missing tools: {', '.join(missing)} (apt-get install ffmpeg espeak-ng)")


@pytest.fixture(scope="session")
def redis_url() -> str:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:
        _unavailable("Redis", exc)
    return REDIS_URL


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A fresh database for this test session, dropped at the end."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    try:
        admin = psycopg.connect(DATABASE_URL, autocommit=True, connect_timeout=3)
    except Exception as exc:
        _unavailable("Postgres", exc)
    name = f"lk_test_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    params = conninfo_to_dict(DATABASE_URL)
    params["dbname"] = name
    user = params.get("user", "")
    host = params.get("host", "127.0.0.1")
    port = params.get("port", "5432")
    password = f":{params['password']}" if params.get("password") else ""
    yield f"postgresql://{user}{password}@{host}:{port}/{name}"
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


@pytest.fixture
def prefix(redis_url) -> Iterator[str]:
    """A random REDIS_KEY_PREFIX; its keys are deleted afterwards (never FLUSHDB)."""
    import redis

    p = f"lkt{uuid.uuid4().hex[:10]}"
    yield p
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(f"{p}:*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture
def storage_dir(tmp_path) -> Path:
    d = tmp_path / "objects"
    d.mkdir()
    return d


@pytest.fixture
def worker_env(redis_url, database_url, prefix, storage_dir, tmp_path) -> dict[str, str]:
    """Environment of a worker process for this test (fast timings for kill/reclaim tests)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIKENESS_", "WORKER_", "S3_", "STORAGE_"))}
    env.update(
        REDIS_URL=redis_url,
        DATABASE_URL=database_url,
        REDIS_KEY_PREFIX=prefix,
        STORAGE_DRIVER="local",
        STORAGE_DIR=str(storage_dir),
        WORKER_QUEUES="cpu",
        WORKER_RECLAIM_IDLE_MS="1500",
        WORKER_HEARTBEAT_TIMEOUT_MS="2000",
        WORKER_MAINTENANCE_CHANCE="1000000",
        WORKER_RETRY_BACKOFF_MS="100",
        WORKER_METRICS_PORT="0",
        WORKER_WORK_DIR=str(tmp_path / "work"),
        LOG_LEVEL="info",
        PYTHONPATH=os.pathsep.join([str(TESTS_DIR), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        PYTHONUNBUFFERED="1",
    )
    return env


class WorkerProcess:
    """A `likeness-worker` subprocess; its log goes to a file the test prints on failure."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        # The child writes through its own copy of the descriptor: ours can close at once.
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [str(VENV_BIN / "likeness-worker")],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: a kill takes its tools with it
            )

    def sigkill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, timeout: float = 20) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.sigkill()
        return self.proc.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def start_worker(worker_env, tmp_path) -> Iterator[Any]:
    started: list[WorkerProcess] = []

    def start(**overrides: str) -> WorkerProcess:
        env = {**worker_env, **overrides}
        w = WorkerProcess(env, tmp_path / f"worker-{len(started)}.log")
        started.append(w)
        return w

    yield start
    for w in started:
        w.stop()


@pytest.fixture
def tiny_worker(start_worker):
    """A worker running the tiny test engines (tiny_engines.py): each step takes milliseconds."""

    def start(**env):
        return start_worker(WORKER_ENGINE_PLUGINS="tiny_engines", **env)

    return start


@pytest.fixture
def bus(redis_url, prefix, storage_dir):
    return Bus(redis_url, prefix, storage_dir)


class Bus:
    """The api's side of the protocol, for tests: send commands, read events, set cancel keys."""

    def __init__(self, redis_url: str, prefix: str, storage_dir: Path) -> None:
        import redis

        from likeness_worker.contracts import RedisKeys
        from likeness_worker.storage import LocalStorage

        self.r = redis.Redis.from_url(redis_url)
        self.keys = RedisKeys(prefix)
        self.storage = LocalStorage(storage_dir)

    def send(self, command: dict[str, Any] | str, kind: str | None = None) -> None:
        data = command if isinstance(command, str) else json.dumps(command)
        kind = kind or command["kind"]  # type: ignore[index]
        self.r.xadd(self.keys.job_stream(kind), {"data": data})

    def cancel(self, job_id: str) -> None:
        self.r.set(self.keys.cancel(job_id), "1", ex=86400)

    def events(self, job_id: str | None = None) -> list[dict[str, Any]]:
        out = []
        for _id, fields in self.r.xrange(self.keys.events):
            ev = json.loads(fields[b"data"])
            if job_id is None or ev["jobId"] == job_id:
                out.append(ev)
        return out

    def wait_for(self, job_id: str, pred, timeout: float = 60, worker: WorkerProcess | None = None) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            evs = self.events(job_id)
            if any(pred(e) for e in evs):
                return evs
            if worker is not None and worker.proc.poll() is not None:
                raise AssertionError(f"worker exited ({worker.proc.returncode}):\n{worker.log()[-5000:]}")
            time.sleep(0.1)
        logs = f"\n--- worker log ---\n{worker.log()[-6000:]}" if worker else ""
        raise AssertionError(f"timed out; events so far: {[(e['type'], e.get('step')) for e in self.events(job_id)]}{logs}")

    def wait_finished(self, job_id: str, attempt: int = 1, timeout: float = 60, worker=None) -> list[dict]:
        return self.wait_for(
            job_id, lambda e: e["type"] == "job_finished" and e["attempt"] == attempt, timeout, worker
        )

    def pending(self, kind: str) -> int:
        return int(self.r.xpending(self.keys.job_stream(kind), self.keys.worker_group)["pending"])


def read_frames(path) -> list:
    """Every decoded frame of a video (BGR arrays)."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    out = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        out.append(frame)
    cap.release()
    return out


class Recorder:
    """A TaskContext's progress and cancel for an engine test: what the engine reported, and a
    cancel a test sets (or that is set by itself when a message containing ``cancel_on`` comes)."""

    def __init__(self, cancel_on: str | None = None) -> None:
        self.progress: list[tuple[float, str | None]] = []
        self.cancel = threading.Event()
        self.cancel_on = cancel_on
        self.on_progress: Any = None

    def __call__(self, fraction: float, message: str | None = None) -> None:
        self.progress.append((fraction, message))
        if self.cancel_on and message and self.cancel_on in message:
            self.cancel.set()
        if self.on_progress is not None:
            self.on_progress(fraction, message)

    def monotonic(self) -> bool:
        values = [f for f, _ in self.progress]
        return values == sorted(values) and all(0.0 <= f <= 1.0 for f in values)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def new_id() -> str:
    return str(uuid.uuid4())


def now_iso() -> str:
    from likeness_worker.events import now_iso as _now

    return _now()
