"""Fake sd-scripts library/config_util.py: the ``--dataset_config`` TOML read and checked as
sd-scripts does, DreamBooth style (``[general]``, ``[[datasets]]``, ``[[datasets.subsets]]`` with
``image_dir``), with its schema's keys (ConfigSanitizer: SUBSET/DB/DO/DATASET_ASCENDABLE_SCHEMA
and DB_SUBSET_DISTINCT_SCHEMA) and its errors:

- a file that is not there: ``ValueError: file not found / ファイルが見つかりません: <file>``;
- TOML it cannot parse: logged "Error on parsing TOML config file. Please check the format. / …",
  then the parser's exception;
- a key it does not know, a value of the wrong type, an ``image_dir`` missing: logged "Invalid user
  config / ユーザ設定の形式が正しくないようです", then ``voluptuous.error.MultipleInvalid: extra keys
  not allowed @ data['datasets'][0]['subsets'][0]['…']`` (or "required key not provided", "expected
  int for dictionary value").

Values ascend: a subset's key falls back to its dataset's, then ``[general]``, then the command
line's (``--caption_extension`` default ".caption", ``--train_batch_size`` 1, ``--resolution``).
``image_dir`` is used as written: a relative one is relative to the trainer's working directory.
"""

from __future__ import annotations

import argparse
import logging
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


class MultipleInvalid(Exception):
    pass


MultipleInvalid.__module__ = "voluptuous.error"


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset_config", type=Path, default=None)


_FLOAT = (float, int)
SUBSET_ASCENDABLE = {
    "color_aug": bool, "face_crop_aug_range": list, "flip_aug": bool, "num_repeats": int, "random_crop": bool,
    "shuffle_caption": bool, "keep_tokens": int, "keep_tokens_separator": str, "secondary_separator": str,
    "caption_separator": str, "enable_wildcard": bool, "token_warmup_min": int, "token_warmup_step": _FLOAT,
    "caption_prefix": str, "caption_suffix": str, "custom_attributes": dict, "resize_interpolation": str,
}
DO_SUBSET_ASCENDABLE = {"caption_dropout_every_n_epochs": int, "caption_dropout_rate": _FLOAT,
                        "caption_tag_dropout_rate": _FLOAT}
DB_SUBSET_ASCENDABLE = {"caption_extension": str, "class_tokens": str, "cache_info": bool}
DB_SUBSET_DISTINCT = {"image_dir": str, "is_reg": bool, "alpha_mask": bool}
DATASET_ASCENDABLE = {
    "batch_size": int, "bucket_no_upscale": bool, "bucket_reso_steps": int, "enable_bucket": bool,
    "max_bucket_reso": int, "min_bucket_reso": int, "validation_seed": int, "validation_split": _FLOAT,
    "resolution": (int, list), "network_multiplier": _FLOAT, "resize_interpolation": str,
}
GENERAL = {**DATASET_ASCENDABLE, **SUBSET_ASCENDABLE, **DB_SUBSET_ASCENDABLE, **DO_SUBSET_ASCENDABLE}
DATASET = {**DATASET_ASCENDABLE, **SUBSET_ASCENDABLE, **DB_SUBSET_ASCENDABLE, **DO_SUBSET_ASCENDABLE}
SUBSET = {**SUBSET_ASCENDABLE, **DB_SUBSET_DISTINCT, **DB_SUBSET_ASCENDABLE, **DO_SUBSET_ASCENDABLE}
_TYPE_NAMES = {bool: "bool", int: "int", str: "str", list: "list", dict: "dict", _FLOAT: "float"}


def load_user_config(file: str) -> dict:
    path = Path(file)
    if not path.is_file():
        raise ValueError(f"file not found / ファイルが見つかりません: {path}")
    if not path.name.lower().endswith(".toml"):
        raise ValueError(f"not supported config file format / 対応していない設定ファイルの形式です: {path}")
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except Exception:
        logger.error(f"Error on parsing TOML config file. Please check the format. / TOML 形式の設定ファイルの読み込みに"
                     f"失敗しました。文法が正しいか確認してください。: {path}")
        raise


def _check(doc: Any, schema: dict, where: str, errors: list[str], required: tuple[str, ...] = ()) -> None:
    if not isinstance(doc, dict):
        errors.append(f"expected a dictionary @ data{where}")
        return
    for key in required:
        if key not in doc:
            errors.append(f"required key not provided @ data{where}['{key}']")
    for key, value in doc.items():
        if key not in schema:
            errors.append(f"extra keys not allowed @ data{where}['{key}']")
            continue
        kind = schema[key]
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if not ok:
            name = _TYPE_NAMES.get(kind, "value") if not isinstance(kind, tuple) or kind == _FLOAT else "value"
            errors.append(f"expected {name} for dictionary value @ data{where}['{key}']")


class ConfigSanitizer:
    def __init__(self, support_dreambooth: bool, support_finetuning: bool, support_controlnet: bool,
                 support_dropout: bool) -> None:
        pass

    def sanitize_user_config(self, user_config: dict) -> dict:
        errors: list[str] = []
        for key in user_config:
            if key not in ("general", "datasets"):
                errors.append(f"extra keys not allowed @ data['{key}']")
        if "general" in user_config:
            _check(user_config["general"], GENERAL, "['general']", errors)
        datasets = user_config.get("datasets", [])
        if not isinstance(datasets, list):
            errors.append("expected list @ data['datasets']")
            datasets = []
        for i, dataset in enumerate(datasets):
            schema = dict(DATASET, subsets=list)
            _check(dataset, schema, f"['datasets'][{i}]", errors)
            for j, subset in enumerate(dataset.get("subsets", []) if isinstance(dataset, dict) else []):
                _check(subset, SUBSET, f"['datasets'][{i}]['subsets'][{j}]", errors, required=("image_dir",))
        if errors:
            logger.error("Invalid user config / ユーザ設定の形式が正しくないようです")
            raise MultipleInvalid(errors[0])
        return user_config


@dataclass
class Subset:
    image_dir: str
    num_repeats: int
    caption_extension: str
    class_tokens: str | None
    is_reg: bool
    keep_tokens: int
    shuffle_caption: bool


@dataclass
class Dataset:
    batch_size: int
    resolution: tuple[int, int]
    enable_bucket: bool
    subsets: list[Subset] = field(default_factory=list)


class BlueprintGenerator:
    def __init__(self, sanitizer: ConfigSanitizer) -> None:
        self.sanitizer = sanitizer

    def generate(self, user_config: dict, argparse_namespace: argparse.Namespace) -> list[Dataset]:
        config = self.sanitizer.sanitize_user_config(user_config)
        general = config.get("general", {})
        args = vars(argparse_namespace)
        out = []
        for dataset in config.get("datasets", []):
            def pick(key: str, default: Any, *levels: dict) -> Any:
                for level in levels:
                    if key in level:
                        return level[key]
                return default

            resolution = pick("resolution", args.get("resolution") or 512, dataset, general)
            if isinstance(resolution, str):
                resolution = [int(v) for v in resolution.split(",")]
            size = (resolution, resolution) if isinstance(resolution, int) else (int(resolution[0]), int(resolution[-1]))
            ds = Dataset(batch_size=pick("batch_size", args.get("train_batch_size") or 1, dataset, general),
                         resolution=size, enable_bucket=pick("enable_bucket", bool(args.get("enable_bucket")), dataset, general))
            for subset in dataset.get("subsets", []):
                levels = (subset, dataset, general)
                ds.subsets.append(Subset(
                    image_dir=subset["image_dir"],
                    num_repeats=pick("num_repeats", 1, *levels),
                    caption_extension=pick("caption_extension", args.get("caption_extension") or ".caption", *levels),
                    class_tokens=pick("class_tokens", None, *levels),
                    is_reg=bool(subset.get("is_reg", False)),
                    keep_tokens=pick("keep_tokens", args.get("keep_tokens") or 0, *levels),
                    shuffle_caption=pick("shuffle_caption", bool(args.get("shuffle_caption")), *levels),
                ))
            out.append(ds)
        return out
