"""What every engine over a face-animation script shares: this face (a video or a still) speaks
this speech, and the tool hands back the video.

Wav2Lip, MuseTalk, SadTalker, LatentSync and LivePortrait look alike from here: a checkout with its
own Python, one documented script that takes a face and a WAV, draws tqdm bars, and writes an MP4
(the speech muxed in by its own ffmpeg call). ``FaceTool.make`` does it once for all of them:

1. refuse at once (engine_unavailable, not retryable) when the checkout, the script, the Python,
   ffmpeg or a weight file is missing, naming it (``problem()`` says the same);
2. fetch the face and the speech into a fresh run folder (``face.<ext>``, ``speech.wav``: short
   names, no spaces; some tools split paths on dots or pass them through a shell; a scene is
   always named as an image: the tools tell a still from a video by its suffix);
3. run the script with ``media.proc.stream`` (its own process group: a cancel or
   ``<PREFIX>_TIMEOUT_S`` kills it and its ffmpeg), its tqdm bars turned into step progress, each
   bar for its share of the run's time;
4. find its video: the path it documents or prints, else the newest MP4 the run made under its
   result folder; none is a failure read from its output (out of memory, weights missing, the
   tool's own hint…);
5. probe it (no video stream, or no frames: engine_failed) and return it as the built-in video
   engines do: ``outputs.videoKey`` with width, height, frames, fps, durationSec, ``encode`` (the
   tool's own encode, not our final stream: mux encodes once and burns subtitles when asked),
   ``subtitlesBurned`` False, ``lipSync`` True, and what the tool adds (``meta``, ``note``).

A tool with a resident host (``host_script``, ``resident``: engines/gpu/resident.py) runs its
script's code in a process kept between steps instead, when its ``<PREFIX>_RESIDENT`` setting is
on: the host, started with the tool's Python in its checkout on the first step, loads the model
once and keeps what it may reuse (a face found in a source before); each step sends it the same
arguments (``argv``) and the same working folder (the run folder, or the checkout with
``in_checkout``), and gets the same lines (its tqdm bars, its prints), so
the steps above are the same. A cancel or the time limit kills the host (the next step starts a
fresh one); a run that failed for another reason than the user's input (a CUDA error leaves the
process unwell) stops it too; ``release()`` stops it for another engine.

A tool is one file: a settings group whose fields start with its ``prefix`` (``<prefix>_dir``,
``<prefix>_python``, ``<prefix>_timeout_s``, then its own), and a class over ``Lipsync`` or
``TalkingHead`` that says its ``script`` (or ``module``), ``argv`` for a ``Run``, where its
``output`` lands, its ``weights``, its ``bars``, its own failures (``hint``, ``timeout_hint``) and
what a setting can do about them (``advice``).
"""

from __future__ import annotations

import os
import shutil
import time
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeAlias

from pydantic import BaseModel

from ...config import ConfigError, load_group
from ...errors import StepFailure
from ...media.encode import FPS
from ...media.errors import Cancelled, ToolFailed, ToolTimeout
from ...media.proc import STREAM_TAIL_LINES, ToolExited, stream
from ..base import Engine, StepOutput, TaskContext
from .resident import HostError, Resident
from .tooling import TqdmLine, missing_paths, parse_tqdm, run_failure

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
# A tqdm bar of a run: its label, or its label and its share of the run's time (1 when not said).
Bar: TypeAlias = str | tuple[str, float]


@dataclass(frozen=True)
class Run:
    """One run of a tool: its checkout, a fresh folder, and the inputs put in that folder."""

    checkout: Path
    folder: Path  # the run's own folder: the tool's cwd unless ``in_checkout``
    face: Path  # the face video or still (``face.<ext>``, in ``folder``)
    audio: Path  # the speech (``speech.wav``, in ``folder``)
    still: bool  # ``face`` is an image
    fps: int = FPS  # the frame rate to ask for when the face is a still


class FaceTool(Engine, ABC):
    """Base of the engines over a face-animation script (see the module docstring)."""

    device = "gpu"
    version = "1"
    tools: ClassVar[tuple[str, ...]] = ("ffmpeg",)

    tool: ClassVar[str]  # its name in messages: "Wav2Lip"
    settings_group: ClassVar[type[BaseModel]]  # its settings group (config.load_group): required here
    prefix: ClassVar[str]  # of its settings' fields: "wav2lip" -> WAV2LIP_DIR, WAV2LIP_PYTHON, WAV2LIP_TIMEOUT_S
    script: ClassVar[str]  # relative to the checkout: what problem() looks for, what is run
    module: ClassVar[str | None] = None  # run as ``python -m module`` instead (with ``in_checkout``)
    # cwd: the checkout (relative model paths; ``script`` is run by its relative path), else the run folder
    in_checkout: ClassVar[bool] = False
    bars: ClassVar[tuple[Bar, ...]] = ("working",)  # the tqdm bars one run draws, in order
    # The bars are known by their tqdm description (their label); any other bar (a download's) is
    # not the run's. Else by their place in ``bars``.
    bars_by_name: ClassVar[bool] = False
    encode: ClassVar[str]  # outputs.encode: whose encode the frames are
    # A resident host (beside this file) run instead of the script when ``<prefix>_resident`` is on,
    # and its holder, shared by the engines over the tool. None: the script runs once per step.
    host_script: ClassVar[Path | None] = None
    resident: ClassVar[Resident | None] = None

    # What each tool says ---------------------------------------------------------------------
    @classmethod
    def weights(cls, s: Any, checkout: Path) -> dict[str, Path]:
        """What the run loads, by name: each must exist (problem() and make() check)."""
        return {}

    def drawn(self, s: Any) -> tuple[Bar, ...]:
        """The bars a run with these settings draws (a tool that skips a stage by a setting says so)."""
        return self.bars

    @abstractmethod
    def argv(self, s: Any, run: Run) -> list[str]:
        """The script's arguments; it may write what they name (a task file) into ``run.folder``."""

    def host_argv(self, s: Any, checkout: Path) -> list[str]:
        """The host's own arguments (what it loads once): a change starts a fresh host."""
        return []

    def output(self, s: Any, run: Run, lines: list[str]) -> Path | None:
        """Where the script wrote the video: its documented path for these arguments, or the one
        its last ``lines`` name. None: the newest MP4 the run made under ``results``."""
        return None

    def results(self, s: Any, run: Run) -> Path:
        """Where else to look for a video the run made when ``output`` is not there."""
        return run.folder

    def hint(self, s: Any, output: str) -> StepFailure | None:
        """The failures only this tool names, from the tail of what it printed (its face
        detector found no face: the user's input, not a crash). None: the common mapping."""
        return None

    def timeout_hint(self, s: Any, output: str) -> StepFailure | None:
        """What a run stopped at ``<PREFIX>_TIMEOUT_S`` was stuck on, from its last lines (a loop
        waiting for GPU memory is out_of_memory). None: a timeout."""
        return None

    def advice(self, s: Any, failure: StepFailure) -> StepFailure:
        """The failure of a run, with what to change when a setting can avoid it (a smaller batch
        on out of memory). Default: as it is."""
        return failure

    def meta(self, s: Any) -> dict[str, Any]:
        """What else the video's metadata says: the settings that shaped it."""
        return {}

    def note(self, s: Any, ctx: TaskContext, meta: dict[str, Any]) -> str | None:
        """A word to the next steps on the video (``outputs.note``): frames not at the output's size."""
        return None

    # Health ------------------------------------------------------------------------------------
    @classmethod
    def release(cls) -> None:
        """Stop the tool's resident host, if it has one: its model leaves the card."""
        if cls.resident is not None:
            cls.resident.release()

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
        if checkout is None or not checkout.is_dir():
            where = missing_paths(**{f"{env}_DIR": checkout}) or [f"{env}_DIR ({checkout}) is not a folder"]
            return [f"{where[0]} (the {cls.tool} checkout)"]
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
        folder = (ctx.work_dir / self.name).resolve()  # absolute: a tool run in its checkout gets these paths
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        face_key = str(ctx.input(face_input).key)
        suffix = Path(face_key).suffix.lower()
        if face_input == "scene" and suffix not in IMAGE_SUFFIXES:
            suffix = ".png"  # a still: the tools read it as one by its suffix (OpenCV decodes by content)
        face = ctx.storage.get_file(face_key, folder / f"face{suffix or '.mp4'}")
        audio = ctx.storage.get_file(str(ctx.input("speech").key), folder / "speech.wav")
        run = Run(Path(self._setting(s, "dir")).resolve(), folder, face, audio, still=suffix in IMAGE_SUFFIXES)
        video = self._run(ctx, s, run)
        return self._hand_back(ctx, s, video, name)

    def _run(self, ctx: TaskContext, s: Any, run: Run) -> Path:
        try:
            return self._video(ctx, s, run)
        except StepFailure as failure:
            raise self.advice(s, failure) from None

    def _video(self, ctx: TaskContext, s: Any, run: Run) -> Path:
        timeout = float(self._setting(s, "timeout_s"))
        bars = Bars(self.drawn(s), by_name=self.bars_by_name)

        def on_line(line: str) -> None:
            bar = parse_tqdm(line)
            moved = bars.update(bar) if bar is not None else None
            if bar is not None and moved is not None:
                fraction, label = moved
                ctx.progress(0.02 + 0.93 * fraction, f"{self.tool}: {label} {bar.n}/{bar.total}")

        started = time.time()
        env = self.prefix.upper()
        try:
            if self._resident_on(s):
                lines = self._on_host(ctx, s, run, time.monotonic() + timeout, on_line)
            else:
                ctx.progress(0.01, f"{self.tool}: starting")
                lines = stream(self._command(s, run), timeout, ctx.cancelled, on_line=on_line,
                               cwd=run.checkout if self.in_checkout else run.folder,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
        except ToolTimeout as exc:
            raise self.timeout_hint(s, str(exc)) or StepFailure(
                "timeout", f"{self.name}: {self.tool} ran past {env}_TIMEOUT_S ({timeout:g} s) and was stopped") from None
        except (ToolExited, Cancelled) as exc:
            raise run_failure(self.name, exc, hint=lambda out: self.hint(s, out)) from None
        except ToolFailed as exc:  # it did not start: the Python went away since the check
            raise StepFailure("engine_unavailable", f"{self.name}: {exc} ({env}_PYTHON)", retryable=False) from None
        documented = self.output(s, run, lines)
        video = self._find(s, run, documented, started)
        if video is None:
            raise self._no_video(s, run, documented, lines)
        return video

    def _command(self, s: Any, run: Run) -> list[str]:
        python = self._setting(s, "python")
        if self.module:
            head = [python, "-m", self.module]
        else:
            head = [python, self.script if self.in_checkout else str(run.checkout / self.script)]
        return [*head, *self.argv(s, run)]

    def _resident_on(self, s: Any) -> bool:
        return self.resident is not None and self.host_script is not None and bool(
            getattr(s, f"{self.prefix}_resident", False))

    def _on_host(self, ctx: TaskContext, s: Any, run: Run, deadline: float, on_line) -> list[str]:
        """The run by the tool's resident host (started when none is up); the lines it printed."""
        resident, script = self.resident, self.host_script
        assert resident is not None and script is not None
        lines: deque[str] = deque(maxlen=STREAM_TAIL_LINES)

        def keep(line: str) -> None:
            lines.append(line)
            on_line(line)

        with resident.turn(deadline, ctx.cancelled):
            warm = resident.warm()
            ctx.progress(0.01, f"{self.tool}: " + ("ready (resident)" if warm else "starting its resident host"))
            cmd = [self._setting(s, "python"), str(script), *self.host_argv(s, run.checkout)]
            host = resident.ensure(cmd, deadline, ctx.cancelled, cwd=run.checkout, on_line=lines.append)
            # in the folder the script would run in (the checkout for a tool run there)
            request = {"cwd": str(run.checkout if self.in_checkout else run.folder), "argv": self.argv(s, run)}
            try:
                host.request(request, deadline, ctx.cancelled, f"running {self.script}", on_line=keep)
            except HostError as exc:  # it raised: as a script that died of it would read
                failure = run_failure(self.name, ToolExited(str(exc), 1, exc.output), hint=lambda out: self.hint(s, out))
                if failure.code != "bad_input":  # a CUDA error is sticky; out of memory leaves fragments
                    resident.drop()
                raise failure from None
            except (ToolFailed, Cancelled):  # it died, or was killed (cancel, time limit): gone
                resident.drop()
                raise
        return list(lines)

    def _find(self, s: Any, run: Run, documented: Path | None, started: float) -> Path | None:
        if documented is not None and documented.is_file() and documented.stat().st_size > 0:
            return documented
        made = [p for p in self.results(s, run).rglob("*.mp4")
                if p not in (run.face, run.audio) and p.stat().st_size > 0 and p.stat().st_mtime >= started - 1]
        return max(made, key=lambda p: p.stat().st_mtime, default=None)

    def _no_video(self, s: Any, run: Run, documented: Path | None, lines: list[str]) -> StepFailure:
        """It exited 0 without a video (MuseTalk prints a task's exception and goes on; Wav2Lip
        does not check its ffmpeg): why, from what it printed."""
        failure = run_failure(self.name, ToolExited("", 0, "\n".join(lines)), hint=lambda out: self.hint(s, out))
        if failure.code != "engine_failed":
            return failure
        where = f"({documented.name})" if documented is not None else f"in {self.results(s, run)}"
        return StepFailure("engine_failed", f"{self.name}: {self.tool} exited without an error but made no video "
                           f"{where}; it printed last: " + " | ".join(lines[-4:]))

    def _hand_back(self, ctx: TaskContext, s: Any, video: Path, name: str) -> StepOutput:
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
                "subtitlesBurned": False, "lipSync": True, **self.meta(s)}
        ref = ctx.upload(name, video, "video", "video/mp4", meta)
        outputs = {"videoKey": ref["key"], **meta}
        note = self.note(s, ctx, meta)
        if note:
            outputs["note"] = note
        return StepOutput([ref], outputs)


class Lipsync(FaceTool):
    """A lipsync engine: the video so far speaks the speech."""

    def sync(self, ctx: TaskContext) -> StepOutput:
        return self.make(ctx, "video", "lipsync.mp4")


class TalkingHead(FaceTool):
    """A talking_head engine: the scene (a still) speaks the speech."""

    def animate(self, ctx: TaskContext) -> StepOutput:
        return self.make(ctx, "scene", "talking_head.mp4")


class Bars:
    """Step progress in [0, 1] from the tqdm bars of one run: ``bars`` names the bars it draws in
    order, each spanning its share of the run. By name, a bar is known by its description (a bar
    of another name, a download's, is not the run's); else by its place: a bar that reaches its
    total is done and the one moving counts for its fraction (a bar waiting at 0 while another
    runs, as Wav2Lip's generation bar waits on face detection, takes its turn when it moves).
    Never backwards; a report at most every half per cent, and at each bar's end."""

    STEP = 0.005

    def __init__(self, bars: tuple[Bar, ...], *, by_name: bool = False) -> None:
        self.labels = [b if isinstance(b, str) else b[0] for b in bars]
        shares = [1.0 if isinstance(b, str) else float(b[1]) for b in bars]
        total = sum(shares) or 1.0
        self.spans: list[tuple[float, float]] = []  # (start, width) of each bar in [0, 1]
        at = 0.0
        for share in shares:
            self.spans.append((at, share / total))
            at += share / total
        self.by_name = by_name
        self.done = 0
        self.key: tuple[str, int] | None = None
        self.finished = False
        self.reached = 0.0

    def update(self, bar: TqdmLine) -> tuple[float, str] | None:
        """How far the run is and the label of the bar that moved; None: nothing new to say."""
        if self.by_name:
            name = bar.desc.rstrip(":").strip()
            if name not in self.labels:
                return None
            index, current = self.labels.index(name), bar.fraction
        else:
            index, current = self._by_place(bar)
        start, width = self.spans[index]
        fraction = min(1.0, start + width * current)
        if fraction < self.reached + self.STEP and not (bar.n >= bar.total and fraction > self.reached):
            return None
        self.reached = fraction
        return fraction, self.labels[index]

    def _by_place(self, bar: TqdmLine) -> tuple[int, float]:
        key = (bar.desc, bar.total)
        if key != self.key or (self.finished and bar.n < bar.total):  # another bar, or a new one
            self.key, self.finished = key, False
        index = min(self.done, len(self.labels) - 1)
        if self.finished:  # a redraw of the bar just done: the next one's start
            return index, 0.0
        if bar.n >= bar.total:
            self.finished = True
            self.done += 1
        return index, bar.fraction
