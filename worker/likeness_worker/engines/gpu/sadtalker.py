"""``sadtalker`` talking_head engine: SadTalker (github.com/OpenTalker/SadTalker) makes the face of
the scene speak the speech, pasted back on the whole scene.

Its interface (``inference.py``, commit cd4c0465): ``--driven_audio``, ``--source_image`` (a path
ending in jpg/png/jpeg is read as an image), ``--result_dir`` (./results), ``--checkpoint_dir``
(./checkpoints), ``--size`` 256|512 (the face renderer's), ``--preprocess``
crop|extcrop|resize|full|extfull, ``--still``, ``--enhancer`` gfpgan|RestoreFormer,
``--background_enhancer`` realesrgan, ``--pose_style`` [0, 46), ``--expression_scale``,
``--batch_size`` (2), ``--cpu``, ``--ref_eyeblink``, ``--ref_pose``, ``--input_yaw/pitch/roll``,
``--face3dvis``, ``--verbose``, ``--old_version``. It runs from its checkout: facexlib's weights
are looked up in ``gfpgan/weights`` and ffmpeg's temporary files written in the working directory.

A run makes ``<result_dir>/<%Y_%m_%d_%H.%M.%S>/`` holding ``<pic>##<audio>.mp4`` (the face crop),
``<pic>##<audio>_full.mp4`` (--preprocess full: the face pasted back by cv2.seamlessClone) and
``<pic>##<audio>_enhanced.mp4`` (--enhancer, made from the previous one); it moves the last to
``<result_dir>/<stamp>.mp4``, prints "The generated video is named: <that path>" and removes the
folder unless --verbose. The video: 25 fps, one frame per 40 ms of audio (the audio cut to whole
frames, AAC); with --preprocess full at the source image's size in OpenCV's MPEG-4 Part 2, with the
enhancer twice that (GFPGANer's upscale=2, rounded up to 16 by imageio) in H.264. Its tqdm bars, in
order: ``landmark Det:``, ``3DMM Extraction In Video:``, ``mel:``, ``audio2exp:``, ``Face Renderer:``
(batches), ``seamlessClone:`` (full), ``Face Enhancer:`` (enhancer).

Here: the scene (already at the output size) as ``scene.png``, the speech as ``speech.wav``, in a
fresh run folder; defaults ``--preprocess full --still`` (the face pasted back on the whole scene,
little head motion: a talking head over a rendered scene), no enhancer. The MP4 is handed on as
SadTalker made it, and mux encodes it once (burning subtitles in when asked).

Failures: no face (croper.py raises a str, so Python says "TypeError: exceptions must derive from
BaseException" under the line "can not detect the landmark from source image") → bad_input; the
face too near the scene's edge for the paste back (seamlessClone's "(-215:Assertion failed) 0 <=
roi.x …", SadTalker issues #446, #542, #623) → bad_input; a checkpoint missing (FileNotFoundError
from torch.load or safetensors) or a facexlib/GFPGAN weight it tries to download on a box
without internet → engine_unavailable, not retryable; CUDA out of memory → out_of_memory; past
SADTALKER_TIMEOUT_S → timeout (out_of_memory when its face detection was looping on "Warning: out of
memory, sleep for 1s"); anything else → engine_failed. The weights are checked before the
run too, so that a missing file fails at once, not after the models load.

The file has two parts: what is SadTalker's (settings, weights, argv, output, hints, bars), then
the run, probe and upload any such script needs (to be folded onto face_tools.FaceTool).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ...config import ConfigError, load_group
from ...errors import StepFailure
from ...media.errors import Cancelled, ToolFailed, ToolTimeout
from ...media.proc import ToolExited, stream
from ..base import Engine, StepOutput, TaskContext, engine
from .tooling import missing_paths, parse_tqdm, run_failure

# --- SadTalker: what is the tool's own ------------------------------------------------------------

TOOL = "SadTalker"
SCRIPT = "inference.py"
ENCODE = "sadtalker output (re-encoded by mux)"
ENHANCERS = {"none": None, "gfpgan": "gfpgan", "restoreformer": "RestoreFormer"}
# The bars of one run, in order, with the share of the run's time each stands for.
BARS: tuple[tuple[str, float], ...] = (
    ("landmark Det", 1), ("3DMM Extraction In Video", 1), ("mel", 2), ("audio2exp", 2), ("Face Renderer", 30),
    ("seamlessClone", 6), ("Face Enhancer", 25),
)


class SadTalkerSettings(BaseModel):
    """SADTALKER_*: all optional; the engine is advertised unhealthy until SADTALKER_DIR names a
    checkout with its weights."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    sadtalker_dir: Path | None = None  # the checkout of github.com/OpenTalker/SadTalker
    sadtalker_python: str = "python3"  # the Python of its environment (torch, its requirements.txt)
    sadtalker_checkpoint_dir: Path | None = None  # default <dir>/checkpoints; relative: to the checkout
    sadtalker_size: int = 256  # --size: the face renderer's, 256 or 512 (SadTalker_V0.0.2_<size>.safetensors)
    sadtalker_preprocess: str = "full"  # --preprocess: full pastes the face back on the whole scene
    sadtalker_still: bool = True  # --still: the head keeps the scene's pose (little motion)
    sadtalker_enhancer: str = "none"  # --enhancer: none, gfpgan or RestoreFormer (doubles the frame size)
    sadtalker_pose_style: int = Field(0, ge=0, le=45)  # --pose_style
    sadtalker_expression_scale: float = Field(1.0, gt=0, le=3)  # --expression_scale
    sadtalker_batch_size: int = Field(2, ge=1, le=64)  # --batch_size of the face renderer (VRAM)
    sadtalker_timeout_s: float = Field(1800.0, gt=0)  # one run, start to the muxed MP4

    @field_validator("sadtalker_size")
    @classmethod
    def _size(cls, v: int) -> int:
        if v not in (256, 512):
            raise ValueError("must be 256 or 512")
        return v

    @field_validator("sadtalker_preprocess")
    @classmethod
    def _preprocess(cls, v: str) -> str:
        if v not in ("crop", "extcrop", "resize", "full", "extfull"):
            raise ValueError("must be crop, extcrop, resize, full or extfull")
        return v

    @field_validator("sadtalker_enhancer")
    @classmethod
    def _enhancer(cls, v: str) -> str:
        if v.lower() not in ENHANCERS:
            raise ValueError("must be none, gfpgan or RestoreFormer")
        return v.lower()

    @property
    def enhancer(self) -> str | None:
        return ENHANCERS[self.sadtalker_enhancer]


def checkpoint_dir(s: SadTalkerSettings, checkout: Path) -> Path:
    path = s.sadtalker_checkpoint_dir or Path("checkpoints")
    return path if path.is_absolute() else checkout / path


def weights(s: SadTalkerSettings, checkout: Path) -> dict[str, Path]:
    """The files a run loads, by what they are (scripts/download_models.sh fetches them all)."""
    ckpt = checkpoint_dir(s, checkout)
    facexlib = checkout / "gfpgan" / "weights"  # KeypointExtractor's model_rootpath, relative to the cwd
    # init_path: mapping_00109 with --preprocess full/extfull, mapping_00229 otherwise.
    mapping = "mapping_00109-model.pth.tar" if "full" in s.sadtalker_preprocess else "mapping_00229-model.pth.tar"
    found = {
        f"the SadTalker {s.sadtalker_size} checkpoint": ckpt / f"SadTalker_V0.0.2_{s.sadtalker_size}.safetensors",
        "the mapping net": ckpt / mapping,
        "facexlib's face alignment (AWing)": facexlib / "alignment_WFLW_4HG.pth",
        "facexlib's face detection (RetinaFace)": facexlib / "detection_Resnet50_Final.pth",
    }
    if s.enhancer is not None:
        # face_enhancer.py: gfpgan/weights/<name>.pth, else checkpoints/<name>.pth (the literal
        # folder under the cwd, not --checkpoint_dir), else a download; GFPGANer's face helper
        # loads its parsing net from gfpgan/weights.
        name = "GFPGANv1.4.pth" if s.enhancer == "gfpgan" else "RestoreFormer.pth"
        first, second = facexlib / name, checkout / "checkpoints" / name
        found[f"the {s.enhancer} enhancer"] = second if second.exists() and not first.exists() else first
        found["facexlib's face parsing (ParseNet)"] = facexlib / "parsing_parsenet.pth"
    return found


def argv(s: SadTalkerSettings, checkout: Path, image: Path, audio: Path, result_dir: Path) -> list[str]:
    """inference.py's arguments (paths absolute: it runs in its checkout)."""
    args = ["--driven_audio", str(audio), "--source_image", str(image), "--result_dir", str(result_dir),
            "--checkpoint_dir", str(checkpoint_dir(s, checkout).resolve()), "--size", str(s.sadtalker_size),
            "--preprocess", s.sadtalker_preprocess, "--pose_style", str(s.sadtalker_pose_style),
            "--expression_scale", f"{s.sadtalker_expression_scale:g}", "--batch_size", str(s.sadtalker_batch_size)]
    if s.sadtalker_still:
        args.append("--still")
    if s.enhancer is not None:
        args += ["--enhancer", s.enhancer]
    return args


def bars(s: SadTalkerSettings) -> tuple[tuple[str, float], ...]:
    """The bars a run with these settings draws."""
    skip = set()
    if "full" not in s.sadtalker_preprocess:
        skip.add("seamlessClone")
    if s.enhancer is None:
        skip.add("Face Enhancer")
    return tuple(b for b in BARS if b[0] not in skip)


_NAMED = re.compile(r"^The generated video is named: (.+\.mp4)\s*$")
_STAMPED = re.compile(r"^\d{4}_\d{2}_\d{2}_\d{2}\.\d{2}\.\d{2}\.mp4$")


def output(result_dir: Path, lines: list[str], checkout: Path) -> Path | None:
    """The video of the run: the path its last print names, else the newest ``<stamp>.mp4`` in
    the result folder (a fresh folder per run: there is no other)."""
    for line in reversed(lines):
        named = _NAMED.match(line)
        if named:
            path = Path(named.group(1))
            path = path if path.is_absolute() else checkout / path
            if path.is_file() and path.stat().st_size > 0:
                return path
            break
    made = [p for p in result_dir.glob("*.mp4") if _STAMPED.match(p.name) and p.stat().st_size > 0]
    return max(made, key=lambda p: p.stat().st_mtime, default=None)


_NO_FACE = re.compile(r"can not detect the landmark from source image|No face is detected in the input file"
                      r"|Can't get the coeffs of the input")
_EDGE = re.compile(r"seamlessClone[\s\S]*Assertion failed\) 0 <= roi\.x")
# extract_kp_videos_safe.py: a RuntimeError starting with "CUDA" in face detection is retried
# after a second, for ever.
OOM_WAIT = "Warning: out of memory, sleep for 1s"
_DOWNLOAD = re.compile(r'Downloading: "([^"]+)" to (\S+)')
_OFFLINE = re.compile(r"URLError|HTTPError|urlopen error|ConnectionError|SSLError|Temporary failure in name resolution"
                      r"|Name or service not known|Network is unreachable|timed out")


def hint(output_text: str, s: SadTalkerSettings) -> StepFailure | None:
    """The failures only SadTalker names, from what it printed; None: the common mapping."""
    if _NO_FACE.search(output_text):
        return StepFailure("bad_input", "sadtalker found no face in the scene (SadTalker: \"can not detect the "
                           "landmark from source image\"): its RetinaFace detector needs a clearly visible face",
                           retryable=False)
    if _EDGE.search(output_text):
        return StepFailure("bad_input", f"sadtalker: the face is too near the scene's edge to be pasted back "
                           f"(SADTALKER_PREPROCESS={s.sadtalker_preprocess}: cv2.seamlessClone's region leaves "
                           "the image, a known SadTalker limit): frame the face further from the edges, or set "
                           "SADTALKER_PREPROCESS=extfull", retryable=False)
    downloads = _DOWNLOAD.findall(output_text)
    if downloads and _OFFLINE.search(output_text):
        url, path = downloads[-1]
        return StepFailure("engine_unavailable", f"sadtalker: weights missing: {path} (SadTalker tried to download "
                           f"{url} and could not); put the file there (SadTalker's scripts/download_models.sh)",
                           retryable=False)
    return None


def advice(failure: StepFailure, s: SadTalkerSettings) -> StepFailure:
    """What to change for the failures a setting can avoid."""
    if failure.code == "out_of_memory":
        lighter = [f"SADTALKER_BATCH_SIZE below {s.sadtalker_batch_size}"] if s.sadtalker_batch_size > 1 else []
        if s.sadtalker_size == 512:
            lighter.append("SADTALKER_SIZE=256")
        if s.enhancer is not None:
            lighter.append("SADTALKER_ENHANCER=none")
        tip = f" (try {', '.join(lighter)}, or a GPU with more free memory)" if lighter else ""
        return StepFailure("out_of_memory", failure.message + tip, retryable=failure.retryable)
    return failure


# --- The run, the probe, the upload (generic) -----------------------------------------------------


def load_settings() -> SadTalkerSettings:
    return load_group(SadTalkerSettings)


def setup_problems(s: SadTalkerSettings) -> list[str]:
    """What keeps a run from starting: the checkout, its script, its Python, ffmpeg, the weights."""
    checkout = s.sadtalker_dir
    if checkout is None or not checkout.is_dir():
        where = missing_paths(SADTALKER_DIR=checkout) or [f"SADTALKER_DIR ({checkout}) is not a folder"]
        return [f"{where[0]} (the {TOOL} checkout)"]
    found = []
    if not (checkout / SCRIPT).is_file():
        found.append(f"{TOOL}'s {SCRIPT} is not in SADTALKER_DIR ({checkout})")
    if shutil.which(s.sadtalker_python) is None:
        found.append(f"SADTALKER_PYTHON ({s.sadtalker_python}) is not an executable")
    missing = missing_paths(**weights(s, checkout))
    if missing:
        found.append(f"{TOOL} weights missing: " + "; ".join(missing))
    # SadTalker muxes through os.system("ffmpeg …") and does not look at how that went.
    found += [f"{tool} is not installed" for tool in ("ffmpeg", "ffprobe") if shutil.which(tool) is None]
    return found


class BarProgress:
    """Step progress from a tool's tqdm bars: each known bar (by its description) owns a span of
    [start, end] as wide as its share; others (a download's byte counter) are ignored. Never
    backwards; a report at most every half per cent, and at each bar's end."""

    def __init__(self, spans: tuple[tuple[str, float], ...], report: Callable[[float, str], None], *,
                 start: float = 0.03, end: float = 0.95) -> None:
        total = sum(share for _, share in spans) or 1.0
        self.spans: dict[str, tuple[float, float]] = {}
        at = start
        for name, share in spans:
            width = (end - start) * share / total
            self.spans[name] = (at, at + width)
            at += width
        self.report = report
        self.reached = 0.0

    def line(self, line: str) -> None:
        bar = parse_tqdm(line)
        if bar is None:
            return
        name = bar.desc.rstrip(":").strip()
        span = self.spans.get(name)
        if span is None:
            return
        fraction = span[0] + (span[1] - span[0]) * bar.fraction
        if fraction < self.reached + 0.005 and not (bar.n == bar.total and fraction > self.reached):
            return
        self.reached = fraction
        self.report(fraction, f"{TOOL}: {name} {bar.n}/{bar.total}")


@engine("talking_head", "sadtalker")
class SadTalkerTalkingHead(Engine):
    """SadTalker: the scene's face speaks, its expression and a little motion from the audio
    through a 3D face model, pasted back on the whole scene."""

    # SadTalker's code and its released weights (SadTalker_V0.0.2_*.safetensors, mapping_*.pth.tar):
    # Apache-2.0 (its LICENSE; the README: "we've removed the non-commercial restriction"); no other
    # licence is stated for the weights, though its 3DMM net comes from research trained with the
    # Basel Face Model, whose own terms are non-commercial. facexlib's RetinaFace and AWing weights
    # (gfpgan/weights): MIT (RetinaFace) and Apache-2.0 (AWing). GFPGAN, when
    # SADTALKER_ENHANCER=gfpgan: Apache-2.0 (its "clean" architecture, without the NVIDIA-licensed
    # StyleGAN2 ops). It runs FFmpeg (GPL) for its muxes.
    licence = "Apache-2.0 AND MIT AND GPL-2.0-or-later"
    device = "gpu"
    version = "1"
    settings_group = SadTalkerSettings
    tools = ("ffmpeg", "ffprobe")

    @classmethod
    def problem(cls) -> str | None:
        try:
            s = load_settings()
        except ConfigError as exc:
            return str(exc)
        found = setup_problems(s)
        return "; ".join(found) if found else None

    @classmethod
    def settings_key(cls) -> str:
        try:
            s = load_settings()
        except ConfigError:
            return ""
        return (f"size={s.sadtalker_size} preprocess={s.sadtalker_preprocess} still={int(s.sadtalker_still)} "
                f"enhancer={s.sadtalker_enhancer} pose={s.sadtalker_pose_style} "
                f"expression={s.sadtalker_expression_scale:g}")

    def animate(self, ctx: TaskContext) -> StepOutput:
        try:
            s = load_settings()
        except ConfigError as exc:
            raise StepFailure("bad_input", str(exc)) from None
        problems = setup_problems(s)
        if problems:
            raise StepFailure("engine_unavailable", f"{self.name}: " + "; ".join(problems), retryable=False)
        assert s.sadtalker_dir is not None
        checkout = s.sadtalker_dir.resolve()
        folder = (ctx.work_dir / self.name).resolve()
        shutil.rmtree(folder, ignore_errors=True)
        (folder / "results").mkdir(parents=True)
        # Short names without dots or spaces: the output is named <pic>##<audio>; a path ending in
        # .png is read as an image (the suffix decides, not the content).
        image = ctx.storage.get_file(str(ctx.input("scene").key), folder / "scene.png")
        audio = ctx.storage.get_file(str(ctx.input("speech").key), folder / "speech.wav")
        cmd = [s.sadtalker_python, SCRIPT, *argv(s, checkout, image, audio, folder / "results")]
        lines = self._run(ctx, s, cmd, checkout)
        video = output(folder / "results", lines, checkout)
        if video is None:
            failure = hint("\n".join(lines), s)
            raise failure or StepFailure("engine_failed", f"{self.name}: {TOOL} exited without an error but made no "
                                         "video in its result folder; it printed last: " + " | ".join(lines[-4:]))
        return self._hand_back(ctx, s, video)

    def _run(self, ctx: TaskContext, s: SadTalkerSettings, cmd: list[str], checkout: Path) -> list[str]:
        progress = BarProgress(bars(s), ctx.progress)
        ctx.progress(0.01, f"{TOOL}: loading its models")
        try:
            return stream(cmd, s.sadtalker_timeout_s, ctx.cancelled, on_line=progress.line, cwd=checkout,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
        except ToolTimeout as exc:
            if OOM_WAIT in str(exc):  # its face detection retries forever on CUDA errors
                raise advice(StepFailure("out_of_memory", f"{self.name}: {TOOL}'s face detection waited for GPU "
                                         f"memory until SADTALKER_TIMEOUT_S ({s.sadtalker_timeout_s:g} s) and was "
                                         f"stopped (\"{OOM_WAIT}\")", retryable=True), s) from None
            raise StepFailure("timeout", f"{self.name}: {TOOL} ran past SADTALKER_TIMEOUT_S "
                              f"({s.sadtalker_timeout_s:g} s) and was stopped") from None
        except (ToolExited, Cancelled) as exc:
            raise advice(run_failure(self.name, exc, hint=lambda out: hint(out, s)), s) from None
        except ToolFailed as exc:  # it did not start: SADTALKER_PYTHON went away since the check
            raise StepFailure("engine_unavailable", f"{self.name}: {exc} (SADTALKER_PYTHON)", retryable=False) from None

    def _hand_back(self, ctx: TaskContext, s: SadTalkerSettings, video: Path) -> StepOutput:
        from ...media.encode import FPS
        from ...media.video import probe

        info = probe(video)
        frames = info["nb_frames"]
        if info["has_video"] and frames is None:
            frames = probe(video, count_frames=True)["nb_frames"]
        if not info["has_video"] or not frames:
            raise StepFailure("engine_failed", f"{self.name}: {TOOL}'s {video.name} has no video frames")
        ctx.progress(0.97, f"{TOOL}: {frames} frames made")
        duration = info["video_duration_sec"] or info["duration_sec"] or frames / (info["fps"] or FPS)
        meta: dict[str, Any] = {
            "width": int(info["width"]), "height": int(info["height"]), "frames": int(frames), "fps": info["fps"],
            "durationSec": round(float(duration), 3), "encode": ENCODE, "subtitlesBurned": False, "lipSync": True,
            "sadtalker": {"size": s.sadtalker_size, "preprocess": s.sadtalker_preprocess,
                          "still": s.sadtalker_still, "enhancer": s.enhancer},
        }
        ref = ctx.upload("talking_head.mp4", video, "video", "video/mp4", meta)
        outputs: dict[str, Any] = {"videoKey": ref["key"], **meta}
        wanted = (ctx.payload["width"], ctx.payload["height"])
        if (meta["width"], meta["height"]) != wanted:
            outputs["note"] = (f"{TOOL} made {meta['width']}x{meta['height']} frames, not the output's "
                               f"{wanted[0]}x{wanted[1]} (SADTALKER_PREPROCESS={s.sadtalker_preprocess}, "
                               f"SADTALKER_ENHANCER={s.sadtalker_enhancer}): an upscale step can scale them")
        return StepOutput([ref], outputs)


ENGINES: tuple[type[Engine], ...] = (SadTalkerTalkingHead,)
