"""The worker's engine advertisement (advertise.py: what the api lists at GET /v1/engines and checks
a request's `engines` against), the bench-only noop engines, and the coalescing of live progress."""

from __future__ import annotations

import itertools
import json
import threading
import time

import pytest
from conftest import FIXTURES, new_id, now_iso

from likeness_worker.advertise import Advertiser
from likeness_worker.contracts import WORKER_TASK_KINDS, ProtocolError, RedisKeys, validate_advert
from likeness_worker.engines import Engine, EngineRegistry, engine, load_engines
from likeness_worker.events import ProgressCoalescer


def _registry() -> EngineRegistry:
    reg = EngineRegistry()

    class Here(Engine):
        licence = "MIT"
        tools = ("sh",)

        def synthesize(self, ctx):  # pragma: no cover - never run
            raise AssertionError

    class ToolMissing(Engine):
        licence = "GPL-3.0-or-later"
        tools = ("likeness-no-such-tool",)

        def synthesize(self, ctx):  # pragma: no cover
            raise AssertionError

    class OnGpu(Engine):
        licence = "LicenseRef-Research-Only"
        non_commercial = True
        device = "gpu"

        def upscale(self, ctx):  # pragma: no cover
            raise AssertionError

    reg.add(engine("tts", "here", default=True)(Here), engine("tts", "missing")(ToolMissing),
            engine("upscale", "ongpu", default=True)(OnGpu))
    return reg


def test_the_advert_says_device_licence_default_and_why_an_engine_cannot_run(redis_url, prefix):
    import redis

    client = redis.Redis.from_url(redis_url)
    adv = Advertiser(client, RedisKeys(prefix), "host-1", _registry(), ("cpu",), heartbeat_s=2.0)
    adv.mark_problem("tts", "here", "x" * 600)  # e.g. its model did not load while warming
    advert = adv.publish()
    by_name = {e["name"]: e for e in advert["engines"]}
    assert by_name["here"] == {"taskKind": "tts", "name": "here", "device": "cpu", "licence": "MIT",
                               "nonCommercial": False, "healthy": False, "default": True, "problem": "x" * 500}
    assert by_name["missing"]["healthy"] is False
    assert by_name["missing"]["problem"] == "not installed: likeness-no-such-tool"
    assert by_name["ongpu"] == {"taskKind": "upscale", "name": "ongpu", "device": "gpu",
                                "licence": "LicenseRef-Research-Only", "nonCommercial": True,
                                "healthy": False, "default": True,
                                "problem": "this worker does not consume the gpu0 queue"}
    # What is in Redis is what was validated: the key lives 3 heartbeats; the index names it.
    stored = json.loads(client.get(f"{prefix}:workers:host-1"))
    assert stored == advert
    assert 5_000 < client.pttl(f"{prefix}:workers:host-1") <= 6_000
    assert client.sismember(f"{prefix}:workers", "host-1")

    adv2 = Advertiser(client, RedisKeys(prefix), "host-2", _registry(), ("cpu", "gpu0"), heartbeat_s=2.0)
    assert {e["name"]: e["healthy"] for e in adv2.publish()["engines"]} == {"here": True, "missing": False, "ongpu": True}


def test_the_advert_is_checked_against_the_contract():
    good = json.loads((FIXTURES / "worker-advert.json").read_text())
    validate_advert(good)
    with pytest.raises(ProtocolError):
        validate_advert(json.loads((FIXTURES / "invalid.worker-advert.json").read_text()))
    with pytest.raises(ProtocolError, match="engines/0"):
        validate_advert({**good, "engines": [{**good["engines"][0], "licence": ""}]})


def test_the_builtin_engines_say_their_licence():
    registry = load_engines()
    entries = {(k, n): cls for k, n, cls, _d in registry.entries(WORKER_TASK_KINDS)}
    assert entries[("tts", "piper")].licence == "GPL-3.0-or-later AND MIT"  # piper1-gpl; the joe voice is MIT
    assert entries[("tts", "espeak")].licence == "GPL-3.0-or-later"
    assert entries[("talking_head", "landmarks")].licence == "Apache-2.0 AND GPL-2.0-or-later"  # MediaPipe; x264
    assert entries[("evaluate", "builtin")].licence == "LicenseRef-Likeness"
    assert "espeak-ng" in entries[("tts", "espeak")].tools
    # No noop engine unless its plugin is loaded.
    assert not [n for _k, n in entries if n == "noop"]


def test_heartbeat_rewrites_the_advert_and_stop_withdraws_it(redis_url, prefix):
    import redis

    client = redis.Redis.from_url(redis_url)
    adv = Advertiser(client, RedisKeys(prefix), "host-3", _registry(), ("cpu",), heartbeat_s=0.2)
    adv.start()
    try:
        first = json.loads(client.get(f"{prefix}:workers:host-3"))["at"]
        time.sleep(0.75)
        again = json.loads(client.get(f"{prefix}:workers:host-3"))
        assert again["at"] != first
        assert again["heartbeatMs"] == 200
        assert 0 < client.pttl(f"{prefix}:workers:host-3") <= 600
    finally:
        adv.stop()
    assert client.get(f"{prefix}:workers:host-3") is None
    assert not client.sismember(f"{prefix}:workers", "host-3")


def test_progress_is_coalesced_to_ten_messages_a_second_per_job_and_the_last_one_goes_out():
    sent: list[tuple[float, dict]] = []
    c = ProgressCoalescer(lambda m: sent.append((time.monotonic(), m)), interval_s=0.1)
    t0 = time.monotonic()
    i = 0
    while time.monotonic() - t0 < 0.55:
        c.offer("job-a", {"job": "a", "n": i})
        if i % 10 == 0:
            c.offer("job-b", {"job": "b", "n": i})
        i += 1
        time.sleep(0.002)
    time.sleep(0.25)
    assert i > 100
    for job, last in (("a", i - 1), ("b", (i - 1) // 10 * 10)):
        mine = [(t, m["n"]) for t, m in sent if m["job"] == job]
        assert 2 <= len(mine) <= 7, mine  # the first at once, then at most one each 0.1 s of 0.55 s
        assert all(b[0] - a[0] >= 0.095 for a, b in itertools.pairwise(mine)), mine
        assert mine[0][1] == 0
        assert mine[-1][1] == last  # the latest report is never lost, only the ones in between


def test_a_steps_last_progress_is_not_replaced_by_the_next_steps_first():
    sent: list[dict] = []
    c = ProgressCoalescer(sent.append, interval_s=0.1)
    c.offer("job", {"step": "tts", "fraction": 0.0})  # sent at once
    c.offer("job", {"step": "tts", "fraction": 1.0})  # held
    c.offer("job", {"step": "talking_head", "fraction": 0.0})  # held beside it, not instead
    time.sleep(0.25)
    assert [(m["step"], m["fraction"]) for m in sent] == [("tts", 0.0), ("tts", 1.0), ("talking_head", 0.0)]


def test_progress_of_one_job_never_comes_twice_within_the_interval():
    sent: list[float] = []
    lock = threading.Lock()

    def send(_m):
        with lock:
            sent.append(time.monotonic())

    c = ProgressCoalescer(send, interval_s=0.1)

    def offer_often() -> None:
        for _ in range(200):
            c.offer("job", {"x": 1})
            time.sleep(0.001)

    threads = [threading.Thread(target=offer_often) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    time.sleep(0.2)
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert sent and all(g >= 0.095 for g in gaps), gaps


def _adverts(bus) -> dict[str, dict]:
    ids = [i.decode() for i in bus.r.smembers(bus.keys.workers)]
    return {
        i: json.loads(bus.r.get(f"{bus.keys.prefix}:workers:{i}"))
        for i in ids
        if bus.r.get(f"{bus.keys.prefix}:workers:{i}")
    }


def _wait_advert(bus, worker, pred, timeout=30.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for advert in _adverts(bus).values():
            if pred(advert):
                return advert
        if worker.proc.poll() is not None:
            raise AssertionError(f"worker exited:\n{worker.log()[-4000:]}")
        time.sleep(0.1)
    raise AssertionError(f"no such advert; have {list(_adverts(bus))}\n{worker.log()[-4000:]}")


@pytest.mark.usefixtures("database_url")
def test_a_worker_advertises_the_noop_engines_only_with_their_plugin_and_runs_them_when_chosen(bus, start_worker):
    plain = start_worker()
    advert = _wait_advert(bus, plain, lambda a: True)
    names = {(e["taskKind"], e["name"]) for e in advert["engines"]}
    assert ("tts", "piper") in names and not [n for _k, n in names if n == "noop"]
    plain.stop()
    assert _adverts(bus) == {}, "a worker that stops withdraws its advert"

    w = start_worker(WORKER_ENGINE_PLUGINS="likeness_worker.bench.noop_engines")
    advert = _wait_advert(bus, w, lambda a: any(e["name"] == "noop" for e in a["engines"]))
    noop = {e["taskKind"]: e for e in advert["engines"] if e["name"] == "noop"}
    assert set(noop) == set(WORKER_TASK_KINDS)
    assert all(e["healthy"] and not e["default"] for e in noop.values())

    cmd = json.loads((FIXTURES / "job-command.generate_video.json").read_text())
    cmd.update(jobId=new_id(), attempt=1, createdAt=now_iso(), engines={k: "noop" for k in WORKER_TASK_KINDS})
    cmd["payload"]["pipeline"] = "sadtalker"
    bus.send(cmd)
    events = bus.wait_finished(cmd["jobId"], worker=w)
    started = {e["step"]: e["engine"] for e in events if e["type"] == "step_started"}
    assert started == {s: "noop" for s in ("image", "tts", "talking_head", "upscale", "mux", "publish")}
    (finished,) = [e for e in events if e["type"] == "job_finished"]
    assert finished["state"] == "succeeded", finished
    assert finished["result"]["videoKey"].startswith(f"jobs/{cmd['jobId']}/")
