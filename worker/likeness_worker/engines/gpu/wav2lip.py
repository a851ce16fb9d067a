"""``wav2lip`` lipsync and talking_head engines: Wav2Lip's ``inference.py`` (github.com/Rudrabha/Wav2Lip)
run in its checkout's Python on the video so far (lipsync) or on the scene still (talking_head).

Its interface, from inference.py: ``--checkpoint_path`` (required), ``--face`` (a video, or an
image: a path whose ``split('.')[1]`` is jpg/png/jpeg is static), ``--audio`` (a .wav is read as is;
anything else goes through ``ffmpeg … temp/temp.wav``), ``--outfile`` (default
``results/result_voice.mp4``), ``--static`` (argparse ``type=bool``: any value is True), ``--fps``
(a still's rate, default 25), ``--pads`` (top bottom left right, default 0 10 0 0),
``--face_det_batch_size`` (16), ``--wav2lip_batch_size`` (128), ``--resize_factor``, ``--crop``,
``--box``, ``--rotate``, ``--nosmooth``. It writes ``temp/result.avi`` relative to its cwd, then
runs ``ffmpeg -y -i <audio> -i temp/result.avi -strict -2 -q:v 1 <outfile>`` through a shell and
does not check it. Its bars: the generation bar (``total`` = batches) shows 0 first, then the S3FD
face detection bar runs to its end, then the generation bar moves.

So it runs in the run folder (a fresh ``temp/`` and ``results/`` there: two runs never share
``temp/result.avi``) on ``face.<ext>`` and ``speech.wav`` by relative name, with the checkpoint by
absolute path; its own modules come from the script's folder (sys.path[0]), the S3FD weights from
``face_detection/detection/sfd/s3fd.pth`` beside them (without that file it would download it).

Resident (WAV2LIP_RESIDENT, on by default): ``wav2lip_host.py`` runs inference.py's own code in a
process kept between steps (engines/gpu/resident.py), with the same arguments and the same run
folder: the checkpoint is loaded once per worker process, and the face boxes found in a source
(by its SHA-256 and the settings that shape them) are reused when the same scene or video comes
again (a retry, another job on the same still). WAV2LIP_RESIDENT=false runs inference.py once per
step, as a script.

Failures: "Face not detected! Ensure the video contains a face in all the frames." (a ValueError)
→ bad_input, not retried; "Image too big to run face detection on GPU" → out_of_memory; "Mel
contains nan!" → bad_input; torch's CUDA out of memory → out_of_memory; the checkpoint's
FileNotFoundError → engine_unavailable; no video at ``--outfile`` (its ffmpeg failed) → engine_failed.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from ...errors import StepFailure
from ..base import engine
from .face_tools import FaceTool, Lipsync, Run, TalkingHead
from .resident import Resident

OUTFILE = "results/result_voice.mp4"  # inference.py's default, under the run folder


class Wav2LipSettings(BaseModel):
    """WAV2LIP_*: all optional; the engines are advertised unhealthy until WAV2LIP_DIR names a
    checkout with its weights."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    wav2lip_dir: Path | None = None  # the checkout of github.com/Rudrabha/Wav2Lip
    wav2lip_python: str = "python3"  # the Python of its environment (torch, librosa, its requirements.txt)
    wav2lip_checkpoint: Path | None = None  # default <dir>/checkpoints/wav2lip_gan.pth; relative: to the checkout
    wav2lip_timeout_s: float = Field(1800.0, gt=0)  # one run, start to the muxed MP4
    wav2lip_batch_size: int = Field(128, ge=1)  # --wav2lip_batch_size
    wav2lip_face_det_batch_size: int = Field(16, ge=1)  # --face_det_batch_size (it halves it on OOM itself)
    wav2lip_pads: str = Field("0 10 0 0", pattern=r"^-?\d+ -?\d+ -?\d+ -?\d+$")  # --pads top bottom left right
    wav2lip_resident: bool = True  # keep Wav2Lip loaded between steps (wav2lip_host.py); false: one process a step


def checkpoint(s: Wav2LipSettings, checkout: Path) -> Path:
    path = s.wav2lip_checkpoint or Path("checkpoints/wav2lip_gan.pth")
    return path if path.is_absolute() else checkout / path


class _Wav2Lip(FaceTool):
    # Wav2Lip's README: "This repository can only be used for personal/research/non-commercial
    # purposes" (its code and its LRS2-trained weights); it runs FFmpeg (GPL) for the mux.
    licence = "LicenseRef-Wav2Lip-NonCommercial AND GPL-2.0-or-later"
    non_commercial = True
    tool = "Wav2Lip"
    settings_group = Wav2LipSettings
    prefix = "wav2lip"
    script = "inference.py"
    bars = ("detecting the face", "lip sync")
    encode = "wav2lip output (re-encoded by mux)"
    host_script = Path(__file__).with_name("wav2lip_host.py")
    resident = Resident("Wav2Lip", "WAV2LIP_TIMEOUT_S")  # one host for both engines: one model on the card

    @classmethod
    def weights(cls, s: Wav2LipSettings, checkout: Path) -> dict[str, Path]:
        return {"WAV2LIP_CHECKPOINT": checkpoint(s, checkout),
                "the S3FD face detector": checkout / "face_detection/detection/sfd/s3fd.pth"}

    def argv(self, s: Wav2LipSettings, run: Run) -> list[str]:
        (run.folder / "temp").mkdir(exist_ok=True)
        (run.folder / "results").mkdir(exist_ok=True)
        args = ["--checkpoint_path", str(checkpoint(s, run.checkout).resolve()),
                "--face", run.face.name, "--audio", run.audio.name, "--outfile", OUTFILE,
                "--pads", *s.wav2lip_pads.split(),
                "--face_det_batch_size", str(s.wav2lip_face_det_batch_size),
                "--wav2lip_batch_size", str(s.wav2lip_batch_size)]
        if run.still:
            args += ["--static", "True", "--fps", str(run.fps)]
        return args

    def host_argv(self, s: Wav2LipSettings, checkout: Path) -> list[str]:
        return ["--checkpoint_path", str(checkpoint(s, checkout).resolve())]

    def output(self, s: Wav2LipSettings, run: Run, lines: list[str]) -> Path:
        return run.folder / OUTFILE

    def hint(self, s: Wav2LipSettings, output: str) -> StepFailure | None:
        if "Face not detected!" in output:
            return StepFailure("bad_input", "wav2lip found no face in a frame of its input (Wav2Lip: \"Face not "
                               "detected! Ensure the video contains a face in all the frames.\"): the face must be "
                               "visible in every frame", retryable=False)
        if "Image too big to run face detection on GPU" in output:
            return StepFailure("out_of_memory", "wav2lip: the frames are too big for its face detection on this GPU "
                               "even one at a time: a smaller output size, or a GPU with more free memory")
        if "Mel contains nan" in output:
            return StepFailure("bad_input", "wav2lip: the speech gives a NaN mel spectrogram (Wav2Lip: \"Mel "
                               "contains nan!\"): it may be digital silence", retryable=False)
        return None


@engine("lipsync", "wav2lip")
class Wav2LipLipsync(_Wav2Lip, Lipsync):
    """Wav2Lip on the video so far: the mouth region of each frame redrawn for the speech
    (research / non-commercial use only)."""


@engine("talking_head", "wav2lip")
class Wav2LipTalkingHead(_Wav2Lip, TalkingHead):
    """Wav2Lip on the scene still (``--static``): only the mouth moves, at 25 fps
    (research / non-commercial use only)."""
