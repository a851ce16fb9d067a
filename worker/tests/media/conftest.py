"""Shared fixtures for the media tests: real images (skimage's astronaut) and real speech.

``tools`` (ffmpeg, ffprobe, espeak-ng present) comes from ../conftest.py."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf


@pytest.fixture(scope="session")
def astronaut_rgb() -> np.ndarray:
    from skimage import data

    return data.astronaut()


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("media")


def write_rgb(path: Path, rgb: np.ndarray) -> Path:
    import cv2

    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


@pytest.fixture(scope="session")
def espeak_speech(tools, media_dir) -> Path:
    """~7 s of English from the espeak-ng command line (22.05 kHz mono)."""
    out = media_dir / "espeak_speech.wav"
    subprocess.run(
        ["espeak-ng", "-v", "en-us", "-w", str(out),
         "Hello, this is a voice sample for the Likeness studio. I am reading a few "
         "sentences so that the system can learn how I sound."],
        check=True, capture_output=True)
    return out


def rms_db(x: np.ndarray) -> float:
    if x.size == 0:
        return -120.0
    return float(20 * np.log10(max(float(np.sqrt(np.mean(x.astype(np.float64) ** 2))), 1e-6)))


def read_mono(path: Path) -> tuple[np.ndarray, int]:
    x, sr = sf.read(str(path), dtype="float32")
    if x.ndim > 1:
        x = x.mean(axis=1)
    return x, sr
