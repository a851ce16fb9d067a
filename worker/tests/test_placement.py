"""Placement (issue 14): WORKER_GPUS' child processes, the choice of a GPU queue, and the VRAM hook
a GPU actor runs before each step. Real Redis under a random prefix; ComfyUI is the fake of
tests/fakes/comfyui.py, Ollama a small server speaking its /api/ps and /api/generate below."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES, new_id, now_iso
from fakes.comfyui import FakeComfyUI
from tiny_engines import TINY

from likeness_worker import placement
from likeness_worker.actors import gpu
from likeness_worker.advertise import Advertiser
from likeness_worker.config import ConfigError, load_settings
from likeness_worker.contracts import RedisKeys
from likeness_worker.engines import Engine, EngineRegistry, engine
from likeness_worker.engines.gpu.vram import make_room, unload_ollama
from likeness_worker.gpus import child_env
from likeness_worker.placement import GpuQueue, pick
from likeness_worker.runtime import build_runtime

BASE = {"DATABASE_URL": "postgresql://u@h/db", "REDIS_URL": "redis://h:6379/0"}


# Configuration ------------------------------------------------------------------------------------
def test_worker_gpus_parse_and_combine_with_worker_queues():
    s = load_settings(BASE)
    assert s.worker_gpus == () and s.gpu_queues == () and s.own_queues == ("cpu",)  # today's worker
    s = load_settings({**BASE, "WORKER_GPUS": " 0, 1", "WORKER_QUEUES": "cpu,gpu0"})
    assert s.worker_gpus == (0, 1) and s.gpu_queues == ("gpu0", "gpu1")
    assert s.own_queues == ("cpu",)  # gpu0 is listed in both: its child consumes it, not the parent
    s = load_settings({**BASE, "WORKER_GPUS": "1", "WORKER_QUEUES": "gpu1"})
    assert s.own_queues == ()  # a process that drives jobs and its GPU child only
    s = load_settings({**BASE, "WORKER_QUEUES": "gpu1"})  # no WORKER_GPUS: a plain gpu1 consumer, as before
    assert s.own_queues == ("gpu1",) and s.gpu_queues == ()
    s = load_settings({**BASE, "WORKER_OLLAMA_URL": "http://ollama:11434/"})
    assert s.worker_ollama_url == "http://ollama:11434"


@pytest.mark.parametrize(
    "env, says",
    [
        ({"WORKER_GPUS": "0,a"}, "WORKER_GPUS: .*'a': GPU indexes are digits separated by commas"),
        ({"WORKER_GPUS": "0,,1"}, "WORKER_GPUS: .*'': GPU indexes are digits"),
        ({"WORKER_GPUS": "-1"}, "WORKER_GPUS: .*'-1'"),
        ({"WORKER_GPUS": "1,0,1"}, "WORKER_GPUS: .*GPU 1 listed twice"),
        ({"WORKER_GPUS": "0", "WORKER_QUEUES": "cpu,gpu1"}, "WORKER_QUEUES lists gpu1 but WORKER_GPUS \\(0\\) does not"),
        ({"WORKER_GPUS": "1", "WORKER_METRICS_PORT": "65535"}, "WORKER_METRICS_PORT"),
        ({"WORKER_OLLAMA_URL": "ollama:11434"}, "WORKER_OLLAMA_URL: .*http://"),
    ],
)
def test_bad_placement_settings_are_refused_by_name(env, says):
    with pytest.raises(ConfigError, match=says):
        load_settings({**BASE, **env})


def test_a_gpu_child_sees_one_card_and_consumes_its_queue_alone():
    s = load_settings({**BASE, "WORKER_GPUS": "0,3", "WORKER_METRICS_PORT": "9101"})
    env = child_env(s, 3, {"WORKER_GPUS": "0,3", "WORKER_QUEUES": "cpu", "PATH": "/bin"})
    assert env == {"WORKER_QUEUES": "gpu3", "CUDA_VISIBLE_DEVICES": "3", "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
                   "WORKER_METRICS_PORT": "9105", "PATH": "/bin"}
    s = load_settings({**BASE, "WORKER_GPUS": "0", "WORKER_METRICS_PORT": "0"})
    assert child_env(s, 0, {"CUDA_DEVICE_ORDER": "FASTEST_FIRST"})["WORKER_METRICS_PORT"] == "0"
    assert child_env(s, 0, {"CUDA_DEVICE_ORDER": "FASTEST_FIRST"})["CUDA_DEVICE_ORDER"] == "FASTEST_FIRST"


# Queue choice -------------------------------------------------------------------------------------
def test_pick_prefers_warm_then_least_busy_then_gpu0():
    sd, svd = "image/sd", "motion/svd"
    assert pick([], sd) == "gpu0"
    assert pick([GpuQueue("gpu0"), GpuQueue("gpu1")], sd) == "gpu0"  # a tie: the first card
    assert pick([GpuQueue("gpu0", warm=svd), GpuQueue("gpu1", warm=sd)], sd) == "gpu1"  # warm
    assert pick([GpuQueue("gpu0"), GpuQueue("gpu1", warm=sd, running=1)], sd) == "gpu1"  # warm, one step ahead
    # Warm, but two steps more ahead than an idle card: the idle card loads the model too.
    assert pick([GpuQueue("gpu0"), GpuQueue("gpu1", warm=sd, waiting=1, running=1)], sd) == "gpu0"
    assert pick([GpuQueue("gpu0", waiting=2), GpuQueue("gpu1", waiting=1), GpuQueue("gpu2", waiting=3)], sd) == "gpu1"
    assert pick([GpuQueue("gpu0", running=1), GpuQueue("gpu1")], sd) == "gpu1"  # running counts as ahead
    # A card whose worker cannot run the engine is passed over while another can.
    assert pick([GpuQueue("gpu0", runs_engine=False), GpuQueue("gpu1", waiting=5)], sd) == "gpu1"
    assert pick([GpuQueue("gpu1", runs_engine=False)], sd) == "gpu1"


class _Sd(Engine):
    device = "gpu"

    def render(self, ctx):  # pragma: no cover - never run
        raise AssertionError


class _Svd(Engine):
    device = "gpu"

    def animate(self, ctx):  # pragma: no cover
        raise AssertionError


class _Resident(Engine):
    """A tts whose model lives in a resident process between steps (as F5-TTS's host will)."""

    device = "gpu"
    released = 0

    def synthesize(self, ctx):  # pragma: no cover
        raise AssertionError

    @classmethod
    def release(cls) -> None:
        cls.released += 1


class _BrokenRelease(_Resident):
    @classmethod
    def release(cls) -> None:
        raise RuntimeError("the resident host did not answer")


def _registry() -> EngineRegistry:
    reg = EngineRegistry()
    reg.add(engine("image", "sd")(_Sd), engine("motion", "svd")(_Svd), engine("tts", "resident")(_Resident),
            engine("tts", "broken")(_BrokenRelease))
    return reg


@pytest.fixture
def client(redis_url):
    import redis

    return redis.Redis.from_url(redis_url)


def _advertise(client, keys, worker_id: str, queues: tuple[str, ...], registry=None) -> Advertiser:
    adv = Advertiser(client, keys, worker_id, registry or _registry(), queues, heartbeat_s=5.0)
    adv.publish()
    return adv


def test_the_queue_is_chosen_among_the_live_gpu_queues_of_the_adverts(client, prefix, redis_url, tmp_path):
    keys = RedisKeys(prefix)
    rt = build_runtime(load_settings({**BASE, "REDIS_URL": redis_url, "REDIS_KEY_PREFIX": prefix,
                                      "STORAGE_DIR": str(tmp_path)}), _registry())
    assert rt.queue_for("cpu", "mux", "ffmpeg") == "cpu"
    assert rt.queue_for("gpu", "image", "sd") == "gpu0"  # no GPU worker yet: gpu0 waits for one

    _advertise(client, keys, "box-a", ("cpu",))
    _advertise(client, keys, "box-b", ("gpu1",))
    assert rt.queue_for("gpu", "image", "sd") == "gpu1"  # the only live card

    _advertise(client, keys, "box-c", ("gpu0",))
    assert rt.queue_for("gpu", "image", "sd") == "gpu0"  # two idle cards: the first
    placement.step_started(client, keys, "gpu1", "image/sd", "m-1", 60)
    placement.step_ended(client, keys, "gpu1", "m-1")
    assert client.get(f"{prefix}:gpu-warm:gpu1") == b"image/sd"
    assert rt.queue_for("gpu", "image", "sd") == "gpu1"  # its model is warm there
    assert rt.queue_for("gpu", "motion", "svd") == "gpu0"

    # Dramatiq's waiting messages: gpu1 two ahead of gpu0, warm or not, the idle card takes it.
    client.rpush(f"{prefix}:dramatiq:gpu1", "x1", "x2")
    assert rt.queue_for("gpu", "image", "sd") == "gpu0"
    client.rpush(f"{prefix}:dramatiq:gpu0", "y1", "y2", "y3")
    assert rt.queue_for("gpu", "motion", "svd") == "gpu1"  # the least busy
    client.delete(f"{prefix}:dramatiq:gpu0", f"{prefix}:dramatiq:gpu1")

    # A step running on gpu0 makes gpu1 the least busy card for a cold engine.
    placement.step_started(client, keys, "gpu0", "motion/svd", "m-2", 60)
    assert 0 < client.ttl(f"{prefix}:gpu-running:gpu0") <= 60 + placement.RUNNING_MARGIN_S
    assert rt.queue_for("gpu", "tts", "resident") == "gpu1"
    placement.step_ended(client, keys, "gpu0", "m-2")
    assert rt.queue_for("gpu", "tts", "resident") == "gpu0"

    # A card whose worker cannot run the engine (its advert says why) is passed over.
    only_sd = EngineRegistry()
    only_sd.add(engine("image", "sd")(_Sd))
    _advertise(client, keys, "box-c", ("gpu0",), only_sd)
    assert rt.queue_for("gpu", "tts", "resident") == "gpu1"

    # A worker whose advert expired is not live: its card gets nothing more.
    client.delete(keys.worker("box-b"))
    assert rt.queue_for("gpu", "image", "sd") == "gpu0"


# The VRAM hook ------------------------------------------------------------------------------------
class FakeOllama:
    """Ollama's model-memory routes (docs/api.md): ``GET /api/ps`` → ``{models: [{name, model,
    size, digest, details, expires_at, size_vram}]}``; ``POST /api/generate {model, keep_alive: 0}``
    (no prompt) unloads it → ``{model, created_at, response: "", done: true, done_reason: "unload"}``;
    an unknown model → 404 ``{error: "model 'x' not found"}``."""

    def __init__(self, models: list[str]) -> None:
        self.loaded = list(models)
        self.requests: list[tuple[str, str, Any]] = []
        self.fail_ps = False
        self.forget_after_ps: list[str] = []  # models that vanish right after a listing
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _send(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                fake.requests.append(("GET", self.path, None))
                if self.path != "/api/ps":
                    return self._send(404, {"error": "404 page not found"})
                if fake.fail_ps:
                    return self._send(500, {"error": "something went wrong"})
                self._send(200, {"models": [
                    {"name": m, "model": m, "size": 5_000_000_000, "digest": "d" * 64,
                     "details": {"format": "gguf", "family": "llama"}, "expires_at": "2030-01-01T00:00:00Z",
                     "size_vram": 5_000_000_000} for m in fake.loaded]})
                fake.loaded = [m for m in fake.loaded if m not in fake.forget_after_ps]

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                fake.requests.append(("POST", self.path, body))
                if self.path != "/api/generate":
                    return self._send(404, {"error": "404 page not found"})
                model = body.get("model")
                if model not in fake.loaded:
                    return self._send(404, {"error": f"model '{model}' not found"})
                if body.get("keep_alive") == 0 and not body.get("prompt"):
                    fake.loaded.remove(model)
                    return self._send(200, {"model": model, "created_at": "2025-01-01T00:00:00Z", "response": "",
                                            "done": True, "done_reason": "unload"})
                self._send(400, {"error": "this fake only unloads"})

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def comfy(tmp_path):
    server = FakeComfyUI(tmp_path / "comfyui").start()
    yield server
    server.stop()


@pytest.fixture
def ollama():
    server = FakeOllama(["llama3.2:latest", "qwen2.5:7b"])
    yield server
    server.stop()


def _closed_url() -> str:
    from conftest import free_port

    return f"http://127.0.0.1:{free_port()}"


def test_after_comfyui_another_engine_frees_comfyuis_vram(comfy, ollama):
    done = make_room("image/comfyui", None, "tts", "resident", comfyui_url=comfy.url, ollama_url=ollama.url)
    assert done == ["comfyui: /free"]
    assert comfy.frees == [{"unload_models": True, "free_memory": True}]
    assert ollama.requests == []  # a tts does not need the LLM's memory
    # ComfyUI after ComfyUI (another task kind of it too): ComfyUI manages its own models.
    assert make_room("image/comfyui", None, "motion", "comfyui", comfyui_url=comfy.url, ollama_url=None) == []
    assert make_room(None, None, "tts", "resident", comfyui_url=comfy.url, ollama_url=None) == []
    assert len(comfy.frees) == 1
    # An engine that renders through ComfyUI (the likeness evaluate) counts as ComfyUI, both ways.
    from likeness_worker.engines.gpu.likeness_eval import LikenessEvaluate

    # (its own resident tts, not ComfyUI's models, is let go of)
    assert make_room("evaluate/likeness", LikenessEvaluate, "image", "comfyui", comfyui_url=comfy.url,
                     ollama_url=None) == ["evaluate/likeness: released"]
    assert make_room("image/comfyui", None, "evaluate", "likeness", current_cls=LikenessEvaluate,
                     comfyui_url=comfy.url, ollama_url=None) == []
    done = make_room("evaluate/likeness", LikenessEvaluate, "lora_trainer", "kohya", comfyui_url=comfy.url,
                     ollama_url=None)
    assert done == ["comfyui: /free", "evaluate/likeness: released"] and len(comfy.frees) == 2


def test_before_sd_or_svd_the_llm_is_unloaded(ollama):
    done = make_room("tts/resident", None, "image", "sd", comfyui_url=None, ollama_url=ollama.url)
    assert done == ["ollama: unloaded llama3.2:latest", "ollama: unloaded qwen2.5:7b"]
    assert ollama.requests == [
        ("GET", "/api/ps", None),
        ("POST", "/api/generate", {"model": "llama3.2:latest", "keep_alive": 0}),
        ("POST", "/api/generate", {"model": "qwen2.5:7b", "keep_alive": 0}),
    ]
    assert ollama.loaded == []
    assert make_room("image/sd", None, "motion", "svd", comfyui_url=None, ollama_url=ollama.url) == []  # none left
    assert make_room(None, None, "upscale", "x", comfyui_url=None, ollama_url=ollama.url) == []
    assert ollama.requests[-1] == ("GET", "/api/ps", None) and len(ollama.requests) == 4


def test_the_last_engine_releases_what_it_holds():
    _Resident.released = 0
    assert make_room("tts/resident", _Resident, "image", "sd", comfyui_url=None, ollama_url=None) == [
        "tts/resident: released"]
    assert _Resident.released == 1
    make_room("tts/resident", _Resident, "tts", "resident", comfyui_url=None, ollama_url=None)  # the same engine
    assert _Resident.released == 1
    # The same tool under another task kind (Wav2Lip's lipsync and talking_head share one process).
    make_room("lipsync/resident", _Resident, "talking_head", "resident", comfyui_url=None, ollama_url=None)
    assert _Resident.released == 1
    assert make_room("image/sd", _Sd, "tts", "resident", comfyui_url=None, ollama_url=None) == []  # nothing to release


def test_failures_of_the_hook_are_logged_and_never_fail_the_step(comfy, ollama, caplog):
    comfy.stop()  # ComfyUI gone
    ollama.fail_ps = True
    assert make_room("image/comfyui", _BrokenRelease, "image", "sd", comfyui_url=comfy.url,
                     ollama_url=ollama.url) == []
    text = caplog.text
    assert "could not free ComfyUI's VRAM before image/sd" in text
    assert "could not list Ollama's loaded models" in text and "HTTP 500" in text
    assert "releasing image/comfyui before image/sd failed" in text
    assert unload_ollama(_closed_url(), 2) == []
    # Listed by /api/ps, gone by the time it is unloaded (a 404): logged, the next one still goes.
    ollama.fail_ps = False
    ollama.loaded = ["gone:latest", "llama3.2:latest"]
    ollama.forget_after_ps = ["gone:latest"]
    assert unload_ollama(ollama.url, 2) == ["llama3.2:latest"]
    assert "could not unload Ollama's gone:latest: HTTP 404" in caplog.text


def test_the_actor_hook_frees_records_and_clears(comfy, ollama, client, prefix, redis_url, tmp_path):
    keys = RedisKeys(prefix)
    rt = build_runtime(load_settings({**BASE, "REDIS_URL": redis_url, "REDIS_KEY_PREFIX": prefix,
                                      "STORAGE_DIR": str(tmp_path), "COMFYUI_URL": comfy.url,
                                      "WORKER_OLLAMA_URL": ollama.url}), _registry())
    assert gpu.before_step(rt, "cpu", "m-0", "mux", "ffmpeg") is None  # not a GPU queue: nothing
    assert client.get(f"{prefix}:gpu-warm:cpu") is None and comfy.frees == [] and ollama.requests == []

    client.set(f"{prefix}:gpu-warm:gpu1", "image/comfyui")
    step = gpu.before_step(rt, "gpu1", "m-1", "motion", "svd")
    assert comfy.frees == [{"unload_models": True, "free_memory": True}] and ollama.loaded == []
    assert client.get(f"{prefix}:gpu-warm:gpu1") == b"motion/svd"
    assert client.smembers(f"{prefix}:gpu-running:gpu1") == {b"m-1"}
    gpu.after_step(rt, step)
    assert client.smembers(f"{prefix}:gpu-running:gpu1") == set()
    assert client.get(f"{prefix}:gpu-warm:gpu1") == b"motion/svd"  # still warm once done

    _Resident.released = 0
    gpu.after_step(rt, gpu.before_step(rt, "gpu1", "m-2", "tts", "resident"))
    gpu.after_step(rt, gpu.before_step(rt, "gpu1", "m-3", "image", "sd"))
    assert _Resident.released == 1  # found in this worker's registry by the name the queue recorded
    assert placement.warm_engine(client, keys, "gpu1") == "image/sd"


# The process tree ---------------------------------------------------------------------------------
def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)


def _ppid(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].split()[1])


def _adverts(client, prefix) -> dict[int, list[str]]:
    """Live adverts: pid -> queues."""
    out = {}
    for wid in client.smembers(f"{prefix}:workers"):
        raw = client.get(f"{prefix}:workers:{wid.decode()}")
        if raw:
            advert = json.loads(raw)
            out[int(advert["workerId"].rsplit("-", 1)[1])] = advert["queues"]
    return out


def _wait(pred, timeout: float, what: str, worker=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}" + (f"\n{worker.log()[-4000:]}" if worker else ""))


def _children(client, prefix, parent: int) -> dict[str, int]:
    """queue -> pid of the live children of ``parent`` (from their adverts)."""
    return {queues[0]: pid for pid, queues in _adverts(client, prefix).items()
            if _alive(pid) and _ppid(pid) == parent and len(queues) == 1}


def _both_children(client, prefix, parent: int) -> dict[str, int] | None:
    kids = _children(client, prefix, parent)
    return kids if set(kids) == {"gpu0", "gpu1"} else None


def test_worker_gpus_starts_a_child_per_card_restarts_it_and_stops_them(tiny_worker, bus, client, prefix, comfy):
    w = tiny_worker(WORKER_GPUS="0,1", WORKER_QUEUES="cpu,gpu0", WORKER_SHUTDOWN_GRACE_S="1",
                    COMFYUI_URL=comfy.url)
    parent = w.proc.pid
    kids = _wait(lambda: _both_children(client, prefix, parent), 20, "two GPU children", w)
    assert set(kids) == {"gpu0", "gpu1"}
    assert _adverts(client, prefix)[parent] == ["cpu"]  # the parent consumes cpu itself, gpu0 is its child's
    for queue, pid in kids.items():
        env = _environ(pid)
        assert env["CUDA_VISIBLE_DEVICES"] == queue[3:] and env["WORKER_QUEUES"] == queue
        assert "WORKER_GPUS" not in env
    assert "CUDA_VISIBLE_DEVICES" not in _environ(parent)

    # A GPU step runs in a child; the card ComfyUI used last is freed first, then it is warm.
    for q in ("gpu0", "gpu1"):
        client.set(f"{prefix}:gpu-warm:{q}", "image/comfyui")
    cmd = json.loads((FIXTURES / "job-command.generate_video.json").read_text())
    cmd.update(jobId=new_id(), attempt=1, createdAt=now_iso(), engines={**TINY, "upscale": "tiny_gpu"})
    cmd["payload"]["pipeline"] = "sadtalker"
    bus.send(cmd)
    events = bus.wait_finished(cmd["jobId"], timeout=30, worker=w)
    assert [e["state"] for e in events if e["type"] == "job_finished"] == ["succeeded"]
    (upscale,) = [e for e in events if e["type"] == "step_succeeded" and e["step"] == "upscale"]
    assert upscale["outputs"]["queue"] == "gpu0"  # two idle cards, neither warm for it: the first
    assert client.get(f"{prefix}:gpu-warm:gpu0") == b"upscale/tiny_gpu"
    assert client.get(f"{prefix}:gpu-warm:gpu1") == b"image/comfyui"
    assert comfy.frees == [{"unload_models": True, "free_memory": True}]

    # A child that dies is started again, on the same card.
    os.kill(kids["gpu1"], signal.SIGKILL)
    again = _wait(lambda: (c := _both_children(client, prefix, parent)) and c["gpu1"] != kids["gpu1"] and c,
                  20, "gpu1's child to come back", w)
    assert _environ(again["gpu1"])["CUDA_VISIBLE_DEVICES"] == "1" and again["gpu0"] == kids["gpu0"]
    assert f"GPU 1: child {kids['gpu1']} exited" in w.log()

    # SIGTERM to the parent stops them all.
    assert w.stop(timeout=15) == 0
    for pid in again.values():
        _wait(lambda pid=pid: not _alive(pid), 5, f"child {pid} to stop", w)
    assert "GPU 0: bye" in w.log() and "GPU 1: bye" in w.log()


def test_a_gpu_child_dies_with_its_parent_even_a_killed_one(tmp_path):
    """PR_SET_PDEATHSIG as a GPU child sets it (gpus.die_with_parent), under a stand-in parent:
    SIGKILL the parent and the child gets SIGTERM at once (the real child then stops as it does on
    the parent's SIGTERM, tested above)."""
    import subprocess
    import sys

    pid_file = tmp_path / "child.pid"
    child = (
        "import os, sys, time\n"
        "from likeness_worker.gpus import die_with_parent\n"
        "assert die_with_parent(int(sys.argv[1]))\n"
        "open(sys.argv[2], 'w').write(str(os.getpid()))\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c",
                               "import os, subprocess, sys, time\n"
                               f"subprocess.Popen([sys.executable, '-c', {child!r}, str(os.getpid()), {str(pid_file)!r}])\n"
                               "time.sleep(60)\n"])
    try:
        pid = int(_wait(lambda: pid_file.exists() and pid_file.read_text(), 10, "the child to start"))
        assert _ppid(pid) == parent.pid
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(5)
        _wait(lambda: not _alive(pid), 5, "the child to die with its parent")
    finally:
        parent.kill()
    # A parent already gone when the child asks: it says so, and the child does not start.
    code = "import sys; from likeness_worker.gpus import die_with_parent; sys.exit(0 if die_with_parent(1) else 3)"
    assert subprocess.run([sys.executable, "-c", code], timeout=30).returncode == 3
