"""Frames in and out of ffmpeg, encoded once.

A step that makes the video's final frames encodes them here, at the output size, as the MP4's
H.264 stream (``mux`` then copies it). A step whose frames another step will change writes a
lossless intermediate instead (RGB H.264 at qp 0: exact, and fast to write and read).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from . import proc

FPS = 25
# superfast: half the CPU of veryfast at the same quality (CRF), for a somewhat larger file; the
# frames arrive as yuv420p, converted in-process, so ffmpeg does no colour conversion either.
FINAL = ["-c:v", "libx264", "-preset", "superfast", "-crf", "18", "-pix_fmt", "yuv420p"]
LOSSLESS = ["-c:v", "libx264rgb", "-preset", "ultrafast", "-qp", "0"]


def encode_timeout(n_frames: int, width: int, height: int) -> float:
    return 120.0 + n_frames * width * height / 2.0e6


class FrameWriter:
    def __init__(self, pipe: proc.Pipe, yuv: bool):
        self._pipe = pipe
        self._yuv = yuv
        self.frames = 0

    def write(self, rgb: np.ndarray) -> None:
        data = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420) if self._yuv else rgb
        self._pipe.write(data.tobytes())
        self.frames += 1


@contextmanager
def frame_writer(
    out: Path,
    width: int,
    height: int,
    *,
    n_frames: int,
    fps: int = FPS,
    lossless: bool = False,
    video_filter: str | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> Iterator[FrameWriter]:
    """Pipe RGB frames (height x width x 3 uint8) into ``out``; it appears only when complete.
    Sizes are even (yuv420p).

    ``video_filter``: an ffmpeg -vf chain applied on the way (burned-in subtitles)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.tmp{out.suffix}")
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y", "-f", "rawvideo",
           "-pix_fmt", "rgb24" if lossless else "yuv420p", "-s", f"{width}x{height}", "-r", str(fps),
           "-i", "-"]
    if video_filter:
        cmd += ["-vf", video_filter]
    cmd += [*(LOSSLESS if lossless else FINAL), "-r", str(fps), str(tmp)]
    try:
        with proc.pipe(cmd, timeout=encode_timeout(n_frames, width, height), cancelled=cancelled) as p:
            yield FrameWriter(p, yuv=not lossless)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def frame_reader(
    video: Path, width: int, height: int, *, fps: int = FPS,
    cancelled: Callable[[], bool] | None = None, timeout: float,
) -> Iterator[Iterator[np.ndarray]]:
    """The video's frames as RGB arrays at ``width`` x ``height``, one at a time (never the
    whole video in memory), at ``fps``; a video of another shape is scaled to cover the frame
    and centre-cropped, never stretched."""
    fit = (f"scale={width}:{height}:force_original_aspect_ratio=increase:flags=lanczos,"
           f"crop={width}:{height}")
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-i", str(video), "-map", "0:v:0",
           "-vf", f"fps={fps},{fit}", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    size = width * height * 3
    with proc.reader(cmd, timeout=timeout, cancelled=cancelled) as p:
        def frames() -> Iterator[np.ndarray]:
            while (data := proc.read_exactly(p, size)) is not None:
                yield np.frombuffer(data, np.uint8).reshape(height, width, 3)
        yield frames()
