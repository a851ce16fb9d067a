"""What the tests of the face-tool engines (engines/gpu/face_tools.py: Wav2Lip, MuseTalk…) share:
real inputs (a face video as the motion step hands it on, a still scene, speech with pauses), a
TaskContext on a local storage folder bound to them, and a look for processes left behind."""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import soundfile as sf
from conftest import Recorder  # re-exported: the lip-sync tests take it from here

from likeness_worker.engines import TaskContext
from likeness_worker.storage import LocalStorage

SIZE = 192  # the frames: the astronaut's face, about 100 px wide
SPEECH_S = 1.6
SPEECH_RATE = 24_000
VIDEO_FRAMES = 30  # shorter than the speech: the tools loop the frames


def astronaut_face() -> np.ndarray:
    """BGR, SIZE x SIZE: skimage's astronaut around her face (a face OpenCV's Haar cascade finds)."""
    from skimage import data

    bgr = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    return np.ascontiguousarray(bgr[10:10 + SIZE, 130:130 + SIZE])


def faceless() -> np.ndarray:
    """BGR, SIZE x SIZE: a soft gradient with blobs, no face anywhere."""
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    img = np.stack([x * 255 // SIZE, y * 255 // SIZE, (x + y) * 127 // SIZE], axis=2).astype(np.uint8)
    for cx, cy in ((50, 60), (140, 120)):
        cv2.circle(img, (cx, cy), 25, (30, 160, 90), -1)
    return img


def write_video(path: Path, bgr: np.ndarray, frames: int = VIDEO_FRAMES) -> Path:
    """``frames`` frames of ``bgr`` as the motion step hands them on (lossless RGB H.264 .mkv)."""
    from likeness_worker.media.encode import frame_writer

    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    with frame_writer(path, SIZE, SIZE, n_frames=frames, lossless=True) as w:
        for _ in range(frames):
            w.write(rgb)
    return path


def write_speech(path: Path) -> Path:
    """SPEECH_S of voiced bursts (a 140 Hz buzz with formants) and pauses, 0.2 s each: a mouth
    that follows it opens and closes four times."""
    t = np.arange(int(SPEECH_S * SPEECH_RATE)) / SPEECH_RATE
    buzz = sum(np.sin(2 * math.pi * f * t) / k for k, f in enumerate((140, 280, 700, 1200, 2400), start=1))
    envelope = ((t // 0.2) % 2 == 0).astype(np.float32)
    envelope = np.convolve(envelope, np.hanning(480) / np.hanning(480).sum(), mode="same")
    sf.write(path, (0.3 * buzz * envelope).astype(np.float32), SPEECH_RATE, subtype="PCM_16")
    return path


def speech_level(frame: int, fps: float = 25.0) -> float:
    """Whether the speech is voiced at this frame's time (1) or in a pause (0)."""
    return float(((frame / fps) // 0.2) % 2 == 0)


def context(tmp_path: Path, rec: Recorder, task_kind: str, engine: str, face: Path) -> TaskContext:
    """A step of ``task_kind`` whose face input (``video``, or ``scene`` for talking_head) is
    ``face`` and whose speech is a fresh WAV, both put in a local storage as upstream steps would."""
    storage = LocalStorage(tmp_path / "objects")
    speech = write_speech(tmp_path / "speech.wav")
    speech_key = "jobs/job/tts/speech.wav"
    storage.put_file(speech_key, speech, "audio/wav")
    storage.put_bytes("jobs/job/tts/timings.json", b'{"words": [], "durationSec": 1.6}', "application/json")
    port = "scene" if task_kind == "talking_head" else "video"
    face_key = f"jobs/job/{'image' if port == 'scene' else 'motion'}/{port}{face.suffix}"
    storage.put_file(face_key, face)
    inputs = {
        port: {"step": "image" if port == "scene" else "motion", "key": face_key, "ref": None, "outputs": {}},
        "speech": {"step": "tts", "key": speech_key, "ref": None, "outputs": {"durationSec": SPEECH_S}},
        "timings": {"step": "tts", "key": "jobs/job/tts/timings.json", "ref": None, "outputs": {}},
    }
    command = {"kind": "generate_video", "payload": {"width": SIZE, "height": SIZE, "subtitles": "soft"}}
    return TaskContext(job_id="job", attempt=1, step=task_kind, task_kind=task_kind, engine=engine,
                       work_dir=tmp_path / "work", storage=storage, command=command, inputs=inputs,
                       _progress=rec, _cancelled=rec.cancel.is_set)


def copy_checkout(fake: Path, dest: Path, weights: tuple[str, ...]) -> Path:
    """The fake checkout copied to ``dest``, with a placeholder for each weight file it needs."""
    shutil.copytree(fake, dest, ignore=shutil.ignore_patterns("__pycache__"))
    for rel in weights:
        p = dest / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"PK\x03\x04 placeholder weights")
    return dest


def processes_mentioning(text: str) -> list[str]:
    """Command lines of the live processes whose command line contains ``text``."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(f"{pid}: {cmdline}")
    return found


def mouth_motion(frames: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per frame: how dark the lower middle of the face is (the mouth), and the forehead."""
    mouth = np.array([f[118:150, 70:130].mean() for f in frames])
    forehead = np.array([f[45:70, 70:130].mean() for f in frames])
    return mouth, forehead
