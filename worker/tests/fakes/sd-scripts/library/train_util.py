"""Fake sd-scripts library/train_util.py: the parts train_network.py uses, with sd-scripts' names,
file names and messages (kohya-ss/sd-scripts 48d368f, library/train_util.py).

- The command line: every flag of the real parser (``arguments.json``, extracted from the real
  source by tools/extract_arguments.py), so an unknown flag exits 2 as argparse does.
- State folders: ``STEP_STATE_NAME = "{}-step{:08d}-state"`` (``<output_name>-step00000200-state``,
  ``at-step…`` without ``--output_name``), ``LAST_STATE_NAME = "{}-state"`` at the end;
  ``save_and_remove_state_stepwise`` keeps ``--save_last_n_steps_state`` (else
  ``--save_last_n_steps``) steps of them, removing older ones with ``shutil.rmtree``.
- The base model: a file is a Stable Diffusion checkpoint (a .safetensors whose header does not
  parse fails as the safetensors package does); anything else goes to diffusers, which refuses a
  path that is not a folder: ``ValueError: The provided pretrained_model_name_or_path "…" is
  neither a valid local path nor a valid repo id. Please check the parameter.``
- The DreamBooth dataset: each subset's ``image_dir`` globbed for images, a caption per image from
  ``<name><caption_extension>`` else the subset's ``class_tokens``; a missing folder logs
  ``not directory: <dir>``; no image at all logs "No data found. …" and the run returns (exit 0,
  no LoRA written), as train_network.py does.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import logging
import math
import os
import pathlib
import shutil
import tomllib

import numpy as np

from library import fake_switches
from library.config_util import Dataset
from library.safetensors_file import load_file

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = [".png", ".jpg", ".jpeg", ".webp", ".bmp", ".PNG", ".JPG", ".JPEG", ".WEBP", ".BMP"]

EPOCH_STATE_NAME = "{}-{:06d}-state"
EPOCH_FILE_NAME = "{}-{:06d}"
LAST_STATE_NAME = "{}-state"
DEFAULT_EPOCH_NAME = "epoch"
DEFAULT_LAST_OUTPUT_NAME = "last"
DEFAULT_STEP_NAME = "at"
STEP_STATE_NAME = "{}-step{:08d}-state"
STEP_FILE_NAME = "{}-step{:08d}"

_ARGUMENTS = os.path.join(os.path.dirname(__file__), "arguments.json")


# region arguments


def int_or_float(value: str) -> int | float:
    return float(value) if "." in value or "e" in value.lower() else int(value)


_TYPES = {"str": str, "int": int, "float": float, "int_or_float": int_or_float, "Path": pathlib.Path}


def add_arguments(parser: argparse.ArgumentParser, table: str) -> None:
    with open(_ARGUMENTS, encoding="utf-8") as f:
        rows = json.load(f)[table]
    for row in rows:
        kwargs: dict = {"dest": row["dest"]}
        if row.get("action") == "store_true":
            kwargs["action"] = "store_true"
        else:
            if "type" in row:
                kwargs["type"] = _TYPES[row["type"]]
            for key in ("nargs", "default", "choices"):
                if key in row:
                    kwargs[key] = row[key]
        parser.add_argument(*row["flags"], **kwargs)


def verify_command_line_training_args(args: argparse.Namespace) -> None:
    pass


def verify_training_args(args: argparse.Namespace) -> None:
    if args.cache_latents_to_disk and not args.cache_latents:
        args.cache_latents = True
        logger.warning("cache_latents_to_disk is enabled, so cache_latents is also enabled / cache_latents_to_diskが有効なため、"
                       "cache_latentsを有効にします")


def prepare_dataset_args(args: argparse.Namespace, support_metadata: bool) -> None:
    pass


def read_config_from_file(args: argparse.Namespace, parser: argparse.ArgumentParser) -> argparse.Namespace:
    if not args.config_file:
        return args
    config_path = args.config_file + ".toml" if not args.config_file.endswith(".toml") else args.config_file
    if not os.path.exists(config_path):
        logger.info(f"{config_path} not found.")
        exit(1)
    logger.info(f"Loading settings from {config_path}...")
    with open(config_path, "rb") as f:
        config_dict = tomllib.load(f)
    flat: dict = {}
    for section, values in config_dict.items():
        if isinstance(values, dict):
            flat.update(values)
        else:
            flat[section] = values
    args = parser.parse_args(namespace=argparse.Namespace(**flat))
    args.config_file = os.path.splitext(args.config_file)[0]
    return args


# endregion

# region model


class BaseModel:
    """What the fake "loads" from a checkpoint: its family and a seed drawn from its bytes (the
    fixed part of the toy objective the LoRA learns)."""

    def __init__(self, path: str, sdxl: bool) -> None:
        self.sdxl = sdxl
        digest = hashlib.sha256()
        if os.path.isfile(path):
            with open(path, "rb") as f:
                digest.update(f.read(1 << 20))
        else:
            digest.update(path.encode())
        self.seed = int.from_bytes(digest.digest()[:4], "little")


def load_target_model(args: argparse.Namespace, sdxl: bool = False) -> BaseModel:
    name_or_path = args.pretrained_model_name_or_path
    if name_or_path is None:
        raise TypeError("stat: path should be string, bytes, os.PathLike or integer, not NoneType")
    name_or_path = os.path.realpath(name_or_path) if os.path.islink(name_or_path) else name_or_path
    if os.path.isfile(name_or_path) and fake_switches.fail() != "weights":
        logger.info(f"load StableDiffusion checkpoint: {name_or_path}")
        if name_or_path.endswith(".safetensors"):
            load_file(name_or_path)
        for part in ("u-net", "vae", "text encoder"):
            logger.info(f"loading {part}: <All keys matched successfully>")
        return BaseModel(name_or_path, sdxl)
    variant = ", variant=fp16" if sdxl and args.mixed_precision == "fp16" else (", variant=None" if sdxl else "")
    logger.info(f"load Diffusers pretrained models: {name_or_path}{variant}")
    if os.path.isdir(name_or_path) and os.path.isfile(os.path.join(name_or_path, "model_index.json")) \
            and fake_switches.fail() != "weights":
        return BaseModel(os.path.join(name_or_path, "model_index.json"), sdxl)
    if not os.path.isdir(name_or_path) and name_or_path.count("/") > 1 or fake_switches.fail() == "weights":
        # diffusers DiffusionPipeline.from_pretrained: a ValueError, not the EnvironmentError sd-scripts logs
        raise ValueError(f'The provided pretrained_model_name_or_path "{name_or_path}"'
                         " is neither a valid local path nor a valid repo id. Please check the parameter.")
    logger.error("model is not found as a file or in Hugging Face, perhaps file name is wrong? / 指定したモデル名のファイル、"
                 f"またはHugging Faceのモデルが見つかりません。ファイル名が誤っているかもしれません: {name_or_path}")
    raise OSError(f"Error no file named model_index.json found in directory {name_or_path}.")


# endregion

# region dataset


class ImageInfo:
    def __init__(self, path: str, repeats: int, caption: str) -> None:
        self.path, self.num_repeats, self.caption = path, repeats, caption
        self.features: np.ndarray | None = None


def glob_images(directory: str, base: str = "*") -> list[str]:
    paths: set[str] = set()
    for ext in IMAGE_EXTENSIONS:
        paths.update(glob.glob(os.path.join(glob.escape(directory), base + ext)))
    return sorted(paths)


def read_caption(img_path: str, caption_extension: str) -> str | None:
    cap_path = os.path.splitext(img_path)[0] + caption_extension
    if not os.path.isfile(cap_path):
        return None
    with open(cap_path, encoding="utf-8") as f:
        lines = f.readlines()
    return lines[0].strip() if lines else ""


class DreamBoothDataset:
    def __init__(self, blueprint: Dataset) -> None:
        self.batch_size = blueprint.batch_size
        self.resolution = blueprint.resolution
        self.images: list[ImageInfo] = []
        self.num_train_images = 0
        self.num_reg_images = 0
        self.subsets = []
        logger.info("prepare images.")
        for subset in blueprint.subsets:
            if subset.num_repeats < 1:
                logger.warning(f"ignore subset with image_dir='{subset.image_dir}': num_repeats is less than 1 / "
                               f"num_repeatsが1を下回っているためサブセットを無視します: {subset.num_repeats}")
                continue
            if not os.path.isdir(subset.image_dir) or fake_switches.fail() == "dataset":
                logger.warning(f"not directory: {subset.image_dir}")
                img_paths: list[str] = []
            else:
                img_paths = glob_images(subset.image_dir, "*")
                logger.info(f"found directory {subset.image_dir} contains {len(img_paths)} image files")
            if not img_paths:
                logger.warning(f"ignore subset with image_dir='{subset.image_dir}': no images found / "
                               "画像が見つからないためサブセットを無視します")
                continue
            for path in img_paths:
                caption = read_caption(path, subset.caption_extension)
                if caption is None:
                    caption = subset.class_tokens or ""
                if subset.is_reg:
                    self.num_reg_images += subset.num_repeats
                    continue
                self.num_train_images += subset.num_repeats
                self.images.append(ImageInfo(path, subset.num_repeats, caption))
            self.subsets.append(subset)
        logger.info(f"{self.num_train_images} train images with repeats.")
        logger.info(f"{self.num_reg_images} reg images.")

    def __len__(self) -> int:
        return math.ceil(self.num_train_images / self.batch_size)

    def epoch_batches(self) -> list[list[ImageInfo]]:
        entries = [info for info in self.images for _ in range(info.num_repeats)]
        order = np.random.permutation(len(entries))
        return [[entries[i] for i in order[k:k + self.batch_size]] for k in range(0, len(entries), self.batch_size)]


class DatasetGroup:
    def __init__(self, datasets: list[DreamBoothDataset]) -> None:
        self.datasets = datasets
        self.num_train_images = sum(d.num_train_images for d in datasets)
        self.num_reg_images = sum(d.num_reg_images for d in datasets)

    def __len__(self) -> int:
        return sum(len(d) for d in self.datasets)

    def epoch_batches(self) -> list[list[ImageInfo]]:
        batches = [b for d in self.datasets for b in d.epoch_batches()]
        return [batches[i] for i in np.random.permutation(len(batches))]


def image_features(info: ImageInfo) -> np.ndarray:
    """The toy "latent" of an image: its 8x8 grey thumbnail and its caption's words, 80 values."""
    import cv2

    img = cv2.imread(info.path, cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise OSError(f"cannot identify image file '{info.path}'")
    thumb = cv2.resize(img, (8, 8), interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
    thumb = (thumb - thumb.mean()) / (thumb.std() + 1e-6)
    words = np.zeros(16, np.float32)
    for word in info.caption.replace(",", " ").split():
        words[int(hashlib.md5(word.encode()).hexdigest(), 16) % 16] += 1.0
    return np.concatenate([thumb, words])


# endregion

# region training state


class LossRecorder:
    def __init__(self) -> None:
        self.loss_list: list[float] = []
        self.loss_total: float = 0.0

    def add(self, *, epoch: int, step: int, loss: float) -> None:
        if epoch == 0:
            self.loss_list.append(loss)
        else:
            while len(self.loss_list) <= step:
                self.loss_list.append(0.0)
            self.loss_total -= self.loss_list[step]
            self.loss_list[step] = loss
        self.loss_total += loss

    @property
    def moving_average(self) -> float:
        return self.loss_total / len(self.loss_list)


def default_if_none(value, default):
    return default if value is None else value


def get_step_ckpt_name(args: argparse.Namespace, ext: str, step_no: int) -> str:
    return STEP_FILE_NAME.format(default_if_none(args.output_name, DEFAULT_STEP_NAME), step_no) + ext


def get_last_ckpt_name(args: argparse.Namespace, ext: str) -> str:
    return default_if_none(args.output_name, DEFAULT_LAST_OUTPUT_NAME) + ext


def get_remove_step_no(args: argparse.Namespace, step_no: int) -> int | None:
    if args.save_last_n_steps is None:
        return None
    remove_step_no = step_no - args.save_last_n_steps - 1
    remove_step_no = remove_step_no - (remove_step_no % args.save_every_n_steps)
    if remove_step_no < 0:
        return None
    return remove_step_no


def save_and_remove_state_stepwise(args: argparse.Namespace, accelerator, step_no: int) -> None:
    model_name = default_if_none(args.output_name, DEFAULT_STEP_NAME)
    logger.info("")
    logger.info(f"saving state at step {step_no}")
    os.makedirs(args.output_dir, exist_ok=True)
    state_dir = os.path.join(args.output_dir, STEP_STATE_NAME.format(model_name, step_no))
    accelerator.save_state(state_dir)
    last_n_steps = args.save_last_n_steps_state if args.save_last_n_steps_state else args.save_last_n_steps
    if last_n_steps is not None:
        remove_step_no = step_no - last_n_steps - 1
        remove_step_no = remove_step_no - (remove_step_no % args.save_every_n_steps)
        if remove_step_no > 0:
            state_dir_old = os.path.join(args.output_dir, STEP_STATE_NAME.format(model_name, remove_step_no))
            if os.path.exists(state_dir_old):
                logger.info(f"removing old state: {state_dir_old}")
                shutil.rmtree(state_dir_old)


def save_state_on_train_end(args: argparse.Namespace, accelerator) -> None:
    model_name = default_if_none(args.output_name, DEFAULT_LAST_OUTPUT_NAME)
    logger.info("")
    logger.info("saving last state.")
    os.makedirs(args.output_dir, exist_ok=True)
    accelerator.save_state(os.path.join(args.output_dir, LAST_STATE_NAME.format(model_name)))


def resume_from_local_or_hf_if_specified(accelerator, args: argparse.Namespace) -> None:
    if not args.resume:
        return
    if args.resume_from_huggingface:
        raise ValueError("the fake sd-scripts cannot reach Hugging Face")
    logger.info(f"resume training from local state: {args.resume}")
    accelerator.load_state(args.resume)


# endregion
