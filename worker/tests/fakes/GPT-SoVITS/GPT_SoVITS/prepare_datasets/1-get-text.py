# ruff: noqa: UP031, SIM112, SIM115, SIM105, B007  (the real script's own style, kept)
"""Fake of GPT-SoVITS GPT_SoVITS/prepare_datasets/1-get-text.py (48b1a01): configured by the same
environment variables, the same input list (wav|speaker|lang|text), the same output
(<opt_dir>/2-name2text-<i_part>.txt: name, phones, word2ph, norm_text, tab-separated; 3-bert/), the
same FileNotFoundError for a missing BERT folder. Its phonemes are letters standing in for g2p."""

import os

inp_text = os.environ.get("inp_text")
inp_wav_dir = os.environ.get("inp_wav_dir")
exp_name = os.environ.get("exp_name")
i_part = os.environ.get("i_part")
all_parts = os.environ.get("all_parts")
if "_CUDA_VISIBLE_DEVICES" in os.environ:
    os.environ["CUDA_VISIBLE_DEVICES"] = os.environ["_CUDA_VISIBLE_DEVICES"]
opt_dir = os.environ.get("opt_dir")
bert_pretrained_dir = os.environ.get("bert_pretrained_dir")
import _fake  # noqa: E402

_fake.begin("text")
version = os.environ.get("version", None)
import traceback  # noqa: E402

from tools.my_utils import clean_path  # noqa: E402


def clean_text(text, language, version):
    norm_text = " ".join(text.split())
    phones = [c.upper() + ("1" if c in "aeiou" else "") for c in norm_text.lower() if c.isalpha()]
    return phones, None if language == "en" else [1] * len(norm_text), norm_text


txt_path = "%s/2-name2text-%s.txt" % (opt_dir, i_part)
if os.path.exists(txt_path) == False:  # noqa: E712
    bert_dir = "%s/3-bert" % (opt_dir)
    os.makedirs(opt_dir, exist_ok=True)
    os.makedirs(bert_dir, exist_ok=True)
    if os.path.exists(bert_pretrained_dir):
        ...
    else:
        raise FileNotFoundError(bert_pretrained_dir)

    def process(data, res):
        for name, text, lan in data:
            try:
                name = clean_path(name)
                name = os.path.basename(name)
                print(name)
                phones, word2ph, norm_text = clean_text(text.replace("%", "-").replace("￥", ","), lan, version)
                if lan == "zh":
                    _fake.save({"bert": _fake.np.zeros((1024, len(phones)), _fake.np.float16)}, "%s/%s.pt" % (bert_dir, name))
                phones = " ".join(phones)
                res.append([name, phones, word2ph, norm_text])
            except:  # noqa: E722
                print(name, text, traceback.format_exc())

    todo = []
    res = []
    with open(inp_text, encoding="utf8") as f:
        lines = f.read().strip("\n").split("\n")
    language_v1_to_language_v2 = {"ZH": "zh", "zh": "zh", "JP": "ja", "jp": "ja", "JA": "ja", "ja": "ja", "EN": "en",
                                  "en": "en", "En": "en", "KO": "ko", "Ko": "ko", "ko": "ko", "yue": "yue", "YUE": "yue",
                                  "Yue": "yue"}
    for line in lines[int(i_part) :: int(all_parts)]:
        try:
            wav_name, spk_name, language, text = line.split("|")
            if language in language_v1_to_language_v2:
                todo.append([wav_name, text, language_v1_to_language_v2.get(language, language)])
            else:
                print(f"\033[33m[Waring] The {language = } of {wav_name} is not supported for training.\033[0m")
        except:  # noqa: E722
            print(line, traceback.format_exc())

    process(todo, res)
    opt = []
    for name, phones, word2ph, norm_text in res:
        opt.append("%s\t%s\t%s\t%s" % (name, phones, word2ph, norm_text))
    with open(txt_path, "w", encoding="utf8") as f:
        f.write("\n".join(opt) + "\n")
