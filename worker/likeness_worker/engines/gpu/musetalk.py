"""``musetalk`` lipsync engine: MuseTalk (github.com/TMElyralab/MuseTalk), the lip sync whose code
and weights allow commercial use, run in its checkout's Python on the video so far.

Its interface, from its README and scripts/inference.py: in the checkout (its model paths are
relative: ``./models/…``, ``./musetalk/utils/dwpose/…``) ``python -m scripts.inference
--inference_config <yaml> --result_dir <dir> --unet_model_path models/musetalkV15/unet.pth
--unet_config models/musetalkV15/musetalk.json --version v15`` (v1: models/musetalk/
pytorch_model.bin), with ``--batch_size`` (8), ``--fps`` (25, for stills), ``--use_float16``. The
YAML has one entry per task: ``task_0: {video_path, audio_path, bbox_shift (v1 only)}``. A task's
video lands at ``<result_dir>/<version>/<video name up to its first dot>_<audio name up to its
first dot>.mp4``; its frames are cut to ``<result_dir>/<version>/<video>/`` and its face boxes
pickled to ``<result_dir>/../<video>.pkl``, all through ``os.system`` (paths unquoted: the run
folder must be shell-safe). Its bars: reading images, face landmarks, inference (batches), blending.

Each task runs in ``try/except Exception: print("Error occurred during processing:", e)`` and the
script exits 0: a task's out of memory, crash or missing face is read from that line when no video
was made (no face in any frame ends in "division by zero" from its bbox_shift banner). Loading
the models is outside it: a missing weight file is a traceback and exit 1. Its S3FD face detector
is downloaded on first use (torch hub cache) unless the checkout has it: offline, that download
fails, which is said so.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ...errors import StepFailure
from ..base import engine
from .face_tools import Lipsync, Run

_SHELL_SAFE = re.compile(r"^[\w./+-]+$")
UNET = {"v15": ("musetalkV15/unet.pth", "musetalkV15/musetalk.json"),
        "v1": ("musetalk/pytorch_model.bin", "musetalk/musetalk.json")}
# The other weights its README's ``./models/`` tree holds, by what they are.
MODELS = {
    "the VAE (sd-vae)": "sd-vae/diffusion_pytorch_model.bin",
    "the VAE config": "sd-vae/config.json",
    "Whisper": "whisper/pytorch_model.bin",
    "Whisper's config": "whisper/config.json",
    "Whisper's preprocessor config": "whisper/preprocessor_config.json",
    "DWPose": "dwpose/dw-ll_ucoco_384.pth",
    "the face parser (BiSeNet)": "face-parse-bisent/79999_iter.pth",
    "the face parser's ResNet-18": "face-parse-bisent/resnet18-5c106cde.pth",
}


class MuseTalkSettings(BaseModel):
    """MUSETALK_*: all optional; the engine is advertised unhealthy until MUSETALK_DIR names a
    checkout with its ./models (download_weights.sh)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    musetalk_dir: Path | None = None  # the checkout of github.com/TMElyralab/MuseTalk
    musetalk_python: str = "python3"  # the Python of its environment (torch, mmpose, diffusers…)
    musetalk_version: Literal["v15", "v1"] = "v15"  # --version: MuseTalk 1.5 (recommended) or 1.0
    musetalk_timeout_s: float = Field(1800.0, gt=0)  # one run, start to the muxed MP4
    musetalk_batch_size: int = Field(8, ge=1)  # --batch_size
    musetalk_float16: bool = False  # --use_float16: less GPU memory, a little less quality


@engine("lipsync", "musetalk")
class MuseTalkLipsync(Lipsync):
    """MuseTalk 1.5 on the video so far: the lower face of each frame redrawn for the speech by
    a latent inpainting UNet (MIT code, weights free for commercial use)."""

    # MuseTalk: code MIT, its trained weights "available for any purpose, even commercially"
    # (README); the models it loads: Whisper-tiny and sd-vae-ft-mse (MIT), DWPose and mmpose
    # (Apache-2.0), face-parsing BiSeNet (MIT), S3FD via face-alignment and ResNet-18 (BSD-3-Clause);
    # FFmpeg (GPL) for its frames and mux.
    licence = "MIT AND Apache-2.0 AND BSD-3-Clause AND GPL-2.0-or-later"
    tool = "MuseTalk"
    settings_group = MuseTalkSettings
    prefix = "musetalk"
    script = "scripts/inference.py"
    module = "scripts.inference"
    in_checkout = True
    bars = ("reading frames", "finding the face", "lip sync", "blending")
    encode = "musetalk output (re-encoded by mux)"

    @classmethod
    def weights(cls, s: MuseTalkSettings, checkout: Path) -> dict[str, Path]:
        unet, config = UNET[s.musetalk_version]
        models = checkout / "models"
        return {"the UNet": models / unet, "the UNet config": models / config,
                **{name: models / path for name, path in MODELS.items()}}

    def argv(self, s: MuseTalkSettings, run: Run) -> list[str]:
        if not _SHELL_SAFE.match(str(run.folder)):
            raise StepFailure("engine_unavailable", f"musetalk: the work folder {run.folder} has characters a shell "
                              "would split on (MuseTalk passes its paths to ffmpeg through os.system): set "
                              "WORKER_WORK_DIR to a plain path", retryable=False)
        task = {"video_path": str(run.face), "audio_path": str(run.audio)}
        (run.folder / "tasks.yaml").write_text(
            "task_0:\n" + "".join(f"  {k}: {json.dumps(v)}\n" for k, v in task.items()))
        unet, config = (str(run.checkout / "models" / p) for p in UNET[s.musetalk_version])
        args = ["--inference_config", str(run.folder / "tasks.yaml"), "--result_dir", str(run.folder / "results"),
                "--unet_model_path", unet, "--unet_config", config, "--version", s.musetalk_version,
                "--batch_size", str(s.musetalk_batch_size), "--fps", str(run.fps)]
        return [*args, "--use_float16"] if s.musetalk_float16 else args

    def output(self, s: MuseTalkSettings, run: Run, lines: list[str]) -> Path:
        name = f"{run.face.name.split('.')[0]}_{run.audio.name.split('.')[0]}.mp4"
        return run.folder / "results" / s.musetalk_version / name

    def results(self, s: MuseTalkSettings, run: Run) -> Path:
        return run.folder / "results"

    def hint(self, s: MuseTalkSettings, output: str) -> StepFailure | None:
        if "Error occurred during processing: division by zero" in output and "Number of frames:" not in output:
            return StepFailure("bad_input", "musetalk found no face in any frame of the video (MuseTalk: \"Error "
                               "occurred during processing: division by zero\" after its face landmarks)",
                               retryable=False)
        if "s3fd" in output and ("urlopen" in output or "URLError" in output):
            return StepFailure("engine_unavailable", "musetalk: weights missing: its S3FD face detector "
                               "(s3fd-619a316812.pth) is downloaded on first use and the download failed: put it "
                               "in the torch hub cache of MUSETALK_PYTHON's user, or at musetalk/utils/"
                               "face_detection/detection/sfd/s3fd.pth in the checkout", retryable=False)
        return None
