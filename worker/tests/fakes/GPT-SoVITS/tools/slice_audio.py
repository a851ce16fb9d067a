# ruff: noqa: UP031, SIM112, SIM115, SIM105, B007  (the real script's own style, kept)
"""Fake of GPT-SoVITS tools/slice_audio.py (48b1a01): the same positional arguments
(inp opt_root threshold min_length min_interval hop_size max_sil_kept _max alpha i_part all_part),
the same output names (<opt_root>/<name>_%010d_%010d.wav, 32 kHz int16, levels as it sets them), the
same "->fail->" line for an input it cannot read, the same last line. Its slicer is a plain
silence splitter standing in for slicer2.Slicer."""

import os
import sys
import traceback

import _fake
import numpy as np
from scipy.io import wavfile
from tools.my_utils import load_audio


def cut_points(audio, sr, threshold, min_length, min_interval, hop_size, max_sil_kept):
    hop = int(sr * hop_size / 1000)
    frames = len(audio) // hop
    rms = np.sqrt(np.mean(audio[: frames * hop].reshape(frames, hop) ** 2, axis=1) + 1e-12)
    silent = 20 * np.log10(rms) < threshold
    out, start, i = [], 0, 0
    while i < frames:
        if silent[i]:
            j = i
            while j < frames and silent[j]:
                j += 1
            if (j - i) * hop_size >= min_interval and (i * hop - start) >= sr * min_length / 1000:
                keep = min(j - i, max_sil_kept // hop_size) // 2
                out.append((start, (i + keep) * hop))
                start = (j - keep) * hop
            i = j
        else:
            i += 1
    if len(audio) - start > 0:
        if out and len(audio) - start < sr * min_length / 1000 / 2:
            out[-1] = (out[-1][0], len(audio))
        else:
            out.append((start, len(audio)))
    return out


def slice(inp, opt_root, threshold, min_length, min_interval, hop_size, max_sil_kept, _max, alpha, i_part, all_part):
    _fake.begin("slice")
    os.makedirs(opt_root, exist_ok=True)
    if os.path.isfile(inp):
        input = [inp]
    elif os.path.isdir(inp):
        input = [os.path.join(inp, name) for name in sorted(list(os.listdir(inp)))]
    else:
        return "输入路径存在但既不是文件也不是文件夹"
    _max = float(_max)
    alpha = float(alpha)
    for inp_path in input[int(i_part) :: int(all_part)]:
        try:
            name = os.path.basename(inp_path)
            audio = load_audio(inp_path, 32000)
            for start, end in cut_points(audio, 32000, int(threshold), int(min_length), int(min_interval),
                                         int(hop_size), int(max_sil_kept)):
                chunk = audio[start:end].copy()
                tmp_max = np.abs(chunk).max()
                if tmp_max > 1:
                    chunk /= tmp_max
                chunk = (chunk / tmp_max * (_max * alpha)) + (1 - alpha) * chunk
                wavfile.write("%s/%s_%010d_%010d.wav" % (opt_root, name, start, end), 32000,
                              (chunk * 32767).astype(np.int16))
        except:  # noqa: E722 - as the real one
            print(inp_path, "->fail->", traceback.format_exc())
    return "执行完毕，请检查输出文件"


print(slice(*sys.argv[1:]))
