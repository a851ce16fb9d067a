# ruff: noqa: UP031, SIM112, SIM115, SIM105, B007  (the real script's own style, kept)
"""Fake of GPT-SoVITS GPT_SoVITS/prepare_datasets/3-get-semantic.py (48b1a01): the same environment
variables, the FileNotFoundError for a missing pretrained_s2G, the version guessed from its size,
the output <opt_dir>/6-name2semantic-<i_part>.tsv (name, semantic codes at 25 Hz). The codes are the
strongest of the features' dimensions over each pair of frames, modulo 1024."""

import os

inp_text = os.environ.get("inp_text")
exp_name = os.environ.get("exp_name")
i_part = os.environ.get("i_part")
all_parts = os.environ.get("all_parts")
if "_CUDA_VISIBLE_DEVICES" in os.environ:
    os.environ["CUDA_VISIBLE_DEVICES"] = os.environ["_CUDA_VISIBLE_DEVICES"]
opt_dir = os.environ.get("opt_dir")
pretrained_s2G = os.environ.get("pretrained_s2G")
s2config_path = os.environ.get("s2config_path")
import _fake  # noqa: E402

_fake.begin("semantic")
if os.path.exists(pretrained_s2G):
    ...
else:
    raise FileNotFoundError(pretrained_s2G)
size = os.path.getsize(pretrained_s2G)
if size < 82978 * 1024:
    version = "v1"
elif size < 100 * 1024 * 1024:
    version = "v2"
elif size < 103520 * 1024:
    version = "v1"
elif size < 700 * 1024 * 1024:
    version = "v2"
else:
    version = "v3"
import json  # noqa: E402
import traceback  # noqa: E402

from tools.my_utils import clean_path  # noqa: E402

hubert_dir = "%s/4-cnhubert" % (opt_dir)
semantic_path = "%s/6-name2semantic-%s.tsv" % (opt_dir, i_part)
if os.path.exists(semantic_path) == False:  # noqa: E712
    os.makedirs(opt_dir, exist_ok=True)
    with open(s2config_path) as f:
        hps = json.load(f)
    _fake.load(pretrained_s2G) if pretrained_s2G.endswith(".npz") else open(pretrained_s2G, "rb").read()
    print("<All keys matched successfully>")

    def name2go(wav_name, lines):
        hubert_path = "%s/%s.pt" % (hubert_dir, wav_name)
        if os.path.exists(hubert_path) == False:  # noqa: E712
            return
        ssl = _fake.load(hubert_path)["ssl"][0].astype("float32")  # [768, frames]
        pairs = ssl.shape[1] // 2
        codes = (ssl[:, : pairs * 2].reshape(768, pairs, 2).sum(axis=2).argmax(axis=0) * 7) % 1024
        lines.append("%s\t%s" % (wav_name, " ".join(str(int(i)) for i in codes)))

    with open(inp_text, encoding="utf8") as f:
        lines = f.read().strip("\n").split("\n")
    lines1 = []
    for line in lines[int(i_part) :: int(all_parts)]:
        try:
            wav_name, spk_name, language, text = line.split("|")
            wav_name = clean_path(wav_name)
            wav_name = os.path.basename(wav_name)
            name2go(wav_name, lines1)
        except:  # noqa: E722
            print(line, traceback.format_exc())
    with open(semantic_path, "w", encoding="utf8") as f:
        f.write("\n".join(lines1))
