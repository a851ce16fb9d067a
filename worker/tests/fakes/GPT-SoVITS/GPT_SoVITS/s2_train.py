# ruff: noqa: UP031, SIM112, SIM115, SIM105, B007  (the real script's own style, kept)
"""Fake of GPT-SoVITS GPT_SoVITS/s2_train.py (48b1a01), the SoVITS training: utils.get_hparams'
flags (-c/--config, -p/--pretrain, -rs/--resume_step), the config it reads, TextAudioSpeakerLoader's
checks and prints (ZeroDivisionError on an empty dataset, the ``len > 1`` assertion), the resume from
the latest G_*.pth / D_*.pth of <exp_dir>/logs_s2_<version> (else the pretrained ones), its stdout
(logging.basicConfig: ``INFO:<exp>:…``; "start training from epoch N"; a tqdm bar per epoch; the
loss list; "====> Epoch: N"), save_checkpoint (G/D_233333333333.pth with if_save_latest) and
process_ckpt.savee (<save_weight_dir>/<name>_e<epoch>_s<step>.pth), both through my_save. It trains a
toy numpy model on the features for real; checkpoints and weights are npz files."""

import argparse
import glob
import json
import math
import os

import _fake
import numpy as np


class HParams:
    def __init__(self, **kwargs):
        for k, v in kwargs.items():
            setattr(self, k, HParams(**v) if type(v) == dict else v)  # noqa: E721


def get_hparams():
    parser = argparse.ArgumentParser()
    parser.add_argument("-c", "--config", type=str, default="./configs/s2.json", help="JSON file for configuration")
    parser.add_argument("-p", "--pretrain", type=str, required=False, default=None, help="pretrain dir")
    parser.add_argument("-rs", "--resume_step", type=int, required=False, default=None, help="resume step")
    args = parser.parse_args()
    with open(args.config) as f:
        data = f.read()
    hparams = HParams(**json.loads(data))
    os.makedirs(hparams.s2_ckpt_dir, exist_ok=True)
    with open(os.path.join(hparams.s2_ckpt_dir, "config.json"), "w") as f:
        f.write(data)
    return hparams


hps = get_hparams()
os.environ["CUDA_VISIBLE_DEVICES"] = hps.train.gpu_numbers.replace("-", ",")
_fake.begin("s2")
EXP = os.path.basename(hps.data.exp_dir)


def info(msg):
    print(f"INFO:{EXP}:{msg}", flush=True)


def latest_checkpoint_path(dir_path, regex):
    f_list = glob.glob(os.path.join(dir_path, regex))
    f_list.sort(key=lambda f: int("".join(filter(str.isdigit, f))))
    x = f_list[-1]
    print(x)
    return x


def load_checkpoint(path, model):
    assert os.path.isfile(path)
    ckpt = _fake.load(path)
    model[:] = ckpt["model"]
    info("Loaded checkpoint '{}' (iteration {})".format(path, int(ckpt["iteration"])))
    return int(ckpt["iteration"])


def dataset(exp_dir):
    path2, path4, path5 = "%s/2-name2text.txt" % exp_dir, "%s/4-cnhubert" % exp_dir, "%s/5-wav32k" % exp_dir
    assert os.path.exists(path2)
    assert os.path.exists(path4)
    assert os.path.exists(path5)
    names4 = set([name[:-3] for name in list(os.listdir(path4))])
    names5 = set(os.listdir(path5))
    phoneme_data = {}
    with open(path2, encoding="utf8") as f:
        for line in f.read().strip("\n").split("\n"):
            tmp = line.split("\t")
            if len(tmp) == 4:
                phoneme_data[tmp[0]] = [tmp[1]]
    tmp = list(set(phoneme_data) & names4 & names5)
    leng = len(tmp)
    items = tmp
    if leng < 100:
        items = []
        for _ in range(max(2, int(100 / leng))):
            items += tmp
    print("phoneme_data_len:", len(phoneme_data.keys()))
    print("wav_data_len:", len(items))
    audiopaths_sid_text_new = []
    for i, name in enumerate(items):
        size = os.path.getsize("%s/%s" % (path5, name))
        duration = size / hps.data.sampling_rate / 2
        if 54 > duration > 0.6:
            audiopaths_sid_text_new.append(name)
        _fake.bar(i + 1, len(items))
    print("skipped_phone: ", 0, ", skipped_dur: ", len(items) - len(audiopaths_sid_text_new))
    print("total left: ", len(audiopaths_sid_text_new))
    assert len(audiopaths_sid_text_new) > 1  # 至少能凑够batch size，这里todo
    return audiopaths_sid_text_new


def main():
    global_step = 0
    items = dataset(hps.data.exp_dir)
    features = {n: _fake.load("%s/4-cnhubert/%s.pt" % (hps.data.exp_dir, n))["ssl"][0].astype(np.float32).mean(axis=1)
                for n in set(items)}
    batches = math.ceil(len(items) / hps.train.batch_size)
    net_g, net_d = np.zeros(768, np.float32), np.zeros(768, np.float32)
    logs = "%s/logs_s2_%s" % (hps.data.exp_dir, hps.model.version)
    try:
        load_checkpoint(latest_checkpoint_path(logs, "D_*.pth"), net_d)
        info("loaded D")
        epoch_str = load_checkpoint(latest_checkpoint_path(logs, "G_*.pth"), net_g)
        epoch_str += 1
        global_step = (epoch_str - 1) * batches
    except:  # noqa: E722 - as the real one
        epoch_str = 1
        global_step = 0
        for which, path in (("G", hps.train.pretrained_s2G), ("D", hps.train.pretrained_s2D)):
            if path != "" and path is not None and os.path.exists(path):
                info("loaded pretrained %s" % path)
                open(path, "rb").read()
                print("loaded pretrained %s" % path, "<All keys matched successfully>")
    print("start training from epoch %s" % epoch_str, flush=True)
    rng = np.random.default_rng(1234)
    lr = hps.train.learning_rate * 1000
    for epoch in range(epoch_str, hps.train.epochs + 1):
        order = rng.permutation(len(items))
        for batch_idx in range(batches):
            if batch_idx == 0:
                _fake.fail_at("s2", epoch)
            _fake.step_sleep()
            batch = [features[items[i]] for i in order[batch_idx * hps.train.batch_size:(batch_idx + 1) * hps.train.batch_size]]
            target = np.mean(batch, axis=0)
            loss_mel = float(np.mean((net_g - target) ** 2)) * 45
            net_g += lr * (target - net_g)
            net_d += lr * (target - net_d) * 0.5
            if global_step % hps.train.log_interval == 0:
                info(f"Train Epoch: {epoch} [{100.0 * batch_idx / batches:.0f}%]")
                info([2.61, 2.09, 5.44, loss_mel, 0.47, 1.23, global_step, lr / 1000])
            global_step += 1
            _fake.bar(batch_idx + 1, batches)
        if epoch % hps.train.save_every_epoch == 0:
            which = f"{global_step}" if hps.train.if_save_latest == 0 else f"{233333333333}"
            for net, letter in ((net_g, "G"), (net_d, "D")):
                path = os.path.join(logs, "%s_%s.pth" % (letter, which))
                info(f"Saving model and optimizer state at iteration {epoch} to {path}")
                _fake.my_save({"model": net, "iteration": epoch, "optimizer": net * 0.1,
                               "learning_rate": hps.train.learning_rate}, path)
            if hps.train.if_save_every_weights == True:  # noqa: E712
                name = hps.name + "_e%s_s%s" % (epoch, global_step)
                _fake.my_save({"weight": net_g.astype(np.float16), "config": json.dumps({"version": hps.model.version}),
                               "info": "%sepoch_%siteration" % (epoch, global_step)},
                              "%s/%s.pth" % (hps.save_weight_dir, name))
                info("saving ckpt %s_e%s:%s" % (hps.name, epoch, "Success."))
        info(f"====> Epoch: {epoch}")
    print("training done")


if __name__ == "__main__":
    main()
