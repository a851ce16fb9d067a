# ruff: noqa: UP031, SIM112, SIM115, SIM105, B007  (the real script's own style, kept)
"""tools/my_utils.py of GPT-SoVITS (the parts the fake scripts use): load_audio through the ffmpeg CLI."""

import os
import subprocess

import numpy as np


def load_audio(file, sr):
    file = clean_path(file)
    if os.path.exists(file) is False:
        raise RuntimeError("You input a wrong audio path that does not exists, please fix it!")
    proc = subprocess.run(["ffmpeg", "-nostdin", "-threads", "0", "-i", file, "-f", "f32le", "-acodec", "pcm_f32le",
                           "-ac", "1", "-ar", str(sr), "-"], capture_output=True)
    if proc.returncode != 0:
        raise RuntimeError("音频加载失败")
    return np.frombuffer(proc.stdout, np.float32).flatten()


def clean_path(path_str: str):
    if path_str.endswith(("\\", "/")):
        return clean_path(path_str[0:-1])
    path_str = path_str.replace("/", os.sep).replace("\\", os.sep)
    return path_str.strip(" \'\n\"\u202a")
