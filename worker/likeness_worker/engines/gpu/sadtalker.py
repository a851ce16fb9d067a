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

Here: the scene (already at the output size) as ``face.png``, the speech as ``speech.wav``, in a
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

Resident (SADTALKER_RESIDENT, on by default): ``sadtalker_host.py`` runs inference.py's own
``main(args)`` in a process kept between steps (engines/gpu/resident.py), in the checkout, with the
same arguments: its three models (CropAndExtract, Audio2Coeff, AnimateFromCoeff) are built once per
worker process (again when SADTALKER_CHECKPOINT_DIR, _SIZE or _PREPROCESS change: a fresh host),
and the crop and 3DMM coefficients of a scene (by its SHA-256, --preprocess, --size) are reused
when the same scene comes again (a retry, another job on the same still): its face detection and
3DMM bars are then skipped. A failure other than the user's input (no face, the face at the edge)
stops the host; a cancel or the time limit kills it. SADTALKER_RESIDENT=false runs inference.py
once per step, as a script.

The fetch, the run (process group, time limit, cancel), progress, the search for its video, the
probe and the upload are face_tools.FaceTool's; here is what is SadTalker's.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ...config import ConfigError, load_group
from ...errors import StepFailure
from ..base import Engine, TaskContext, engine
from .face_tools import Bar, Run, TalkingHead
from .resident import Resident

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
    sadtalker_resident: bool = True  # keep SadTalker loaded between steps (sadtalker_host.py); false: one process a step

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


_NAMED = re.compile(r"^The generated video is named: (.+\.mp4)\s*$")
_NO_FACE = re.compile(r"can not detect the landmark from source image|No face is detected in the input file"
                      r"|Can't get the coeffs of the input")
_EDGE = re.compile(r"seamlessClone[\s\S]*Assertion failed\) 0 <= roi\.x")
# extract_kp_videos_safe.py: a RuntimeError starting with "CUDA" in face detection is retried
# after a second, for ever.
OOM_WAIT = "Warning: out of memory, sleep for 1s"
_DOWNLOAD = re.compile(r'Downloading: "([^"]+)" to (\S+)')
_OFFLINE = re.compile(r"URLError|HTTPError|urlopen error|ConnectionError|SSLError|Temporary failure in name resolution"
                      r"|Name or service not known|Network is unreachable|timed out")


@engine("talking_head", "sadtalker")
class SadTalkerTalkingHead(TalkingHead):
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
    tool = "SadTalker"
    settings_group = SadTalkerSettings
    prefix = "sadtalker"
    script = "inference.py"
    in_checkout = True  # facexlib's weights are looked up in gfpgan/weights, ffmpeg's temporary files in the cwd
    bars = BARS
    bars_by_name = True  # a download's bar is not a stage
    encode = "sadtalker output (re-encoded by mux)"
    # SadTalker muxes through os.system("ffmpeg …") and does not look at how that went.
    tools = ("ffmpeg", "ffprobe")
    host_script = Path(__file__).with_name("sadtalker_host.py")
    resident = Resident("SadTalker", "SADTALKER_TIMEOUT_S")

    @classmethod
    def settings_key(cls) -> str:
        try:
            s = load_group(SadTalkerSettings)
        except ConfigError:
            return ""
        return (f"size={s.sadtalker_size} preprocess={s.sadtalker_preprocess} still={int(s.sadtalker_still)} "
                f"enhancer={s.sadtalker_enhancer} pose={s.sadtalker_pose_style} "
                f"expression={s.sadtalker_expression_scale:g}")

    @classmethod
    def weights(cls, s: SadTalkerSettings, checkout: Path) -> dict[str, Path]:
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

    def drawn(self, s: SadTalkerSettings) -> tuple[Bar, ...]:
        skip = set()
        if "full" not in s.sadtalker_preprocess:
            skip.add("seamlessClone")
        if s.enhancer is None:
            skip.add("Face Enhancer")
        return tuple(b for b in BARS if b[0] not in skip)

    def argv(self, s: SadTalkerSettings, run: Run) -> list[str]:
        """inference.py's arguments (paths absolute: it runs in its checkout). The image is read as
        one by its name (``face.png``); the output is named <pic>##<audio> (no dots, no spaces)."""
        (run.folder / "results").mkdir()
        args = ["--driven_audio", str(run.audio), "--source_image", str(run.face),
                "--result_dir", str(self.results(s, run)),
                "--checkpoint_dir", str(checkpoint_dir(s, run.checkout).resolve()), "--size", str(s.sadtalker_size),
                "--preprocess", s.sadtalker_preprocess, "--pose_style", str(s.sadtalker_pose_style),
                "--expression_scale", f"{s.sadtalker_expression_scale:g}", "--batch_size", str(s.sadtalker_batch_size)]
        if s.sadtalker_still:
            args.append("--still")
        if s.enhancer is not None:
            args += ["--enhancer", s.enhancer]
        return args

    def host_argv(self, s: SadTalkerSettings, checkout: Path) -> list[str]:
        """What the host builds its models for before it says ready (what init_path reads)."""
        return ["--checkpoint_dir", str(checkpoint_dir(s, checkout).resolve()), "--size", str(s.sadtalker_size),
                "--preprocess", s.sadtalker_preprocess]

    def output(self, s: SadTalkerSettings, run: Run, lines: list[str]) -> Path | None:
        """The path its last print names; else the newest MP4 in the result folder (a fresh folder
        per run, where it leaves only ``<stamp>.mp4``)."""
        for line in reversed(lines):
            named = _NAMED.match(line)
            if named:
                path = Path(named.group(1))
                return path if path.is_absolute() else run.checkout / path
        return None

    def results(self, s: SadTalkerSettings, run: Run) -> Path:
        return run.folder / "results"

    def hint(self, s: SadTalkerSettings, output: str) -> StepFailure | None:
        if _NO_FACE.search(output):
            return StepFailure("bad_input", "sadtalker found no face in the scene (SadTalker: \"can not detect the "
                               "landmark from source image\"): its RetinaFace detector needs a clearly visible face",
                               retryable=False)
        if _EDGE.search(output):
            return StepFailure("bad_input", f"sadtalker: the face is too near the scene's edge to be pasted back "
                               f"(SADTALKER_PREPROCESS={s.sadtalker_preprocess}: cv2.seamlessClone's region leaves "
                               "the image, a known SadTalker limit): frame the face further from the edges, or set "
                               "SADTALKER_PREPROCESS=extfull", retryable=False)
        downloads = _DOWNLOAD.findall(output)
        if downloads and _OFFLINE.search(output):
            url, path = downloads[-1]
            return StepFailure("engine_unavailable", f"sadtalker: weights missing: {path} (SadTalker tried to "
                               f"download {url} and could not); put the file there (SadTalker's "
                               "scripts/download_models.sh)", retryable=False)
        return None

    def timeout_hint(self, s: SadTalkerSettings, output: str) -> StepFailure | None:
        if OOM_WAIT in output:  # its face detection retries forever on CUDA errors
            return StepFailure("out_of_memory", f"{self.name}: {self.tool}'s face detection waited for GPU memory "
                               f"until SADTALKER_TIMEOUT_S ({s.sadtalker_timeout_s:g} s) and was stopped "
                               f"(\"{OOM_WAIT}\")", retryable=True)
        return None

    def advice(self, s: SadTalkerSettings, failure: StepFailure) -> StepFailure:
        if failure.code == "out_of_memory":
            lighter = [f"SADTALKER_BATCH_SIZE below {s.sadtalker_batch_size}"] if s.sadtalker_batch_size > 1 else []
            if s.sadtalker_size == 512:
                lighter.append("SADTALKER_SIZE=256")
            if s.enhancer is not None:
                lighter.append("SADTALKER_ENHANCER=none")
            tip = f" (try {', '.join(lighter)}, or a GPU with more free memory)" if lighter else ""
            return StepFailure("out_of_memory", failure.message + tip, retryable=failure.retryable)
        return failure

    def meta(self, s: SadTalkerSettings) -> dict[str, Any]:
        return {"sadtalker": {"size": s.sadtalker_size, "preprocess": s.sadtalker_preprocess,
                              "still": s.sadtalker_still, "enhancer": s.enhancer}}

    def note(self, s: SadTalkerSettings, ctx: TaskContext, meta: dict[str, Any]) -> str | None:
        wanted = (ctx.payload["width"], ctx.payload["height"])
        if (meta["width"], meta["height"]) == wanted:
            return None
        return (f"{self.tool} made {meta['width']}x{meta['height']} frames, not the output's {wanted[0]}x{wanted[1]} "
                f"(SADTALKER_PREPROCESS={s.sadtalker_preprocess}, SADTALKER_ENHANCER={s.sadtalker_enhancer}): "
                "an upscale step can scale them")


ENGINES: tuple[type[Engine], ...] = (SadTalkerTalkingHead,)
