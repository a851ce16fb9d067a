"""The realesrgan upscale engine against protocol-faithful fakes of Real-ESRGAN (tests/fakes/realesrgan):
the checkout's inference_realesrgan_video.py (python mode) and the realesrgan-ncnn-vulkan binary
(ncnn mode), which upscale for real (OpenCV lanczos) without a GPU or weights. The engine runs
through a TaskContext on a local storage folder, as the runtime would run it."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import Recorder
from fakes.realesrgan import install_checkout, install_ncnn

from likeness_worker.engines import TaskContext
from likeness_worker.engines.base import UpscaleEngine
from likeness_worker.engines.gpu.realesrgan import RealESRGANUpscale, plan_for
from likeness_worker.errors import StepFailure
from likeness_worker.media.video import probe
from likeness_worker.storage import LocalStorage

SRC_W, SRC_H, FRAMES = 64, 48, 12
W, H = 160, 120
KEY = "jobs/job/lipsync/lipsync.mp4"

pytestmark = pytest.mark.usefixtures("tools")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in ("REALESRGAN_MODE", "REALESRGAN_DIR", "REALESRGAN_PYTHON", "REALESRGAN_BIN", "REALESRGAN_MODEL",
                 "REALESRGAN_TILE", "REALESRGAN_TIMEOUT_S", "FAKE_REALESRGAN_FAIL", "FAKE_REALESRGAN_NCNN_FAIL",
                 "CUDA_VISIBLE_DEVICES"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, Path]:
    """A 64x48 clip of 20 frames at 25 fps: as lipsync hands it on (MP4, H.264) and as motion
    does (lossless RGB H.264 in Matroska, no frame count in its header)."""
    d = tmp_path_factory.mktemp("src")
    made = {}
    for name, codec in (("mp4", ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "10"]),
                        ("mkv", ["-c:v", "libx264rgb", "-qp", "0"])):
        out = d / f"clip.{name}"
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                        f"testsrc2=size={SRC_W}x{SRC_H}:rate=25", "-frames:v", str(FRAMES), *codec, str(out)],
                       check=True)
        made[name] = out
    return made


@pytest.fixture
def python_tool(tmp_path, monkeypatch) -> Path:
    checkout = install_checkout(tmp_path / "Real-ESRGAN")
    monkeypatch.setenv("REALESRGAN_DIR", str(checkout))
    monkeypatch.setenv("REALESRGAN_PYTHON", sys.executable)
    return checkout


@pytest.fixture
def ncnn_tool(tmp_path, monkeypatch) -> Path:
    binary = install_ncnn(tmp_path / "realesrgan-ncnn-vulkan")
    monkeypatch.setenv("REALESRGAN_MODE", "ncnn")
    monkeypatch.setenv("REALESRGAN_BIN", str(binary))
    return binary


@pytest.fixture(params=["python", "ncnn"])
def mode(request) -> str:
    request.getfixturevalue(f"{request.param}_tool")
    return request.param


def _fail_var(mode: str) -> str:
    return "FAKE_REALESRGAN_FAIL" if mode == "python" else "FAKE_REALESRGAN_NCNN_FAIL"


def _context(tmp_path: Path, src: Path, rec: Recorder | None = None, *, size=(W, H),
             made: dict | None = None) -> TaskContext:
    storage = LocalStorage(tmp_path / "objects")
    storage.put_file(KEY, src, "video/mp4")
    outputs = {"videoKey": KEY, "width": SRC_W, "height": SRC_H, "frames": FRAMES, "encode": "final H.264",
               "subtitlesBurned": True} if made is None else made
    rec = rec or Recorder()
    return TaskContext(job_id="job", attempt=1, step="upscale", task_kind="upscale", engine="realesrgan",
                       work_dir=tmp_path / "work", storage=storage,
                       command={"kind": "generate_video", "payload": {"width": size[0], "height": size[1]}},
                       inputs={"video": {"step": "lipsync", "key": KEY, "ref": None, "outputs": outputs}},
                       _progress=rec, _cancelled=rec.cancel.is_set)


def _fails(ctx: TaskContext) -> StepFailure:
    with pytest.raises(StepFailure) as info:
        RealESRGANUpscale().upscale(ctx)
    return info.value


def _tool_processes(tmp_path: Path) -> list[str]:
    """Command lines of the processes still running from this test's folders (the fake, its ffmpeg)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(tmp_path) in cmdline:
            found.append(cmdline)
    return found


def _gone(tmp_path: Path, timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while _tool_processes(tmp_path):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _middle_frame(video: Path, width: int, height: int) -> np.ndarray:
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(video), "-vf", f"select=eq(n\\,{FRAMES // 2})",
                          "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "bgr24", "-"],
                         capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(height, width, 3)


# --- an upscale ---------------------------------------------------------------------------------


# The container matters to the script only (it wants an MP4 with nb_frames): motion's MKV too.
@pytest.mark.parametrize(("mode", "source"), [("python", "mp4"), ("python", "mkv"), ("ncnn", "mp4")])
def test_an_upscale_makes_the_exact_size_and_keeps_every_frame(tmp_path, sources, mode, source, request):
    request.getfixturevalue(f"{mode}_tool")
    rec = Recorder()
    out = RealESRGANUpscale().upscale(_context(tmp_path, sources[source], rec))

    [ref] = out.artifacts
    assert ref["kind"] == "video_upscaled" and out.outputs["videoKey"] == ref["key"]
    video = LocalStorage(tmp_path / "objects").get_file(ref["key"], tmp_path / "result" / ref["key"].rsplit("/", 1)[1])
    info = probe(video, count_frames=True)
    assert (info["width"], info["height"]) == (W, H)
    assert info["nb_frames"] == FRAMES and info["fps"] == pytest.approx(25.0)
    assert not info["has_audio"]
    # Real frames, scaled: the middle one looks like the source's, made larger.
    expected = cv2.resize(_middle_frame(sources["mp4"], SRC_W, SRC_H), (W, H), interpolation=cv2.INTER_LANCZOS4)
    got = _middle_frame(video, W, H)
    assert np.abs(got.astype(int) - expected.astype(int)).mean() < 20 and got.std() > 20

    o = out.outputs
    assert o["skipped"] is False and (o["width"], o["height"], o["frames"]) == (W, H, FRAMES)
    assert o["encode"] != "final H.264"  # mux encodes the final stream once
    assert o["subtitlesBurned"] is True  # as the step before said: burned into the frames
    if mode == "python":
        # x4 network, outscale 2.5: the script writes 160x120 itself, no lanczos after it.
        assert o["model"] == "RealESRGAN_x4plus" and o["scale"] == 4 and o["outscale"] == pytest.approx(2.5078, abs=1e-3)
        assert "lanczos" not in o["reason"] and ref["contentType"] == "video/mp4"
        assert "Real-ESRGAN's own H.264" in o["encode"]
    else:
        # realesrgan-x4plus has x4 only: 256x192, then lanczos to 160x120 (and it says so).
        assert o["model"] == "realesrgan-x4plus" and o["scale"] == 4
        assert "64x48 to 256x192, then ffmpeg lanczos to 160x120" in o["reason"]
        assert ref["contentType"] == "video/x-matroska" and "lossless" in o["encode"]
    assert ref["meta"]["model"] == o["model"] and ref["meta"]["frames"] == FRAMES

    # Progress: from the tool's own lines, per frame, never backwards, ending at the end.
    fractions = [f for f, _ in rec.progress]
    assert fractions == sorted(fractions) and all(0.0 <= f <= 1.0 for f in fractions)
    per_frame = [m for _, m in rec.progress if m and m.startswith("Real-ESRGAN: frame ")]
    assert f"Real-ESRGAN: frame {FRAMES}/{FRAMES}" in per_frame and len(set(per_frame)) >= FRAMES // 2
    assert not (tmp_path / "work" / "realesrgan" / "frames").exists()  # the frame folders are cleaned up


def test_ncnn_takes_the_smallest_scale_that_reaches_the_target(tmp_path, sources, ncnn_tool, monkeypatch):
    monkeypatch.setenv("REALESRGAN_MODEL", "realesr-animevideov3")
    out = RealESRGANUpscale().upscale(_context(tmp_path, sources["mp4"]))
    assert out.outputs["model"] == "realesr-animevideov3" and out.outputs["scale"] == 3  # 2.5 needed: x3
    assert "64x48 to 192x144, then ffmpeg lanczos to 160x120" in out.outputs["reason"]
    info = probe(LocalStorage(tmp_path / "objects").get_file(out.artifacts[0]["key"], tmp_path / "r.mkv"),
                 count_frames=True)
    assert (info["width"], info["height"], info["nb_frames"]) == (W, H, FRAMES)


def test_a_target_of_another_shape_is_covered_and_cropped(tmp_path, sources, python_tool):
    out = RealESRGANUpscale().upscale(_context(tmp_path, sources["mp4"], size=(128, 128)))
    assert "then ffmpeg lanczos to 128x128 (cover, centre crop)" in out.outputs["reason"]
    info = probe(LocalStorage(tmp_path / "objects").get_file(out.artifacts[0]["key"], tmp_path / "r.mkv"),
                 count_frames=True)
    assert (info["width"], info["height"], info["nb_frames"]) == (128, 128, FRAMES)


def test_frames_that_already_cover_the_target_are_only_scaled_down(tmp_path, sources, python_tool):
    out = RealESRGANUpscale().upscale(_context(tmp_path, sources["mp4"], size=(48, 36)))
    assert out.outputs["model"] is None and out.outputs["reason"].startswith("Real-ESRGAN not run")
    assert not (tmp_path / "work" / "realesrgan" / "results").exists()
    info = probe(LocalStorage(tmp_path / "objects").get_file(out.artifacts[0]["key"], tmp_path / "r.mkv"),
                 count_frames=True)
    assert (info["width"], info["height"], info["nb_frames"]) == (48, 36, FRAMES)


def test_skipped_when_the_frames_already_have_the_output_size(tmp_path, sources):
    # Not even configured: nothing runs.
    ctx = _context(tmp_path, sources["mp4"], size=(SRC_W, SRC_H))
    out = RealESRGANUpscale().upscale(ctx)
    assert out.artifacts == []
    assert out.outputs == {"videoKey": KEY, "skipped": True, "reason": f"skipped: the frames are already {SRC_W}x{SRC_H}"}
    assert not (tmp_path / "work" / "realesrgan").exists()
    # The step before did not say the size: the video is looked at.
    ctx = _context(tmp_path, sources["mkv"], size=(SRC_W, SRC_H), made={"videoKey": KEY})
    assert RealESRGANUpscale().upscale(ctx).outputs["skipped"] is True


# --- cancel and time limit -----------------------------------------------------------------------


def test_cancel_stops_the_tool(tmp_path, sources, mode, monkeypatch):
    monkeypatch.setenv(_fail_var(mode), "hang")
    rec = Recorder()
    running: list[str] = []

    def cancel_once_it_runs():
        deadline = time.monotonic() + 20
        while not any(m and m.startswith("Real-ESRGAN: loading") for _, m in rec.progress):
            if time.monotonic() > deadline:
                return
            time.sleep(0.02)
        time.sleep(0.5)  # in the middle of its frames
        running.extend(_tool_processes(tmp_path))
        rec.cancel.set()

    threading.Thread(target=cancel_once_it_runs, daemon=True).start()
    t0 = time.monotonic()
    err = _fails(_context(tmp_path, sources["mp4"], rec))
    assert err.code == "cancelled" and err.retryable is True and time.monotonic() - t0 < 15
    assert "realesrgan: cancelled" in err.message
    tool = "inference_realesrgan_video.py" if mode == "python" else "realesrgan-ncnn-vulkan -i"
    assert any(tool in cmd for cmd in running)  # it was running when the cancel came
    assert _gone(tmp_path), _tool_processes(tmp_path)


def test_the_time_limit_stops_the_tool(tmp_path, sources, mode, monkeypatch):
    monkeypatch.setenv(_fail_var(mode), "hang")
    monkeypatch.setenv("REALESRGAN_TIMEOUT_S", "2")
    t0 = time.monotonic()
    err = _fails(_context(tmp_path, sources["mp4"]))
    assert 2.0 <= time.monotonic() - t0 < 10
    assert err.code == "timeout" and err.retryable is True
    assert "REALESRGAN_TIMEOUT_S (2 s)" in err.message
    assert _gone(tmp_path), _tool_processes(tmp_path)


# --- each failure the tools report ---------------------------------------------------------------


def test_python_out_of_memory_caught_per_frame_is_out_of_memory(tmp_path, sources, python_tool, monkeypatch):
    # The script catches it, prints it with its --tile hint, skips the frame and exits 0.
    monkeypatch.setenv("FAKE_REALESRGAN_FAIL", "oom")
    err = _fails(_context(tmp_path, sources["mp4"]))
    assert err.code == "out_of_memory" and err.retryable is True
    assert f"ran out of GPU memory on {FRAMES} of {FRAMES} frames" in err.message
    assert "CUDA out of memory. Tried to allocate" in err.message and "set REALESRGAN_TILE" in err.message
    # With tiles it fits: REALESRGAN_TILE reaches the script's -t.
    monkeypatch.setenv("REALESRGAN_TILE", "400")
    assert RealESRGANUpscale().upscale(_context(tmp_path, sources["mp4"])).outputs["frames"] == FRAMES


def test_ncnn_out_of_memory_is_out_of_memory_though_it_exits_0(tmp_path, sources, ncnn_tool, monkeypatch):
    monkeypatch.setenv("FAKE_REALESRGAN_NCNN_FAIL", "oom")
    err = _fails(_context(tmp_path, sources["mp4"]))
    assert err.code == "out_of_memory" and err.retryable is True
    assert "vkAllocateMemory failed" in err.message and "REALESRGAN_TILE" in err.message


def test_weights_the_script_cannot_download_are_weights_missing(tmp_path, sources, python_tool, monkeypatch):
    monkeypatch.setenv("FAKE_REALESRGAN_FAIL", "weights")  # as if the file vanished after the check
    err = _fails(_context(tmp_path, sources["mp4"]))
    assert err.code == "engine_unavailable" and err.retryable is False
    path = python_tool / "weights" / "RealESRGAN_x4plus.pth"
    assert f"weights missing: {path}" in err.message
    assert "v0.1.0/RealESRGAN_x4plus.pth" in err.message


def test_missing_weights_are_said_before_anything_runs(tmp_path, sources, mode):
    if mode == "python":
        missing = tmp_path / "Real-ESRGAN" / "weights" / "RealESRGAN_x4plus.pth"
    else:
        missing = tmp_path / "realesrgan-ncnn-vulkan" / "models" / "realesrgan-x4plus.bin"
    missing.unlink()
    assert RealESRGANUpscale.problem() == _problem_text(mode, missing)
    err = _fails(_context(tmp_path, sources["mp4"]))
    assert err.code == "engine_unavailable" and err.retryable is False and str(missing) in err.message
    assert not (tmp_path / "work" / "realesrgan").exists()


def _problem_text(mode: str, missing: Path) -> str:
    if mode == "python":
        return (f"weights missing: {missing} (download https://github.com/xinntao/Real-ESRGAN/releases/download/"
                f"v0.1.0/RealESRGAN_x4plus.pth into {missing.parent})")
    return f"weights missing: {missing} (the models/ folder of the realesrgan-ncnn-vulkan release, beside the binary)"


def test_ncnn_model_files_it_cannot_open_are_weights_missing(tmp_path, sources, ncnn_tool, monkeypatch):
    monkeypatch.setenv("FAKE_REALESRGAN_NCNN_FAIL", "weights")  # its fopen lines, then a segfault
    err = _fails(_context(tmp_path, sources["mp4"]))
    assert err.code == "engine_unavailable" and err.retryable is False
    assert f"weights missing: {ncnn_tool.parent / 'models' / 'realesrgan-x4plus.param'}" in err.message


def test_a_crash_is_engine_failed_and_retryable(tmp_path, sources, mode, monkeypatch):
    monkeypatch.setenv(_fail_var(mode), "crash")
    err = _fails(_context(tmp_path, sources["mp4"]))
    assert err.code == "engine_failed" and err.retryable is True
    if mode == "python":
        assert "realesrgan crashed (exit 1): RuntimeError: Error(s) in loading state_dict for RRDBNet" in err.message
    else:
        assert "lost the GPU (vkQueueSubmit failed -4)" in err.message


def test_no_gpu_is_engine_unavailable(tmp_path, sources, mode, monkeypatch):
    if mode == "python":
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # torch.cuda.device_count() == 0
    else:
        monkeypatch.setenv("FAKE_REALESRGAN_NCNN_FAIL", "nogpu")
    err = _fails(_context(tmp_path, sources["mp4"]))
    assert err.code == "engine_unavailable" and err.retryable is False
    assert ("no CUDA GPU visible" if mode == "python" else "no Vulkan GPU (invalid gpu device)") in err.message


# --- settings and health ---------------------------------------------------------------------


def test_problem_says_what_is_missing(tmp_path, monkeypatch, python_tool):
    monkeypatch.delenv("REALESRGAN_DIR")
    assert RealESRGANUpscale.problem() == "REALESRGAN_DIR is not set (the Real-ESRGAN checkout, for REALESRGAN_MODE=python)"
    monkeypatch.setenv("REALESRGAN_DIR", str(tmp_path / "nowhere"))
    assert RealESRGANUpscale.problem() == f"REALESRGAN_DIR ({tmp_path / 'nowhere'}) does not exist"
    monkeypatch.setenv("REALESRGAN_DIR", str(tmp_path))
    assert RealESRGANUpscale.problem() == (f"script missing: {tmp_path / 'inference_realesrgan_video.py'} "
                                           "(REALESRGAN_DIR must be a Real-ESRGAN checkout)")
    monkeypatch.setenv("REALESRGAN_DIR", str(python_tool))
    monkeypatch.setenv("REALESRGAN_PYTHON", "no-such-python3")
    assert RealESRGANUpscale.problem() == "REALESRGAN_PYTHON (no-such-python3) is not installed"
    monkeypatch.setenv("REALESRGAN_PYTHON", sys.executable)
    assert RealESRGANUpscale.problem() is None
    monkeypatch.setenv("REALESRGAN_MODEL", "realesr-general-x4v3")  # needs its wdn twin too: both are there
    assert RealESRGANUpscale.problem() is None
    monkeypatch.setenv("REALESRGAN_MODEL", "ESRGAN_x8")
    assert "REALESRGAN_MODEL: Value error, unknown model 'ESRGAN_x8'" in (RealESRGANUpscale.problem() or "")
    monkeypatch.setenv("REALESRGAN_MODEL", "realesrgan-x4plus")  # the ncnn name works in python mode too
    assert RealESRGANUpscale.problem() is None

    monkeypatch.setenv("REALESRGAN_MODE", "ncnn")
    monkeypatch.delenv("REALESRGAN_MODEL")
    assert RealESRGANUpscale.problem() == ("REALESRGAN_BIN is not set (the realesrgan-ncnn-vulkan binary, "
                                           "for REALESRGAN_MODE=ncnn)")
    binary = install_ncnn(tmp_path / "ncnn")
    monkeypatch.setenv("REALESRGAN_BIN", str(binary))
    assert RealESRGANUpscale.problem() is None
    monkeypatch.setenv("REALESRGAN_MODEL", "realesr-general-x4v3")
    assert "has no ncnn build" in (RealESRGANUpscale.problem() or "")
    monkeypatch.setenv("REALESRGAN_MODEL", "realesr-animevideov3")
    monkeypatch.setenv("REALESRGAN_TILE", "16")
    assert "realesrgan-ncnn-vulkan takes 0 (auto) or at least 32" in (RealESRGANUpscale.problem() or "")
    monkeypatch.setenv("REALESRGAN_MODE", "cuda")
    assert "REALESRGAN_MODE: Input should be 'python' or 'ncnn'" in (RealESRGANUpscale.problem() or "")


def test_not_configured_fails_the_step_naming_the_variable(tmp_path, sources, monkeypatch):
    err = _fails(_context(tmp_path, sources["mp4"]))
    assert err.code == "engine_unavailable" and err.retryable is False
    assert "REALESRGAN_DIR is not set" in err.message and err.message.startswith("realesrgan: ")
    monkeypatch.setenv("REALESRGAN_TIMEOUT_S", "soon")
    err = _fails(_context(tmp_path, sources["mp4"]))
    assert err.code == "bad_input" and "REALESRGAN_TIMEOUT_S" in err.message


def test_the_engine_is_a_gpu_upscale_engine_not_a_default():
    assert RealESRGANUpscale.task_kind == "upscale" and RealESRGANUpscale.name == "realesrgan"
    assert RealESRGANUpscale.device == "gpu" and RealESRGANUpscale.is_default is False
    assert isinstance(RealESRGANUpscale(), UpscaleEngine)
    assert RealESRGANUpscale.licence.startswith("BSD-3-Clause") and RealESRGANUpscale.non_commercial is False


def test_the_model_is_part_of_the_settings_key(monkeypatch):
    assert RealESRGANUpscale.settings_key() == "mode=python model=RealESRGAN_x4plus tile=0"
    monkeypatch.setenv("REALESRGAN_MODE", "ncnn")
    monkeypatch.setenv("REALESRGAN_MODEL", "RealESRGAN_x4plus")  # the same network under its ncnn name
    assert RealESRGANUpscale.settings_key() == "mode=ncnn model=realesrgan-x4plus tile=0"


def test_sizes_are_planned_from_the_model_scales():
    # ncnn: the smallest scale the model has that reaches the target, at most x4.
    assert plan_for("ncnn", "realesr-animevideov3", (64, 48), (128, 96)).made == (128, 96)
    assert plan_for("ncnn", "realesr-animevideov3", (64, 48), (130, 98)).scale == 3
    p = plan_for("ncnn", "realesr-animevideov3", (64, 48), (320, 240))
    assert (p.scale, p.made, p.resize) == (4, (256, 192), True)
    assert plan_for("ncnn", "realesrgan-x4plus", (64, 48), (96, 72)).scale == 4
    # python: outscale = target / current, the script's int(w * s) even on both sides and covering.
    p = plan_for("python", "RealESRGAN_x4plus", (64, 48), (128, 128))
    assert p.scale == 4 and p.made == (int(64 * p.outscale), int(48 * p.outscale))
    assert p.made[0] >= 128 and p.made[1] >= 128 and p.made[0] % 2 == 0 and p.made[1] % 2 == 0
    p = plan_for("python", "RealESRGAN_x2plus", (100, 75), (256, 192))
    assert p.scale == 2 and p.made == (256, 192) and not p.resize
    p = plan_for("python", "RealESRGAN_x4plus", (1280, 720), (1920, 1080))
    assert p.made == (1920, 1080) and not p.resize
    assert plan_for("python", "RealESRGAN_x4plus", (640, 480), (320, 240)).model is None


# --- the fakes keep the real command lines ------------------------------------------------------


def test_the_fake_script_refuses_an_unknown_flag_like_argparse(python_tool):
    res = subprocess.run([sys.executable, str(python_tool / "inference_realesrgan_video.py"), "--scale", "2"],
                         capture_output=True, text=True)
    assert res.returncode == 2
    assert "error: unrecognized arguments: --scale 2" in res.stderr
    for flag in ("-dn DENOISE_STRENGTH", "[-s OUTSCALE]", "[--suffix SUFFIX]", "[-t TILE]", "[--tile_pad TILE_PAD]",
                 "[--face_enhance]", "[--fp32]", "[--extract_frame_first]", "[--alpha_upsampler ALPHA_UPSAMPLER]"):
        assert flag in res.stderr


def test_the_fake_binary_refuses_an_unknown_option_like_getopt(ncnn_tool, tmp_path):
    res = subprocess.run([str(ncnn_tool), "-i", str(tmp_path), "-o", str(tmp_path), "-z"], capture_output=True, text=True)
    assert res.returncode == 255
    assert f"{ncnn_tool}: invalid option -- 'z'" in res.stderr
    assert "Usage: realesrgan-ncnn-vulkan -i infile -o outfile [options]..." in res.stderr
    res = subprocess.run([str(ncnn_tool), "-i", str(tmp_path), "-o", str(tmp_path / "no-such-dir")],
                         capture_output=True, text=True)
    assert res.returncode == 255 and res.stderr.strip() == "invalid outputpath extension type"
