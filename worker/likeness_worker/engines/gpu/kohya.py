"""``kohya`` lora_trainer engine: the profile's LoRA trained by kohya-ss/sd-scripts
(github.com/kohya-ss/sd-scripts, Apache-2.0) on the dataset the ``prepare`` step made, resumable
across attempts and across worker machines.

Its interface (train_network.py for SD 1.5, sdxl_train_network.py for SDXL; library/train_util.py,
library/config_util.py; compared at commit 48d368f), run as ``accelerate launch
--num_cpu_threads_per_process 1 <script> …`` (KOHYA_LAUNCH) in the checkout with its Python:
``--pretrained_model_name_or_path`` (a checkpoint file, else a diffusers folder),
``--dataset_config <toml>`` (``[general]``, ``[[datasets]]``, ``[[datasets.subsets]] image_dir`` — a
relative ``image_dir`` is relative to the trainer's cwd), ``--output_dir``, ``--output_name``,
``--network_module networks.lora``, ``--network_dim``, ``--network_alpha``, ``--learning_rate``,
``--max_train_steps``, ``--save_model_as safetensors``, ``--mixed_precision``, ``--seed``,
``--save_every_n_steps`` with ``--save_state``: the folder ``<output_name>-step%08d-state``
(``STEP_STATE_NAME``; ``<output_name>-state`` at the end) that ``accelerator.save_state`` fills
in this order: ``train_state.json`` (``{"current_epoch", "current_step"}``, from sd-scripts' save
hook), ``model.safetensors``, ``optimizer.bin``, ``scheduler.bin``, ``random_states_0.pkl``;
``--save_last_n_steps_state`` removes the older ones. ``--resume <state folder>`` loads it
(``accelerator.load_state``; its hook reads ``current_step``). Its progress is the "steps" tqdm bar,
``tqdm(range(max_train_steps - initial_step), desc="steps")`` with the postfix ``avr_loss=…`` (the
mean loss of the epoch so far); at the end it writes ``<output_name>.safetensors``.

One run:
1. the ``dataset`` input (dataset.tar: ``dataset/img/<repeats>_<trigger>/NNN.png`` + ``NNN.txt``) is
   unpacked in a fresh folder; its config is the ``dataset_config`` input (prepare's dataset.toml,
   whose ``image_dir`` is relative to its own folder, i.e. the tar's root) when this task kind
   declares it, else the same config made from the tar's ``<repeats>_<class tokens>`` folders
   (sd-scripts' DreamBooth naming). Each ``image_dir`` is rewritten to its absolute path in the
   unpacked tar (one outside it, or not there, is bad_input);
2. every subset's ``num_repeats`` is multiplied by one factor so that one epoch holds all
   KOHYA_STEPS: sd-scripts resumes at the exact step (``--skip_until_initial_step``) only inside the
   first epoch; in a later one its ``global_step`` restarts at the step within that epoch
   (sd-scripts PR #1406, open), and without that flag it re-trains from the epoch's start;
3. on a later attempt of the same job (another machine: nothing local is trusted) the newest state
   this step uploaded (``state/state.json`` → ``state/<name>-step%08d-state.tar``) is fetched and
   passed as ``--resume`` with ``--skip_until_initial_step`` when it was made with the same
   settings and dataset (a fingerprint); otherwise the training starts over and the outputs say why;
4. while it trains, each state folder it saves is packed and uploaded once it is complete: kohya
   has moved on (a newer state folder, or the bar past its step), or at the run's end (also a
   failed, cancelled or timed-out one: what the next attempt resumes from); a folder without its
   first and last files (``train_state.json``, ``random_states_0.pkl``) or that changes while it
   is packed is not taken. Only the newest is kept in storage;
5. the LoRA is checked (a safetensors header with lora tensors) and uploaded as ``lora.safetensors``
   (kind ``lora``) with ``lora.json`` (kind ``lora_report``, the ``lora`` port); outputs: trained,
   loraKey, steps, avrLoss, resumedFromStep. The states are then deleted.

Failures: the config refused ("Invalid user config", "Error on parsing TOML config file") or no
image found (exit 0 with "No data found", no LoRA) → bad_input; the base model missing (diffusers:
"is neither a valid local path nor a valid repo id") or unreadable (safetensors' header error),
its environment broken, a flag it does not know (argparse's exit 2) → engine_unavailable, not
retried; CUDA out of memory → out_of_memory; any other exit → engine_failed; past KOHYA_TIMEOUT_S →
timeout; a cancel kills it (its process group) → cancelled. A state saved before the end is kept
for the next attempt in each case.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import shlex
import shutil
import struct
import tarfile
import threading
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ...config import ConfigError, load_group
from ...errors import StepFailure
from ...media.errors import Cancelled, ToolTimeout
from ...media.proc import ToolExited, stream
from ...storage.base import ObjectMissing
from ..base import Engine, StepOutput, TaskContext, engine, file_sha256
from ..ports import TASK_PORTS
from .tooling import parse_tqdm, run_failure, step_settings

log = logging.getLogger(__name__)

ENGINE = "kohya"
OUTPUT_NAME = "lora"  # --output_name: lora.safetensors, lora-step00000200-state
SCRIPTS = {"sd15": "train_network.py", "sdxl": "sdxl_train_network.py"}
NETWORK_MODULE = "networks.lora"
STEP_STATE_RE = re.compile(rf"^{OUTPUT_NAME}-step(\d{{8}})-state$")  # train_util.STEP_STATE_NAME
STATE_FIRST, STATE_LAST = "train_state.json", "random_states_0.pkl"  # what save_state writes first and last
STATE_DOC = "state/state.json"  # under the step's prefix: the newest uploaded state
IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".avif", ".jxl"}  # train_util.IMAGE_EXTENSIONS
STATE_POLL_S = 1.0  # how often the output folder is looked at for a new state
STATE_QUIET_S = 10.0  # a complete state whose files have not changed for this long is taken too

# Flags the engine sets, or that would take a run out of its hands (where it writes, which state it
# resumes, where its log goes): KOHYA_EXTRA_ARGS may not name them, nor a prefix of them (argparse
# takes an unambiguous prefix of a flag as the flag).
ENGINE_FLAGS = (
    "pretrained_model_name_or_path", "dataset_config", "train_data_dir", "reg_data_dir", "in_json", "dataset_repeats",
    "output_dir", "output_name", "network_module", "network_dim", "network_alpha", "learning_rate",
    "max_train_steps", "max_train_epochs", "save_model_as", "mixed_precision", "seed",
    "save_every_n_steps", "save_every_n_epochs", "save_n_epoch_ratio", "save_state", "save_state_on_train_end",
    "save_last_n_steps", "save_last_n_steps_state", "save_last_n_epochs", "save_last_n_epochs_state",
    "resume", "resume_from_huggingface", "save_state_to_huggingface", "skip_until_initial_step",
    "initial_step", "initial_epoch", "config_file", "output_config", "console_log_file",
)


class KohyaSettings(BaseModel):
    """KOHYA_*: all optional; the engine is advertised unhealthy until KOHYA_DIR names an
    sd-scripts checkout and KOHYA_BASE_MODEL a checkpoint."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    kohya_dir: Path | None = None  # the checkout of github.com/kohya-ss/sd-scripts
    kohya_python: str = "python3"  # the Python of its environment (its venv: torch, accelerate, requirements.txt)
    # What runs the script: "accelerate launch …" (``accelerate`` is looked for beside KOHYA_PYTHON,
    # then on PATH), "python" (KOHYA_PYTHON itself), or any other command line put before the script.
    kohya_launch: str = "accelerate launch --num_cpu_threads_per_process 1"
    kohya_base_model: Path | None = None  # the checkpoint trained on (.safetensors/.ckpt, or a diffusers folder)
    kohya_model_family: Literal["sd15", "sdxl"] = "sd15"  # train_network.py or sdxl_train_network.py
    kohya_steps: int = Field(1500, ge=1, le=1_000_000)  # --max_train_steps
    kohya_network_dim: int = Field(32, ge=1, le=1024)  # --network_dim (the LoRA's rank)
    kohya_network_alpha: float = Field(16.0, gt=0)  # --network_alpha
    kohya_learning_rate: float = Field(1e-4, gt=0, le=1)  # --learning_rate
    kohya_save_every_n_steps: int = Field(200, ge=1)  # a state to resume from every N steps
    kohya_mixed_precision: Literal["no", "fp16", "bf16"] = "fp16"  # --mixed_precision
    kohya_timeout_s: float = Field(14400.0, gt=0)  # one training, start to the saved LoRA
    kohya_extra_args: str = ""  # more sd-scripts flags (--gradient_checkpointing --sdpa …), not the engine's own

    @field_validator("kohya_extra_args")
    @classmethod
    def _extra_args(cls, v: str) -> str:
        try:
            words = shlex.split(v)
        except ValueError as exc:
            raise ValueError(f"cannot be split like a shell line: {exc}") from None
        taken = []
        for word in words:
            if not word.startswith("--"):
                continue
            name = word[2:].split("=", 1)[0].replace("-", "_")
            if name and any(flag.startswith(name) for flag in ENGINE_FLAGS):
                taken.append(word.split("=", 1)[0])
        if taken:
            raise ValueError(f"{', '.join(taken)}: set by the kohya engine itself (or a prefix of such a flag); "
                             "use the KOHYA_* settings instead")
        return v


def _base_model(s: KohyaSettings) -> Path | None:
    if s.kohya_base_model is None or s.kohya_dir is None:
        return s.kohya_base_model
    return s.kohya_base_model if s.kohya_base_model.is_absolute() else s.kohya_dir / s.kohya_base_model


def _launcher(s: KohyaSettings) -> tuple[list[str], str | None]:
    """The command put before the script, or why there is none."""
    python = shutil.which(s.kohya_python)
    if python is None:
        return [], f"KOHYA_PYTHON ({s.kohya_python}) is not an executable"
    try:
        words = shlex.split(s.kohya_launch)
    except ValueError as exc:
        return [], f"KOHYA_LAUNCH cannot be split like a shell line: {exc}"
    if not words or words == ["python"]:
        return [python], None
    if words[0] == "accelerate":
        beside = Path(python).parent / "accelerate"  # the venv's bin/: not resolved (bin/python is a link)
        program = str(beside) if beside.is_file() and os.access(beside, os.X_OK) else shutil.which("accelerate")
        if program is None:
            return [], (f"KOHYA_LAUNCH runs accelerate, which is neither beside KOHYA_PYTHON ({python}) nor on PATH "
                        "(pip install accelerate in sd-scripts' environment, or KOHYA_LAUNCH=python)")
        return [program, *words[1:]], None
    program = shutil.which(words[0])
    if program is None:
        return [], f"KOHYA_LAUNCH's program {words[0]!r} is not an executable"
    return [program, *words[1:]], None


def _missing(s: KohyaSettings) -> list[str]:
    checkout = s.kohya_dir
    if checkout is None:
        return ["not configured: KOHYA_DIR is not set (a kohya-ss/sd-scripts checkout)"]
    if not checkout.is_dir():
        return [f"KOHYA_DIR ({checkout}) is not a folder (the sd-scripts checkout)"]
    found = []
    script = SCRIPTS[s.kohya_model_family]
    if not (checkout / script).is_file():
        found.append(f"sd-scripts' {script} is not in KOHYA_DIR ({checkout}) (KOHYA_MODEL_FAMILY={s.kohya_model_family})")
    if not (checkout / "networks" / "lora.py").is_file():
        found.append(f"sd-scripts' networks/lora.py is not in KOHYA_DIR ({checkout})")
    _, launch_problem = _launcher(s)
    if launch_problem:
        found.append(launch_problem)
    base = _base_model(s)
    if base is None:
        found.append("KOHYA_BASE_MODEL is not set (the Stable Diffusion checkpoint the LoRA is trained on)")
    elif not base.exists():
        found.append(f"weights missing: KOHYA_BASE_MODEL ({base}) does not exist")
    return found


# The dataset ------------------------------------------------------------------------------------


@dataclass
class _Dataset:
    config: Path  # the TOML kohya reads
    images: int  # image files in the train subsets
    repeats_factor: int  # every subset's num_repeats was multiplied by it (one epoch = all the steps)
    batches_per_epoch: int
    trigger: str | None
    sha256: str  # of what was trained on: the tar and the config, for the state's fingerprint


def _declares(ctx: TaskContext, name: str) -> bool:
    ports = TASK_PORTS.get(ctx.task_kind)
    return ports is not None and name in ports.takes and ctx.has_input(name)


def _config_from_folders(root: Path) -> dict[str, Any]:
    """prepare's dataset.toml for the tar's ``dataset/img/<repeats>_<class tokens>`` folders (media/faces.py
    writes the same: captions in .txt, the trigger kept first, 512 px crops, no buckets)."""
    from ...media.faces import CROP_SIZE

    subsets = []
    img = root / "dataset" / "img"
    for folder in sorted(img.iterdir()) if img.is_dir() else []:
        m = re.match(r"^(\d+)_(.+)$", folder.name)
        if folder.is_dir() and m:
            subsets.append({"image_dir": f"dataset/img/{folder.name}", "num_repeats": int(m.group(1)),
                            "class_tokens": m.group(2)})
    if not subsets:
        raise StepFailure("bad_input", "kohya: the dataset (dataset.tar) has no dataset/img/<repeats>_<name> folder: "
                          "it is not a dataset the prepare step made", retryable=False)
    return {"general": {"shuffle_caption": False, "caption_extension": ".txt", "keep_tokens": 1},
            "datasets": [{"resolution": CROP_SIZE, "batch_size": 1, "enable_bucket": False, "subsets": subsets}]}


def _count_images(folder: Path) -> int:
    return sum(1 for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def _pick(key: str, default: Any, *levels: dict[str, Any]) -> Any:
    for level in levels:
        if key in level:
            return level[key]
    return default


def _prepare_dataset(ctx: TaskContext, s: KohyaSettings, folder: Path, extra: list[str]) -> _Dataset:
    tar = ctx.fetch_input("dataset", "dataset.tar")
    root = folder / "data"
    root.mkdir(parents=True)
    try:
        with tarfile.open(tar) as t:
            t.extractall(root, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise StepFailure("bad_input", f"kohya: the dataset (dataset.tar) cannot be unpacked: {exc}", retryable=False) from None
    digest = hashlib.sha256(file_sha256(tar).encode())
    if _declares(ctx, "dataset_config"):
        text = ctx.fetch_input("dataset_config", "dataset.toml").read_text(encoding="utf-8")
        digest.update(text.encode())
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise StepFailure("bad_input", f"kohya: the dataset config (dataset.toml) is not TOML: {exc}",
                              retryable=False) from None
    else:
        doc = _config_from_folders(root)
    general = doc.get("general") or {}
    datasets = doc.get("datasets")
    if not isinstance(datasets, list) or not datasets or not isinstance(general, dict):
        raise StepFailure("bad_input", "kohya: the dataset config has no [[datasets]]", retryable=False)

    # Each image_dir: inside the unpacked tar, as an absolute path (kohya reads a relative one from its cwd).
    images = 0
    plan: list[tuple[int, list[tuple[dict[str, Any], int, int]]]] = []  # per dataset: batch size, (subset, n, repeats)
    for dataset in datasets:
        if not isinstance(dataset, dict) or not isinstance(dataset.get("subsets"), list):
            raise StepFailure("bad_input", "kohya: a [[datasets]] of the dataset config has no subsets", retryable=False)
        rows = []
        for subset in dataset["subsets"]:
            where = subset.get("image_dir") if isinstance(subset, dict) else None
            if not isinstance(where, str):
                raise StepFailure("bad_input", "kohya: a subset of the dataset config has no image_dir", retryable=False)
            path = (root / where).resolve()
            if not path.is_relative_to(root.resolve()) or not path.is_dir():
                raise StepFailure("bad_input", f"kohya: the dataset config's image_dir {where!r} is not a folder of "
                                  "dataset.tar", retryable=False)
            subset["image_dir"] = str(path)
            n = _count_images(path)
            if not subset.get("is_reg"):
                images += n
            rows.append((subset, n, _count("num_repeats", _pick("num_repeats", 1, subset, dataset, general))))
        plan.append((_count("batch_size", _pick("batch_size", 1, dataset, general)), rows))
    if images == 0:
        raise StepFailure("bad_input", "kohya: the dataset has no images (dataset.tar holds no .png/.jpg in its "
                          "image folders)", retryable=False)

    # One epoch holds every step (see the module docstring): num_repeats × factor.
    accumulation = _flag_int(extra, "gradient_accumulation_steps", 1)
    needed = s.kohya_steps * accumulation

    def batches(factor: int) -> int:
        return sum(math.ceil(sum(n * r * factor for _, n, r in rows) / bs) for bs, rows in plan)

    per_factor = sum(sum(n * r for _, n, r in rows) / bs for bs, rows in plan)
    factor = 1 if batches(1) >= needed else max(1, math.ceil(needed / per_factor))
    while batches(factor) < needed:
        factor += 1
    for _, rows in plan:
        for subset, _, repeats in rows:
            subset["num_repeats"] = repeats * factor

    trigger = (ctx.command.get("payload") or {}).get("triggerWord") or next(
        (sub.get("class_tokens") for _, rows in plan for sub, _, _ in rows if sub.get("class_tokens")), None)
    config = folder / "dataset.toml"
    text = dump_toml(doc)
    if tomllib.loads(text) != doc:  # our writer and kohya's reader agree, or nothing runs
        raise StepFailure("internal", "kohya: the dataset config could not be written back as the same TOML")
    config.write_text(text, encoding="utf-8")
    return _Dataset(config, images, factor, batches(factor), str(trigger) if trigger else None, digest.hexdigest())


def _count(key: str, value: Any) -> int:
    """A config's num_repeats or batch_size: a whole number ≥ 1 (sd-scripts ignores a subset repeated less)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise StepFailure("bad_input", f"kohya: the dataset config's {key} is {value!r}: a whole number of at least 1 "
                          "is needed", retryable=False)
    return value


def _flag_int(words: list[str], flag: str, default: int) -> int:
    for i, word in enumerate(words):
        if word == f"--{flag}" and i + 1 < len(words):
            return int(words[i + 1]) if words[i + 1].isdigit() else default
        if word.startswith(f"--{flag}="):
            value = word.split("=", 1)[1]
            return int(value) if value.isdigit() else default
    return default


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError("inf/nan")
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise ValueError(f"a {type(v).__name__} value")


def _toml_key(k: str) -> str:
    return k if _BARE_KEY.match(k) else json.dumps(k, ensure_ascii=False)


def dump_toml(doc: dict[str, Any]) -> str:
    """sd-scripts' dataset config as TOML: top-level values, ``[general]``, ``[[datasets]]`` and their
    ``[[datasets.subsets]]`` (the shapes its schema has: scalars, lists, inline tables)."""
    lines = ["# kohya sd-scripts dataset config (--dataset_config), written by the kohya engine"]
    try:
        for key, value in doc.items():
            if key not in ("general", "datasets"):
                lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
        if doc.get("general"):
            lines += ["", "[general]"] + [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in doc["general"].items()]
        for dataset in doc.get("datasets") or []:
            lines += ["", "[[datasets]]"]
            lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in dataset.items() if k != "subsets"]
            for subset in dataset.get("subsets") or []:
                lines += ["", "  [[datasets.subsets]]"] + [f"  {_toml_key(k)} = {_toml_value(v)}" for k, v in subset.items()]
    except ValueError as exc:
        raise StepFailure("bad_input", f"kohya: the dataset config holds {exc}, which sd-scripts' config does not take",
                          retryable=False) from None
    return "\n".join(lines) + "\n"


# Resuming ---------------------------------------------------------------------------------------


@dataclass
class _Resume:
    step: int
    folder: Path


def _fingerprint(s: KohyaSettings, dataset: _Dataset, base: Path) -> str:
    """What a state must have been made with to be resumed: another base model, dataset or
    setting would make kohya load weights of another shape, or train toward something else."""
    size = base.stat().st_size if base.is_file() else 0
    doc = [KohyaLoraTrainer.version, s.kohya_model_family, str(base), size, s.kohya_steps, s.kohya_network_dim,
           s.kohya_network_alpha, s.kohya_learning_rate, s.kohya_mixed_precision, s.kohya_extra_args, dataset.sha256,
           dataset.repeats_factor]
    return hashlib.sha256(json.dumps(doc).encode()).hexdigest()[:32]


def _resume_point(ctx: TaskContext, fingerprint: str, steps: int, folder: Path) -> tuple[_Resume | None, str | None, str | None]:
    """The state to resume from (or None), why a saved one is not used, and the key of a saved state
    (to delete once a newer one is up)."""
    doc = ctx.storage.get_json_or_none(ctx.key(STATE_DOC))
    if not isinstance(doc, dict) or not isinstance(doc.get("key"), str):
        return None, None, None
    key, step = doc["key"], int(doc.get("step") or 0)
    if doc.get("fingerprint") != fingerprint:
        return None, (f"the state saved at step {step} was made with other settings or another dataset: "
                      "the training started over"), key
    if not 0 < step < steps:
        return None, f"the state saved at step {step} is not before the last step ({steps}): the training started over", key
    name = key.rsplit("/", 1)[-1].removesuffix(".tar")
    try:
        tar = ctx.storage.get_file(key, folder / "state.tar")
        with tarfile.open(tar) as t:
            t.extractall(folder, filter="data")
        tar.unlink()
    except ObjectMissing:
        return None, f"the state saved at step {step} is gone from storage: the training started over", None
    except (tarfile.TarError, OSError) as exc:
        return None, f"the state saved at step {step} cannot be unpacked ({exc}): the training started over", key
    state = folder / name
    try:
        current = int(json.loads((state / STATE_FIRST).read_text())["current_step"])
    except (OSError, ValueError, KeyError, TypeError):
        current = -1
    if current != step or not (state / STATE_LAST).is_file():
        return None, f"the state saved at step {step} is incomplete: the training started over", key
    return _Resume(step, state), None, key


class _StateKeeper:
    """Packs and uploads each state folder kohya saves, once it is complete (see the module
    docstring); keeps the newest in storage only."""

    def __init__(self, ctx: TaskContext, out_dir: Path, scratch: Path, steps: int, fingerprint: str,
                 resumed: _Resume | None, saved_key: str | None) -> None:
        self.ctx, self.out_dir, self.scratch, self.steps, self.fingerprint = ctx, out_dir, scratch, steps, fingerprint
        self.uploaded_step = resumed.step if resumed else 0
        self.saved_key = saved_key  # the state in storage now (deleted when a newer one is up)
        self.seen_step = 0  # the bar's step: a state before it is complete
        self._quiet: dict[int, tuple[tuple[Any, ...], float]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one poll at a time: the watcher's, or the last one after the run

    def seen(self, step: int) -> None:
        self.seen_step = max(self.seen_step, step)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="kohya-states", daemon=True)
        self._thread.start()

    def stop(self, final: bool) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=120)
        if final:
            self._poll_safely(final=True)

    def _run(self) -> None:
        while not self._stop.wait(STATE_POLL_S):
            self._poll_safely(final=False)

    def _poll_safely(self, final: bool) -> None:
        try:
            with self._lock:
                self.poll(final)
        except Exception:  # a storage hiccup must not stop the training: the next state is tried
            log.warning("kohya: a saved state could not be uploaded", exc_info=True)

    def poll(self, final: bool) -> None:
        found = {}
        for path in self.out_dir.iterdir() if self.out_dir.is_dir() else []:
            m = STEP_STATE_RE.match(path.name)
            if m and path.is_dir():
                found[int(m.group(1))] = path
        for step in sorted(found, reverse=True):
            if step <= self.uploaded_step:
                return
            if step >= self.steps:  # kohya cannot resume at its last step
                continue
            moved_on = final or self.seen_step > step or any(s > step for s in found)
            if self._complete(step, found[step], moved_on) and self._upload(step, found[step]):
                return

    def _complete(self, step: int, path: Path, moved_on: bool) -> bool:
        snap = _snapshot(path)
        names = {name for name, *_ in snap}
        if STATE_FIRST not in names or STATE_LAST not in names:
            return False
        if moved_on:
            return True
        last = self._quiet.get(step)
        now = time.monotonic()
        if last is None or last[0] != snap:
            self._quiet[step] = (snap, now)
            return False
        return now - last[1] >= STATE_QUIET_S

    def _upload(self, step: int, path: Path) -> bool:
        self.scratch.mkdir(parents=True, exist_ok=True)
        tar_path = self.scratch / f"{path.name}.tar"
        before = _snapshot(path)
        try:
            with tarfile.open(tar_path, "w") as tar:
                tar.add(path, arcname=path.name)
        except OSError:  # kohya removed it meanwhile (--save_last_n_steps_state): a newer one is there
            return False
        if _snapshot(path) != before:
            return False
        key = self.ctx.key(f"state/{path.name}.tar")
        self.ctx.storage.put_file(key, tar_path, "application/x-tar")
        self.ctx.storage.put_json(self.ctx.key(STATE_DOC), {
            "key": key, "step": step, "fingerprint": self.fingerprint, "attempt": self.ctx.attempt,
            "savedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        if self.saved_key and self.saved_key != key:
            self.ctx.storage.delete(self.saved_key)
        self.saved_key, self.uploaded_step = key, step
        tar_path.unlink(missing_ok=True)
        log.info("kohya: state of step %d uploaded to %s", step, key)
        return True

    def clear(self) -> None:
        """The LoRA is up: the states are not needed any more."""
        try:
            for key in list(self.ctx.storage.list(self.ctx.key("state/"))):
                self.ctx.storage.delete(key)
        except Exception:
            log.warning("kohya: the saved states could not be deleted", exc_info=True)


def _snapshot(path: Path) -> tuple[tuple[Any, ...], ...]:
    out = []
    try:
        for p in sorted(path.rglob("*")):
            if p.is_file():
                st = p.stat()
                out.append((str(p.relative_to(path)), st.st_size, st.st_mtime_ns))
    except OSError:
        return ()
    return tuple(out)


# Progress ---------------------------------------------------------------------------------------


class _Progress:
    """kohya's output → step progress: its phases by their log lines, then the "steps" bar (its
    ``n`` counts from the resumed step: ``range(max_train_steps - initial_step)``)."""

    PHASES = (("load StableDiffusion checkpoint", 0.02, "loading the base model"),
              ("load Diffusers pretrained models", 0.02, "loading the base model"),
              ("caching latents", 0.03, "caching latents"),
              ("resume training from local state", 0.04, "resuming"),
              ("running training", 0.05, "training"))

    def __init__(self, ctx: TaskContext, steps: int, resumed: int, keeper: _StateKeeper) -> None:
        self.ctx, self.steps, self.resumed, self.keeper = ctx, steps, resumed, keeper
        self.reached = 0.0
        self.step = resumed
        self.avr_loss: float | None = None
        self._last: tuple[int, float | None] | None = None
        self.no_data = False

    def report(self, fraction: float, message: str) -> None:
        self.reached = max(self.reached, min(0.99, fraction))
        self.ctx.progress(self.reached, message)

    def line(self, line: str) -> None:
        bar = parse_tqdm(line)
        if bar is not None and bar.desc == "steps":
            step = self.resumed + bar.n
            self.avr_loss = bar.postfix.get("avr_loss", self.avr_loss)
            self.step = step
            self.keeper.seen(step)
            if (step, self.avr_loss) != self._last:
                self._last = (step, self.avr_loss)
                loss = f", avr_loss {self.avr_loss:.4g}" if self.avr_loss is not None else ""
                self.report(0.05 + 0.93 * min(1.0, step / self.steps), f"kohya: step {step}/{self.steps}{loss}")
            return
        if "No data found" in line:
            self.no_data = True
        for marker, fraction, what in self.PHASES:
            if marker in line and fraction > self.reached:
                extra = f" from step {self.resumed}" if what == "resuming" else ""
                self.report(fraction, f"kohya: {what}{extra}")


# Failures ---------------------------------------------------------------------------------------


def _last_line(output: str, pattern: str) -> str:
    found = [line.strip() for line in output.splitlines() if re.search(pattern, line)]
    return (found[-1] if found else "")[:500]


def _hint(s: KohyaSettings, script: str) -> Callable[[str], StepFailure | None]:
    def hint(output: str) -> StepFailure | None:
        if re.search(r"Invalid user config|MultipleInvalid|Error on parsing TOML config file|"
                     r"not supported config file format", output):
            what = _last_line(output, r"MultipleInvalid|Error|Invalid") or "its schema refused it"
            return StepFailure("bad_input", f"kohya refused the dataset config: {what}", retryable=False)
        if re.search(r"is neither a valid local path nor a valid repo id|model is not found as a file or in Hugging Face",
                     output):
            return StepFailure("engine_unavailable", f"kohya: weights missing: the base model KOHYA_BASE_MODEL "
                               f"({_base_model(s)}) could not be loaded: "
                               + _last_line(output, r"neither a valid local path|model is not found|Error"), retryable=False)
        if re.search(r"SafetensorError|Error while deserializing header", output):
            return StepFailure("engine_unavailable", f"kohya: the base model KOHYA_BASE_MODEL ({_base_model(s)}) is not a "
                               "readable checkpoint: " + _last_line(output, r"SafetensorError|deserializing"), retryable=False)
        if re.search(r"error: (unrecognized arguments|argument |the following arguments)", output):
            return StepFailure("engine_unavailable", f"kohya: sd-scripts' {script} refused its command line ("
                               + _last_line(output, r"error: ") + "): check KOHYA_EXTRA_ARGS against this sd-scripts "
                               "version", retryable=False)
        if re.search(r"out of memory|OutOfMemoryError", output, re.I):
            what = _last_line(output, r"out of memory|OutOfMemory")[:300]
            return StepFailure("out_of_memory", f"kohya ran out of GPU memory ({what}): a smaller KOHYA_NETWORK_DIM, "
                               "--gradient_checkpointing in KOHYA_EXTRA_ARGS, or a GPU with more free memory")
        return None

    return hint


def _failure(exc: BaseException, s: KohyaSettings, script: str, progress: _Progress, keeper: _StateKeeper) -> StepFailure:
    kept = (f"; the state of step {keeper.uploaded_step} is kept: a retry resumes from it"
            if keeper.uploaded_step else "")
    if isinstance(exc, Cancelled):
        return StepFailure("cancelled", f"kohya: cancelled at step {progress.step}/{progress.steps}{kept}")
    if isinstance(exc, ToolTimeout):
        return StepFailure("timeout", f"kohya: the training ran past KOHYA_TIMEOUT_S ({s.kohya_timeout_s:g} s) at step "
                           f"{progress.step}/{progress.steps} and was stopped{kept}")
    if isinstance(exc, ToolExited):
        # `accelerate launch` re-raises the trainer's exit as its own CalledProcessError: the trainer's
        # error is the one that says why.
        output = "\n".join(line for line in exc.output.splitlines() if "CalledProcessError" not in line)
        exc = ToolExited(str(exc), exc.returncode, output)
    failure = run_failure(ENGINE, exc, hint=_hint(s, script))
    if kept and failure.code in ("engine_failed", "out_of_memory"):
        failure = StepFailure(failure.code, failure.message + kept, retryable=failure.retryable)
    return failure


def _lora_header(path: Path) -> dict[str, Any]:
    """The safetensors header (8 bytes little-endian length, then JSON) of the LoRA kohya wrote."""
    with path.open("rb") as f:
        head = f.read(8)
        if len(head) != 8:
            raise ValueError("shorter than a safetensors header")
        (n,) = struct.unpack("<Q", head)
        if n > 100_000_000:
            raise ValueError("header length out of range")
        header = json.loads(f.read(n))
    if not isinstance(header, dict) or not any(".lora_down." in k for k in header):
        raise ValueError("no lora_down tensor in it")
    return header


@engine("lora_trainer", "kohya")
class KohyaLoraTrainer(Engine):
    """The profile's LoRA trained by kohya-ss/sd-scripts on the prepared dataset (SD 1.5 or SDXL),
    resumed from its last saved state when a training is retried."""

    # sd-scripts: Apache-2.0. The LoRA is derived from the base model the operator chose
    # (KOHYA_BASE_MODEL): SD 1.5's licence is CreativeML OpenRAIL-M (SDXL's, OpenRAIL++-M, is recorded
    # in the LoRA's meta when KOHYA_MODEL_FAMILY=sdxl).
    licence = "Apache-2.0 AND CreativeML-OpenRAIL-M"
    device = "gpu"
    version = "1"
    settings_group = KohyaSettings

    @classmethod
    def problem(cls) -> str | None:
        try:
            s = load_group(KohyaSettings)
        except ConfigError as exc:
            return str(exc)
        found = _missing(s)
        return "; ".join(found) if found else None

    @classmethod
    def settings_key(cls) -> str:
        try:
            s = load_group(KohyaSettings)
        except ConfigError:
            return ""
        base = _base_model(s)
        return ":".join(str(v) for v in (s.kohya_model_family, base.name if base else "", s.kohya_steps,
                                         s.kohya_network_dim, s.kohya_network_alpha, s.kohya_learning_rate,
                                         s.kohya_mixed_precision, s.kohya_extra_args))

    def train(self, ctx: TaskContext) -> StepOutput:
        s = step_settings(KohyaSettings)
        problems = _missing(s)
        if problems:
            raise StepFailure("engine_unavailable", "kohya: " + "; ".join(problems), retryable=False)
        assert s.kohya_dir is not None
        base = _base_model(s)
        assert base is not None
        launch, _ = _launcher(s)
        script = SCRIPTS[s.kohya_model_family]
        extra = shlex.split(s.kohya_extra_args)

        folder = ctx.path("kohya")  # a fresh folder: what a failed try left here is not trusted
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        ctx.progress(0.0, "kohya: unpacking the dataset")
        dataset = _prepare_dataset(ctx, s, folder, extra)
        fingerprint = _fingerprint(s, dataset, base)
        resume, resume_note, saved_key = _resume_point(ctx, fingerprint, s.kohya_steps, folder / "resume")
        out_dir = folder / "output"
        keeper = _StateKeeper(ctx, out_dir, folder / "upload", s.kohya_steps, fingerprint, resume, saved_key)
        progress = _Progress(ctx, s.kohya_steps, resume.step if resume else 0, keeper)
        if resume:
            ctx.progress(0.01, f"kohya: resuming from the state saved at step {resume.step}")

        seed = int.from_bytes(hashlib.sha256(ctx.job_id.encode()).digest()[:4], "big") % 2**31
        every = s.kohya_save_every_n_steps
        argv = [*launch, str(s.kohya_dir / script),
                "--pretrained_model_name_or_path", str(base.resolve()),
                "--dataset_config", str(dataset.config),
                "--output_dir", str(out_dir), "--output_name", OUTPUT_NAME,
                "--network_module", NETWORK_MODULE,
                "--network_dim", str(s.kohya_network_dim), "--network_alpha", f"{s.kohya_network_alpha:g}",
                "--learning_rate", f"{s.kohya_learning_rate:g}",
                "--max_train_steps", str(s.kohya_steps),
                "--save_model_as", "safetensors", "--mixed_precision", s.kohya_mixed_precision,
                "--save_every_n_steps", str(every), "--save_state",
                "--save_last_n_steps_state", str(every), "--save_last_n_steps", str(every),
                "--seed", str(seed), "--cache_latents"]
        if resume:
            argv += ["--resume", str(resume.folder), "--skip_until_initial_step"]
        argv += extra
        env = dict(os.environ, PYTHONUNBUFFERED="1")

        keeper.start()
        try:
            tail = stream(argv, s.kohya_timeout_s, ctx.cancelled, on_line=progress.line, cwd=s.kohya_dir, env=env)
        except Exception as exc:
            keeper.stop(final=True)  # what the next attempt resumes from
            raise _failure(exc, s, script, progress, keeper) from None
        except BaseException:
            keeper.stop(final=True)
            raise
        keeper.stop(final=False)

        lora = out_dir / f"{OUTPUT_NAME}.safetensors"
        if not lora.is_file():
            if progress.no_data or any("No data found" in line for line in tail):
                raise StepFailure("bad_input", "kohya found no images in the dataset (sd-scripts: \"No data found. "
                                  "Please verify arguments\")", retryable=False)
            raise StepFailure("engine_failed", f"kohya ended without writing {lora.name}: "
                              + " | ".join(tail[-5:])[-800:])
        try:
            header = _lora_header(lora)
        except (OSError, ValueError) as exc:
            raise StepFailure("engine_failed", f"kohya wrote a LoRA that is not a safetensors file ({exc})") from None
        metadata = header.get("__metadata__") or {}
        try:
            steps = int(metadata.get("ss_steps") or progress.step)
        except ValueError:
            steps = progress.step
        avr_loss = round(progress.avr_loss, 6) if progress.avr_loss is not None else None
        resumed = resume.step if resume else None

        meta: dict[str, Any] = {
            "engine": ENGINE, "baseModel": s.kohya_model_family, "baseModelFile": base.name,
            "baseModelLicence": "CreativeML-OpenRAIL-M" if s.kohya_model_family == "sd15" else "CreativeML-OpenRAIL++-M",
            "networkModule": NETWORK_MODULE, "networkDim": s.kohya_network_dim, "networkAlpha": s.kohya_network_alpha,
            "learningRate": s.kohya_learning_rate, "steps": steps, "avrLoss": avr_loss, "resumedFromStep": resumed,
            "images": dataset.images, "repeatsFactor": dataset.repeats_factor,
            "tensors": sum(1 for k in header if k != "__metadata__"),
        }
        if dataset.trigger:
            meta["triggerWord"] = dataset.trigger
        ref = ctx.upload("lora.safetensors", lora, "lora", "application/octet-stream", meta)
        outputs: dict[str, Any] = {"trained": True, "loraKey": ref["key"], "steps": steps, "avrLoss": avr_loss,
                                   "resumedFromStep": resumed, "baseModel": s.kohya_model_family}
        if dataset.trigger:
            outputs["triggerWord"] = dataset.trigger
        if resume_note:
            outputs["resumeNote"] = resume_note
        report = {**outputs, "engine": ENGINE, "datasetKey": ctx.input("dataset").key, "lora": meta}
        artifacts = [ref, ctx.upload_json("lora.json", report, "lora_report")]
        keeper.clear()
        loss = f", avr_loss {avr_loss:.4g}" if avr_loss is not None else ""
        ctx.progress(1.0, f"kohya: LoRA trained ({steps} steps{loss})")
        return StepOutput(artifacts, outputs)
