"""What the fake does instead of the libraries SadTalker calls (torch, safetensors, librosa, pydub,
imageio, scipy.io), with the same effects on files and the same errors when a file is missing.
Nothing here is a model."""

import errno
import os
import socket
import subprocess
import urllib.error
from urllib.parse import urlparse

import numpy as np

FAIL = os.environ.get("FAKE_SADTALKER_FAIL", "")


def fail(mode):
    return mode == FAIL


def record(*words):
    """FAKE_SADTALKER_CALLS: a file that gets one line per model built and per crop and 3DMM
    extraction (``build CropAndExtract``, ``generate face.png full 256 True``), for the tests of
    the resident host."""
    path = os.environ.get("FAKE_SADTALKER_CALLS")
    if path:
        with open(path, "a") as f:
            f.write(" ".join(str(w) for w in words) + "\n")


class _Cuda:
    @staticmethod
    def is_available():
        return True  # nothing runs on it here


class torch:  # noqa: N801 - the module inference.py imports: its torch.cuda.is_available()
    cuda = _Cuda


def load_checkpoint(path, pretend_missing=False):
    """safetensors.torch.load_file / torch.load of a checkpoint: only its presence is checked,
    and a missing one fails with the library's own error."""
    if path.endswith(".safetensors"):
        if pretend_missing or not os.path.isfile(path):
            # safetensors' Rust binding: PyFileNotFoundError "No such file or directory: {filename:?}"
            raise FileNotFoundError(f'No such file or directory: "{path}"')
        return {}
    if pretend_missing:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
    with open(path, "rb"):  # torch.serialization._open_file: open(name, 'rb')
        pass
    return {}


def load_file_from_url(url, save_dir, create=True):
    """facexlib.utils.misc.load_file_from_url (basicsr's is the same): the cached file if it is
    there, else a download, which on an offline GPU box ends in urllib's URLError."""
    if create:
        os.makedirs(save_dir, exist_ok=True)
    cached_file = os.path.abspath(os.path.join(save_dir, os.path.basename(urlparse(url).path)))
    missing = not os.path.exists(cached_file) or (fail("download") and cached_file.endswith("alignment_WFLW_4HG.pth"))
    if missing:
        print(f'Downloading: "{url}" to {cached_file}\n')
        raise urllib.error.URLError(socket.gaierror(-3, "Temporary failure in name resolution"))
    return cached_file


def load_audio_16k(path):
    """librosa.core.load(path, sr=16000)[0]: mono float samples at 16 kHz (decoded by ffmpeg here)."""
    raw = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", path, "-f", "s16le", "-ac", "1", "-ar", "16000", "-"],
                         check=True, capture_output=True).stdout
    return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0


def export_audio_16k(src, dst, end_ms):
    """pydub: AudioSegment.from_file(src).set_frame_rate(16000)[0:end_ms].export(dst, format='wav')."""
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", "-i", src, "-ar", "16000", "-t", f"{end_ms / 1000:.3f}",
                    "-c:a", "pcm_s16le", dst], check=True)


def mimsave(path, frames, fps=25.0, macro_block_size=16):
    """imageio.mimsave of RGB frames to an MP4 (imageio-ffmpeg: libx264 yuv420p, the frame size
    rounded up to a multiple of 16 with imageio's warning)."""
    h, w = frames[0].shape[:2]
    W = (w + macro_block_size - 1) // macro_block_size * macro_block_size
    H = (h + macro_block_size - 1) // macro_block_size * macro_block_size
    vf = []
    if (w, h) != (W, H):
        print(f"IMAGEIO FFMPEG_WRITER WARNING: input image is not divisible by macro_block_size={macro_block_size}, "
              f"resizing from ({w}, {h}) to ({W}, {H}) to ensure video compatibility with most codecs and players. "
              "To prevent resizing, make your input image divisible by the macro_block_size or set the "
              "macro_block_size to 1 (risking incompatibility).")
        vf = ["-vf", f"scale={W}:{H}"]
    cmd = ["ffmpeg", "-y", "-f", "rawvideo", "-vcodec", "rawvideo", "-s", f"{w}x{h}", "-pix_fmt", "rgb24",
           "-r", f"{fps:.2f}", "-i", "-", "-an", "-vcodec", "libx264", "-pix_fmt", "yuv420p", "-crf", "25",
           *vf, "-v", "warning", path]
    data = b"".join(np.ascontiguousarray(f, dtype=np.uint8).tobytes() for f in frames)
    subprocess.run(cmd, input=data, check=True)
