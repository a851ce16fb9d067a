# ruff: noqa: UP031, SIM112, SIM115, SIM105, B007  (the real script's own style, kept)
"""Fake of GPT-SoVITS GPT_SoVITS/s1_train.py (48b1a01), the GPT training under Lightning: its flag
(-c/--config_file), the config (the YAML webui.open1Bb writes), the data files it reads, its resume
(the newest ``epoch=E-step=S.ckpt`` of <output_dir>/ckpt, printed as ``ckpt_path:``), Lightning's
"Epoch E" bar with the module's logged values, my_model_ckpt's saves (the Lightning checkpoint, the
older ones removed with if_save_latest, then <half_weights_save_dir>/<exp_name>-e<E+1>.ckpt through
my_save). A toy numpy model is trained for real; checkpoints and weights are npz files."""

import argparse
import logging
import math
import os
import re
from pathlib import Path

import _fake
import numpy as np
import yaml

if "_CUDA_VISIBLE_DEVICES" in os.environ:
    os.environ["CUDA_VISIBLE_DEVICES"] = os.environ["_CUDA_VISIBLE_DEVICES"]


def get_newest_ckpt(string_list):
    pattern = r"epoch=(\d+)-step=(\d+)\.ckpt"
    extracted_info = []
    for string in string_list:
        match = re.match(pattern, string)
        if match:
            extracted_info.append((int(match.group(1)), int(match.group(2)), string))
    sorted_info = sorted(extracted_info, key=lambda x: (x[0], x[1]), reverse=True)
    return sorted_info[0][2]


def main(args):
    with open(args.config_file) as f:
        config = yaml.load(f, Loader=yaml.FullLoader)
    _fake.begin("s1")
    output_dir = Path(config["output_dir"])
    output_dir.mkdir(parents=True, exist_ok=True)
    ckpt_dir = output_dir / "ckpt"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    print("Seed set to %s" % config["train"]["seed"])
    train = config["train"]
    pretrained = config.get("pretrained_s1")
    if pretrained:
        if not os.path.exists(pretrained):
            raise FileNotFoundError(2, "No such file or directory", pretrained)
        open(pretrained, "rb").read()
        print("<All keys matched successfully>")
    for path in (config["train_phoneme_path"], config["train_semantic_path"]):
        if not os.path.exists(path):
            raise FileNotFoundError(f"Phoneme data file not found: {path}" if "name2text" in path
                                    else f"Semantic data file not found: {path}")
    semantic = {}
    with open(config["train_semantic_path"], encoding="utf8") as f:
        for line in f.read().strip("\n").split("\n")[1:]:
            name, codes = line.split("\t")
            semantic[name] = np.array([int(c) for c in codes.split()], np.float32)
    with open(config["train_phoneme_path"], encoding="utf8") as f:
        phonemes = {line.split("\t")[0] for line in f.read().strip("\n").split("\n") if line}
    names = [n for n in semantic if n in phonemes]
    items = names * max(1, int(100 / len(names))) if len(names) < 100 else names
    print("dataset.__len__():", len(items))
    batches = math.ceil(len(items) / train["batch_size"])
    try:
        ckpt_path = ckpt_dir / get_newest_ckpt(os.listdir(ckpt_dir))
    except Exception:
        ckpt_path = None
    print("ckpt_path:", ckpt_path)
    model, start, step = np.zeros(8, np.float32), 0, 0
    if ckpt_path is not None:
        print(f"Restoring states from the checkpoint path at {ckpt_path}")
        state = _fake.load(ckpt_path)
        model, start, step = state["state_dict"], int(state["epoch"]) + 1, int(state["global_step"])
        print(f"Restored all states from the checkpoint at {ckpt_path}")
    targets = {n: np.histogram(codes, bins=8, range=(0, 1024))[0] / max(1, len(codes)) for n, codes in semantic.items()}
    rng = np.random.default_rng(train["seed"])
    for epoch in range(start, train["epochs"]):
        started = None
        for i in range(batches):
            if i == 0:
                _fake.fail_at("s1", epoch + 1)
            _fake.step_sleep()
            target = targets[items[int(rng.integers(len(items)))]]
            loss = float(np.sum((model - target) ** 2)) * 100
            model += 0.2 * (target - model)
            step += 1
            _fake.bar(i + 1, batches, desc=f"Epoch {epoch}", started=started,
                      postfix=f"v_num=0, total_loss_step={loss:.3f}, lr_step=0.00100, top_3_acc_step=0.412")
        every = train["save_every_n_epoch"]
        if every >= 1 and (epoch + 1) % every == 0:
            to_clean = list(os.listdir(ckpt_dir)) if train["if_save_latest"] == True else []  # noqa: E712
            _fake.save({"state_dict": model, "epoch": epoch, "global_step": step}, ckpt_dir / f"epoch={epoch}-step={step}.ckpt")
            for name in to_clean:
                try:
                    os.remove("%s/%s" % (ckpt_dir, name))
                except Exception:
                    pass
            if train["if_save_every_weights"] == True:  # noqa: E712
                _fake.my_save({"weight": model.astype(np.float16), "info": "GPT-e%s" % (epoch + 1)},
                              "%s/%s-e%s.ckpt" % (train["half_weights_save_dir"], train["exp_name"], epoch + 1))
    print(f"`Trainer.fit` stopped: `max_epochs={train['epochs']}` reached.")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("-c", "--config_file", type=str, default="configs/s1longer.yaml", help="path of config file")
    args = parser.parse_args()
    logging.info(str(args))
    main(args)
