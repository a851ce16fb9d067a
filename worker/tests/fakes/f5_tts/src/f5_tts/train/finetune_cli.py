"""Fake of F5-TTS's src/f5_tts/train/finetune_cli.py with the parts of src/f5_tts/model/trainer.py,
dataset.py and utils.py it runs (SWivid/F5-TTS at 2ae2c9bd9b64dab2cb069c4b97e5e7673c521e01): no
torch, a "model" that only counts its updates.

Faithful: the argparse (flags, defaults, choices; an unknown flag exits 2); the checkpoint folder
``files("f5_tts")/../../ckpts/<dataset_name>``; ``--finetune`` copies ``--pretrain`` (else the
hub's model_1250000.safetensors through the Hugging Face cache) there as ``pretrained_<name>``;
the tokenizer's ``data/<dataset_name>_<tokenizer>/vocab.txt`` (space first); the dataset's
raw.arrow and duration.json there; DynamicBatchSampler's batches of at most
``--batch_size_per_gpu`` frames (24 kHz, hop 256) and ``--max_samples``; ``load_checkpoint``
(model_last.pt first, else the newest model_<N>.pt, else pretrained_*; its ``update``);
resuming with the seed (skipped epochs and batches); one tqdm bar per epoch
(``desc=f"Epoch {epoch + 1}/{epochs}"``, ``unit="update"``, ``initial=``, the postfix
``update=…, loss=…``); ``model_last.pt`` every ``--last_per_updates`` and at the end ("Saved last
checkpoint at update N", printed once the file is written); ``model_<N>.pt`` every
``--save_per_updates`` unless ``--keep_last_n_checkpoints 0``, the oldest removed past N. The
checkpoints are torch zip files (f5_tts/_fake.py) of ``{"model_state_dict", "optimizer_state_dict",
"ema_model_state_dict", "scheduler_state_dict", "update"}`` with empty state dicts. Mixed precision
comes from ACCELERATE_MIXED_PRECISION (accelerate's Accelerator reads it), printed by the fake.

Failures: see f5_tts/_fake.py (FAKE_F5_TTS_FAIL).
"""

import argparse
import json
import math
import os
import random
import shutil
import signal
import time
from importlib.resources import files

from f5_tts._fake import Bar, OutOfMemoryError, fail, load_checkpoint, offline_entry_missing, save_checkpoint

target_sample_rate = 24000
n_mel_channels = 100
hop_length = 256
win_length = 1024
n_fft = 1024
mel_spec_type = "vocos"

HUB = {"F5TTS_v1_Base": "SWivid/F5-TTS/F5TTS_v1_Base/model_1250000.safetensors",
       "F5TTS_Base": "SWivid/F5-TTS/F5TTS_Base/model_1200000.pt",
       "E2TTS_Base": "SWivid/E2-TTS/E2TTS_Base/model_1200000.pt"}


def parse_args():
    parser = argparse.ArgumentParser(description="Train CFM Model")
    parser.add_argument("--exp_name", type=str, default="F5TTS_v1_Base",
                        choices=["F5TTS_v1_Base", "F5TTS_Base", "E2TTS_Base"], help="Experiment name")
    parser.add_argument("--dataset_name", type=str, default="Emilia_ZH_EN", help="Name of the dataset to use")
    parser.add_argument("--learning_rate", type=float, default=1e-5, help="Learning rate for training")
    parser.add_argument("--batch_size_per_gpu", type=int, default=3200, help="Batch size per GPU")
    parser.add_argument("--batch_size_type", type=str, default="frame", choices=["frame", "sample"],
                        help="Batch size type")
    parser.add_argument("--max_samples", type=int, default=64, help="Max sequences per batch")
    parser.add_argument("--grad_accumulation_steps", type=int, default=1, help="Gradient accumulation steps")
    parser.add_argument("--max_grad_norm", type=float, default=1.0, help="Max gradient norm for clipping")
    parser.add_argument("--epochs", type=int, default=100, help="Number of training epochs")
    parser.add_argument("--num_warmup_updates", type=int, default=20000, help="Warmup updates")
    parser.add_argument("--save_per_updates", type=int, default=50000, help="Save checkpoint every N updates")
    parser.add_argument("--keep_last_n_checkpoints", type=int, default=-1,
                        help="-1 to keep all, 0 to not save intermediate, > 0 to keep last N checkpoints")
    parser.add_argument("--last_per_updates", type=int, default=5000, help="Save last checkpoint every N updates")
    parser.add_argument("--finetune", action="store_true", help="Use Finetune")
    parser.add_argument("--pretrain", type=str, default=None, help="the path to the checkpoint")
    parser.add_argument("--tokenizer", type=str, default="pinyin", choices=["pinyin", "char", "custom"],
                        help="Tokenizer type")
    parser.add_argument("--tokenizer_path", type=str, default=None,
                        help="Path to custom tokenizer vocab file (only used if tokenizer = 'custom')")
    parser.add_argument("--log_samples", action="store_true", help="Log inferenced samples per ckpt save updates")
    parser.add_argument("--logger", type=str, default=None, choices=[None, "wandb", "tensorboard"], help="logger")
    parser.add_argument("--bnb_optimizer", action="store_true", help="Use 8-bit Adam optimizer from bitsandbytes")
    return parser.parse_args()


def cached_path(url):
    """cached_path("hf://…") → huggingface_hub's hf_hub_download, offline: the cache or nothing."""
    repo_file = url.removeprefix("hf://")
    owner, name, rest = repo_file.split("/", 2)
    cache = os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME", os.path.expanduser("~/.cache/huggingface")), "hub")
    path = os.path.join(cache, f"models--{owner}--{name}", "snapshots", "main", rest)
    if fail() == "checkpoint" or not os.path.isfile(path):
        raise offline_entry_missing()
    return path


def get_tokenizer(dataset_name, tokenizer="pinyin"):
    if tokenizer in ["pinyin", "char"]:
        tokenizer_path = os.path.join(files("f5_tts").joinpath("../../data"), f"{dataset_name}_{tokenizer}/vocab.txt")
    else:
        tokenizer_path = dataset_name
    with open(tokenizer_path, encoding="utf-8") as f:
        vocab_char_map = {}
        for i, char in enumerate(f):
            vocab_char_map[char[:-1]] = i
    vocab_size = len(vocab_char_map)
    if tokenizer != "custom":
        assert vocab_char_map[" "] == 0, "make sure space is of idx 0 in vocab.txt, cuz 0 is used for unknown char"
    return vocab_char_map, vocab_size


def load_dataset(dataset_name, tokenizer="pinyin"):
    print("Loading dataset ...")
    rel_data_path = str(files("f5_tts").joinpath(f"../../data/{dataset_name}_{tokenizer}"))
    with open(f"{rel_data_path}/raw.arrow", encoding="utf-8") as f:  # Dataset_.from_file
        rows = [json.loads(line) for line in f if line.strip()]
    with open(f"{rel_data_path}/duration.json", encoding="utf-8") as f:
        durations = json.load(f)["duration"]
    for row in rows:
        if not os.path.isfile(row["audio_path"]):  # torchaudio.load in CustomDataset.__getitem__
            raise RuntimeError(f"Failed to open the input \"{row['audio_path']}\" (No such file or directory).")
    return rows, durations


def dynamic_batches(durations, frames_threshold, max_samples):
    indices = sorted(((i, d * target_sample_rate / hop_length) for i, d in enumerate(durations)), key=lambda e: e[1])
    batches, batch, batch_frames = [], [], 0
    for idx, frame_len in Bar(indices, desc=f"Creating dynamic batches with {frames_threshold} audio frames per gpu"):
        if batch_frames + frame_len <= frames_threshold and (max_samples == 0 or len(batch) < max_samples):
            batch.append(idx)
            batch_frames += frame_len
        else:
            if batch:
                batches.append(batch)
            batch, batch_frames = ([idx], frame_len) if frame_len <= frames_threshold else ([], 0)
    if batch:
        batches.append(batch)
    return batches


class Trainer:
    def __init__(self, args, checkpoint_path):
        self.args = args
        self.checkpoint_path = checkpoint_path
        self.epochs = args.epochs
        self.save_per_updates = args.save_per_updates
        self.last_per_updates = args.last_per_updates or args.save_per_updates
        self.keep_last_n_checkpoints = args.keep_last_n_checkpoints
        self.grad_accumulation_steps = args.grad_accumulation_steps
        print(f"Using logger: {args.logger}")
        print(f"mixed precision: {os.environ.get('ACCELERATE_MIXED_PRECISION', 'no')}")

    def save_checkpoint(self, update, last=False):
        checkpoint = dict(model_state_dict={}, optimizer_state_dict={}, ema_model_state_dict={},
                          scheduler_state_dict={}, update=update)
        os.makedirs(self.checkpoint_path, exist_ok=True)
        if last:
            save_checkpoint(f"{self.checkpoint_path}/model_last.pt", checkpoint)
            print(f"Saved last checkpoint at update {update}", flush=True)
        else:
            if self.keep_last_n_checkpoints == 0:
                return
            save_checkpoint(f"{self.checkpoint_path}/model_{update}.pt", checkpoint)
            if self.keep_last_n_checkpoints > 0:
                checkpoints = [f for f in os.listdir(self.checkpoint_path) if f.startswith("model_")
                               and not f.startswith("pretrained_") and f.endswith(".pt") and f != "model_last.pt"]
                checkpoints.sort(key=lambda x: int(x.split("_")[1].split(".")[0]))
                while len(checkpoints) > self.keep_last_n_checkpoints:
                    oldest_checkpoint = checkpoints.pop(0)
                    os.remove(os.path.join(self.checkpoint_path, oldest_checkpoint))
                    print(f"Removed old checkpoint: {oldest_checkpoint}")

    def load_checkpoint(self):
        if not os.path.exists(self.checkpoint_path) or not any(
                f.endswith((".pt", ".safetensors")) for f in os.listdir(self.checkpoint_path)):
            return 0
        names = os.listdir(self.checkpoint_path)
        if "model_last.pt" in names:
            latest = "model_last.pt"
        else:
            all_checkpoints = [f for f in names if (f.startswith("model_") or f.startswith("pretrained_"))
                               and f.endswith((".pt", ".safetensors"))]
            training = [f for f in all_checkpoints if f.startswith("model_") and f != "model_last.pt"]
            if training:
                latest = sorted(training, key=lambda x: int("".join(filter(str.isdigit, x))))[-1]
            else:
                latest = next(f for f in all_checkpoints if f.startswith("pretrained_"))
        checkpoint = load_checkpoint(f"{self.checkpoint_path}/{latest}")
        return checkpoint.get("update", 0)

    def train(self, durations, resumable_with_seed=None):
        batches = dynamic_batches(durations, self.args.batch_size_per_gpu, self.args.max_samples)
        per_epoch = math.ceil(len(batches) / self.grad_accumulation_steps)
        start_update = self.load_checkpoint()
        global_update = start_update
        orig_epoch_step = len(batches)
        start_step = start_update * self.grad_accumulation_steps
        skipped_epoch = int(start_step // orig_epoch_step)
        skipped_batch = start_step % orig_epoch_step
        random.seed(resumable_with_seed)
        crash_at = int(fail().rsplit("-", 1)[1]) if fail().startswith("crash-at-update-") else None
        pause = float(os.environ.get("FAKE_F5_TTS_UPDATE_S", "0.02"))
        for epoch in range(skipped_epoch, self.epochs):
            initial = math.ceil(skipped_batch / self.grad_accumulation_steps) if epoch == skipped_epoch else 0
            progress_bar = Bar(range(per_epoch), desc=f"Epoch {epoch + 1}/{self.epochs}", unit="update",
                               initial=initial)
            for step in range(initial * self.grad_accumulation_steps, len(batches)):
                if fail() == "oom":
                    raise OutOfMemoryError(
                        "CUDA out of memory. Tried to allocate 1.53 GiB. GPU 0 has a total capacity of 23.64 GiB "
                        "of which 612.06 MiB is free. Including non-PyTorch memory, this process has 23.03 GiB "
                        "memory in use. Of the allocated memory 21.87 GiB is allocated by PyTorch, and 798.51 MiB "
                        "is reserved by PyTorch but unallocated.")
                if fail() == "hang":
                    while True:
                        time.sleep(1)
                time.sleep(pause)
                loss = 0.8 / (1 + 0.05 * global_update) + random.random() * 0.01
                if (step + 1) % self.grad_accumulation_steps and step + 1 < len(batches):
                    continue
                global_update += 1
                if crash_at is not None and global_update >= crash_at:
                    os.kill(os.getpid(), signal.SIGKILL)
                progress_bar.update(1)
                progress_bar.set_postfix(update=str(global_update), loss=loss)
                if global_update % self.last_per_updates == 0:
                    self.save_checkpoint(global_update, last=True)
                if global_update % self.save_per_updates == 0:
                    self.save_checkpoint(global_update)
            progress_bar.close()
        self.save_checkpoint(global_update, last=True)


def main():
    args = parse_args()
    checkpoint_path = str(files("f5_tts").joinpath(f"../../ckpts/{args.dataset_name}"))
    if args.finetune:
        ckpt_path = args.pretrain if args.pretrain is not None else cached_path(f"hf://{HUB[args.exp_name]}")
        os.makedirs(checkpoint_path, exist_ok=True)
        file_checkpoint = os.path.basename(ckpt_path)
        if not file_checkpoint.startswith("pretrained_"):
            file_checkpoint = "pretrained_" + file_checkpoint
        file_checkpoint = os.path.join(checkpoint_path, file_checkpoint)
        if not os.path.isfile(file_checkpoint):
            shutil.copy2(ckpt_path, file_checkpoint)
            print("copy checkpoint for finetune")
    if args.tokenizer == "custom":
        if not args.tokenizer_path:
            raise ValueError("Custom tokenizer selected, but no tokenizer_path provided.")
        tokenizer_path = args.tokenizer_path
    else:
        tokenizer_path = args.dataset_name
    _, vocab_size = get_tokenizer(tokenizer_path, args.tokenizer)
    print("\nvocab : ", vocab_size)
    print("\nvocoder : ", mel_spec_type)
    trainer = Trainer(args, checkpoint_path)
    _, durations = load_dataset(args.dataset_name, args.tokenizer)
    trainer.train(durations, resumable_with_seed=666)


if __name__ == "__main__":
    main()
