"""One storage suite, run against the local folder driver and a real S3 endpoint (moto_server)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import free_port

from likeness_worker.config import load_settings
from likeness_worker.storage import LocalStorage, ObjectMissing, make_storage


@pytest.fixture(scope="module")
def moto_endpoint():
    exe = Path(sys.executable).parent / "moto_server"
    if not exe.exists() and shutil.which("moto_server") is None:
        pytest.skip("moto_server not installed")
    port = free_port()
    proc = subprocess.Popen([str(exe) if exe.exists() else "moto_server", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("moto_server did not start")
    yield url
    proc.terminate()
    proc.wait(10)


@pytest.fixture(params=["local", "s3"])
def storage(request, tmp_path):
    if request.param == "local":
        return LocalStorage(tmp_path / "objects")
    endpoint = request.getfixturevalue("moto_endpoint")
    bucket = f"lk-test-{os.getpid()}-{time.monotonic_ns() % 10**8}"
    env = {
        "DATABASE_URL": "postgresql://unused/x",
        "REDIS_URL": "redis://unused",
        "STORAGE_DRIVER": "s3",
        "S3_ENDPOINT": endpoint,
        "S3_BUCKET": bucket,
        "S3_ACCESS_KEY_ID": "test",
        "S3_SECRET_ACCESS_KEY": "test",
    }
    st = make_storage(load_settings(env))
    st.client.create_bucket(Bucket=bucket)
    return st


def test_bytes_round_trip(storage):
    assert not storage.exists("jobs/a/tts/speech.wav")
    n = storage.put_bytes("jobs/a/tts/speech.wav", b"RIFF....", "audio/wav")
    assert n == 8
    assert storage.exists("jobs/a/tts/speech.wav")
    assert storage.get_bytes("jobs/a/tts/speech.wav") == b"RIFF...."


def test_file_round_trip_and_overwrite(storage, tmp_path):
    src = tmp_path / "in.bin"
    src.write_bytes(os.urandom(300_000))
    assert storage.put_file("jobs/a/mux/video.mp4", src, "video/mp4") == 300_000
    out = storage.get_file("jobs/a/mux/video.mp4", tmp_path / "deep" / "out.bin")
    assert out.read_bytes() == src.read_bytes()
    storage.put_bytes("jobs/a/mux/video.mp4", b"new")
    assert storage.get_bytes("jobs/a/mux/video.mp4") == b"new"


def test_json_markers(storage):
    storage.put_json("jobs/a/tts/_done.json", {"engine": "espeak", "artifacts": []})
    assert storage.get_json("jobs/a/tts/_done.json")["engine"] == "espeak"
    assert storage.get_json_or_none("jobs/a/image/_done.json") is None


def test_missing_objects(storage, tmp_path):
    with pytest.raises(ObjectMissing):
        storage.get_bytes("jobs/none/x.bin")
    with pytest.raises(ObjectMissing):
        storage.get_file("jobs/none/x.bin", tmp_path / "x")
    storage.delete("jobs/none/x.bin")  # no error


def test_list_and_delete(storage):
    for k in ("jobs/b/prepare/a.png", "jobs/b/prepare/b.png", "jobs/b/tts/s.wav", "jobs/c/x.txt"):
        storage.put_bytes(k, b"1")
    assert list(storage.list("jobs/b/")) == ["jobs/b/prepare/a.png", "jobs/b/prepare/b.png", "jobs/b/tts/s.wav"]
    storage.delete("jobs/b/tts/s.wav")
    assert not storage.exists("jobs/b/tts/s.wav")
    assert list(storage.list("jobs/b/tts")) == []


@pytest.mark.parametrize("key", ["../etc/passwd", "/abs", "jobs/../x", "Jobs/A", ""])
def test_refuses_bad_keys(storage, key):
    with pytest.raises(ValueError):
        storage.put_bytes(key, b"x")


def test_local_readers_never_see_half_a_file(tmp_path):
    st = LocalStorage(tmp_path / "o")
    big_a, big_b = b"a" * 4_000_000, b"b" * 4_000_000
    st.put_bytes("jobs/x/f.bin", big_a)
    seen: set[bytes] = set()
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            data = st.get_bytes("jobs/x/f.bin")
            seen.add(data[:1] + data[-1:] + bytes([len(data) == 4_000_000]))

    t = threading.Thread(target=reader)
    t.start()
    for i in range(10):
        st.put_bytes("jobs/x/f.bin", big_b if i % 2 == 0 else big_a)
    stop.set()
    t.join()
    assert seen <= {b"aa\x01", b"bb\x01"}
    assert not [p for p in (tmp_path / "o" / "jobs" / "x").iterdir() if p.name.startswith(".tmp-")]
