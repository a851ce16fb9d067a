"""``realesrgan`` upscale engine: the video so far made larger by Real-ESRGAN, then brought to the
exact output size with ffmpeg's lanczos when the network's scale does not land on it.

Two ways to run it, chosen by REALESRGAN_MODE:

- ``python`` (default): the checkout's own script, run by its own Python in REALESRGAN_DIR
  (xinntao/Real-ESRGAN ``inference_realesrgan_video.py``)::

      python inference_realesrgan_video.py -i <dir>/video.mp4 -o <dir>/results -n <model> \\
          -s <outscale> --suffix out -t <tile>

  It reads the video with ffmpeg (a video by its mimetype, ``nb_frames`` from ffprobe: so it gets
  an MP4, remuxed here), upsamples each frame by the network's scale, resizes it to
  ``int(w * outscale)`` with OpenCV and pipes it to libx264 (yuv420p, CRF 23) as
  ``<output>/<video_name>_<suffix>.mp4``; its tqdm bar ``inference: n/total frame`` is the step's
  progress. Its weights are ``weights/<model>.pth`` (relative to the checkout: the script runs
  there); when one is missing it downloads it (basicsr ``load_file_from_url``: ``Downloading:
  "<url>" to <path>``), which without a network dies with urllib's URLError: weights missing.
  A frame that raises (CUDA out of memory) is caught by the script itself: it prints ``Error <the
  error>`` and "If you encounter CUDA out of memory, try to set --tile with a smaller number.",
  skips the frame and exits 0, so those lines fail the step (out of memory: set REALESRGAN_TILE)
  and the frame count is checked. The script starts one process per visible CUDA device (its
  multi-GPU path cuts the video at whole seconds): CUDA_VISIBLE_DEVICES is set to 0 when the
  worker has not set it; with no device its ``Pool(0)`` fails ("Number of processes must be at
  least 1"): no GPU.
- ``ncnn``: the Vulkan build REALESRGAN_BIN (xinntao/Real-ESRGAN-ncnn-vulkan ``src/main.cpp``) on
  frame folders: ffmpeg extracts the frames as PNG, then::

      realesrgan-ncnn-vulkan -i <frames> -o <upscaled> -n <model> -s <scale> -f png -m <bin dir>/models -v

  prints ``"%.2f%%"`` per tile and ``<in> -> <out> done`` per image on stderr (the progress), and
  the frames are encoded again at the source's frame rate, without audio. Its models are
  ``models/<name>-x<scale>.param|bin`` (realesr-animevideov3: scales 2, 3, 4) or
  ``models/<name>.param|bin`` (the x4 models) beside the binary. It reports most failures on
  stderr and goes on: ``fopen <file> failed`` (weights missing), ``vkAllocateMemory failed``
  (out of VRAM: the images it writes are garbage), ``invalid gpu device`` (no Vulkan GPU),
  ``vkQueueSubmit failed`` (device lost): each fails the step whatever its exit status.

Size: skipped (nothing run) when the frames already have the output size. Otherwise the model
scale is the smallest the model has that reaches the target on both sides (python: the network's
scale, and ``outscale`` = target / current; ncnn: 2, 3 or 4, at most 4), and when what the tool
wrote is not exactly the target, ffmpeg's lanczos scales it to cover the target and crops the
centre (said in ``reason``). Frames that already cover the target are only scaled by ffmpeg: no
network can shrink them, and ``reason`` says so.

What it returns is what the built-in ``lanczos`` upscale returns (``videoKey``, ``skipped``,
``reason``), with the frames' facts (width, height, frames, subtitlesBurned as the step before
said) and ``model``/``scale``. ``encode`` is never "final H.264": the result is Real-ESRGAN's own
H.264 or a lossless intermediate, and mux makes the final stream.

Default model: RealESRGAN_x4plus, the general model trained on real photographs' degradations:
a person's face keeps skin texture and hair. realesr-animevideov3 is trained on anime: faster, but
it flattens a real face into cel-like patches.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ...config import ConfigError, load_group
from ...errors import StepFailure
from ...media import proc
from ...media.encode import LOSSLESS
from ...media.errors import Cancelled, ToolFailed, ToolTimeout
from ...media.proc import ToolExited
from ..base import Engine, StepOutput, TaskContext, engine
from .tooling import missing_paths, parse_tqdm, run_failure, step_settings

ENGINE = "realesrgan"
SCRIPT = "inference_realesrgan_video.py"
SUFFIX = "out"
_RELEASES = "https://github.com/xinntao/Real-ESRGAN/releases/download"

# inference_realesrgan_video.py's model table: name -> (the network's scale, the weights it loads;
# the file name is the URL's last part, looked for in weights/).
PYTHON_MODELS: dict[str, tuple[int, tuple[str, ...]]] = {
    "RealESRGAN_x4plus": (4, (f"{_RELEASES}/v0.1.0/RealESRGAN_x4plus.pth",)),
    "RealESRNet_x4plus": (4, (f"{_RELEASES}/v0.1.1/RealESRNet_x4plus.pth",)),
    "RealESRGAN_x4plus_anime_6B": (4, (f"{_RELEASES}/v0.2.2.4/RealESRGAN_x4plus_anime_6B.pth",)),
    "RealESRGAN_x2plus": (2, (f"{_RELEASES}/v0.2.1/RealESRGAN_x2plus.pth",)),
    "realesr-animevideov3": (4, (f"{_RELEASES}/v0.2.5.0/realesr-animevideov3.pth",)),
    # At the script's default -dn 0.5 it blends the model with its "wdn" twin: both files.
    "realesr-general-x4v3": (4, (f"{_RELEASES}/v0.2.5.0/realesr-general-x4v3.pth",
                                 f"{_RELEASES}/v0.2.5.0/realesr-general-wdn-x4v3.pth")),
}
# realesrgan-ncnn-vulkan's models (main.cpp's usage): name -> the scales it has files for.
NCNN_MODELS: dict[str, tuple[int, ...]] = {
    "realesr-animevideov3": (2, 3, 4),
    "realesrgan-x4plus": (4,),
    "realesrgan-x4plus-anime": (4,),
    "realesrnet-x4plus": (4,),
}
# One network, two spellings: REALESRGAN_MODEL may use either.
_NCNN_NAME = {"RealESRGAN_x4plus": "realesrgan-x4plus", "RealESRNet_x4plus": "realesrnet-x4plus",
              "RealESRGAN_x4plus_anime_6B": "realesrgan-x4plus-anime", "realesr-animevideov3": "realesr-animevideov3"}
_PYTHON_NAME = {v: k for k, v in _NCNN_NAME.items()}

LOSSLESS_NOTE = "lossless intermediate (RGB H.264, qp 0): mux encodes the final stream"
SCRIPT_NOTE = "Real-ESRGAN's own H.264 (libx264 yuv420p, CRF 23): mux makes the final stream"
_TOOL_SHARE = (0.05, 0.88)  # the part of the step's progress the tool's own run covers

_FRAME_ERROR = "If you encounter CUDA out of memory, try to set --tile with a smaller number."
# The script's print('Error', error): tqdm's bar (stderr, redrawn after a \r) has no newline, so
# the message often follows the bar on the same line.
_SCRIPT_ERROR = re.compile(r"(?:^|\])Error (.+)$")
_DOWNLOADING = re.compile(r'^Downloading: "(?P<url>[^"]+)" to (?P<path>.+?)\s*$', re.M)
_NCNN_PERCENT = re.compile(r"^(\d{1,3}\.\d\d)%$")
_NCNN_DONE = re.compile(r" -> .* done$")
_NCNN_FOPEN = re.compile(r"^(?:_w)?fopen (.+) failed$", re.M)


class RealESRGANSettings(BaseModel):
    """REALESRGAN_*: all optional; the engine is unhealthy until its mode's install is named."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    realesrgan_mode: Literal["python", "ncnn"] = "python"
    realesrgan_dir: Path | None = None  # python: the Real-ESRGAN checkout (its script and weights/)
    realesrgan_python: str = "python3"  # python: the interpreter of the checkout's environment
    realesrgan_bin: str | None = None  # ncnn: realesrgan-ncnn-vulkan (a path, or a name on PATH), models/ beside it
    realesrgan_model: str = "RealESRGAN_x4plus"
    realesrgan_tile: int = Field(0, ge=0)  # 0: whole frames; else tiles of this many pixels (less VRAM)
    realesrgan_timeout_s: float = Field(3600.0, gt=0)  # the whole step: frames out, the tool, frames in

    @field_validator("realesrgan_model")
    @classmethod
    def _known_model(cls, v: str) -> str:
        if v not in PYTHON_MODELS and v not in NCNN_MODELS:
            known = " | ".join([*PYTHON_MODELS, *(n for n in NCNN_MODELS if n not in _PYTHON_NAME)])
            raise ValueError(f"unknown model {v!r} (one of {known})")
        return v


@dataclass(frozen=True)
class Install:
    """Where the tool is, checked: what to run and with which model."""

    mode: str
    model: str  # the tool's name for it
    command: tuple[str, ...]  # the program (python mode: the interpreter and the script)
    cwd: Path
    models_dir: Path | None = None  # ncnn: -m


class NotReady(Exception):
    """The settings do not name a working install; the message says what is missing."""


def tool_model(s: RealESRGANSettings) -> str:
    """The model under the name the mode's tool knows it by."""
    if s.realesrgan_mode == "python":
        return _PYTHON_NAME.get(s.realesrgan_model, s.realesrgan_model)
    name = _NCNN_NAME.get(s.realesrgan_model, s.realesrgan_model)
    if name not in NCNN_MODELS:
        raise NotReady(f"REALESRGAN_MODEL={s.realesrgan_model} has no ncnn build "
                       f"(realesrgan-ncnn-vulkan has {', '.join(NCNN_MODELS)})")
    return name


def locate(s: RealESRGANSettings) -> Install:
    """The install the settings name, or NotReady saying exactly what is missing."""
    missing_tools = [t for t in ("ffmpeg", "ffprobe") if shutil.which(t) is None]
    if missing_tools:
        raise NotReady(f"not installed: {', '.join(missing_tools)}")
    model = tool_model(s)
    if s.realesrgan_mode == "python":
        if s.realesrgan_dir is None:
            raise NotReady("REALESRGAN_DIR is not set (the Real-ESRGAN checkout, for REALESRGAN_MODE=python)")
        problems = missing_paths(REALESRGAN_DIR=s.realesrgan_dir)
        if problems:
            raise NotReady(problems[0])
        checkout = Path(s.realesrgan_dir).resolve()
        script = checkout / SCRIPT
        if not script.is_file():
            raise NotReady(f"script missing: {script} (REALESRGAN_DIR must be a Real-ESRGAN checkout)")
        python = shutil.which(s.realesrgan_python)
        if python is None:
            raise NotReady(f"REALESRGAN_PYTHON ({s.realesrgan_python}) is not installed")
        absent = [url for url in PYTHON_MODELS[model][1] if not (checkout / "weights" / url.rsplit("/", 1)[1]).is_file()]
        if absent:
            files = ", ".join(str(checkout / "weights" / u.rsplit("/", 1)[1]) for u in absent)
            raise NotReady(f"weights missing: {files} (download {' and '.join(absent)} into {checkout / 'weights'})")
        return Install("python", model, (python, str(script)), checkout)

    if not s.realesrgan_bin:
        raise NotReady("REALESRGAN_BIN is not set (the realesrgan-ncnn-vulkan binary, for REALESRGAN_MODE=ncnn)")
    found = shutil.which(s.realesrgan_bin)
    if found is None:
        raise NotReady(f"REALESRGAN_BIN ({s.realesrgan_bin}) is not an executable file")
    if 0 < s.realesrgan_tile < 32:
        raise NotReady(f"REALESRGAN_TILE={s.realesrgan_tile}: realesrgan-ncnn-vulkan takes 0 (auto) or at least 32")
    binary = Path(found).resolve()
    models = binary.parent / "models"
    stems = [f"{model}-x{sc}" for sc in NCNN_MODELS[model]] if model == "realesr-animevideov3" else [model]
    absent_files = [str(models / f"{stem}.{ext}") for stem in stems for ext in ("param", "bin")
                    if not (models / f"{stem}.{ext}").is_file()]
    if absent_files:
        raise NotReady(f"weights missing: {', '.join(absent_files)} (the models/ folder of the "
                       "realesrgan-ncnn-vulkan release, beside the binary)")
    return Install("ncnn", model, (str(binary),), binary.parent, models)


# Sizes ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Plan:
    """How the frames reach the target: the tool's pass (when any), then lanczos when needed."""

    source: tuple[int, int]
    target: tuple[int, int]
    made: tuple[int, int]  # what the tool writes (the source when no tool runs)
    model: str | None = None
    scale: int | None = None  # the network's scale (python), -s (ncnn)
    outscale: float | None = None  # python: the script's -s

    @property
    def resize(self) -> bool:
        return self.made != self.target

    def reason(self, mode: str) -> str:
        (w, h), (tw, th), (mw, mh) = self.source, self.target, self.made
        if self.model is None:
            return (f"Real-ESRGAN not run: the frames ({w}x{h}) already cover {tw}x{th}; "
                    f"scaled to {tw}x{th} with ffmpeg lanczos")
        how = (f"x{self.scale} network, outscale {self.outscale:.4f}" if self.outscale is not None
               else f"x{self.scale}")
        text = f"Real-ESRGAN {self.model} ({mode}, {how}): {w}x{h} to {mw}x{mh}"
        if self.resize:
            text += f", then ffmpeg lanczos to {tw}x{th} (cover, centre crop)"
        return text


def plan_for(mode: str, model: str, source: tuple[int, int], target: tuple[int, int]) -> Plan:
    (w, h), (tw, th) = source, target
    needed = max(tw / w, th / h)
    if needed <= 1.0:
        return Plan(source, target, source)
    if mode == "ncnn":
        scales = NCNN_MODELS[model]
        scale = min((s for s in scales if s >= needed), default=max(scales))
        return Plan(source, target, (w * scale, h * scale), model, scale)
    # The script writes int(w * outscale) x int(h * outscale) through libx264 yuv420p: both even.
    # The first width from the target up whose size is even on both sides and covers the target.
    netscale = PYTHON_MODELS[model][0]
    first = max(tw, math.ceil(w * needed - 1e-6))
    outscale = (first + 0.5) / w
    for width in range(first, first + 64):
        candidate = (width + 0.5) / w
        made = (int(w * candidate), int(h * candidate))
        if made[0] >= tw and made[1] >= th and made[0] % 2 == 0 and made[1] % 2 == 0:
            outscale = candidate
            break
    return Plan(source, target, (int(w * outscale), int(h * outscale)), model, netscale, outscale)


# The engine ----------------------------------------------------------------------------------
@engine("upscale", ENGINE)
class RealESRGANUpscale(Engine):
    """Real-ESRGAN on the GPU (its Python script, or the ncnn Vulkan build on frame folders), then
    ffmpeg lanczos to the exact output size; nothing at all when the frames already have it."""

    # Real-ESRGAN: BSD-3-Clause, its code and the released weights (its GitHub releases, under the
    # repository's licence); basicsr, which the script runs on: Apache-2.0; the ncnn build:
    # MIT (ncnn itself BSD-3-Clause); FFmpeg (frames out and in; Debian's build): GPL.
    licence = "BSD-3-Clause AND Apache-2.0 AND MIT AND GPL-2.0-or-later"
    tools = ("ffmpeg", "ffprobe")
    device = "gpu"
    version = "1"
    settings_group = RealESRGANSettings

    @classmethod
    def settings_key(cls) -> str:
        """The network and how it runs change the frames (tiles too, slightly, at their seams)."""
        try:
            s = load_group(RealESRGANSettings)
            model = tool_model(s)
        except (ConfigError, NotReady):
            return ""
        return f"mode={s.realesrgan_mode} model={model} tile={s.realesrgan_tile}"

    @classmethod
    def problem(cls) -> str | None:  # stats and PATH look-ups only: cheap enough for every heartbeat
        try:
            locate(load_group(RealESRGANSettings))
        except (ConfigError, NotReady) as exc:
            return str(exc)
        return None

    def upscale(self, ctx: TaskContext) -> StepOutput:
        s = step_settings(RealESRGANSettings)
        p = ctx.payload
        target = (int(p["width"]), int(p["height"]))
        video = ctx.input("video")
        made = video.outputs  # what the step that made it says of its frames
        size = (made.get("width"), made.get("height"))
        src: Path | None = None
        if None in size:  # the step that made the frames did not say their size: look
            src = ctx.fetch_input("video")
            info = video_info(src)
            size = (info["width"], info["height"])
        if size == target:
            reason = f"skipped: the frames are already {target[0]}x{target[1]}"
            return StepOutput([], {"videoKey": video.key, "skipped": True, "reason": reason})
        try:
            install = locate(s)
        except NotReady as exc:
            raise StepFailure("engine_unavailable", f"{ENGINE}: {exc}", retryable=False) from None
        src = src or ctx.fetch_input("video")
        run = _Run(ctx, s, install)
        try:
            out, plan, frames, encode = run.upscale(src, target)
        except (Cancelled, ToolFailed, OSError) as exc:
            raise run.failure(exc) from None
        finally:
            run.clean()

        meta: dict[str, Any] = {"width": target[0], "height": target[1], "frames": frames, "engine": ENGINE,
                                "mode": install.mode, "model": plan.model, "scale": plan.scale}
        mkv = out.suffix == ".mkv"
        name = "upscaled.mkv" if mkv else "upscaled.mp4"
        ref = ctx.upload(name, out, "video_upscaled", "video/x-matroska" if mkv else "video/mp4", meta)
        outputs: dict[str, Any] = {
            "videoKey": ref["key"], "skipped": False, "reason": plan.reason(install.mode),
            "width": target[0], "height": target[1], "frames": frames, "encode": encode,
            # burned into the frames by the step before: they still are
            "subtitlesBurned": bool(made.get("subtitlesBurned", False)),
            "model": plan.model, "scale": plan.scale,
        }
        if plan.outscale is not None:
            outputs["outscale"] = round(plan.outscale, 6)
        return StepOutput([ref], outputs)


def video_info(path: Path, *, timeout: float = 60.0, cancelled: Callable[[], bool] | None = None) -> dict[str, Any]:
    """Size, frame count (packets counted, not decoded) and frame rate (as ffprobe writes it)."""
    res = proc.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_packets", "-show_entries",
                    "stream=width,height,avg_frame_rate,r_frame_rate,nb_read_packets", "-of", "json", str(path)],
                   timeout=timeout, cancelled=cancelled)
    streams = json.loads(res.stdout or b"{}").get("streams") or []
    if not streams:
        raise ToolFailed(f"{Path(path).name} has no video stream")
    v = streams[0]
    rate = v.get("avg_frame_rate") or "0/0"
    if rate in ("0/0", "0/1"):
        rate = v.get("r_frame_rate") or "25/1"
    return {"width": int(v["width"]), "height": int(v["height"]), "frames": int(v.get("nb_read_packets") or 0),
            "rate": rate, "fps": float(Fraction(rate)) if Fraction(rate) else 25.0}


def _cover(width: int, height: int) -> str:
    return (f"scale={width}:{height}:force_original_aspect_ratio=increase:flags=lanczos,"
            f"crop={width}:{height},setsar=1")


def _png_size(path: Path) -> tuple[int, int]:
    with path.open("rb") as f:
        head = f.read(24)
    if head[:8] != b"\x89PNG\r\n\x1a\n":
        raise ToolFailed(f"{path.name} is not a PNG")
    w, h = struct.unpack(">II", head[16:24])
    return w, h


class _Run:
    """One upscale: the work folder, the deadline, the progress, and how a failure reads."""

    def __init__(self, ctx: TaskContext, s: RealESRGANSettings, install: Install) -> None:
        self.ctx, self.s, self.install = ctx, s, install
        self.deadline = time.monotonic() + s.realesrgan_timeout_s
        self.reached = 0.0
        self.tool = "realesrgan-ncnn-vulkan" if install.mode == "ncnn" else SCRIPT
        self.frame_errors: list[str] = []
        self.frame_error_count = 0
        self.work = ctx.path("realesrgan")
        shutil.rmtree(self.work, ignore_errors=True)  # a retry starts clean
        self.work.mkdir(parents=True)

    # helpers ------------------------------------------------------------------------------
    def progress(self, fraction: float, message: str) -> None:
        self.reached = max(self.reached, min(1.0, fraction))  # never backwards
        self.ctx.progress(self.reached, message)

    def left(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise ToolTimeout("no time left")
        return left

    def ffmpeg(self, *args: str) -> None:
        proc.run(["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y", *args],
                 timeout=self.left(), cancelled=self.ctx.cancelled)

    def clean(self) -> None:
        for name in ("frames", "upscaled", "results", "video.mp4"):
            target = self.work / name
            if target.is_dir():
                shutil.rmtree(target, ignore_errors=True)
            else:
                target.unlink(missing_ok=True)

    def tool_share(self, fraction: float) -> float:
        lo, hi = _TOOL_SHARE
        return lo + (hi - lo) * fraction

    # the two modes ----------------------------------------------------------------------------
    def upscale(self, src: Path, target: tuple[int, int]) -> tuple[Path, Plan, int, str]:
        """(the result, the plan, its frame count, how it is encoded)."""
        self.progress(0.0, "Real-ESRGAN: reading the video")
        info = video_info(src, timeout=self.left(), cancelled=self.ctx.cancelled)
        plan = plan_for(self.install.mode, self.install.model, (info["width"], info["height"]), target)
        out = self.ctx.path("out/upscaled.mkv")
        out.unlink(missing_ok=True)
        if plan.model is None:  # nothing for a network to do
            self.encode(["-i", str(src), "-map", "0:v:0", "-fps_mode", "passthrough"], plan, out)
            return out, plan, self.check(out, target, info["frames"]), LOSSLESS_NOTE
        if self.install.mode == "python":
            return self.run_script(src, plan, out)
        return self.run_ncnn(src, plan, info, out)

    def encode(self, inputs: list[str], plan: Plan, out: Path) -> None:
        vf = ["-vf", _cover(*plan.target)] if plan.resize else []
        tmp = out.with_name(f".{out.stem}.tmp.mkv")
        self.progress(0.9, "ffmpeg: lanczos to the output size" if plan.resize else "ffmpeg: encoding the frames")
        try:
            self.ffmpeg(*inputs, *vf, *LOSSLESS, "-an", str(tmp))
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)

    def check(self, video: Path, size: tuple[int, int], frames: int) -> int:
        """The frame count of ``video``, which must have ``size`` and ``frames`` frames."""
        info = video_info(video, timeout=self.left(), cancelled=self.ctx.cancelled)
        if (info["width"], info["height"]) != size:
            raise StepFailure("engine_failed", f"{ENGINE}: {video.name} is {info['width']}x{info['height']}, "
                              f"expected {size[0]}x{size[1]}")
        if info["frames"] != frames:
            raise StepFailure("engine_failed", f"{ENGINE}: {video.name} has {info['frames']} frames, expected {frames}")
        return frames

    def run_script(self, src: Path, plan: Plan, out: Path) -> tuple[Path, Plan, int, str]:
        assert plan.outscale is not None and plan.model is not None
        video = self.work / "video.mp4"  # a video by its mimetype, with nb_frames in its header
        try:
            self.ffmpeg("-i", str(src), "-map", "0:v:0", "-c:v", "copy", "-an", str(video))
        except ToolFailed:  # a codec MP4 cannot hold: encoded losslessly instead
            self.ffmpeg("-i", str(src), "-map", "0:v:0", *LOSSLESS, "-an", str(video))
        frames = video_info(video, timeout=self.left(), cancelled=self.ctx.cancelled)["frames"]
        results = self.work / "results"
        cmd = [*self.install.command, "-i", str(video), "-o", str(results), "-n", plan.model,
               "-s", repr(plan.outscale), "--suffix", SUFFIX, "-t", str(self.s.realesrgan_tile)]
        env = dict(os.environ)
        env.setdefault("CUDA_VISIBLE_DEVICES", "0")
        env["PYTHONUNBUFFERED"] = "1"  # its print()s (a frame's error) arrive as they happen

        def on_line(line: str) -> None:
            if line.strip() == _FRAME_ERROR:  # once per frame it skipped
                self.frame_error_count += 1
                return
            error = _SCRIPT_ERROR.search(line)  # print('Error', error), often after the bar on its line
            if error is not None and len(self.frame_errors) < 3:
                self.frame_errors.append(error.group(1).strip())
            bar = parse_tqdm(line)
            if bar is not None and bar.desc == "inference":
                self.progress(self.tool_share(bar.fraction), f"Real-ESRGAN: frame {bar.n}/{bar.total}")

        self.progress(self.tool_share(0.0), f"Real-ESRGAN: loading {plan.model}")
        proc.stream(cmd, self.left(), self.ctx.cancelled, on_line=on_line, cwd=self.install.cwd, env=env)
        if self.frame_error_count or self.frame_errors:
            raise self.frame_failure(frames)
        made = results / f"{video.stem}_{SUFFIX}.mp4"  # <output>/<video_name>_<suffix>.mp4
        if not made.is_file():
            raise StepFailure("engine_failed", f"{ENGINE}: {SCRIPT} exited 0 but wrote no {made.name}")
        self.check(made, plan.made, frames)
        if not plan.resize:
            os.replace(made, out.with_suffix(".mp4"))
            return out.with_suffix(".mp4"), plan, frames, SCRIPT_NOTE
        self.encode(["-i", str(made), "-map", "0:v:0", "-fps_mode", "passthrough"], plan, out)
        return out, plan, self.check(out, plan.target, frames), LOSSLESS_NOTE

    def run_ncnn(self, src: Path, plan: Plan, info: dict[str, Any], out: Path) -> tuple[Path, Plan, int, str]:
        assert plan.scale is not None and plan.model is not None and self.install.models_dir is not None
        frames_in, frames_out = self.work / "frames", self.work / "upscaled"
        frames_in.mkdir()
        frames_out.mkdir()  # it must exist: a path that is not a directory is taken for a file
        self.progress(0.01, "ffmpeg: extracting the frames")
        self.ffmpeg("-i", str(src), "-map", "0:v:0", "-fps_mode", "passthrough", "-start_number", "1",
                    str(frames_in / "%08d.png"))
        total = len(list(frames_in.glob("*.png")))
        if total == 0:
            raise StepFailure("bad_input", f"{ENGINE}: the video has no frames")
        cmd = [*self.install.command, "-i", str(frames_in), "-o", str(frames_out), "-n", plan.model,
               "-s", str(plan.scale), "-f", "png", "-m", str(self.install.models_dir), "-v"]
        if self.s.realesrgan_tile:
            cmd += ["-t", str(self.s.realesrgan_tile)]
        done = [0]

        def on_line(line: str) -> None:
            if _NCNN_DONE.search(line):
                done[0] += 1
                self.progress(self.tool_share(done[0] / total), f"Real-ESRGAN: frame {done[0]}/{total}")
                return
            m = _NCNN_PERCENT.match(line.strip())
            if m:  # the tile of the image being made
                part = min(0.99, float(m.group(1)) / 100)
                self.progress(self.tool_share(min(total, done[0] + part) / total),
                              f"Real-ESRGAN: frame {min(total, done[0] + 1)}/{total}")

        self.progress(self.tool_share(0.0), f"Real-ESRGAN: loading {plan.model} x{plan.scale}")
        try:
            lines = proc.stream(cmd, self.left(), self.ctx.cancelled, on_line=on_line, cwd=self.install.cwd)
        except ToolExited as exc:
            raise ncnn_failure(exc.output, exc.returncode) or run_failure(ENGINE, exc) from None
        failure = ncnn_failure("\n".join(lines), 0)
        if failure is not None:
            raise failure
        made = sorted(frames_out.glob("*.png"))
        if len(made) != total:
            raise StepFailure("engine_failed", f"{ENGINE}: realesrgan-ncnn-vulkan wrote {len(made)} of {total} frames")
        for png in (made[0], made[-1]):
            if _png_size(png) != plan.made:
                w, h = _png_size(png)
                raise StepFailure("engine_failed", f"{ENGINE}: realesrgan-ncnn-vulkan wrote {png.name} at {w}x{h}, "
                                  f"expected {plan.made[0]}x{plan.made[1]}")
        shutil.rmtree(frames_in, ignore_errors=True)
        self.encode(["-framerate", info["rate"], "-start_number", "1", "-i", str(frames_out / "%08d.png")], plan, out)
        return out, plan, self.check(out, plan.target, total), LOSSLESS_NOTE

    # failures ---------------------------------------------------------------------------------
    def frame_failure(self, frames: int) -> StepFailure:
        """The script caught an error on some frames, skipped them and exited 0."""
        first = self.frame_errors[0] if self.frame_errors else "no message"
        count = f"{self.frame_error_count} of {frames} frames" if self.frame_error_count else "frames"
        if "out of memory" in " ".join(self.frame_errors).lower():
            tile = self.s.realesrgan_tile
            advice = f"set REALESRGAN_TILE lower than {tile}" if tile else "set REALESRGAN_TILE (e.g. 400, or 200)"
            return StepFailure("out_of_memory", f"{ENGINE} ran out of GPU memory on {count} ({first[:300]}): "
                               f"{advice}, or free the GPU", retryable=True)
        return StepFailure("engine_failed", f"{ENGINE}: {SCRIPT} failed on {count}: {first[:500]}")

    def failure(self, exc: BaseException) -> StepFailure:
        if isinstance(exc, StepFailure):
            return exc
        if isinstance(exc, Cancelled):
            return StepFailure("cancelled", f"{ENGINE}: cancelled; {self.tool} was stopped")
        if isinstance(exc, ToolTimeout):
            return StepFailure("timeout", f"{ENGINE}: the upscale ran past REALESRGAN_TIMEOUT_S "
                               f"({self.s.realesrgan_timeout_s:g} s) and was stopped ({self.tool})")
        if isinstance(exc, ToolExited):
            return run_failure(ENGINE, exc, hint=script_hint)
        if isinstance(exc, (ToolFailed, OSError)):
            return StepFailure("engine_failed", f"{ENGINE}: {exc}")
        return run_failure(ENGINE, exc)


def script_hint(output: str) -> StepFailure | None:
    """How inference_realesrgan_video.py says what it lacks (before the generic reading)."""
    downloads = list(_DOWNLOADING.finditer(output))
    if downloads:
        download = downloads[-1]  # it went for weights it did not have, and died: no network
        return StepFailure("engine_unavailable", f"{ENGINE}: weights missing: {download.group('path')} (the "
                           f"script could not download {download.group('url')}: put the file there)", retryable=False)
    if "Number of processes must be at least 1" in output:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES", "0")
        return StepFailure("engine_unavailable", f"{ENGINE}: no CUDA GPU visible to Real-ESRGAN "
                           f"(torch.cuda.device_count() is 0; CUDA_VISIBLE_DEVICES={visible})", retryable=False)
    if "error: unrecognized arguments" in output or "error: argument" in output:
        line = next(ln for ln in output.splitlines() if "error:" in ln)
        return StepFailure("engine_failed", f"{ENGINE}: {SCRIPT} refused its arguments ({line.strip()}): "
                           "is REALESRGAN_DIR a current Real-ESRGAN checkout?", retryable=False)
    return None


def ncnn_failure(output: str, returncode: int) -> StepFailure | None:
    """What realesrgan-ncnn-vulkan's stderr says went wrong, whatever its exit status; None if nothing."""
    tool = "realesrgan-ncnn-vulkan"
    files = _NCNN_FOPEN.findall(output)
    if files:
        return StepFailure("engine_unavailable", f"{ENGINE}: weights missing: {', '.join(dict.fromkeys(files))} "
                           f"({tool} could not open them)", retryable=False)
    if "invalid gpu device" in output:
        return StepFailure("engine_unavailable", f"{ENGINE}: {tool} found no Vulkan GPU (invalid gpu device)",
                           retryable=False)
    if "vkAllocateMemory failed" in output:
        return StepFailure("out_of_memory", f"{ENGINE}: {tool} ran out of GPU memory (vkAllocateMemory failed): "
                           "set REALESRGAN_TILE (e.g. 100), or free the GPU", retryable=True)
    lost = re.search(r"^vk\w+ failed -?\d+$", output, re.M)
    if lost:
        return StepFailure("engine_failed", f"{ENGINE}: {tool} lost the GPU ({lost.group(0)})", retryable=True)
    bad = re.search(r"^(?:decode|encode) image .* failed$", output, re.M)
    if bad:
        return StepFailure("engine_failed", f"{ENGINE}: {tool}: {bad.group(0)}")
    refused = re.search(r"^(Usage: .*|invalid .*|unknown model dir type|inputpath and outputpath .*)$", output, re.M)
    if refused and returncode != 0:
        return StepFailure("engine_failed", f"{ENGINE}: {tool} refused its arguments ({refused.group(0)}): is "
                           "REALESRGAN_BIN a realesrgan-ncnn-vulkan release?", retryable=False)
    return None
