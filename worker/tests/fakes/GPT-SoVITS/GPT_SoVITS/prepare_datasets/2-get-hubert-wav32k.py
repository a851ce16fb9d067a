# ruff: noqa: UP031, SIM112, SIM115, SIM105, B007  (the real script's own style, kept)
"""Fake of GPT-SoVITS GPT_SoVITS/prepare_datasets/2-get-hubert-wav32k.py (48b1a01): the same
environment variables, the same outputs (<opt_dir>/4-cnhubert/<wav>.pt, features [1, 768, frames at
50 Hz]; <opt_dir>/5-wav32k/<wav>, int16 at 32 kHz with its levels), transformers' error for a
missing HuBERT folder. The "features" are a fixed random projection of the 16 kHz frames (npz)."""

import os
import sys

inp_text = os.environ.get("inp_text")
inp_wav_dir = os.environ.get("inp_wav_dir")
exp_name = os.environ.get("exp_name")
i_part = os.environ.get("i_part")
all_parts = os.environ.get("all_parts")
if "_CUDA_VISIBLE_DEVICES" in os.environ:
    os.environ["CUDA_VISIBLE_DEVICES"] = os.environ["_CUDA_VISIBLE_DEVICES"]
import _fake  # noqa: E402

_fake.begin("hubert")
opt_dir = os.environ.get("opt_dir")
cnhubert_base_path = os.environ.get("cnhubert_base_dir")
import traceback  # noqa: E402

import numpy as np  # noqa: E402
from scipy.io import wavfile  # noqa: E402
from scipy.signal import resample_poly  # noqa: E402

now_dir = os.getcwd()
sys.path.append(now_dir)
from tools.my_utils import clean_path, load_audio  # noqa: E402

hubert_dir = "%s/4-cnhubert" % (opt_dir)
wav32dir = "%s/5-wav32k" % (opt_dir)
os.makedirs(opt_dir, exist_ok=True)
os.makedirs(hubert_dir, exist_ok=True)
os.makedirs(wav32dir, exist_ok=True)

maxx = 0.95
alpha = 0.5
if not os.path.isdir(cnhubert_base_path or ""):  # cnhubert.get_model: HubertModel.from_pretrained
    raise OSError(f"Incorrect path_or_model_id: '{cnhubert_base_path}'. Please provide either the path to a local "
                  "folder or the repo_id of a model on the Hub.")
PROJECTION = np.random.default_rng(0).standard_normal((320, 768)).astype(np.float32) / 18


def name2go(wav_name, wav_path):
    hubert_path = "%s/%s.pt" % (hubert_dir, wav_name)
    if os.path.exists(hubert_path):
        return
    tmp_audio = load_audio(wav_path, 32000)
    tmp_max = np.abs(tmp_audio).max()
    if tmp_max > 2.2:
        print("%s-filtered,%s" % (wav_name, tmp_max))
        return
    tmp_audio32 = (tmp_audio / tmp_max * (maxx * alpha * 32768)) + ((1 - alpha) * 32768) * tmp_audio
    wav16 = resample_poly(tmp_audio, 1, 2).astype(np.float32)
    frames = len(wav16) // 320
    ssl = (wav16[: frames * 320].reshape(frames, 320) @ PROJECTION).T[None]  # [1, 768, frames]
    wavfile.write("%s/%s" % (wav32dir, wav_name), 32000, tmp_audio32.astype("int16"))
    _fake.my_save({"ssl": ssl.astype(np.float16)}, hubert_path, i_part)


with open(inp_text, encoding="utf8") as f:
    lines = f.read().strip("\n").split("\n")

for line in lines[int(i_part) :: int(all_parts)]:
    try:
        wav_name, spk_name, language, text = line.split("|")
        wav_name = clean_path(wav_name)
        if inp_wav_dir != "" and inp_wav_dir != None:  # noqa: E711
            wav_name = os.path.basename(wav_name)
            wav_path = "%s/%s" % (inp_wav_dir, wav_name)
        else:
            wav_path = wav_name
            wav_name = os.path.basename(wav_name)
        name2go(wav_name, wav_path)
    except:  # noqa: E722
        print(line, traceback.format_exc())
