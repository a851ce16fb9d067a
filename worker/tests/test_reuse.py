"""Edit and re-render: the step's input hash covers exactly what its engine can read, and a reused
step's objects are copied into the edit's folder (graphs/reuse.py, engines/ports.py TASK_PARAMS)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from likeness_worker.engines.base import TaskContext
from likeness_worker.engines.ports import params_view
from likeness_worker.graphs.reuse import copy_outputs, input_hash, reusable
from likeness_worker.layout import done_key
from likeness_worker.storage.local import LocalStorage

PAYLOAD = {
    "profileId": "p",
    "profile": {"portraitKey": "jobs/t/prepare/portrait.png", "voiceProfileKey": "jobs/t/train_voice/v.json"},
    "script": {"title": "T", "stage": "on a beach", "narration": "Hello."},
    "pipeline": "sadtalker",
    "width": 512,
    "height": 512,
    "fps": 25,
    "subtitles": "soft",
}
SCENE = {"scene": {"step": "image", "key": "jobs/a/image/scene.png", "ref": {"sha256": "1" * 64}, "outputs": {}}}


def h(kind: str, payload: dict = PAYLOAD, inputs: dict | None = None, engine: str = "e", version: str = "1",
      storage=None) -> str | None:
    return input_hash(kind, engine, version, payload, inputs or {}, storage)


def test_an_engine_sees_only_what_its_task_kind_declares() -> None:
    assert params_view("tts", PAYLOAD) == {"profile": PAYLOAD["profile"], "script": {"narration": "Hello."}}
    assert params_view("image", PAYLOAD) == {"profile": PAYLOAD["profile"], "script": {"stage": "on a beach"},
                                             "width": 512, "height": 512}
    assert params_view("talking_head", {**PAYLOAD, "subtitles": "burned"})["burnSubtitles"] is True
    assert params_view("publish", PAYLOAD) is PAYLOAD  # never reused: sees it all
    ctx = TaskContext(job_id="j", attempt=1, step="tts", task_kind="tts", engine="e", work_dir=Path("/tmp"),
                      storage=None, command={"kind": "generate_video", "payload": PAYLOAD})  # type: ignore[arg-type]
    with pytest.raises(KeyError):
        ctx.payload["width"]  # not declared by tts: not covered by its hash, so not readable


def test_the_hash_follows_what_the_step_reads_and_nothing_else() -> None:
    base = h("tts")
    assert base is not None and base == h("tts")
    assert h("tts", {**PAYLOAD, "width": 720, "subtitles": "none"}) == base  # tts reads neither
    assert h("tts", {**PAYLOAD, "script": {**PAYLOAD["script"], "narration": "Bye."}}) != base
    assert h("tts", {**PAYLOAD, "script": {**PAYLOAD["script"], "stage": "elsewhere"}}) == base
    assert h("tts", engine="other") != base and h("tts", version="2") != base
    # Turning soft subtitles off does not make the frames again; burning them in does.
    th = h("talking_head", inputs=SCENE)
    assert h("talking_head", {**PAYLOAD, "subtitles": "none"}, inputs=SCENE) == th
    assert h("talking_head", {**PAYLOAD, "subtitles": "burned"}, inputs=SCENE) != th
    assert h("mux", {**PAYLOAD, "subtitles": "none"}) != h("mux")
    # The inputs by content: the same bytes made again hash the same.
    other = {"scene": {**SCENE["scene"], "key": "jobs/b/image/scene.png"}}
    assert h("talking_head", inputs=other) == th
    changed = {"scene": {**SCENE["scene"], "ref": {"sha256": "2" * 64}}}
    assert h("talking_head", inputs=changed) != th
    assert h("publish") is None and h("prepare") is None


def test_an_input_without_a_recorded_hash_is_hashed_from_its_object(tmp_path) -> None:
    storage = LocalStorage(tmp_path)
    storage.put_bytes("jobs/a/image/scene.png", b"pixels")
    bare = {"scene": {"step": "image", "key": "jobs/a/image/scene.png", "ref": None, "outputs": {}}}
    storage.put_bytes("jobs/b/image/scene.png", b"pixels")
    same = {"scene": {**bare["scene"], "key": "jobs/b/image/scene.png"}}
    assert h("talking_head", inputs=bare, storage=storage) == h("talking_head", inputs=same, storage=storage)
    gone = {"scene": {**bare["scene"], "key": "jobs/c/image/scene.png"}}
    assert h("talking_head", inputs=gone, storage=storage) is None  # not reusable; the step runs


def test_a_reused_step_copies_its_objects_and_says_where_from(tmp_path) -> None:
    storage = LocalStorage(tmp_path)
    src, dst = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"
    storage.put_bytes(f"jobs/{src}/talking_head/face.mp4", b"frames", "video/mp4")
    marker = {
        "step": "talking_head", "engine": "landmarks", "attempt": 1, "inputHash": "abc",
        "artifacts": [{"key": f"jobs/{src}/talking_head/face.mp4", "kind": "video", "contentType": "video/mp4", "bytes": 6}],
        "outputs": {"videoKey": f"jobs/{src}/talking_head/face.mp4", "frames": 3},
    }
    storage.put_json(done_key(src, "talking_head"), marker)
    assert reusable(storage, src, "talking_head", "other") is None
    found = reusable(storage, src, "talking_head", "abc")
    assert found is not None
    done = copy_outputs(storage, found, src, dst)
    assert done["artifacts"][0]["key"] == f"jobs/{dst}/talking_head/face.mp4"
    assert done["outputs"] == {"videoKey": f"jobs/{dst}/talking_head/face.mp4", "frames": 3, "reusedFrom": src}
    assert storage.get_bytes(f"jobs/{dst}/talking_head/face.mp4") == b"frames"
    assert json.loads(storage.get_bytes(done_key(src, "talking_head")))["outputs"]["videoKey"].startswith(f"jobs/{src}/")
