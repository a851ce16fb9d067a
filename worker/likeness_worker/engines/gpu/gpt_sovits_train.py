"""``gpt_sovits`` voice_trainer engine: GPT-SoVITS (v2) fine-tuned on the profile's voice sample,
run stage by stage through the checkout's own scripts as its webui runs them (RVC-Boss/GPT-SoVITS,
MIT; compared at 48b1a0169a28582a8984402f82cf438d3bfa6aca), resumable across attempts and machines.

The stages, each a script run with GPT_SOVITS_TRAIN_PYTHON (``python -s``) in the checkout
(GPT_SOVITS_TRAIN_DIR), everything it writes under the step's work folder:

1. ``tools/slice_audio.py <inp> <opt_root> -34 4000 300 10 500 0.9 0.25 0 1`` (webui.open_slice's
   defaults, positional; every script gets the PYTHONPATH of webui.py's users.pth and TEMP):
   the voice sample cut at its pauses into ``<name>_%010d_%010d.wav`` (32 kHz).
   It prints ``<path> ->fail-> <traceback>`` and exits 0 when it cannot read the audio;
2. ``tools/asr/fasterwhisper_asr.py -i <slices> -o <asr> -s <model> -l <lang> -p <precision>``
   (webui.open_asr): ``<asr>/<slices' name>.list``, lines ``path|folder|LANG|text``; its tqdm bar over
   the files. The model must be on the box (``tools/asr/models/faster-whisper-<model>``: model.bin),
   or it tries to download it. The voice reference, cut as the tts engine cuts it
   (``gpt_sovits.cut_reference``), is transcribed with the slices (``reference.wav``): its text is
   the manifest's ``referenceText`` (the prompt text the tts engine sends), its line is left out
   of the training list, which is written as ``wav|speaker|lang|text`` (blank transcripts dropped);
3. ``GPT_SoVITS/prepare_datasets/1-get-text.py``, ``2-get-hubert-wav32k.py``, ``3-get-semantic.py``,
   configured by environment variables as webui.open1abc does (inp_text, inp_wav_dir, exp_name,
   i_part=0, all_parts=1, opt_dir, bert_pretrained_dir, cnhubert_base_dir, pretrained_s2G,
   s2config_path, is_half, version=v2, _CUDA_VISIBLE_DEVICES): the part files ``2-name2text-0.txt``
   and ``6-name2semantic-0.tsv`` merged into ``2-name2text.txt`` and ``6-name2semantic.tsv`` (with
   its ``item_name\\tsemantic_audio`` header) as open1abc merges them; ``3-bert/``, ``4-cnhubert/``,
   ``5-wav32k/``;
4. ``GPT_SoVITS/s2_train.py --config tmp_s2.json``: configs/s2.json with open1Ba's edits (batch
   size, epochs, pretrained_s2G/s2D, if_save_latest, if_save_every_weights, save_every_epoch,
   gpu_numbers, exp_dir = s2_ckpt_dir, save_weight_dir, name, version). Every save epoch it writes
   ``logs_s2_v2/G_233333333333.pth`` and ``D_233333333333.pth`` (its resume point: it loads the
   latest G_*/D_* of that folder, else the pretrained ones) and then the weights
   ``SoVITS_weights_v2/<exp>_e<epoch>_s<step>.pth``. Progress: a tqdm bar per epoch after "start
   training from epoch N", ``====> Epoch: N`` at each end, the losses list logged on stdout;
5. ``GPT_SoVITS/s1_train.py --config_file tmp_s1.yaml`` (env ``hz=25hz``): configs/s1longer-v2.yaml
   with open1Bb's edits, made by the checkout's own Python (its PyYAML). Lightning saves
   ``logs_s1_v2/ckpt/epoch=E-step=S.ckpt`` (the newest is resumed: ``ckpt_path``) and then the
   weights ``GPT_weights_v2/<exp>-e<E+1>.ckpt``. Progress: Lightning's ``Epoch E`` bar.

The weights of the last epochs are uploaded (``sovits_weights.pth``, ``gpt_weights.ckpt``, kind
``voice_weights``) with ``voice_model.json`` (kind ``voice_model``: ``{"engine": "gpt_sovits",
"trained": true, "gptWeightsKey", "sovitsWeightsKey", "referenceText", …}``, what the gpt_sovits tts
engine reads through ``voiceModelKey``) and the measured ``voice_profile.json`` (as the reference
trainer makes it).

Resuming (under ``state/`` of the step's prefix; ``state/state.json`` says what is there, with a
fingerprint of the sample and the settings; a state of other settings is not used): the prepared
dataset (``dataset.tar``: the experiment folder after stage 3, and referenceText), then SoVITS's
G/D pair and GPT's Lightning checkpoint, each uploaded as it is saved: a save is taken once the
weights file of its epoch exists and the checkpoint files are not newer than it (they are written
first) and unchanged for one poll, or when the run ended. Once SoVITS is trained, its weights go
up at their final key. A retry fetches what is there: it skips the finished stages and puts the
checkpoints back where the trainers look for them.

Failures: CUDA out of memory → out_of_memory; a pretrained model or the ASR model missing (checked
before anything runs, and FileNotFoundError from a stage) or the tool's environment broken →
engine_unavailable (not retried); no slice, no transcript, too little usable speech for SoVITS →
bad_input; any other exit, or a stage ending without its output → engine_failed; past
GPT_SOVITS_TRAIN_TIMEOUT_S (all the stages) → timeout; a cancel kills the running script (its
process group) → cancelled. What was saved before the end is kept for the next attempt.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import tarfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import soundfile as sf
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ...config import ConfigError, load_group
from ...errors import StepFailure
from ...media import proc
from ...media.errors import Cancelled, ToolFailed, ToolTimeout
from ...media.proc import stream
from ...storage.base import ObjectMissing
from ..base import Engine, StepOutput, TaskContext, engine, file_sha256
from ..builtin.train import DatasetVoiceTrainer
from .gpt_sovits import cut_reference
from .tooling import parse_tqdm, run_failure, step_settings

log = logging.getLogger(__name__)

NAME = "gpt_sovits"
MODEL_VERSION = "v2"
EXP = "likeness"  # exp_name: every name the trainers make starts with it
REFERENCE_WAV = "reference.wav"  # the voice reference among the slices (its transcript: referenceText)
SLICE_ARGS = ("-34", "4000", "300", "10", "500", "0.9", "0.25", "0", "1")  # webui.open_slice's defaults
SCRIPTS = {
    "slice": "tools/slice_audio.py",
    "asr": "tools/asr/fasterwhisper_asr.py",
    "text": "GPT_SoVITS/prepare_datasets/1-get-text.py",
    "hubert": "GPT_SoVITS/prepare_datasets/2-get-hubert-wav32k.py",
    "semantic": "GPT_SoVITS/prepare_datasets/3-get-semantic.py",
    "s2": "GPT_SoVITS/s2_train.py",
    "s1": "GPT_SoVITS/s1_train.py",
}
S2_CONFIG = "GPT_SoVITS/configs/s2.json"
S1_CONFIG = "GPT_SoVITS/configs/s1longer-v2.yaml"
S2_LATEST = ("G_233333333333.pth", "D_233333333333.pth")  # utils.save_checkpoint with if_save_latest
S1_CKPT_RE = re.compile(r"^epoch=(\d+)-step=(\d+)\.ckpt$")  # AR.utils.get_newest_ckpt's pattern
SOVITS_RE = re.compile(rf"^{EXP}_e(\d+)_s(\d+)\.pth$")  # process_ckpt.savee: <name>_e<epoch>_s<step>
GPT_RE = re.compile(rf"^{EXP}-e(\d+)\.ckpt$")  # s1_train.my_model_ckpt: <exp_name>-e<epoch>.ckpt
DATASET_FILES = ("2-name2text.txt", "6-name2semantic.tsv", "3-bert", "4-cnhubert", "5-wav32k")
STATE_DOC = "state/state.json"
STATE_POLL_S = 1.0
# (stage, progress at its start, at its end, what it does)
STAGES = (("slice", 0.02, 0.04, "slicing the voice sample"), ("asr", 0.04, 0.12, "transcribing the slices"),
          ("text", 0.12, 0.15, "phonemes of the transcripts"), ("hubert", 0.15, 0.20, "HuBERT features"),
          ("semantic", 0.20, 0.24, "semantic tokens"), ("s2", 0.24, 0.60, "training SoVITS"),
          ("s1", 0.60, 0.95, "training GPT"))
SPAN = {name: (lo, hi, what) for name, lo, hi, what in STAGES}

# The second half of webui.open1Bb, run by the checkout's Python (the worker has no YAML parser):
# configs/s1longer-v2.yaml with the given "a.b" = value edits, written back with yaml.dump.
S1_CONFIG_SCRIPT = """
import json, sys, yaml
src, dst, edits = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
with open(src) as f:
    data = yaml.load(f.read(), Loader=yaml.FullLoader)
for path, value in edits.items():
    node = data
    *parents, last = path.split(".")
    for p in parents:
        node = node.setdefault(p, {})
    node[last] = value
with open(dst, "w") as f:
    f.write(yaml.dump(data, default_flow_style=False))
"""


class GptSovitsTrainSettings(BaseModel):
    """GPT_SOVITS_TRAIN_*: the engine is unhealthy until GPT_SOVITS_TRAIN_DIR names a GPT-SoVITS
    checkout with its v2 pretrained models and the faster-whisper model in it."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    gpt_sovits_train_dir: Path | None = None  # the checkout of github.com/RVC-Boss/GPT-SoVITS
    gpt_sovits_train_python: str = "python3"  # the Python of its environment (torch, its requirements)
    # The pretrained models, relative to the checkout unless absolute (config.py's v2 paths).
    gpt_sovits_train_bert_dir: Path = Path("GPT_SoVITS/pretrained_models/chinese-roberta-wwm-ext-large")
    gpt_sovits_train_cnhubert_dir: Path = Path("GPT_SoVITS/pretrained_models/chinese-hubert-base")
    gpt_sovits_train_pretrained_s2g: Path = Path("GPT_SoVITS/pretrained_models/gsv-v2final-pretrained/s2G2333k.pth")
    gpt_sovits_train_pretrained_s2d: Path = Path("GPT_SoVITS/pretrained_models/gsv-v2final-pretrained/s2D2333k.pth")
    gpt_sovits_train_pretrained_s1: Path = Path(
        "GPT_SoVITS/pretrained_models/gsv-v2final-pretrained/s1bert25hz-5kh-longer-epoch=12-step=369668.ckpt")
    gpt_sovits_train_asr_model: Literal["medium", "medium.en", "large-v2", "large-v3", "large-v3-turbo"] = "large-v3"
    gpt_sovits_train_asr_precision: Literal["float16", "float32", "int8"] = "float16"
    gpt_sovits_train_language: Literal["en", "zh", "ja", "ko", "yue", "auto"] = "en"  # of the voice sample
    gpt_sovits_train_s2_epochs: int = Field(8, ge=1, le=1000)  # SoVITS (webui's default 8)
    gpt_sovits_train_s1_epochs: int = Field(16, ge=1, le=1000)  # GPT (webui's default 15)
    gpt_sovits_train_s2_batch_size: int = Field(4, ge=1, le=256)
    gpt_sovits_train_s1_batch_size: int = Field(4, ge=1, le=256)
    gpt_sovits_train_save_every_epoch: int = Field(2, ge=1)  # a checkpoint (and weights) every N epochs
    gpt_sovits_train_half: bool = True  # is_half (fp16); false on cards without it
    gpt_sovits_train_timeout_s: float = Field(10800.0, gt=0)  # all the stages of one training

    @model_validator(mode="after")
    def _weights_at_the_end(self) -> GptSovitsTrainSettings:
        every = self.gpt_sovits_train_save_every_epoch
        for name, epochs in (("S2", self.gpt_sovits_train_s2_epochs), ("S1", self.gpt_sovits_train_s1_epochs)):
            if epochs % every:
                raise ValueError(f"GPT_SOVITS_TRAIN_{name}_EPOCHS ({epochs}) must be a multiple of "
                                 f"GPT_SOVITS_TRAIN_SAVE_EVERY_EPOCH ({every}): GPT-SoVITS writes weights only "
                                 "at those epochs")
        return self

    def at(self, path: Path) -> Path:
        assert self.gpt_sovits_train_dir is not None
        return path if path.is_absolute() else self.gpt_sovits_train_dir / path

    @property
    def asr_model_dir(self) -> Path:  # where fasterwhisper_asr.download_model puts (and finds) it
        return self.at(Path(f"tools/asr/models/faster-whisper-{self.gpt_sovits_train_asr_model}"))

    def pretrained(self) -> dict[str, Path]:
        return {"GPT_SOVITS_TRAIN_BERT_DIR": self.at(self.gpt_sovits_train_bert_dir),
                "GPT_SOVITS_TRAIN_CNHUBERT_DIR": self.at(self.gpt_sovits_train_cnhubert_dir),
                "GPT_SOVITS_TRAIN_PRETRAINED_S2G": self.at(self.gpt_sovits_train_pretrained_s2g),
                "GPT_SOVITS_TRAIN_PRETRAINED_S2D": self.at(self.gpt_sovits_train_pretrained_s2d),
                "GPT_SOVITS_TRAIN_PRETRAINED_S1": self.at(self.gpt_sovits_train_pretrained_s1)}


def _missing(s: GptSovitsTrainSettings) -> tuple[list[str], list[str]]:
    """(what is not set up, which of it is weights): empty when the engine can run."""
    checkout = s.gpt_sovits_train_dir
    if checkout is None:
        return ["not configured: GPT_SOVITS_TRAIN_DIR is not set (a RVC-Boss/GPT-SoVITS checkout)"], []
    if not checkout.is_dir():
        return [f"GPT_SOVITS_TRAIN_DIR ({checkout}) is not a folder (the GPT-SoVITS checkout)"], []
    found, weights = [], []
    for rel in (*SCRIPTS.values(), S2_CONFIG, S1_CONFIG):
        if not (checkout / rel).is_file():
            found.append(f"GPT-SoVITS' {rel} is not in GPT_SOVITS_TRAIN_DIR ({checkout})")
    if shutil.which(s.gpt_sovits_train_python) is None:
        found.append(f"GPT_SOVITS_TRAIN_PYTHON ({s.gpt_sovits_train_python}) is not an executable")
    for var, path in s.pretrained().items():
        if not path.exists():
            weights.append(f"weights missing: {var} ({path}) does not exist")
    if not (s.asr_model_dir / "model.bin").is_file():
        weights.append(f"weights missing: the faster-whisper model {s.gpt_sovits_train_asr_model} "
                       f"(GPT_SOVITS_TRAIN_ASR_MODEL) is not in {s.asr_model_dir} (model.bin): put it there, "
                       "GPT-SoVITS' ASR would try to download it")
    return found + weights, weights


def _gpu() -> str:
    """The card this worker was given: s2_train.py sets CUDA_VISIBLE_DEVICES from gpu_numbers itself,
    so it must name the physical card, not "0" of the visible ones."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")[0].strip()
    return visible if visible.isdigit() else "0"


# Saved state ------------------------------------------------------------------------------------


@dataclass
class _State:
    """What earlier attempts left in storage (``state/state.json``)."""

    fingerprint: str
    doc: dict[str, Any] = field(default_factory=dict)

    def get(self, what: str) -> dict[str, Any] | None:
        value = self.doc.get(what)
        return value if isinstance(value, dict) else None


class _Keeper:
    """Uploads what a stage saves as it saves it (see the module docstring), and records it."""

    def __init__(self, ctx: TaskContext, state: _State, scratch: Path) -> None:
        self.ctx, self.state, self.scratch = ctx, state, scratch
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last: dict[str, Any] = {}  # stage -> the snapshot seen at the previous poll
        self._probe: Callable[[], tuple[str, int, list[Path], Path] | None] | None = None

    def record(self, what: str, value: dict[str, Any] | None) -> None:
        with self._lock:
            if value is None:
                self.state.doc.pop(what, None)
            else:
                self.state.doc[what] = value
            self.ctx.storage.put_json(self.ctx.key(STATE_DOC), {**self.state.doc, "fingerprint": self.state.fingerprint,
                                                                "attempt": self.ctx.attempt})

    def put(self, name: str, path: Path, content_type: str = "application/octet-stream") -> str:
        key = self.ctx.key(f"state/{name}")
        self.ctx.storage.put_file(key, path, content_type)
        return key

    # The watch over a training stage: probe() -> (stage, epoch, checkpoint files, weights file) of its newest save.
    def watch(self, probe: Callable[[], tuple[str, int, list[Path], Path] | None]) -> None:
        self._probe, self._last = probe, {}
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="gpt-sovits-states", daemon=True)
        self._thread.start()

    def unwatch(self, final: bool) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=300)
            self._thread = None
        if final:
            self._poll(final=True)
        self._probe = None

    def _run(self) -> None:
        while not self._stop.wait(STATE_POLL_S):
            self._poll(final=False)

    def _poll(self, final: bool) -> None:
        try:
            self._take(final)
        except Exception:  # a storage hiccup must not stop the training: the next save is tried
            log.warning("gpt_sovits: a saved checkpoint could not be uploaded", exc_info=True)

    def _take(self, final: bool) -> None:
        found = self._probe() if self._probe is not None else None
        if found is None:
            return
        stage, epoch, files, marker = found
        done = self.state.get(stage)
        if done is not None and int(done.get("epoch") or 0) >= epoch:
            return
        snap = _stats([*files, marker])
        if snap is None or any(st.st_mtime_ns > snap[-1].st_mtime_ns for st in snap[:-1]):
            return  # not all there, or a save of a later epoch is being written over it
        key = tuple((st.st_ino, st.st_size, st.st_mtime_ns) for st in snap)
        if not final and self._last.get(stage) != key:
            self._last[stage] = key  # taken at the next poll if nothing changed
            return
        folder = self.scratch / stage
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        links = []
        for path in files:
            link = folder / path.name
            try:
                os.link(path, link)  # the trainer may replace the file meanwhile: this inode stays
            except OSError:
                shutil.copy2(path, link)
            links.append(link)
        again = _stats([*files, marker])
        if again is None or tuple((st.st_ino, st.st_size, st.st_mtime_ns) for st in again) != key:
            return
        # Storage keys are lowercase without "=": the file's own name is kept in the record.
        keys = {link.name: self.put(f"{stage}-e{epoch}-{i}{link.suffix}", link) for i, link in enumerate(links)}
        old = self.get_keys(stage)
        self.record(stage, {"epoch": epoch, "keys": keys})
        for stale in old - set(keys.values()):
            with contextlib.suppress(Exception):
                self.ctx.storage.delete(stale)
        shutil.rmtree(folder, ignore_errors=True)
        log.info("gpt_sovits: the %s checkpoint of epoch %d uploaded", stage, epoch)

    def get_keys(self, stage: str) -> set[str]:
        saved = self.state.get(stage) or {}
        return set((saved.get("keys") or {}).values())

    def clear(self) -> None:
        with contextlib.suppress(Exception):
            for key in list(self.ctx.storage.list(self.ctx.key("state/"))):
                self.ctx.storage.delete(key)


def _stats(paths: list[Path]) -> list[os.stat_result] | None:
    try:
        return [p.stat() for p in paths]
    except OSError:
        return None


# Progress ---------------------------------------------------------------------------------------


class _Progress:
    """Each stage's output → step progress within its span (``STAGES``)."""

    def __init__(self, ctx: TaskContext, s: GptSovitsTrainSettings) -> None:
        self.ctx, self.s = ctx, s
        self.reached = 0.0
        self.stage = ""
        self.epoch = 0  # the training stage's current epoch (1-based)
        self.training = False
        self.loss: float | None = None
        self.output_seen = False

    def report(self, fraction: float, message: str) -> None:
        self.reached = max(self.reached, min(0.99, fraction))
        self.ctx.progress(self.reached, message)

    def start(self, stage: str, first_epoch: int = 1, note: str = "") -> None:
        self.stage, self.epoch, self.training, self.loss = stage, first_epoch, False, None
        lo, _, what = SPAN[stage]
        self.report(lo, f"GPT-SoVITS: {what}{note}")

    def within(self, fraction: float, message: str) -> None:
        lo, hi, _ = SPAN[self.stage]
        self.report(lo + (hi - lo) * min(1.0, max(0.0, fraction)), message)

    def line(self, line: str) -> None:
        if self.stage == "asr":
            bar = parse_tqdm(line)
            if bar is not None:
                self.within(bar.fraction, f"GPT-SoVITS: transcribing slice {bar.n}/{bar.total}")
        elif self.stage == "s2":
            self._s2(line)
        elif self.stage == "s1":
            self._s1(line)

    def _s2(self, line: str) -> None:
        epochs = self.s.gpt_sovits_train_s2_epochs
        m = re.search(r"start training from epoch (\d+)", line)
        if m:
            self.epoch, self.training = int(m.group(1)), True
            return
        m = re.search(r"====> Epoch: (\d+)", line)
        if m:
            self.epoch = int(m.group(1)) + 1
            self.within((self.epoch - 1) / epochs, f"GPT-SoVITS: SoVITS epoch {self.epoch - 1}/{epochs} done{self._loss()}")
            return
        m = re.match(r"^INFO:[^:]*:\[([-+0-9.eE, ]+)\]$", line.strip())  # [d, g, fm, mel, kl_ssl, kl, step, lr]
        if m:
            with contextlib.suppress(ValueError, IndexError):
                self.loss = float(m.group(1).split(",")[3])
            return
        bar = parse_tqdm(line)
        if bar is not None and self.training:  # not the dataset loader's bar before the training
            self.within((self.epoch - 1 + bar.fraction) / epochs,
                        f"GPT-SoVITS: SoVITS epoch {self.epoch}/{epochs}, batch {bar.n}/{bar.total}{self._loss()}")

    def _s1(self, line: str) -> None:
        epochs = self.s.gpt_sovits_train_s1_epochs
        bar = parse_tqdm(line)
        if bar is None:
            return
        m = re.match(r"^Epoch (\d+)$", bar.desc)
        if not m:
            return
        self.epoch, self.training = int(m.group(1)) + 1, True  # Lightning counts from 0
        self.loss = bar.postfix.get("total_loss_step", self.loss)
        self.within((self.epoch - 1 + bar.fraction) / epochs,
                    f"GPT-SoVITS: GPT epoch {self.epoch}/{epochs}, batch {bar.n}/{bar.total}{self._loss()}")

    def _loss(self) -> str:
        if self.loss is None:
            return ""
        return f", mel loss {self.loss:.4g}" if self.stage == "s2" else f", loss {self.loss:.4g}"


# Failures ---------------------------------------------------------------------------------------


def _last(output: str, pattern: str) -> str:
    found = [line.strip() for line in output.splitlines() if re.search(pattern, line)]
    return (found[-1] if found else "")[:400]


def _hint(stage: str, s: GptSovitsTrainSettings) -> Callable[[str], StepFailure | None]:
    what = SPAN[stage][2]

    def hint(output: str) -> StepFailure | None:
        if re.search(r"out of memory|OutOfMemoryError", output, re.I):
            batch = {"s2": " a smaller GPT_SOVITS_TRAIN_S2_BATCH_SIZE,", "s1": " a smaller GPT_SOVITS_TRAIN_S1_BATCH_SIZE,"}
            return StepFailure("out_of_memory", f"{NAME}: GPT-SoVITS ran out of GPU memory {what} ("
                               + _last(output, r"out of memory|OutOfMemory")[:300] + f"):{batch.get(stage, '')} "
                               "or a GPU with more free memory", retryable=True)
        if stage == "s2" and re.search(r"audiopaths_sid_text_new|ZeroDivisionError|至少能凑够batch size", output):
            return StepFailure("bad_input", f"{NAME}: too little usable speech for SoVITS (GPT-SoVITS keeps slices "
                               "of 0.6 to 54 s with a transcript): record a longer, clearer voice sample", retryable=False)
        m = re.search(r"FileNotFoundError: (?:\[Errno 2\] No such file or directory: )?'?([^'\n]+)'?", output)
        if m is None:
            m = re.search(r"Incorrect path_or_model_id: '([^']+)'", output)  # transformers' from_pretrained
        if m and any(str(p) in m.group(1) or m.group(1) in str(p) for p in s.pretrained().values()):
            return StepFailure("engine_unavailable", f"{NAME}: weights missing {what}: {m.group(1)} (GPT_SOVITS_TRAIN_*)",
                               retryable=False)
        if re.search(r"error: (unrecognized arguments|argument |the following arguments)", output):
            return StepFailure("engine_unavailable", f"{NAME}: GPT-SoVITS' {SCRIPTS[stage]} refused its command line ("
                               + _last(output, r"error: ") + "): the checkout is not the version this engine knows",
                               retryable=False)
        return None

    return hint


def _failure(exc: BaseException, stage: str, s: GptSovitsTrainSettings, progress: _Progress,
             state: _State) -> StepFailure:
    what = SPAN[stage][2]
    kept = [f"{w} (epoch {saved['epoch']})" for w, saved in (("SoVITS", state.get("s2")), ("GPT", state.get("s1")))
            if saved]
    if state.get("sovits"):
        kept.append("the trained SoVITS weights")
    if state.get("dataset") and not kept:
        kept.append("the prepared dataset")
    note = f"; kept for a retry: {', '.join(kept)}" if kept else ""
    at = f" at epoch {progress.epoch}" if stage in ("s2", "s1") and progress.training else ""
    if isinstance(exc, Cancelled):
        return StepFailure("cancelled", f"{NAME}: cancelled while {what}{at}{note}")
    if isinstance(exc, ToolTimeout):
        return StepFailure("timeout", f"{NAME}: the training ran past GPT_SOVITS_TRAIN_TIMEOUT_S "
                           f"({s.gpt_sovits_train_timeout_s:g} s) while {what}{at} and was stopped{note}")
    failure = run_failure(f"{NAME} ({what})", exc, hint=_hint(stage, s))
    if note and failure.retryable:
        failure = StepFailure(failure.code, failure.message + note, retryable=failure.retryable)
    return failure


# The engine -------------------------------------------------------------------------------------


@engine("voice_trainer", NAME)
class GptSovitsVoiceTrainer(Engine):
    """GPT-SoVITS v2 fine-tuned on the profile's voice sample (SoVITS then GPT), resumed from its
    saved checkpoints when a training is retried; its weights become the profile's voice model."""

    # GPT-SoVITS and its v2 pretrained models: MIT (faster-whisper's Whisper weights: MIT;
    # chinese-roberta-wwm-ext-large and chinese-hubert-base: Apache-2.0). The voice profile is
    # measured with praat-parselmouth (GPL-3.0).
    licence = "MIT AND Apache-2.0 AND GPL-3.0-or-later"
    device = "gpu"
    version = "1"
    settings_group = GptSovitsTrainSettings

    @classmethod
    def problem(cls) -> str | None:
        try:
            s = load_group(GptSovitsTrainSettings)
        except ConfigError as exc:
            return str(exc)
        found, _ = _missing(s)
        return "; ".join(found) if found else None

    @classmethod
    def settings_key(cls) -> str:
        try:
            s = load_group(GptSovitsTrainSettings)
        except ConfigError:
            return ""
        return ":".join(str(v) for v in (s.gpt_sovits_train_language, s.gpt_sovits_train_asr_model,
                                         s.gpt_sovits_train_s2_epochs, s.gpt_sovits_train_s1_epochs,
                                         s.gpt_sovits_train_s2_batch_size, s.gpt_sovits_train_s1_batch_size,
                                         s.gpt_sovits_train_half))

    def train(self, ctx: TaskContext) -> StepOutput:
        s = step_settings(GptSovitsTrainSettings)
        found, _ = _missing(s)
        if found:
            raise StepFailure("engine_unavailable", f"{NAME}: " + "; ".join(found), retryable=False)
        return _Run(ctx, s).train()


class _Run:
    """One training: the stages in order, with the state of earlier attempts."""

    def __init__(self, ctx: TaskContext, s: GptSovitsTrainSettings) -> None:
        assert s.gpt_sovits_train_dir is not None
        self.ctx, self.s = ctx, s
        self.checkout = s.gpt_sovits_train_dir.resolve()
        self.python = shutil.which(s.gpt_sovits_train_python) or s.gpt_sovits_train_python
        self.root = ctx.path("gpt_sovits")  # fresh: what a failed try left on this machine is not trusted
        shutil.rmtree(self.root, ignore_errors=True)
        self.root.mkdir(parents=True)
        self.exp_dir = self.root / "logs" / EXP
        self.s2_logs = self.exp_dir / f"logs_s2_{MODEL_VERSION}"
        self.s1_out = self.exp_dir / f"logs_s1_{MODEL_VERSION}"
        self.sovits_dir = self.root / f"SoVITS_weights_{MODEL_VERSION}"
        self.gpt_dir = self.root / f"GPT_weights_{MODEL_VERSION}"
        self.tmp = self.root / "TEMP"
        for d in (self.exp_dir, self.sovits_dir, self.gpt_dir, self.tmp):
            d.mkdir(parents=True, exist_ok=True)
        self.deadline = time.monotonic() + s.gpt_sovits_train_timeout_s
        self.progress = _Progress(ctx, s)
        self.stage = "slice"
        self.state = _State("")
        self.keeper: _Keeper | None = None

    # The run ------------------------------------------------------------------------------------
    def train(self) -> StepOutput:
        ctx = self.ctx
        ctx.progress(0.0, "GPT-SoVITS: measuring the voice")
        measured = DatasetVoiceTrainer().train(ctx)  # voice_profile.json, as the built-in trainer makes it
        sample = self._sample()
        reference = self._reference()
        self.state = self._saved_state(sample, reference)
        self.keeper = _Keeper(ctx, self.state, self.root / "upload")
        resumed: dict[str, Any] = {}

        dataset = self.state.get("dataset")
        if dataset is not None and self._restore_dataset(dataset):
            resumed["dataset"] = True
            reference_text = dataset.get("referenceText")
            slices = int(dataset.get("slices") or 0)
            ctx.progress(SPAN["semantic"][1], "GPT-SoVITS: the dataset prepared by an earlier attempt is back")
        else:
            reference_text, slices = self._prepare(sample, reference)

        sovits = self.state.get("sovits")
        if sovits is not None and ctx.storage.exists(str(sovits.get("ref", {}).get("key", ""))):
            sovits_ref = dict(sovits["ref"])
            resumed["sovits"] = True
            ctx.progress(SPAN["s2"][1], "GPT-SoVITS: SoVITS was trained by an earlier attempt")
        else:
            resumed["s2FromEpoch"] = self._restore_checkpoint("s2", self.s2_logs)
            sovits_ref = self._train_s2()
        resumed["s1FromEpoch"] = self._restore_checkpoint("s1", self.s1_out / "ckpt")
        gpt_ref = self._train_s1()

        doc: dict[str, Any] = {
            "engine": NAME, "trained": True, "modelVersion": MODEL_VERSION,
            "gptWeightsKey": gpt_ref["key"], "sovitsWeightsKey": sovits_ref["key"],
            "referenceText": reference_text or None, "referenceKey": ctx.input("voice_reference").key,
            "language": self.s.gpt_sovits_train_language, "slices": slices,
            "s2Epochs": self.s.gpt_sovits_train_s2_epochs, "s1Epochs": self.s.gpt_sovits_train_s1_epochs,
            "resumed": {k: v for k, v in resumed.items() if v},
            "usableBy": [NAME],
            "notes": ["fine-tuned on the voice sample: SoVITS then GPT (GPT-SoVITS v2)"]
            + ([] if reference_text else ["no transcript of the reference was recognised: the tts engine speaks "
                                          "without a prompt text"]),
        }
        model = ctx.upload_json("voice_model.json", doc, "voice_model")
        self.keeper.clear()
        ctx.progress(1.0, "GPT-SoVITS: voice trained")
        outputs = {**measured.outputs, "voiceModel": {k: doc[k] for k in ("engine", "trained", "referenceText",
                                                                         "gptWeightsKey", "sovitsWeightsKey")}}
        return StepOutput([*measured.artifacts, sovits_ref, gpt_ref, model], outputs)

    # Inputs and state ---------------------------------------------------------------------------
    def _sample(self) -> Path:
        """The voice sample as uploaded (the training data), else the voice reference."""
        sample = self.ctx.payload.get("voiceSample")
        key = sample.get("key") if isinstance(sample, dict) else None
        folder = self.root / "input"
        folder.mkdir()
        if key:
            ext = "".join(c for c in key.rsplit(".", 1)[-1] if c.isalnum())[:8] if "." in key.rsplit("/", 1)[-1] else ""
            try:
                return self.ctx.storage.get_file(key, folder / f"voice_sample.{ext or 'wav'}")
            except ObjectMissing:
                raise StepFailure("bad_input", f"{NAME}: the voice sample ({key}) is not in storage",
                                  retryable=False) from None
        return self.ctx.storage.get_file(self.ctx.input("voice_reference").key, folder / "voice_sample.wav")

    def _reference(self) -> Path:
        """The voice reference cut as the tts engine cuts it (what its prompt text must say)."""
        src = self.ctx.fetch(self.ctx.input("voice_reference").key, "voice_reference.wav")
        try:
            x, sr = sf.read(str(src), dtype="float32", always_2d=True)
        except (RuntimeError, sf.LibsndfileError) as exc:
            raise StepFailure("bad_input", f"{NAME}: the voice reference cannot be read: {exc}", retryable=False) from None
        out = self.root / REFERENCE_WAV
        sf.write(str(out), cut_reference(x.mean(axis=1), sr), sr, subtype="PCM_16")
        return out

    def _saved_state(self, sample: Path, reference: Path) -> _State:
        s = self.s
        sizes = {var: (p.stat().st_size if p.is_file() else 0) for var, p in s.pretrained().items()}
        doc = [GptSovitsVoiceTrainer.version, MODEL_VERSION, file_sha256(sample), file_sha256(reference),
               s.gpt_sovits_train_language, s.gpt_sovits_train_asr_model, s.gpt_sovits_train_s2_epochs,
               s.gpt_sovits_train_s1_epochs, s.gpt_sovits_train_s2_batch_size, s.gpt_sovits_train_s1_batch_size,
               s.gpt_sovits_train_save_every_epoch, s.gpt_sovits_train_half,
               {var: str(p) for var, p in s.pretrained().items()}, sizes]
        fingerprint = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32]
        saved = self.ctx.storage.get_json_or_none(self.ctx.key(STATE_DOC))
        if not isinstance(saved, dict) or saved.get("fingerprint") != fingerprint:
            if isinstance(saved, dict):
                log.info("gpt_sovits: the saved state was made with another sample or settings: starting over")
                with contextlib.suppress(Exception):
                    for key in list(self.ctx.storage.list(self.ctx.key("state/"))):
                        self.ctx.storage.delete(key)
            return _State(fingerprint)
        return _State(fingerprint, {k: v for k, v in saved.items() if k not in ("fingerprint", "attempt")})

    def _restore_dataset(self, saved: dict[str, Any]) -> bool:
        try:
            tar = self.ctx.storage.get_file(str(saved["key"]), self.root / "dataset.tar")
            with tarfile.open(tar) as t:
                t.extractall(self.exp_dir, filter="data")
            tar.unlink()
        except (ObjectMissing, KeyError, tarfile.TarError, OSError) as exc:
            log.warning("gpt_sovits: the saved dataset cannot be used (%s): preparing it again", exc)
            return False
        return all((self.exp_dir / name).exists() for name in DATASET_FILES[:2])

    def _restore_checkpoint(self, stage: str, folder: Path) -> int | None:
        saved = self.state.get(stage)
        if saved is None:
            return None
        folder.mkdir(parents=True, exist_ok=True)
        try:
            for name, key in (saved.get("keys") or {}).items():
                self.ctx.storage.get_file(str(key), folder / Path(str(name)).name)
        except ObjectMissing:
            for p in folder.iterdir():
                p.unlink()
            return None
        return int(saved.get("epoch") or 0) or None

    # Running a stage ----------------------------------------------------------------------------
    def _run(self, stage: str, args: list[str], env: dict[str, str] | None = None) -> list[str]:
        try:
            return self._exec(stage, args, env)
        except (ToolFailed, Cancelled, ToolTimeout) as exc:
            raise self._fail(exc) from None

    def _exec(self, stage: str, args: list[str], env: dict[str, str] | None = None) -> list[str]:
        """One stage's script run to its end (ToolExited, Cancelled, ToolTimeout as they come)."""
        self.stage = stage
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise ToolTimeout("no time left")
        cmd = [self.python, "-s", str(self.checkout / SCRIPTS[stage]), *args]
        full_env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=self._pythonpath(), TEMP=str(self.tmp),
                        version=MODEL_VERSION, **(env or {}))
        return stream(cmd, remaining, self.ctx.cancelled, on_line=self.progress.line, cwd=self.checkout, env=full_env)

    def _pythonpath(self) -> str:
        """What webui.py's users.pth puts on every script's path (its scripts import ``tools.…``,
        ``text.…``, ``module.…`` from there), before whatever PYTHONPATH the worker has."""
        c = self.checkout
        paths = [c, c / "GPT_SoVITS" / "BigVGAN", c / "tools", c / "tools" / "asr", c / "GPT_SoVITS", c / "tools" / "uvr5"]
        return os.pathsep.join([*map(str, paths), *filter(None, [os.environ.get("PYTHONPATH")])])

    def _fail(self, exc: BaseException) -> StepFailure:
        return _failure(exc, self.stage, self.s, self.progress, self.state)

    def _prepare_env(self, inp_text: Path, inp_wav_dir: Path) -> dict[str, str]:
        s = self.s
        return {"inp_text": str(inp_text), "inp_wav_dir": str(inp_wav_dir), "exp_name": EXP, "opt_dir": str(self.exp_dir),
                "i_part": "0", "all_parts": "1", "_CUDA_VISIBLE_DEVICES": _gpu(), "is_half": str(s.gpt_sovits_train_half),
                "bert_pretrained_dir": str(s.at(s.gpt_sovits_train_bert_dir).resolve()),
                "cnhubert_base_dir": str(s.at(s.gpt_sovits_train_cnhubert_dir).resolve()),
                "pretrained_s2G": str(s.at(s.gpt_sovits_train_pretrained_s2g).resolve()),
                "s2config_path": S2_CONFIG}

    # Stages 1-3: the dataset ----------------------------------------------------------------------
    def _prepare(self, sample: Path, reference: Path) -> tuple[str, int]:
        s, p = self.s, self.progress
        slices = self.root / "slices"
        p.start("slice")
        out = self._run("slice", [str(sample), str(slices), *SLICE_ARGS])
        names = sorted(x.name for x in slices.glob("*.wav")) if slices.is_dir() else []
        if not names:
            why = next((line for line in out if "->fail->" in line), "no slice was written")
            raise StepFailure("bad_input", f"{NAME}: GPT-SoVITS could not slice the voice sample: {why[:400]}",
                              retryable=False)
        shutil.copy2(reference, slices / REFERENCE_WAV)

        p.start("asr", note=f" ({len(names)} slices)")
        asr = self.root / "asr"
        self._run("asr", ["-i", str(slices), "-o", str(asr), "-s", s.gpt_sovits_train_asr_model,
                          "-l", s.gpt_sovits_train_language, "-p", s.gpt_sovits_train_asr_precision])
        listing = asr / f"{slices.name}.list"
        if not listing.is_file():
            raise self._fail(ToolFailed(f"the ASR ended without writing {listing.name}"))
        rows, reference_text = [], ""
        for line in listing.read_text(encoding="utf-8").splitlines():
            parts = line.split("|", 3)
            if len(parts) != 4:
                continue
            path, _, lang, text = parts
            text = " ".join(text.replace("|", " ").split())
            if Path(path).name == REFERENCE_WAV:
                reference_text = text
            elif text:
                rows.append(f"{path}|{EXP}|{lang}|{text}")
        if not rows:
            raise StepFailure("bad_input", f"{NAME}: no speech was recognised in the voice sample ({len(names)} slices, "
                              f"GPT_SOVITS_TRAIN_LANGUAGE={s.gpt_sovits_train_language}): record a clearer sample",
                              retryable=False)
        inp_text = self.root / f"{EXP}.list"
        inp_text.write_text("\n".join(rows) + "\n", encoding="utf-8")
        env = self._prepare_env(inp_text, slices)

        p.start("text")
        self._run("text", [], env)
        text_rows = self._merge("2-name2text", ".txt", header=None)
        if not "".join(text_rows):
            raise StepFailure("bad_input", f"{NAME}: GPT-SoVITS made no phonemes of the transcripts (language "
                              f"{s.gpt_sovits_train_language} not supported for training?)", retryable=False)
        p.start("hubert")
        self._run("hubert", [], env)
        if not any((self.exp_dir / "5-wav32k").glob("*")):
            raise self._fail(ToolFailed("2-get-hubert-wav32k.py wrote no 5-wav32k audio"))
        p.start("semantic")
        self._run("semantic", [], env)
        self._merge("6-name2semantic", ".tsv", header="item_name\tsemantic_audio")

        assert self.keeper is not None
        tar_path = self.root / "dataset.tar"
        with tarfile.open(tar_path, "w") as tar:
            for name in DATASET_FILES:
                if (self.exp_dir / name).exists():
                    tar.add(self.exp_dir / name, arcname=name)
        key = self.keeper.put("dataset.tar", tar_path, "application/x-tar")
        self.keeper.record("dataset", {"key": key, "referenceText": reference_text, "slices": len(rows)})
        tar_path.unlink()
        return reference_text, len(rows)

    def _merge(self, stem: str, ext: str, header: str | None) -> list[str]:
        """open1abc's merge of the part files (one part here) into ``<stem><ext>``."""
        part = self.exp_dir / f"{stem}-0{ext}"
        if not part.is_file():
            raise self._fail(ToolFailed(f"{SCRIPTS[self.stage]} ended without writing {part.name}"))
        rows = part.read_text(encoding="utf-8").strip("\n").split("\n")
        part.unlink()
        (self.exp_dir / f"{stem}{ext}").write_text("\n".join(([header] if header else []) + rows) + "\n",
                                                   encoding="utf-8")
        return rows

    # Stages 4-5: the trainings --------------------------------------------------------------------
    def _train_s2(self) -> dict[str, Any]:
        s, ctx = self.s, self.ctx
        config = json.loads((self.checkout / S2_CONFIG).read_text(encoding="utf-8"))
        train = config["train"]
        if not s.gpt_sovits_train_half:
            train["fp16_run"] = False
        train.update({"batch_size": s.gpt_sovits_train_s2_batch_size, "epochs": s.gpt_sovits_train_s2_epochs,
                      "text_low_lr_rate": 0.4,
                      "pretrained_s2G": str(s.at(s.gpt_sovits_train_pretrained_s2g).resolve()),
                      "pretrained_s2D": str(s.at(s.gpt_sovits_train_pretrained_s2d).resolve()),
                      "if_save_latest": True, "if_save_every_weights": True,
                      "save_every_epoch": s.gpt_sovits_train_save_every_epoch, "gpu_numbers": _gpu(),
                      "grad_ckpt": False, "lora_rank": "32"})
        config["model"]["version"] = MODEL_VERSION
        config["data"]["exp_dir"] = config["s2_ckpt_dir"] = str(self.exp_dir)
        config.update({"save_weight_dir": str(self.sovits_dir), "name": EXP, "version": MODEL_VERSION})
        path = self.tmp / "tmp_s2.json"
        path.write_text(json.dumps(config), encoding="utf-8")
        self.s2_logs.mkdir(parents=True, exist_ok=True)  # open1Ba makes it: s2_train.py saves there

        saved = self.state.get("s2")
        first = int(saved["epoch"]) + 1 if saved else 1
        self.progress.start("s2", first, f" from epoch {first}" if saved else "")
        self._watched("s2", ["--config", str(path)], {}, self._probe_s2)
        weights = self._newest(self.sovits_dir, SOVITS_RE)
        if weights is None or weights[0] != s.gpt_sovits_train_s2_epochs:
            raise self._fail(ToolFailed(f"s2_train.py ended without writing the SoVITS weights of epoch "
                                        f"{s.gpt_sovits_train_s2_epochs} in {self.sovits_dir.name}"))
        ref = ctx.upload("sovits_weights.pth", weights[1], "voice_weights", "application/octet-stream",
                         {"engine": NAME, "weights": "sovits", "modelVersion": MODEL_VERSION,
                          "file": weights[1].name, "epochs": weights[0]})
        assert self.keeper is not None
        old = self.keeper.get_keys("s2")
        self.keeper.record("sovits", {"ref": ref})
        self.keeper.record("s2", None)
        for key in old:
            with contextlib.suppress(Exception):
                ctx.storage.delete(key)
        return ref

    def _train_s1(self) -> dict[str, Any]:
        s = self.s
        edits = {"train.batch_size": s.gpt_sovits_train_s1_batch_size, "train.epochs": s.gpt_sovits_train_s1_epochs,
                 "pretrained_s1": str(s.at(s.gpt_sovits_train_pretrained_s1).resolve()),
                 "train.save_every_n_epoch": s.gpt_sovits_train_save_every_epoch,
                 "train.if_save_every_weights": True, "train.if_save_latest": True, "train.if_dpo": False,
                 "train.half_weights_save_dir": str(self.gpt_dir), "train.exp_name": EXP,
                 "train_semantic_path": str(self.exp_dir / "6-name2semantic.tsv"),
                 "train_phoneme_path": str(self.exp_dir / "2-name2text.txt"), "output_dir": str(self.s1_out)}
        if not s.gpt_sovits_train_half:
            edits["train.precision"] = "32"
        path = self.tmp / "tmp_s1.yaml"
        self.stage = "s1"
        try:
            proc.run([self.python, "-s", "-c", S1_CONFIG_SCRIPT, str(self.checkout / S1_CONFIG), str(path),
                      json.dumps(edits)], 60, self.ctx.cancelled, cwd=self.checkout)
        except ToolFailed as exc:
            raise StepFailure("engine_unavailable", f"{NAME}: GPT-SoVITS' Python could not write the GPT config from "
                              f"{S1_CONFIG} (is PyYAML in its environment?): {exc}", retryable=False) from None
        except (Cancelled, ToolTimeout) as exc:
            raise self._fail(exc) from None

        saved = self.state.get("s1")
        first = int(saved["epoch"]) + 1 if saved else 1
        self.progress.start("s1", first, f" from epoch {first}" if saved else "")
        self._watched("s1", ["--config_file", str(path)], {"hz": "25hz", "_CUDA_VISIBLE_DEVICES": _gpu()},
                      self._probe_s1)
        weights = self._newest(self.gpt_dir, GPT_RE)
        if weights is None or weights[0] != s.gpt_sovits_train_s1_epochs:
            raise self._fail(ToolFailed(f"s1_train.py ended without writing the GPT weights of epoch "
                                        f"{s.gpt_sovits_train_s1_epochs} in {self.gpt_dir.name}"))
        return self.ctx.upload("gpt_weights.ckpt", weights[1], "voice_weights", "application/octet-stream",
                               {"engine": NAME, "weights": "gpt", "modelVersion": MODEL_VERSION,
                                "file": weights[1].name, "epochs": weights[0]})

    def _watched(self, stage: str, args: list[str], env: dict[str, str],
                 probe: Callable[[], tuple[str, int, list[Path], Path] | None]) -> None:
        assert self.keeper is not None
        self.keeper.watch(probe)
        try:
            self._exec(stage, args, env)
        except (ToolFailed, Cancelled, ToolTimeout) as exc:
            self.keeper.unwatch(final=True)  # what the next attempt resumes from, before the failure names it
            raise self._fail(exc) from None
        except BaseException:
            self.keeper.unwatch(final=True)
            raise
        self.keeper.unwatch(final=False)

    @staticmethod
    def _newest(folder: Path, pattern: re.Pattern[str]) -> tuple[int, Path] | None:
        found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := pattern.match(p.name))] if folder.is_dir() else []
        return max(found, key=lambda x: x[0]) if found else None

    def _probe_s2(self) -> tuple[str, int, list[Path], Path] | None:
        newest = self._newest(self.sovits_dir, SOVITS_RE)
        if newest is None or newest[0] >= self.s.gpt_sovits_train_s2_epochs:  # the last one is the result
            return None
        return "s2", newest[0], [self.s2_logs / name for name in S2_LATEST], newest[1]

    def _probe_s1(self) -> tuple[str, int, list[Path], Path] | None:
        newest = self._newest(self.gpt_dir, GPT_RE)
        if newest is None or newest[0] >= self.s.gpt_sovits_train_s1_epochs:
            return None
        ckpt_dir = self.s1_out / "ckpt"
        ckpts = [p for p in ckpt_dir.iterdir() if (m := S1_CKPT_RE.match(p.name)) and int(m.group(1)) == newest[0] - 1] \
            if ckpt_dir.is_dir() else []
        if len(ckpts) != 1:
            return None
        return "s1", newest[0], ckpts, newest[1]
