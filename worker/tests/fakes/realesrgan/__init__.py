"""Fakes of Real-ESRGAN for the realesrgan upscale engine: a checkout with the video script
(``Real-ESRGAN/inference_realesrgan_video.py``) and the ncnn release (``realesrgan-ncnn-vulkan/``,
the binary beside its ``models/``). Each file says what of the real tool it copies.

``install_checkout`` and ``install_ncnn`` lay them out as a user's box has them, with placeholder
weights (the fakes only check that the files exist): point REALESRGAN_DIR / REALESRGAN_BIN at the
result. ``python -m fakes.realesrgan DEST`` (from worker/tests) does both and prints the settings.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterable
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "Real-ESRGAN" / "inference_realesrgan_video.py"
BINARY = HERE / "realesrgan-ncnn-vulkan" / "realesrgan-ncnn-vulkan"

# What a user downloads into weights/ (README: wget ... -P weights).
PYTHON_WEIGHTS = ("RealESRGAN_x4plus.pth", "realesr-animevideov3.pth", "RealESRGAN_x2plus.pth",
                  "realesr-general-x4v3.pth", "realesr-general-wdn-x4v3.pth")
# What the ncnn release zip has in models/.
NCNN_MODELS = ("realesr-animevideov3-x2", "realesr-animevideov3-x3", "realesr-animevideov3-x4",
               "realesrgan-x4plus", "realesrgan-x4plus-anime", "realesrnet-x4plus")


def install_checkout(dest: Path, weights: Iterable[str] = PYTHON_WEIGHTS) -> Path:
    """A Real-ESRGAN checkout at ``dest`` with these files in ``weights/``; returns ``dest``."""
    dest = Path(dest)
    (dest / "weights").mkdir(parents=True, exist_ok=True)
    shutil.copy(SCRIPT, dest / SCRIPT.name)
    for name in weights:
        (dest / "weights" / name).write_bytes(b"fake weights\n")
    return dest


def install_ncnn(dest: Path, models: Iterable[str] = NCNN_MODELS, python: str = sys.executable) -> Path:
    """The ncnn release at ``dest`` (the binary and ``models/<name>.param|bin``); returns the
    binary. Its ``#!`` line names ``python`` (one with OpenCV)."""
    dest = Path(dest)
    (dest / "models").mkdir(parents=True, exist_ok=True)
    text = BINARY.read_text().split("\n", 1)[1]
    binary = dest / BINARY.name
    binary.write_text(f"#!{python}\n{text}")
    binary.chmod(0o755)
    for name in models:
        for ext in ("param", "bin"):
            (dest / "models" / f"{name}.{ext}").write_bytes(b"fake model\n")
    return binary

