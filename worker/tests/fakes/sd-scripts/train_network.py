"""Fake kohya-ss/sd-scripts ``train_network.py`` (compared with commit 48d368f): the same command
line, files, progress and failures, with a toy model in numpy instead of Stable Diffusion.

What is the real one's, in its order (train_network.py ``NetworkTrainer.train``):
- ``--dataset_config`` read and checked (library/config_util.py); "No data found. …" → returns;
- the base model loaded (``--pretrained_model_name_or_path``), latents cached (a bar with no desc);
- ``import network module: networks.lora`` (``importlib.import_module(--network_module)``);
- ``--resume <dir>``: ``accelerator.load_state``; its load hook reads ``train_state.json``
  (``current_step``); with ``--skip_until_initial_step`` that many batches are skipped and
  ``global_step`` starts there, otherwise only whole epochs are skipped and ``global_step`` starts
  at 0 (and within a later epoch it is the step in that epoch, the real one's quirk, kept);
- the "steps" bar, ``tqdm(range(max_train_steps - initial_step), desc="steps")``, its postfix
  ``avr_loss=…`` (LossRecorder's mean over the epoch) set after every step;
- every ``--save_every_n_steps``: ``<output_name>-step%08d.safetensors`` then, with
  ``--save_state``, the state folder ``<output_name>-step%08d-state`` (train_util.STEP_STATE_NAME);
- at the end ``<output_name>-state`` (with --save_state) then ``<output_name>.safetensors``, "model saved.".

The failures (library/fake_switches.py) print what torch, diffusers or sd-scripts print.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import random
import sys
import time

import numpy as np
from library import config_util, fake_switches, train_util
from library.tqdm_bar import tqdm
from library.utils import setup_logging

if fake_switches.fail() == "env":
    raise ModuleNotFoundError("No module named 'torch'", name="torch")

import logging  # noqa: E402 - after the import that fails when its environment is broken

from accelerate import Accelerator  # noqa: E402

logger = logging.getLogger(__name__)


class OutOfMemoryError(RuntimeError):
    pass


OutOfMemoryError.__module__ = "torch"  # "torch.OutOfMemoryError: CUDA out of memory. …", as torch ≥ 2.4 prints it

OOM_MESSAGE = ("CUDA out of memory. Tried to allocate 20.00 MiB. GPU 0 has a total capacity of 23.65 GiB of which "
               "3.06 MiB is free. Including non-PyTorch memory, this process has 23.63 GiB memory in use. Of the "
               "allocated memory 22.84 GiB is allocated by PyTorch, and 391.52 MiB is reserved by PyTorch but "
               "unallocated. If reserved but unallocated memory is large try setting "
               "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid fragmentation.  See documentation for "
               "Memory Management  (https://pytorch.org/docs/stable/notes/cuda.html#environment-variables)")
CRASH_MESSAGE = ("CUDA error: an illegal memory access was encountered\nCUDA kernel errors might be asynchronously "
                 "reported at some other API call, so the stacktrace below might be incorrect.\nFor debugging consider "
                 "passing CUDA_LAUNCH_BLOCKING=1")


class NetworkTrainer:
    is_sdxl = False

    def load_target_model(self, args: argparse.Namespace) -> train_util.BaseModel:
        return train_util.load_target_model(args, sdxl=self.is_sdxl)

    def base_model_version(self) -> tuple[str, str]:
        return "sd_v1", "stable-diffusion-v1/lora"

    def train(self, args: argparse.Namespace) -> None:
        fake_switches.record_start()
        training_started_at = time.time()
        train_util.verify_training_args(args)
        train_util.prepare_dataset_args(args, True)
        setup_logging(args, reset=True)

        if args.seed is None:
            args.seed = random.randint(0, 2**32 - 1)
        random.seed(args.seed)
        np.random.seed(args.seed % 2**32)

        # dataset
        blueprint_generator = config_util.BlueprintGenerator(config_util.ConfigSanitizer(True, True, args.masked_loss, True))
        if args.dataset_config is not None:
            logger.info(f"Loading dataset config from {args.dataset_config}")
            user_config = config_util.load_user_config(str(args.dataset_config))
        else:
            logger.info("Using DreamBooth method.")
            user_config = {"datasets": [{"subsets": _subsets_by_subdirs(args.train_data_dir)}]}
        blueprint = blueprint_generator.generate(user_config, args)
        train_dataset_group = train_util.DatasetGroup([train_util.DreamBoothDataset(d) for d in blueprint])

        current_epoch = 0
        current_step = 0

        if len(train_dataset_group) == 0:
            logger.error("No data found. Please verify arguments (train_data_dir must be the parent of folders with "
                         "images) / 画像がありません。引数指定を確認してください（train_data_dirには画像があるフォルダではなく、"
                         "画像があるフォルダの親フォルダを指定する必要があります）")
            return

        logger.info("preparing accelerator")
        accelerator = Accelerator(gradient_accumulation_steps=args.gradient_accumulation_steps,
                                  mixed_precision=args.mixed_precision)
        unet = self.load_target_model(args)
        if fake_switches.fail() == "hang" and fake_switches.fail_at_step() is None:
            fake_switches.hang()

        images = [info for d in train_dataset_group.datasets for info in d.images]
        if args.cache_latents:
            logger.info("caching latents with caching strategy.")
            logger.info("caching latents...")
            for info in tqdm(images, smoothing=0):
                info.features = train_util.image_features(info)
        else:
            for info in images:
                info.features = train_util.image_features(info)

        accelerator.print("import network module:", args.network_module)
        network_module = importlib.import_module(args.network_module)
        network = network_module.create_network(1.0, args.network_dim, args.network_alpha, None, None, unet)

        accelerator.print("prepare optimizer, data loader etc.")
        optimizer = network_module.AdamW(args.learning_rate)
        lr_scheduler = network_module.ConstantScheduler(args.learning_rate)
        train_dataloader_len = len(train_dataset_group)
        if args.max_train_epochs is not None:
            args.max_train_steps = args.max_train_epochs * math.ceil(train_dataloader_len / args.gradient_accumulation_steps)
            accelerator.print(f"override steps. steps for {args.max_train_epochs} epochs is / 指定エポックまでのステップ数: "
                              f"{args.max_train_steps}")
        network, optimizer, lr_scheduler = accelerator.prepare(network, optimizer, lr_scheduler)

        def save_model_hook(models, weights, output_dir):
            train_state_file = os.path.join(output_dir, "train_state.json")
            logger.info(f"save train state to {train_state_file} at epoch {current_epoch} step {current_step + 1}")
            with open(train_state_file, "w", encoding="utf-8") as f:
                json.dump({"current_epoch": current_epoch, "current_step": current_step + 1}, f)

        steps_from_state = None

        def load_model_hook(models, input_dir):
            nonlocal steps_from_state
            train_state_file = os.path.join(input_dir, "train_state.json")
            if os.path.exists(train_state_file):
                with open(train_state_file, encoding="utf-8") as f:
                    data = json.load(f)
                steps_from_state = data["current_step"]
                logger.info(f"load train state from {train_state_file}: {data}")

        accelerator.register_save_state_pre_hook(save_model_hook)
        accelerator.register_load_state_pre_hook(load_model_hook)
        train_util.resume_from_local_or_hf_if_specified(accelerator, args)

        num_update_steps_per_epoch = math.ceil(train_dataloader_len / args.gradient_accumulation_steps)
        num_train_epochs = math.ceil(args.max_train_steps / num_update_steps_per_epoch)

        accelerator.print("running training / 学習開始")
        accelerator.print(f"  num train images * repeats / 学習画像の数×繰り返し回数: {train_dataset_group.num_train_images}")
        accelerator.print(f"  num validation images * repeats / 学習画像の数×繰り返し回数: {0}")
        accelerator.print(f"  num reg images / 正則化画像の数: {train_dataset_group.num_reg_images}")
        accelerator.print(f"  num batches per epoch / 1epochのバッチ数: {train_dataloader_len}")
        accelerator.print(f"  num epochs / epoch数: {num_train_epochs}")
        accelerator.print("  batch size per device / バッチサイズ: "
                          + ", ".join(str(d.batch_size) for d in train_dataset_group.datasets))
        accelerator.print(f"  gradient accumulation steps / 勾配を合計するステップ数 = {args.gradient_accumulation_steps}")
        accelerator.print(f"  total optimization steps / 学習ステップ数: {args.max_train_steps}")

        initial_step = 0
        if args.initial_epoch is not None or args.initial_step is not None:
            if steps_from_state is not None:
                logger.warning("steps from the state is ignored because initial_step is specified / "
                               "initial_stepが指定されているため、stateからのステップ数は無視されます")
            if args.initial_step is not None:
                initial_step = args.initial_step
            else:
                initial_step = (args.initial_epoch - 1) * math.ceil(train_dataloader_len / args.gradient_accumulation_steps)
        elif steps_from_state is not None:
            initial_step = steps_from_state
            steps_from_state = None

        if initial_step > 0:
            assert args.max_train_steps > initial_step, (
                f"max_train_steps should be greater than initial step / max_train_stepsは初期ステップより大きい必要があります: "
                f"{args.max_train_steps} vs {initial_step}")

        epoch_to_start = 0
        if initial_step > 0:
            if args.skip_until_initial_step:
                if not args.resume:
                    logger.info("initial_step is specified but not resuming. lr scheduler will be started from the beginning"
                                " / initial_stepが指定されていますがresumeしていないため、lr schedulerは最初から始まります")
                logger.info(f"skipping {initial_step} steps / {initial_step}ステップをスキップします")
                initial_step *= args.gradient_accumulation_steps
                epoch_to_start = initial_step // math.ceil(train_dataloader_len / args.gradient_accumulation_steps)
            else:
                epoch_to_start = initial_step // math.ceil(train_dataloader_len / args.gradient_accumulation_steps)
                initial_step = 0

        global_step = 0
        loss_recorder = train_util.LossRecorder()
        metadata = _metadata(args, self, train_dataset_group, training_started_at, num_train_epochs, train_dataloader_len)

        def save_model(ckpt_name, unwrapped_nw, steps, epoch_no):
            os.makedirs(args.output_dir, exist_ok=True)
            ckpt_file = os.path.join(args.output_dir, ckpt_name)
            accelerator.print(f"\nsaving checkpoint: {ckpt_file}")
            metadata["ss_training_finished_at"] = str(time.time())
            metadata["ss_steps"] = str(steps)
            metadata["ss_epoch"] = str(epoch_no)
            unwrapped_nw.save_weights(ckpt_file, None, metadata)

        def remove_model(old_ckpt_name):
            old_ckpt_file = os.path.join(args.output_dir, old_ckpt_name)
            if os.path.exists(old_ckpt_file):
                accelerator.print(f"removing old checkpoint: {old_ckpt_file}")
                os.remove(old_ckpt_file)

        if initial_step > 0:
            for skip_epoch in range(epoch_to_start):
                logger.info(f"skipping epoch {skip_epoch + 1} because initial_step (multiplied) is {initial_step}")
                initial_step -= train_dataloader_len
            global_step = initial_step

        progress_bar = tqdm(range(args.max_train_steps - initial_step), smoothing=0, desc="steps")
        fail, fail_at = fake_switches.fail(), fake_switches.fail_at_step()
        pause = fake_switches.step_s()

        for epoch in range(epoch_to_start, num_train_epochs):
            accelerator.print(f"\nepoch {epoch + 1}/{num_train_epochs}\n")
            current_epoch = epoch + 1
            metadata["ss_epoch"] = str(epoch + 1)
            batches = train_dataset_group.epoch_batches()
            if initial_step > 0:
                batches = accelerator.skip_first_batches(batches, initial_step - 1)
                initial_step = 1
            for step, batch in enumerate(batches):
                current_step = global_step
                if initial_step > 0:
                    initial_step -= 1
                    continue
                if fail in ("oom", "crash", "hang") and global_step + 1 == (fail_at or 1):
                    if fail == "hang":
                        fake_switches.hang()
                    if fail == "oom":
                        raise OutOfMemoryError(OOM_MESSAGE)
                    raise RuntimeError(CRASH_MESSAGE)
                if pause:
                    time.sleep(pause)
                features = np.stack([info.features for info in batch])
                loss = network.step(features, optimizer)
                lr_scheduler.step()

                progress_bar.update(1)
                global_step += 1
                if args.save_every_n_steps is not None and global_step % args.save_every_n_steps == 0:
                    save_model(train_util.get_step_ckpt_name(args, "." + args.save_model_as, global_step), network,
                               global_step, epoch)
                    if args.save_state:
                        train_util.save_and_remove_state_stepwise(args, accelerator, global_step)
                    remove_step_no = train_util.get_remove_step_no(args, global_step)
                    if remove_step_no is not None:
                        remove_model(train_util.get_step_ckpt_name(args, "." + args.save_model_as, remove_step_no))

                loss_recorder.add(epoch=epoch, step=step, loss=loss)
                progress_bar.set_postfix(avr_loss=loss_recorder.moving_average)
                if global_step >= args.max_train_steps:
                    break

        metadata["ss_training_finished_at"] = str(time.time())
        accelerator.end_training()
        if args.save_state or args.save_state_on_train_end:
            train_util.save_state_on_train_end(args, accelerator)
        save_model(train_util.get_last_ckpt_name(args, "." + args.save_model_as), network, global_step, num_train_epochs)
        logger.info("model saved.")


def _subsets_by_subdirs(train_data_dir: str | None) -> list[dict]:
    """config_util.generate_dreambooth_subsets_config_by_subdirs: ``<repeats>_<class tokens>`` folders."""
    subsets = []
    if not train_data_dir or not os.path.isdir(train_data_dir):
        return subsets
    for name in sorted(os.listdir(train_data_dir)):
        path = os.path.join(train_data_dir, name)
        head, _, tokens = name.partition("_")
        if os.path.isdir(path) and head.isdigit():
            subsets.append({"image_dir": path, "num_repeats": int(head), "class_tokens": tokens})
    return subsets


def _metadata(args, trainer, group, started_at, num_train_epochs, batches_per_epoch) -> dict[str, str]:
    version, architecture = trainer.base_model_version()
    dirs = {}
    for d in group.datasets:
        for s in d.subsets:
            dirs[os.path.basename(s.image_dir)] = {"n_repeats": s.num_repeats,
                                                   "img_count": len(train_util.glob_images(s.image_dir))}
    resolution = group.datasets[0].resolution
    return {
        "ss_session_id": str(random.randint(0, 2**32)),
        "ss_training_started_at": str(started_at),
        "ss_output_name": str(args.output_name),
        "ss_learning_rate": str(args.learning_rate),
        "ss_num_train_images": str(group.num_train_images),
        "ss_num_batches_per_epoch": str(batches_per_epoch),
        "ss_num_epochs": str(num_train_epochs),
        "ss_max_train_steps": str(args.max_train_steps),
        "ss_network_module": str(args.network_module),
        "ss_network_dim": str(args.network_dim if args.network_dim is not None else 4),
        "ss_network_alpha": str(args.network_alpha),
        "ss_mixed_precision": str(args.mixed_precision),
        "ss_seed": str(args.seed),
        "ss_base_model_version": version,
        "ss_sd_model_name": os.path.basename(str(args.pretrained_model_name_or_path)),
        "ss_dataset_dirs": json.dumps(dirs),
        "ss_resolution": f"({resolution[0]}, {resolution[1]})",
        "modelspec.sai_model_spec": "1.0.0",
        "modelspec.architecture": architecture,
        "modelspec.implementation": "https://github.com/Stability-AI/generative-models" if trainer.is_sdxl else "diffusers",
        "modelspec.title": str(args.output_name),
        "modelspec.resolution": f"{resolution[0]}x{resolution[1]}",
    }


def setup_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    train_util.add_arguments(parser, "train_network")
    return parser


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)
    parser = setup_parser()

    args = parser.parse_args()
    train_util.verify_command_line_training_args(args)
    args = train_util.read_config_from_file(args, parser)

    trainer = NetworkTrainer()
    trainer.train(args)
