"""Settings are validated once; a broken environment is refused with the variable's name."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from likeness_worker.config import ConfigError, load_settings
from likeness_worker.contracts import WORKER_TASK_KINDS
from likeness_worker.engines import EngineRegistry, load_engines

BASE = {"DATABASE_URL": "postgresql://u@h/db", "REDIS_URL": "redis://h:6379/0"}


def test_defaults():
    s = load_settings(BASE)
    assert s.redis_key_prefix == "lk"
    assert s.worker_queues == ("cpu",)
    assert s.worker_reclaim_idle_ms == 30_000
    assert s.storage_driver == "local" and s.storage_dir.name == "objects"
    assert s.worker_metrics_port == 9101


def test_parses_lists_and_numbers():
    s = load_settings({**BASE, "WORKER_QUEUES": "cpu, gpu0", "WORKER_RECLAIM_IDLE_MS": "500"})
    assert s.worker_queues == ("cpu", "gpu0") and s.worker_reclaim_idle_ms == 500


@pytest.mark.parametrize(
    "env, named",
    [
        ({}, "DATABASE_URL"),
        ({"DATABASE_URL": "postgresql://x/y"}, "REDIS_URL"),
        ({**BASE, "WORKER_QUEUES": "gpu"}, "WORKER_QUEUES"),
        ({**BASE, "WORKER_RECLAIM_IDLE_MS": "soon"}, "WORKER_RECLAIM_IDLE_MS"),
        ({**BASE, "STORAGE_DRIVER": "ftp"}, "STORAGE_DRIVER"),
        ({**BASE, "STORAGE_DRIVER": "s3"}, "S3_BUCKET"),
        ({**BASE, "REDIS_URL": "http://x"}, "REDIS_URL"),
    ],
)
def test_refuses_with_the_name(env, named):
    with pytest.raises(ConfigError, match=named):
        load_settings(env)


def test_secrets_are_not_echoed():
    with pytest.raises(ConfigError) as err:
        load_settings({"DATABASE_URL": "postgresql://u:hunter2@h/db", "REDIS_URL": "nope://:hunter3@x"})
    assert "hunter" not in str(err.value)


def test_worker_refuses_to_start_without_config():
    exe = Path(sys.executable).parent / "likeness-worker"
    proc = subprocess.run([str(exe)], env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "DATABASE_URL" in proc.stderr and "REDIS_URL" in proc.stderr


def test_every_task_kind_has_a_default_engine():
    registry = load_engines()
    assert registry.missing_defaults(WORKER_TASK_KINDS) == []
    assert registry.resolve("tts")[0] == "piper"
    assert registry.resolve("lipsync")[0] == "landmarks"
    assert registry.resolve("talking_head")[0] == "landmarks"
    assert "espeak" in registry.names("tts") and "none" in registry.names("lipsync")
    assert EngineRegistry().missing_defaults(("tts", "mux")) == ["tts", "mux"]


def test_unknown_engine_is_named():
    from likeness_worker.engines import UnknownEngine

    with pytest.raises(UnknownEngine, match="'whisper' for task kind 'tts'"):
        load_engines().resolve("tts", {"tts": "whisper"})


@pytest.mark.parametrize(
    "bad, named",
    [
        ({"REDIS_URL": "redis://:s3cret-pw@127.0.0.1:1/0"}, "REDIS_URL"),
        ({"DATABASE_URL": "postgresql://u:s3cret-pw@127.0.0.1:1/db"}, "DATABASE_URL"),
        ({"DATABASE_URL": "postgresql://u:s3cret-pw@127.0.0.1:notaport/db"}, "DATABASE_URL"),
    ],
)
def test_worker_refuses_unreachable_services_by_name(worker_env, bad, named):
    exe = Path(sys.executable).parent / "likeness-worker"
    proc = subprocess.run([str(exe)], env={**worker_env, **bad}, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.startswith(f"likeness-worker: {named}: cannot use"), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "s3cret" not in proc.stderr


def test_worker_refuses_a_later_start_up_failure_in_one_line(worker_env):
    # The metrics port is taken: start-up fails after the services answered, still without a traceback.
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        exe = Path(sys.executable).parent / "likeness-worker"
        env = {**worker_env, "WORKER_METRICS_PORT": str(port)}
        proc = subprocess.run([str(exe)], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "likeness-worker: cannot start: OSError" in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr


def test_log_level_takes_the_same_values_as_the_api():
    # LOG_LEVEL=warn once started the api and stopped the worker, and `warning` the reverse.
    import logging
    import re
    import typing

    from likeness_worker.config import REPO_ROOT, Settings
    from likeness_worker.log import LEVELS

    config_ts = (REPO_ROOT / "apps" / "api" / "src" / "config.ts").read_text()
    api = re.search(r"LOG_LEVEL: z\s*\.enum\(\[([^\]]*)\]\)", config_ts)
    assert api, "LOG_LEVEL's enum not found in apps/api/src/config.ts"
    api_values = set(re.findall(r'"([a-z]+)"', api.group(1)))
    worker_values = set(typing.get_args(Settings.model_fields["log_level"].annotation))
    assert api_values == worker_values == set(LEVELS)
    for level in worker_values:
        assert load_settings({**BASE, "LOG_LEVEL": level}).log_level == level
    assert LEVELS["warn"] == LEVELS["warning"] == logging.WARNING


def test_a_bad_engine_setting_refuses_the_worker_by_name(worker_env):
    # An engine's own group (here Real-ESRGAN's and kohya's) is checked at start-up too, not at its
    # first step, even on a worker that never runs it.
    registry = load_engines()
    registry.check_settings({})  # all optional
    with pytest.raises(ConfigError) as info:
        registry.check_settings({"REALESRGAN_MODEL": "esrgan-9000", "KOHYA_STEPS": "many"})
    assert "REALESRGAN_MODEL" in str(info.value) and "KOHYA_STEPS" in str(info.value)
    exe = Path(sys.executable).parent / "likeness-worker"
    proc = subprocess.run([str(exe)], env={**worker_env, "REALESRGAN_MODE": "vulkan"}, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and "REALESRGAN_MODE" in proc.stderr, proc.stderr[-2000:]
