"""What every engine over a face-animation script shares: this face (a video or a still) speaks
this speech, and the tool hands back the video.

Wav2Lip, MuseTalk, SadTalker, LatentSync and LivePortrait look alike from here: a checkout with its
own Python, one documented script that takes a face and a WAV, draws tqdm bars, and writes an MP4
(the speech muxed in by its own ffmpeg call). ``FaceTool.make`` does it once for all of them:

1. refuse at once (engine_unavailable, not retryable) when the checkout, the script, the Python,
   ffmpeg or a weight file is missing, naming it (``problem()`` says the same);
2. fetch the face and the speech into a fresh run folder (``face.<ext>``, ``speech.wav``: short
   names, no spaces; some tools split paths on dots or pass them through a shell);
3. run the script with ``media.proc.stream`` (its own process group: a cancel or
   ``<PREFIX>_TIMEOUT_S`` kills it and its ffmpeg), its tqdm bars turned into step progress;
4. find its video: the documented path, else the newest MP4 the run made under its result folder;
   none is a failure read from its output (out of memory, weights missing, the tool's own hint…);
5. probe it (no video stream, or no frames: engine_failed) and return it as the built-in video
   engines do: ``outputs.videoKey`` with width, height, frames, fps, durationSec, ``encode`` (the
   tool's own encode, not our final stream: mux encodes once and burns subtitles when asked),
   ``subtitlesBurned`` False, ``lipSync`` True.

A tool is one file: a settings group whose fields start with its ``prefix`` (``<prefix>_dir``,
``<prefix>_python``, ``<prefix>_timeout_s``, then its own), and a class over ``Lipsync`` or
``TalkingHead`` that says its ``script`` (or ``module``), ``argv`` for a ``Run``, where its
``output`` lands, its ``weights`` and its own failures (``hint``).
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel

from ...config import ConfigError, load_group
from ...errors import StepFailure
from ...media.encode import FPS
from ...media.errors import Cancelled, ToolFailed, ToolTimeout
from ...media.proc import ToolExited, stream
from ..base import Engine, StepOutput, TaskContext
from .tooling import TqdmLine, missing_paths, parse_tqdm, run_failure

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


@dataclass(frozen=True)
class Run:
    """One run of a tool: its checkout, a fresh folder, and the inputs put in that folder."""

    checkout: Path
    folder: Path  # the run's own folder: the tool's cwd unless ``in_checkout``
    face: Path  # the face video or still (``face.<ext>``, in ``folder``)
    audio: Path  # the speech (``speech.wav``, in ``folder``)
    still: bool  # ``face`` is an image
    fps: int = FPS  # the frame rate to ask for when the face is a still


class FaceTool(Engine):
    """Base of the engines over a face-animation script (see the module docstring)."""

    device = "gpu"
    version = "1"
    tools = ("ffmpeg",)

    tool: ClassVar[str]  # its name in messages: "Wav2Lip"
    settings_group: ClassVar[type[BaseModel]]  # its settings group (config.load_group): required here
    prefix: ClassVar[str]  # of its settings' fields: "wav2lip" -> WAV2LIP_DIR, WAV2LIP_PYTHON, WAV2LIP_TIMEOUT_S
    script: ClassVar[str]  # relative to the checkout: what problem() looks for, what is run
    module: ClassVar[str | None] = None  # run as ``python -m module`` instead (with ``in_checkout``)
    in_checkout: ClassVar[bool] = False  # cwd: the checkout (relative model paths), else the run folder
    bars: ClassVar[tuple[str, ...]] = ("working",)  # the tqdm bars one run draws, in order
    encode: ClassVar[str]  # outputs.encode: whose encode the frames are

    # What each tool says ---------------------------------------------------------------------
    @classmethod
    def weights(cls, s: Any, checkout: Path) -> dict[str, Path]:
        """What the run loads, by name: each must exist (problem() and make() check)."""
        return {}

    def argv(self, s: Any, run: Run) -> list[str]:
        """The script's arguments; it may write what they name (a task file) into ``run.folder``."""
        raise NotImplementedError

    def output(self, s: Any, run: Run) -> Path:
        """Where the script writes the video (its documented path for these arguments)."""
        raise NotImplementedError

    def results(self, s: Any, run: Run) -> Path:
        """Where else to look for a video the run made when ``output`` is not there."""
        return run.folder

    def hint(self, output: str) -> StepFailure | None:
        """The failures only this tool names, from the tail of what it printed (its face
        detector found no face: the user's input, not a crash). None: the common mapping."""
        return None

    # Health ------------------------------------------------------------------------------------
    @classmethod
    def problem(cls) -> str | None:
        try:
            s = load_group(cls.settings_group)
        except ConfigError as exc:
            return str(exc)
        found = cls._missing(s)
        return "; ".join(found) if found else None

    @classmethod
    def _setting(cls, s: Any, field: str) -> Any:
        return getattr(s, f"{cls.prefix}_{field}")

    @classmethod
    def _missing(cls, s: Any) -> list[str]:
        env = cls.prefix.upper()
        checkout: Path | None = cls._setting(s, "dir")
        if checkout is None:
            return [f"{env}_DIR is not set (the {cls.tool} checkout)"]
        if not checkout.is_dir():
            return [f"{env}_DIR ({checkout}) is not a folder (the {cls.tool} checkout)"]
        found = []
        if not (checkout / cls.script).is_file():
            found.append(f"{cls.tool}'s {cls.script} is not in {env}_DIR ({checkout})")
        python = cls._setting(s, "python")
        if shutil.which(python) is None:
            found.append(f"{env}_PYTHON ({python}) is not an executable")
        weights = missing_paths(**cls.weights(s, checkout))
        if weights:
            found.append(f"{cls.tool} weights missing: " + "; ".join(weights))
        found += [f"{t} is not installed" for t in cls.tools if shutil.which(t) is None]
        return found

    # The step ----------------------------------------------------------------------------------
    def make(self, ctx: TaskContext, face_input: str, name: str) -> StepOutput:
        """``face_input`` (a declared input: ``video`` or ``scene``) speaks the ``speech`` input;
        the video is uploaded as ``name``."""
        try:
            s = load_group(self.settings_group)
        except ConfigError as exc:
            raise StepFailure("bad_input", str(exc)) from None
        problems = self._missing(s)
        if problems:
            raise StepFailure("engine_unavailable", f"{self.name}: " + "; ".join(problems), retryable=False)
        folder = ctx.work_dir / self.name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        face_key = str(ctx.input(face_input).key)
        suffix = Path(face_key).suffix.lower() or (".png" if face_input == "scene" else ".mp4")
        face = ctx.storage.get_file(face_key, folder / f"face{suffix}")
        audio = ctx.storage.get_file(str(ctx.input("speech").key), folder / "speech.wav")
        run = Run(Path(self._setting(s, "dir")).resolve(), folder, face, audio, still=suffix in IMAGE_SUFFIXES)
        video = self._run(ctx, s, run)
        return self._hand_back(ctx, video, name)

    def _run(self, ctx: TaskContext, s: Any, run: Run) -> Path:
        python, timeout = self._setting(s, "python"), float(self._setting(s, "timeout_s"))
        head = [python, "-m", self.module] if self.module else [python, str(run.checkout / self.script)]
        cmd = [*head, *self.argv(s, run)]
        bars = _Bars(self.bars)

        def on_line(line: str) -> None:
            bar = parse_tqdm(line)
            if bar is not None:
                fraction, label = bars.update(bar)
                ctx.progress(0.02 + 0.93 * fraction, f"{self.tool}: {label} {bar.n}/{bar.total}")

        ctx.progress(0.01, f"{self.tool}: starting")
        started = time.time()
        try:
            lines = stream(cmd, timeout, ctx.cancelled, on_line=on_line,
                           cwd=run.checkout if self.in_checkout else run.folder,
                           env={**os.environ, "PYTHONUNBUFFERED": "1"})
        except ToolTimeout:
            raise StepFailure("timeout", f"{self.name}: {self.tool} ran past {self.prefix.upper()}_TIMEOUT_S "
                              f"({timeout:g} s) and was stopped") from None
        except (ToolExited, Cancelled) as exc:
            raise run_failure(self.name, exc, hint=self.hint) from None
        except ToolFailed as exc:  # it did not start
            raise StepFailure("engine_unavailable", f"{self.name}: {exc}", retryable=False) from None
        video = self._find(s, run, started)
        if video is None:
            raise self._no_video(s, run, lines)
        return video

    def _find(self, s: Any, run: Run, started: float) -> Path | None:
        documented = self.output(s, run)
        if documented.is_file() and documented.stat().st_size > 0:
            return documented
        made = [p for p in self.results(s, run).rglob("*.mp4")
                if p not in (run.face, run.audio) and p.stat().st_size > 0 and p.stat().st_mtime >= started - 1]
        return max(made, key=lambda p: p.stat().st_mtime, default=None)

    def _no_video(self, s: Any, run: Run, lines: list[str]) -> StepFailure:
        """It exited 0 without a video (MuseTalk prints a task's exception and goes on; Wav2Lip
        does not check its ffmpeg): why, from what it printed."""
        failure = run_failure(self.name, ToolExited("", 0, "\n".join(lines)), hint=self.hint)
        if failure.code != "engine_failed":
            return failure
        return StepFailure("engine_failed", f"{self.name}: {self.tool} exited without an error but made no video "
                           f"({self.output(s, run).name}); it printed last: " + " | ".join(lines[-4:]))

    def _hand_back(self, ctx: TaskContext, video: Path, name: str) -> StepOutput:
        from ...media.video import probe

        info = probe(video)
        frames = info["nb_frames"]
        if info["has_video"] and frames is None:
            frames = probe(video, count_frames=True)["nb_frames"]
        if not info["has_video"] or not frames:
            raise StepFailure("engine_failed", f"{self.name}: {self.tool}'s {video.name} has no video frames")
        ctx.progress(0.97, f"{self.tool}: {frames} frames made")
        duration = info["video_duration_sec"] or info["duration_sec"] or frames / (info["fps"] or FPS)
        meta = {"width": int(info["width"]), "height": int(info["height"]), "frames": int(frames),
                "fps": info["fps"], "durationSec": round(float(duration), 3), "encode": self.encode,
                "subtitlesBurned": False, "lipSync": True}
        ref = ctx.upload(name, video, "video", "video/mp4", meta)
        return StepOutput([ref], {"videoKey": ref["key"], **meta})


class Lipsync(FaceTool):
    """A lipsync engine: the video so far speaks the speech."""

    def sync(self, ctx: TaskContext) -> StepOutput:
        return self.make(ctx, "video", "lipsync.mp4")


class TalkingHead(FaceTool):
    """A talking_head engine: the scene (a still) speaks the speech."""

    def animate(self, ctx: TaskContext) -> StepOutput:
        return self.make(ctx, "scene", "talking_head.mp4")


class _Bars:
    """Step progress from the tqdm bars of one run: ``labels`` names the bars it draws in order.
    A bar that reaches its total is done; the one moving counts for its fraction (a bar waiting
    at 0 while another runs, as Wav2Lip's generation bar waits on face detection, takes its turn
    when it moves). Never backwards."""

    def __init__(self, labels: tuple[str, ...]) -> None:
        self.labels = labels
        self.done = 0
        self.key: tuple[str, int] | None = None
        self.finished = False
        self.reached = 0.0

    def update(self, bar: TqdmLine) -> tuple[float, str]:
        key = (bar.desc, bar.total)
        if key != self.key or (self.finished and bar.n < bar.total):  # another bar, or a new one
            self.key, self.finished = key, False
        label = self.labels[min(self.done, len(self.labels) - 1)]
        current = 0.0
        if bar.n >= bar.total and not self.finished:
            self.finished = True
            self.done += 1
        elif not self.finished:
            current = bar.fraction
        self.reached = max(self.reached, min(1.0, (self.done + current) / len(self.labels)))
        return self.reached, label
