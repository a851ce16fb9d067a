"""The comfyui image engine against a protocol-faithful fake ComfyUI (tests/fakes/comfyui.py): a
real HTTP server and WebSocket on a free port, no GPU, no weights. The engine runs through a
TaskContext on a local storage folder, as the runtime would run it (no Redis, no Postgres)."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import ASTRONAUT_FACE, REPO, Recorder, free_port
from fakes.comfyui import FakeComfyUI

from likeness_worker.engines import TaskContext, load_engines
from likeness_worker.engines.comfyui import ComfyUIImage, ComfyUIMotion
from likeness_worker.engines.comfyui.client import ComfyClient, ComfyRejected
from likeness_worker.engines.comfyui.motion import handed_on_size, ping_pong
from likeness_worker.engines.comfyui.workflow import check_against, load_workflow
from likeness_worker.errors import StepFailure
from likeness_worker.storage import LocalStorage

W, H = 512, 640
STAGE = "A portrait of lkperson in a bright studio, facing the camera"
LORA = "likeness_profile.safetensors"
WORKFLOWS = REPO / "deploy" / "comfyui" / "workflows"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in ("COMFYUI_URL", "COMFYUI_WORKFLOW", "COMFYUI_WORKFLOWS_DIR", "COMFYUI_CHECKPOINT", "COMFYUI_LORA",
                 "COMFYUI_LORAS_DIR", "COMFYUI_MOTION_WORKFLOW", "COMFYUI_MOTION_CHECKPOINT",
                 "COMFYUI_TIMEOUT_S", "COMFYUI_REQUEST_TIMEOUT_S", "LIKENESS_COMFYUI_WORKFLOWS_DIR"):
        monkeypatch.delenv(name, raising=False)
    ComfyUIImage.health.clear()
    ComfyUIMotion.health.clear()
    yield
    ComfyUIImage.health.clear()
    ComfyUIMotion.health.clear()


@pytest.fixture
def fake(tmp_path, monkeypatch):
    server = FakeComfyUI(tmp_path / "comfyui").start()
    monkeypatch.setenv("COMFYUI_URL", server.url)
    monkeypatch.setenv("COMFYUI_LORA", LORA)
    yield server
    server.stop()


def _context(tmp_path: Path, rec: Recorder, *, trigger: str | None = None, lora_key: str | None = None) -> TaskContext:
    profile = {"portraitKey": "uploads/u/p/portrait.png", "faceBox": ASTRONAUT_FACE}
    if trigger:
        profile["triggerWord"] = trigger
    if lora_key:
        profile["loraKey"] = lora_key
    command = {"kind": "generate_video",
               "payload": {"width": W, "height": H, "profile": profile, "fps": 25,
                           "script": {"title": "t", "stage": STAGE, "narration": "Hello."}}}
    return TaskContext(job_id="job", attempt=1, step="image", task_kind="image", engine="comfyui",
                       work_dir=tmp_path / "work", storage=LocalStorage(tmp_path / "objects"), command=command,
                       _progress=rec, _cancelled=rec.cancel.is_set)


def _render_fails(tmp_path: Path, rec: Recorder | None = None) -> StepFailure:
    with pytest.raises(StepFailure) as info:
        ComfyUIImage().render(_context(tmp_path, rec or Recorder()))
    return info.value


def _when(pred, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


# --- a render ----------------------------------------------------------------------------------


def test_a_render_through_comfyui_makes_the_scene_at_the_output_size(tmp_path, fake):
    rec = Recorder()
    t0 = time.monotonic()
    out = ComfyUIImage().render(_context(tmp_path, rec, trigger="lkperson"))
    assert time.monotonic() - t0 < 15

    [ref] = out.artifacts
    assert ref["kind"] == "scene" and ref["key"] == "jobs/job/image/scene.png" and ref["contentType"] == "image/png"
    png = LocalStorage(tmp_path / "objects").get_file(ref["key"], tmp_path / "scene.png")
    img = cv2.imread(str(png))
    assert img.shape == (H, W, 3)
    assert img.std() > 5  # the fake's gradient, framed: not a blank frame
    assert ref["meta"]["workflow"] == "txt2img_lora_sd15" and ref["meta"]["width"] == W

    # What ComfyUI was sent: the stage (the trigger word is in it already), the LoRA, the size.
    [body] = fake.prompts
    assert body["client_id"]
    graph = body["prompt"]
    assert graph["6"]["inputs"]["text"] == STAGE
    assert graph["10"]["inputs"]["lora_name"] == LORA
    assert graph["10"]["inputs"]["strength_model"] == 0.8
    assert graph["7"]["inputs"]["text"].startswith("blurry")
    gw, gh = graph["5"]["inputs"]["width"], graph["5"]["inputs"]["height"]
    assert gw % 8 == 0 and gh % 8 == 0 and abs(gw / gh - W / H) < 0.03 and abs(gw * gh - 512 * 512) < 20_000
    assert ref["meta"]["generatedSize"] == [gw, gh]

    # The sampler's progress came through as fractions of the step, naming the node.
    steps = [(f, m) for f, m in rec.progress if m and "KSampler" in m and "/25" in m]
    assert len(steps) == 25
    fractions = [f for f, _ in steps]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(0.95)
    every = [f for f, _ in rec.progress]
    assert every == sorted(every) and all(0.0 <= f <= 1.0 for f in every)  # never backwards
    assert any(m and "VAE Decode" in m for _, m in rec.progress)  # the nodes after the sampler are named too
    assert steps[-1][1] == "ComfyUI: KSampler 25/25"

    # The same request makes the same seed (a re-run agrees with a reused step).
    ComfyUIImage().render(_context(tmp_path, Recorder(), trigger="lkperson"))
    assert fake.prompts[1]["prompt"]["3"]["inputs"]["seed"] == graph["3"]["inputs"]["seed"]


def test_the_trigger_word_is_put_in_front_when_the_stage_lacks_it(tmp_path, fake):
    ComfyUIImage().render(_context(tmp_path, Recorder(), trigger="zkface"))
    assert fake.prompts[0]["prompt"]["6"]["inputs"]["text"] == f"zkface, {STAGE}"


def test_without_a_lora_the_loader_is_bypassed(tmp_path, fake, monkeypatch):
    monkeypatch.delenv("COMFYUI_LORA")
    out = ComfyUIImage().render(_context(tmp_path, Recorder()))
    assert out.artifacts[0]["kind"] == "scene"
    graph = fake.prompts[0]["prompt"]
    assert "10" not in graph
    assert graph["3"]["inputs"]["model"] == ["4", 0] and graph["6"]["inputs"]["clip"] == ["4", 1]


def test_the_sdxl_workflow_uses_sdxl_sizes(tmp_path, fake, monkeypatch):
    monkeypatch.setenv("COMFYUI_WORKFLOW", "txt2img_lora_sdxl")
    ComfyUIImage().render(_context(tmp_path, Recorder()))
    graph = fake.prompts[0]["prompt"]
    assert graph["4"]["inputs"]["ckpt_name"] == "sd_xl_base_1.0.safetensors"
    gw, gh = graph["5"]["inputs"]["width"], graph["5"]["inputs"]["height"]
    assert gw % 64 == 0 and gh % 64 == 0 and 900_000 < gw * gh < 1_200_000


# --- validation before queueing ----------------------------------------------------------------


def test_a_missing_checkpoint_is_refused_before_queueing(tmp_path, fake, monkeypatch):
    monkeypatch.setenv("COMFYUI_CHECKPOINT", "dreamshaper_8.safetensors")
    err = _render_fails(tmp_path)
    assert err.code == "bad_input" and err.retryable is False
    assert "ckpt_name 'dreamshaper_8.safetensors' is not on the server" in err.message
    assert "v1-5-pruned-emaonly.safetensors" in err.message  # what it has
    assert fake.prompts == []  # nothing was queued
    assert ("GET", "/object_info/CheckpointLoaderSimple") in fake.requests


def test_a_missing_lora_is_refused_before_queueing(tmp_path, fake, monkeypatch):
    monkeypatch.setenv("COMFYUI_LORA", "someone_else.safetensors")
    err = _render_fails(tmp_path)
    assert err.code == "bad_input" and err.retryable is False
    assert "node 10 (LoraLoader): lora_name 'someone_else.safetensors' is not on the server" in err.message
    assert fake.prompts == []


def _user_workflow(tmp_path: Path, monkeypatch, edit) -> None:
    folder = tmp_path / "my-workflows"
    folder.mkdir(exist_ok=True)
    graph = json.loads((WORKFLOWS / "txt2img_lora_sd15.json").read_text())
    edit(graph)
    (folder / "mine.json").write_text(json.dumps(graph))
    shutil.copy(WORKFLOWS / "txt2img_lora_sd15.likeness.json", folder / "mine.likeness.json")
    monkeypatch.setenv("COMFYUI_WORKFLOWS_DIR", str(folder))
    monkeypatch.setenv("COMFYUI_WORKFLOW", "mine")


def test_a_user_workflow_with_a_node_class_the_server_lacks_is_refused(tmp_path, fake, monkeypatch):
    def add_upscaler(graph):
        graph["11"] = {"class_type": "UltimateSDUpscale", "inputs": {"image": ["8", 0]}}

    _user_workflow(tmp_path, monkeypatch, add_upscaler)
    err = _render_fails(tmp_path)
    assert err.code == "bad_input" and err.retryable is False
    assert "ComfyUI has no node class UltimateSDUpscale" in err.message and "workflow mine" in err.message
    assert fake.prompts == []
    assert "UltimateSDUpscale" in (ComfyUIImage.problem() or "")


def test_a_graph_comfyui_refuses_is_bad_input_with_its_node_errors(tmp_path, fake, monkeypatch):
    # Passes our checks (classes, lists) but not ComfyUI's own min/max (execution.py validate_inputs).
    _user_workflow(tmp_path, monkeypatch, lambda g: g["3"]["inputs"].update(steps=0))
    err = _render_fails(tmp_path)
    assert err.code == "bad_input" and err.retryable is False
    assert "Prompt outputs failed validation" in err.message
    assert "node 3 (KSampler): Value 0 smaller than min of 1" in err.message
    assert len(fake.prompts) == 1 and fake.history == {}


def test_the_client_reads_comfyuis_400_answer(fake):
    with ComfyClient(fake.url) as client, pytest.raises(ComfyRejected) as info:
        client.queue_prompt({"1": {"class_type": "NoSuchNode", "inputs": {}}}, "c1")
    assert info.value.error["type"] == "invalid_prompt"
    assert "Cannot execute because node NoSuchNode does not exist." in str(info.value)


def test_the_builtin_workflows_load_and_match_the_core_nodes(fake):
    for name in ("txt2img_lora_sd15", "txt2img_lora_sdxl"):
        wf = load_workflow(name)
        assert wf.class_types() == {"CheckpointLoaderSimple", "LoraLoader", "CLIPTextEncode", "EmptyLatentImage",
                                    "KSampler", "VAEDecode", "SaveImage"}
        with ComfyClient(fake.url) as client:
            assert check_against(wf.graph, client.object_info()) == [], name
        assert {"prompt", "negative", "seed", "width", "height", "checkpoint", "lora_name", "lora_strength"} <= set(wf.bindings)


# --- failures while it runs --------------------------------------------------------------------


def test_an_execution_error_is_engine_failed(tmp_path, fake):
    fake.error_message = "mat1 and mat2 shapes cannot be multiplied (154x2048 and 768x320)"
    err = _render_fails(tmp_path)
    assert err.code == "engine_failed" and err.retryable is True
    assert "node 3 (KSampler)" in err.message and "mat1 and mat2" in err.message


def test_out_of_memory_is_out_of_memory(tmp_path, fake):
    fake.error_message = "Allocation on device 0 would exceed allowed memory. (out of memory)"
    fake.error_type = "torch.OutOfMemoryError"
    err = _render_fails(tmp_path)
    assert err.code == "out_of_memory" and err.retryable is True
    assert "ran out of GPU memory at node 3 (KSampler)" in err.message


def test_an_interrupt_from_elsewhere_fails_the_step(tmp_path, fake):
    fake.hang = True

    def press_cancel_in_comfyui():
        _when(lambda: fake.running_ids())
        with ComfyClient(fake.url) as client:
            client.interrupt()  # global, as ComfyUI's own cancel button

    threading.Thread(target=press_cancel_in_comfyui, daemon=True).start()
    err = _render_fails(tmp_path)
    assert err.code == "engine_failed" and "interrupted" in err.message and "not by Likeness" in err.message


def test_a_hung_prompt_times_out_and_is_interrupted(tmp_path, fake, monkeypatch):
    monkeypatch.setenv("COMFYUI_TIMEOUT_S", "1")
    fake.hang = True
    t0 = time.monotonic()
    err = _render_fails(tmp_path)
    assert 1.0 <= time.monotonic() - t0 < 8
    assert err.code == "timeout" and err.retryable is True and "COMFYUI_TIMEOUT_S" in err.message
    [prompt_id] = fake.history
    assert fake.interrupts == [{"prompt_id": prompt_id}]
    assert fake.history[prompt_id]["status"]["status_str"] == "error"


def test_cancel_interrupts_the_running_prompt(tmp_path, fake):
    fake.hang = True
    rec = Recorder()
    threading.Thread(target=lambda: (_when(lambda: any("KSampler" in (m or "") for _, m in rec.progress)),
                                     rec.cancel.set()), daemon=True).start()
    err = _render_fails(tmp_path, rec)
    assert err.code == "cancelled"
    [prompt_id] = fake.history
    assert fake.interrupts == [{"prompt_id": prompt_id}] and fake.deleted == [prompt_id]
    messages = [m[0] for m in fake.history[prompt_id]["status"]["messages"]]
    assert messages[-1] == "execution_interrupted"


def test_cancel_deletes_a_prompt_still_waiting_in_the_queue(tmp_path, fake):
    fake.hang = True
    with ComfyClient(fake.url) as other:
        busy = other.queue_prompt(load_workflow("txt2img_lora_sd15").graph, "someone-else")["prompt_id"]
    _when(lambda: fake.running_ids() == [busy])
    rec = Recorder()
    threading.Thread(target=lambda: (_when(lambda: len(fake.pending_ids()) == 1), rec.cancel.set()),
                     daemon=True).start()
    err = _render_fails(tmp_path, rec)
    assert err.code == "cancelled"
    ours = fake.prompts[1]
    assert ours["client_id"] != "someone-else"
    assert len(fake.deleted) == 1 and fake.pending_ids() == [] and fake.running_ids() == [busy]
    assert fake.deleted[0] not in fake.history  # it never ran


def test_an_unreachable_server_is_engine_unavailable(tmp_path, monkeypatch):
    monkeypatch.setenv("COMFYUI_URL", f"http://127.0.0.1:{free_port()}")
    err = _render_fails(tmp_path)
    assert err.code == "engine_unavailable" and err.retryable is True


# --- health and registration -------------------------------------------------------------------


def test_problem_says_why_it_cannot_run(tmp_path, monkeypatch):
    assert ComfyUIImage.problem() == "COMFYUI_URL is not set"
    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("COMFYUI_URL", url)
    ComfyUIImage.health.clear()
    assert ComfyUIImage.problem() == f"ComfyUI at {url} is unreachable"
    monkeypatch.setenv("COMFYUI_URL", "comfyui:8188")
    assert "COMFYUI_URL: " in (ComfyUIImage.problem() or "")

    server = FakeComfyUI(tmp_path / "c", checkpoints=["other.safetensors"]).start()
    try:
        monkeypatch.setenv("COMFYUI_URL", server.url)
        problem = ComfyUIImage.problem() or ""
        assert "v1-5-pruned-emaonly.safetensors" in problem and "not on the server" in problem
        server.checkpoints.append("v1-5-pruned-emaonly.safetensors")
        assert ComfyUIImage.problem() == problem  # kept for PROBLEM_TTL_S: the heartbeat does not hammer it
        ComfyUIImage.health.clear()
        assert ComfyUIImage.problem() is None
        monkeypatch.setenv("COMFYUI_WORKFLOW", "no_such_workflow")
        assert "no ComfyUI workflow 'no_such_workflow'" in (ComfyUIImage.problem() or "")
    finally:
        server.stop()


def test_it_is_registered_selectable_not_default():
    registry = load_engines()
    assert registry.resolve("image")[0] == "portrait"
    name, cls = registry.resolve("image", {"image": "comfyui"})
    assert name == "comfyui" and cls is ComfyUIImage and cls.device == "gpu"
    assert "GPL-3.0" in cls.licence
    entry = next(e for e in registry.entries(("image",)) if e[1] == "comfyui")
    assert entry[3] is False


def test_upload_image_for_later_workflows(tmp_path, fake):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    cv2.imwrite(str(a), np.full((8, 8, 3), 255, np.uint8))
    cv2.imwrite(str(b), np.zeros((8, 8, 3), np.uint8))
    with ComfyClient(fake.url) as client:
        assert client.upload_image(a, name="still.png") == {"name": "still.png", "subfolder": "", "type": "input"}
        assert client.upload_image(b, name="still.png", overwrite=False)["name"] == "still (1).png"
        assert client.upload_image(b, name="still.png", subfolder="likeness")["subfolder"] == "likeness"
        client.free()
    assert (fake.input_dir / "still (1).png").read_bytes() == b.read_bytes()
    assert fake.frees == [{"unload_models": True, "free_memory": True}]


def test_the_advert_lists_it_unhealthy_with_the_reason_then_healthy(tmp_path, monkeypatch):
    from likeness_worker.advertise import Advertiser
    from likeness_worker.contracts import RedisKeys

    adv = Advertiser(None, RedisKeys("lk"), "w1", load_engines(), ("cpu", "gpu0"), heartbeat_s=2.0)  # type: ignore[arg-type]

    def entry():
        return next(e for e in adv.advert()["engines"] if e["taskKind"] == "image" and e["name"] == "comfyui")

    assert entry() == {"taskKind": "image", "name": "comfyui", "device": "gpu", "licence": ComfyUIImage.licence,
                       "nonCommercial": False, "healthy": False, "default": False,
                       "problem": "COMFYUI_URL is not set"}
    server = FakeComfyUI(tmp_path / "c").start()
    try:
        monkeypatch.setenv("COMFYUI_URL", server.url)
        assert entry()["healthy"] is True and "problem" not in entry()
    finally:
        server.stop()


# --- the profile's LoRA -------------------------------------------------------------------------


def test_the_profiles_trained_lora_is_copied_where_comfyui_reads_loras_and_used(tmp_path, fake, monkeypatch):
    storage = LocalStorage(tmp_path / "objects")
    lora = tmp_path / "trained.safetensors"
    lora.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      " + bytes(range(64)))
    storage.put_file("jobs/train/train_lora/lkperson.safetensors", lora, "application/octet-stream")
    monkeypatch.setenv("COMFYUI_LORAS_DIR", str(fake.loras_dir))
    out = ComfyUIImage().render(_context(tmp_path, Recorder(), trigger="lkperson",
                                         lora_key="jobs/train/train_lora/lkperson.safetensors"))
    [placed] = list(fake.loras_dir.rglob("*.safetensors"))
    assert placed.read_bytes() == lora.read_bytes() and placed.parent.name == "likeness"
    name = f"likeness/{placed.name}"
    assert fake.prompts[0]["prompt"]["10"]["inputs"]["lora_name"] == name  # not COMFYUI_LORA
    assert out.outputs["lora"] == "the profile's" and out.artifacts[0]["meta"]["lora"] == name
    assert [p.name for p in fake.loras_dir.rglob("*")] == ["likeness", placed.name]  # no temp file left
    # A second render finds it there (named by its content): not copied again.
    mtime = placed.stat().st_mtime_ns
    ComfyUIImage().render(_context(tmp_path, Recorder(), lora_key="jobs/train/train_lora/lkperson.safetensors"))
    assert placed.stat().st_mtime_ns == mtime

    # A LoRA trained on SDXL cannot load in the SD 1.5 workflow: the operator must switch workflows.
    ctx = _context(tmp_path, Recorder(), lora_key="jobs/train/train_lora/lkperson.safetensors")
    ctx.command["payload"]["profile"]["loraBaseModel"] = "sdxl"
    with pytest.raises(StepFailure) as info:
        ComfyUIImage().render(ctx)
    assert info.value.code == "engine_unavailable" and "trained on sdxl" in info.value.message
    assert "txt2img_lora_sd15 is sd15" in info.value.message and len(fake.prompts) == 2
    monkeypatch.setenv("COMFYUI_WORKFLOW", "txt2img_lora_sdxl")
    ComfyUIImage().render(ctx)
    assert fake.prompts[-1]["prompt"]["10"]["inputs"]["lora_name"] == name
    monkeypatch.delenv("COMFYUI_WORKFLOW")

    monkeypatch.delenv("COMFYUI_LORAS_DIR")
    with pytest.raises(StepFailure) as info:
        ComfyUIImage().render(_context(tmp_path, Recorder(), lora_key="jobs/train/train_lora/lkperson.safetensors"))
    assert info.value.code == "engine_unavailable" and "COMFYUI_LORAS_DIR" in info.value.message
    assert info.value.retryable is False


# --- motion (Stable Video Diffusion) ------------------------------------------------------------


def _motion_context(tmp_path: Path, rec: Recorder, duration: float = 2.0) -> TaskContext:
    storage = LocalStorage(tmp_path / "objects")
    scene = tmp_path / "scene.png"
    yy, xx = np.mgrid[0:H, 0:W]
    img = np.dstack([(xx * 255 // W), (yy * 255 // H), np.full_like(xx, 90)]).astype(np.uint8)
    cv2.circle(img, (W // 2, H // 3), 60, (30, 40, 200), -1)
    cv2.imwrite(str(scene), img)
    storage.put_file("jobs/job/image/scene.png", scene, "image/png")
    ctx = _context(tmp_path, rec)
    ctx.task_kind, ctx.step, ctx.engine = "motion", "motion", "comfyui"
    ctx.command["payload"]["burnSubtitles"] = False
    ctx.inputs = {
        "scene": {"step": "image", "key": "jobs/job/image/scene.png", "ref": None, "outputs": {"faceBox": None}},
        "speech": {"step": "tts", "key": "jobs/job/tts/speech.wav", "ref": None, "outputs": {"durationSec": duration}},
    }
    return ctx


def test_svd_motion_loops_the_clip_to_the_speech_and_hands_it_on_losslessly(tmp_path, fake):
    from likeness_worker.media.video import probe

    rec = Recorder()
    out = ComfyUIMotion().animate(_motion_context(tmp_path, rec, duration=2.0))
    [ref] = out.artifacts
    assert ref["kind"] == "video_raw" and out.outputs["videoKey"] == ref["key"] == "jobs/job/motion/motion.mkv"
    assert out.outputs["frames"] == 50 and out.outputs["clipFrames"] == 25 and out.outputs["loop"] == "ping-pong"
    assert out.outputs["encode"].startswith("lossless") and out.outputs["subtitlesBurned"] is False
    video = LocalStorage(tmp_path / "objects").get_file(ref["key"], tmp_path / "motion.mkv")
    info = probe(video)
    assert (info["width"], info["height"]) == (W, H) and abs(info["duration_sec"] - 2.0) < 0.1

    # ComfyUI freed the image model first, got the scene by upload, and ran SVD on it.
    assert fake.frees == [{"unload_models": True, "free_memory": True}]
    assert fake.requests.index(("POST", "/free")) < fake.requests.index(("POST", "/prompt"))
    [body] = fake.prompts
    graph = body["prompt"]
    uploaded = graph["2"]["inputs"]["image"]
    assert (fake.input_dir / uploaded).is_file() and uploaded.startswith("likeness_")
    cond = graph["3"]["inputs"]
    assert (cond["video_frames"], cond["fps"], cond["motion_bucket_id"]) == (25, 6, 40)
    assert cond["width"] % 64 == 0 and cond["height"] % 64 == 0 and abs(cond["width"] / cond["height"] - W / H) < 0.1
    assert graph["1"]["inputs"]["ckpt_name"] == "svd_xt.safetensors"
    assert any("KSampler" in (m or "") for _, m in rec.progress)
    fractions = [f for f, _ in rec.progress]
    assert fractions == sorted(fractions)

    # The frames move: the clip is not a still.
    cap = cv2.VideoCapture(str(video))
    frames = []
    ok, frame = cap.read()
    while ok:
        frames.append(frame.astype(np.float32))
        ok, frame = cap.read()
    cap.release()
    assert len(frames) == 50 and np.abs(frames[12] - frames[0]).mean() > 0.5


def test_the_motion_engine_is_healthy_before_any_scene_was_uploaded(fake):
    assert ComfyUIMotion.problem() is None
    fake.checkpoints.remove("svd_xt.safetensors")
    ComfyUIMotion.health.clear()
    assert "svd_xt.safetensors" in (ComfyUIMotion.problem() or "")


def test_the_motion_workflow_must_be_an_img2vid_one(tmp_path, fake, monkeypatch):
    monkeypatch.setenv("COMFYUI_MOTION_WORKFLOW", "txt2img_lora_sd15")
    with pytest.raises(StepFailure) as info:
        ComfyUIMotion().animate(_motion_context(tmp_path, Recorder()))
    assert info.value.code == "bad_input" and "img2vid" in info.value.message
    assert fake.prompts == []


def test_a_missing_svd_checkpoint_is_refused_before_queueing(tmp_path, fake, monkeypatch):
    monkeypatch.setenv("COMFYUI_MOTION_CHECKPOINT", "svd_image_decoder.safetensors")
    with pytest.raises(StepFailure) as info:
        ComfyUIMotion().animate(_motion_context(tmp_path, Recorder()))
    assert info.value.code == "bad_input" and "svd_image_decoder.safetensors" in info.value.message
    assert fake.prompts == []
    assert "svd_image_decoder.safetensors" in (ComfyUIMotion.problem() or "")


def test_an_output_larger_than_the_clip_is_left_to_the_upscale_step(tmp_path, fake):
    ctx = _motion_context(tmp_path, Recorder(), duration=0.4)
    ctx.command["payload"].update(width=1080, height=1920)
    out = ComfyUIMotion().animate(ctx)
    w, h = out.outputs["width"], out.outputs["height"]
    assert (w, h) == handed_on_size(1080, 1920, 576 * 1024) and w < 1080 and abs(w / h - 1080 / 1920) < 0.01
    assert w * h <= 576 * 1024 and "upscale step brings it to 1080x1920" in out.outputs["note"]


def test_ping_pong_plays_the_clip_forward_then_back_at_its_own_speed():
    plan = ping_pong(4, clip_fps=6, n_out=25, fps=25)
    positions = [a + t for a, _, t in plan]
    assert positions[0] == 0 and max(positions) == pytest.approx(3, abs=0.25)
    top = positions.index(max(positions))
    assert positions[:top + 1] == sorted(positions[:top + 1])  # forward…
    assert positions[top:top + 5] == sorted(positions[top:top + 5], reverse=True)  # …then back
    assert all(b == min(a + 1, 3) for a, b, _ in plan)
    assert ping_pong(1, 6, 3, 25) == [(0, 0, 0.0)] * 3


def test_settings_that_change_the_output_change_the_reuse_key(monkeypatch):
    first = ComfyUIImage.settings_key()
    monkeypatch.setenv("COMFYUI_CHECKPOINT", "dreamshaper_8.safetensors")
    assert ComfyUIImage.settings_key() != first
    monkeypatch.delenv("COMFYUI_CHECKPOINT")
    assert ComfyUIImage.settings_key() == first
    monkeypatch.setenv("COMFYUI_WORKFLOW", "txt2img_lora_sdxl")
    assert ComfyUIImage.settings_key() != first
    motion = ComfyUIMotion.settings_key()
    monkeypatch.setenv("COMFYUI_MOTION_CHECKPOINT", "svd.safetensors")
    assert ComfyUIMotion.settings_key() != motion
