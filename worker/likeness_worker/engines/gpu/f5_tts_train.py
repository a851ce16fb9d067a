"""``f5_tts`` voice_trainer engine: F5-TTS fine-tuned on the profile's voice reference, resumable
across attempts and machines; the ``f5_tts`` tts engine then speaks with the fine-tuned checkpoint.

F5-TTS's training interface (github.com/SWivid/F5-TTS, compared at 2ae2c9bd; the tool's Python is
F5_TTS_PYTHON, the environment F5-TTS is installed in *from its checkout* (``pip install -e .``):
its trainer reads and writes folders beside its package):

- ``f5_tts.infer.utils_infer.transcribe(ref_audio, language=None)``: Whisper
  (``openai/whisper-large-v3-turbo``, transformers' pipeline) — what finetune_gradio's
  ``transcribe_all`` uses for the dataset's text;
- ``python -m f5_tts.train.datasets.prepare_csv_wavs <metadata.csv> <out_dir>``: the CSV has the
  header ``audio_file|text`` and absolute wav paths; it writes raw.arrow, duration.json and (a
  fine-tune) the pretrained vocab.txt, copied from ``data/Emilia_ZH_EN_pinyin/vocab.txt`` beside the
  package, into ``out_dir``, which must be ``files("f5_tts")/../../data/<dataset_name>_pinyin``;
- ``python -m f5_tts.train.finetune_cli`` (the ``f5-tts_finetune-cli`` entry point): ``--exp_name``,
  ``--dataset_name``, ``--finetune`` with ``--pretrain <checkpoint>`` (unset: the hub's, through
  the Hugging Face cache), ``--epochs``, ``--learning_rate``, ``--batch_size_per_gpu`` (frames),
  ``--batch_size_type frame``, ``--num_warmup_updates``, ``--save_per_updates``,
  ``--last_per_updates``, ``--keep_last_n_checkpoints``, ``--tokenizer pinyin``. Its checkpoints go
  to ``files("f5_tts")/../../ckpts/<dataset_name>``: ``model_last.pt`` every ``--last_per_updates``
  and at the end ("Saved last checkpoint at update N" once written), ``model_<N>.pt`` (not kept
  here: ``--keep_last_n_checkpoints 0``). A torch zip of ``{model_state_dict, optimizer_state_dict,
  ema_model_state_dict, scheduler_state_dict, update}``; the trainer resumes from ``model_last.pt``
  in that folder (skipping the epochs and batches done, seed 666). Its bar, one per epoch:
  ``tqdm(…, desc=f"Epoch {e}/{epochs}", unit="update")`` with the postfix ``loss=…, update=N``.
  Mixed precision: accelerate's ACCELERATE_MIXED_PRECISION.

One run:
1. the voice profile (voice_profile.json), measured as the ``reference`` voice trainer does;
2. the reference's transcript: the voice reference step's ``voiceTranscript`` when it has one,
   else F5-TTS's Whisper in its environment, offline (HF_HUB_OFFLINE=1: the model must be in the
   box's Hugging Face cache);
3. the dataset (the reference as one clip: prepare's is at most 12 s, in F5-TTS's 0.3–30 s) in a
   metadata.csv, prepared by prepare_csv_wavs under a name of this job and step;
4. the fine-tune. On a later attempt (another machine: nothing local is trusted) the newest
   checkpoint this step uploaded (``ckpt/state.json`` → ``ckpt/model_<N>.pt``) is put in the
   checkpoint folder as ``model_last.pt`` when it was made with the same settings, reference and
   transcript (a fingerprint); otherwise the training starts over and the outputs say why. Each
   ``model_last.pt`` the trainer saves is copied (unchanged while copied, a whole torch zip, its
   ``update`` read from its pickle) and uploaded; the older one is deleted; also at the end of a
   failed, cancelled or timed-out run;
5. the final ``model_last.pt`` uploaded as ``f5_tts_model.pt`` (kind ``voice_checkpoint``) and
   ``voice_model.json`` (the ``voice_model`` port)::

       {"engine": "f5_tts", "trained": true, "ckptKey": …, "referenceText": …, "referenceKey": …,
        "model": <exp_name>, "updates": N, …}

   which the f5_tts tts engine reads from ``voiceModelKey``. The saved checkpoints and the
   folders in F5-TTS's checkout are then deleted.

Failures: F5_TTS_PYTHON unset, F5-TTS not installed from a checkout, the pretrained checkpoint or
Whisper missing (not in the cache of an offline box), a flag F5-TTS does not know → engine_unavailable,
not retried; CUDA out of memory → out_of_memory; any other exit → engine_failed; past
F5_TTS_FINETUNE_TIMEOUT_S → timeout; a cancel kills it (its process group) → cancelled. A
checkpoint saved before the end is kept for the next attempt in each case.

Licence: F5-TTS's code is MIT; the pretrained weights fine-tuned here are CC-BY-NC-4.0 (trained
on Emilia), and so is what is derived from them: non-commercial.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import pickletools
import re
import shutil
import subprocess
import threading
import time
import zipfile
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ...config import ConfigError, load_group
from ...errors import StepFailure
from ...media.errors import Cancelled, ToolTimeout
from ...media.proc import ToolExited, stream
from ...storage.base import ObjectMissing
from ..base import Engine, StepOutput, TaskContext, engine, file_sha256
from ..builtin.train import DatasetVoiceTrainer
from ..health import ProblemCache
from .tooling import parse_tqdm, run_failure, step_settings

log = logging.getLogger(__name__)

NAME = "f5_tts"
ASR_MODEL = "openai/whisper-large-v3-turbo"  # utils_infer.initialize_asr_pipeline
HUB_CHECKPOINTS = {"F5TTS_v1_Base": "hf://SWivid/F5-TTS/F5TTS_v1_Base/model_1250000.safetensors",
                   "F5TTS_Base": "hf://SWivid/F5-TTS/F5TTS_Base/model_1200000.pt",
                   "E2TTS_Base": "hf://SWivid/E2-TTS/E2TTS_Base/model_1200000.pt"}
LAST = "model_last.pt"
STATE_DOC = "ckpt/state.json"  # under the step's prefix: the newest uploaded checkpoint
SAVED_RE = re.compile(r"Saved last checkpoint at update (\d+)")
EPOCH_RE = re.compile(r"^Epoch (\d+)/(\d+)$")
TRANSCRIPT_MARK = "LIKENESS_TRANSCRIPT "
KEEP_POLL_S = 1.0

# The tool's layout as its own code computes it (files("f5_tts")/../../…), for one dataset name.
_LAYOUT = """
import importlib.util as u, json, sys
from importlib.resources import files
missing = [m for m in ("f5_tts.train.finetune_cli", "f5_tts.train.datasets.prepare_csv_wavs", "f5_tts.infer.utils_infer")
           if u.find_spec(m) is None]
name = sys.argv[1]
root = files("f5_tts")
vocab = root.joinpath("../../data/Emilia_ZH_EN_pinyin/vocab.txt")
print(json.dumps({"missing": missing, "ckpts": str(root.joinpath(f"../../ckpts/{name}")),
                  "data": str(root.joinpath(f"../../data/{name}_pinyin")), "vocab": str(vocab),
                  "vocabExists": vocab.is_file()}))
"""
_TRANSCRIBE = f"""
import json, sys
from f5_tts.infer.utils_infer import transcribe
text = transcribe(sys.argv[1], sys.argv[2] or None)
print({TRANSCRIPT_MARK!r} + json.dumps(text), flush=True)
"""


class F5TtsFinetuneSettings(BaseModel):
    """F5_TTS_FINETUNE_* (and F5_TTS_PYTHON, shared with the f5_tts tts engine): all optional; the
    engine is unhealthy until F5_TTS_PYTHON names the Python of an F5-TTS checkout install."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    f5_tts_python: str | None = None  # the Python of F5-TTS's environment (pip install -e <checkout>)
    # --exp_name: the model fine-tuned (the tts engine's F5_TTS_MODEL must be the same)
    f5_tts_finetune_model: Literal["F5TTS_v1_Base", "F5TTS_Base", "E2TTS_Base"] = "F5TTS_v1_Base"
    f5_tts_finetune_pretrain: Path | None = None  # --pretrain; unset: the hub's, from the Hugging Face cache
    f5_tts_finetune_epochs: int = Field(200, ge=1, le=100_000)  # --epochs (one clip: one update per epoch)
    f5_tts_finetune_batch_size: int = Field(3200, ge=100)  # --batch_size_per_gpu, in mel frames (~94 a second)
    f5_tts_finetune_learning_rate: float = Field(1e-5, gt=0, le=1)  # --learning_rate
    f5_tts_finetune_warmup_updates: int = Field(20, ge=0)  # --num_warmup_updates
    f5_tts_finetune_save_per_updates: int = Field(50, ge=1)  # a checkpoint to resume from every N updates
    f5_tts_finetune_mixed_precision: Literal["no", "fp16", "bf16"] = "fp16"  # ACCELERATE_MIXED_PRECISION
    f5_tts_finetune_asr_language: str | None = Field(None, pattern=r"^[a-z]{2,3}$")  # Whisper's; unset: detected
    f5_tts_finetune_timeout_s: float = Field(7200.0, gt=0)  # one run: transcript, dataset, training, uploads

    @model_validator(mode="after")
    def _warmup(self) -> F5TtsFinetuneSettings:
        if self.f5_tts_finetune_warmup_updates >= self.f5_tts_finetune_epochs:
            raise ValueError("F5_TTS_FINETUNE_WARMUP_UPDATES must be below F5_TTS_FINETUNE_EPOCHS (F5-TTS decays "
                             "the learning rate over the updates after the warmup)")
        return self


def _missing(s: F5TtsFinetuneSettings) -> list[str]:
    if not s.f5_tts_python:
        return ["not configured: F5_TTS_PYTHON is not set (the Python of F5-TTS's environment)"]
    found = []
    if shutil.which(s.f5_tts_python) is None:
        found.append(f"F5_TTS_PYTHON ({s.f5_tts_python}) does not exist or is not executable")
    if s.f5_tts_finetune_pretrain is not None and not s.f5_tts_finetune_pretrain.is_file():
        found.append(f"weights missing: F5_TTS_FINETUNE_PRETRAIN ({s.f5_tts_finetune_pretrain}) does not exist")
    return found


def _layout(python: str, name: str, timeout: float = 20.0) -> tuple[dict[str, Any] | None, str | None]:
    """Where F5-TTS keeps dataset ``name`` and its checkpoints, or why that cannot be known."""
    try:
        res = subprocess.run([python, "-c", _LAYOUT, name], capture_output=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"F5_TTS_PYTHON ({python}) does not run: {exc}"
    if res.returncode != 0:
        err = res.stderr.decode(errors="replace").strip()
        if "No module named 'f5_tts'" in err or "No package metadata" in err:
            return None, f"f5-tts is not installed in F5_TTS_PYTHON ({python})"
        return None, f"F5_TTS_PYTHON ({python}) failed: {err[-300:]}"
    doc = json.loads(res.stdout.decode().strip().splitlines()[-1])
    if doc["missing"]:
        return None, f"F5-TTS in F5_TTS_PYTHON ({python}) has no {', '.join(doc['missing'])} (its training code)"
    if not doc["vocabExists"]:
        return None, (f"F5-TTS in F5_TTS_PYTHON ({python}) is not installed from its checkout (pip install -e): its "
                      f"trainer needs the pretrained vocab beside the package, {doc['vocab']}, which does not exist")
    return doc, None


# Checkpoints -------------------------------------------------------------------------------------


def _checkpoint_update(path: Path) -> int | None:
    """The ``update`` of a checkpoint F5-TTS's trainer saved (torch's zip format; read from its
    pickle's opcodes, torch-free), or None when the file is not a whole one."""
    try:
        with zipfile.ZipFile(path) as z:
            name = next((n for n in z.namelist() if n.endswith("/data.pkl")), None)
            if name is None:
                return None
            data = z.read(name)
        found = None
        previous: Any = None
        for op, arg, _ in pickletools.genops(data):
            if op.name in ("BINPUT", "LONG_BINPUT", "PUT", "MEMOIZE"):  # the memo: between a key and its value
                continue
            if previous == "update" and isinstance(arg, int) and not isinstance(arg, bool):
                found = arg
            previous = arg if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8") else None
        return found
    except (OSError, zipfile.BadZipFile, ValueError, KeyError, EOFError):
        return None


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def _fingerprint(s: F5TtsFinetuneSettings, reference_sha: str, text: str) -> str:
    """What a checkpoint must have been made with to be resumed: another model, reference, transcript or
    schedule would make F5-TTS continue toward something else."""
    pretrain = s.f5_tts_finetune_pretrain
    doc = [F5TtsFinetune.version, s.f5_tts_finetune_model, str(pretrain or ""),
           pretrain.stat().st_size if pretrain and pretrain.is_file() else 0, s.f5_tts_finetune_epochs,
           s.f5_tts_finetune_batch_size, s.f5_tts_finetune_learning_rate, s.f5_tts_finetune_warmup_updates,
           s.f5_tts_finetune_mixed_precision, reference_sha, text]
    return hashlib.sha256(json.dumps(doc).encode()).hexdigest()[:32]


def _resume_point(ctx: TaskContext, fingerprint: str, ckpts: Path) -> tuple[int, str | None, str | None]:
    """The update resumed from (0: none; its checkpoint put in ``ckpts`` as model_last.pt), why a saved
    one is not used, and the key of the saved one (deleted once a newer one is up)."""
    doc = ctx.storage.get_json_or_none(ctx.key(STATE_DOC))
    if not isinstance(doc, dict) or not isinstance(doc.get("key"), str):
        return 0, None, None
    key, update = doc["key"], int(doc.get("update") or 0)
    if doc.get("fingerprint") != fingerprint:
        return 0, (f"the checkpoint saved at update {update} was made with other settings, another voice reference "
                   "or transcript: the training started over"), key
    dest = ckpts / LAST
    try:
        ctx.storage.get_file(key, dest)
    except ObjectMissing:
        return 0, f"the checkpoint saved at update {update} is gone from storage: the training started over", None
    if _checkpoint_update(dest) != update:
        dest.unlink(missing_ok=True)
        return 0, f"the checkpoint saved at update {update} is not whole: the training started over", key
    return update, None, key


class _Keeper:
    """Uploads each model_last.pt the trainer saves (told by its "Saved last checkpoint" line),
    in its own thread so the training goes on; keeps the newest in storage only."""

    def __init__(self, ctx: TaskContext, ckpts: Path, scratch: Path, fingerprint: str, resumed: int,
                 saved_key: str | None) -> None:
        self.ctx, self.ckpts, self.scratch, self.fingerprint = ctx, ckpts, scratch, fingerprint
        self.uploaded = resumed
        self.saved_key = saved_key
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def saved(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="f5-checkpoints", daemon=True)
        self._thread.start()

    def stop(self, final: bool) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=300)
        if final:
            self._try()

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._wake.wait(KEEP_POLL_S):
                self._wake.clear()
                self._try()

    def _try(self) -> None:
        try:
            with self._lock:
                self.upload_newest()
        except Exception:  # a storage hiccup must not stop the training: the next checkpoint is tried
            log.warning("f5_tts: a saved checkpoint could not be uploaded", exc_info=True)

    def upload_newest(self) -> bool:
        src = self.ckpts / LAST
        before = _stat(src)
        if before is None:
            return False
        self.scratch.mkdir(parents=True, exist_ok=True)
        copy = self.scratch / LAST
        try:
            shutil.copyfile(src, copy)
        except OSError:
            return False
        update = _checkpoint_update(copy)
        if _stat(src) != before or update is None or update <= self.uploaded:  # rewritten meanwhile, or not newer
            copy.unlink(missing_ok=True)
            return False
        key = self.ctx.key(f"ckpt/model_{update}.pt")
        self.ctx.storage.put_file(key, copy, "application/octet-stream")
        self.ctx.storage.put_json(self.ctx.key(STATE_DOC), {
            "key": key, "update": update, "fingerprint": self.fingerprint, "attempt": self.ctx.attempt,
            "savedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        if self.saved_key and self.saved_key != key:
            self.ctx.storage.delete(self.saved_key)
        self.saved_key, self.uploaded = key, update
        copy.unlink(missing_ok=True)
        log.info("f5_tts: the checkpoint of update %d was uploaded to %s", update, key)
        return True

    def clear(self) -> None:
        try:
            for key in list(self.ctx.storage.list(self.ctx.key("ckpt/"))):
                self.ctx.storage.delete(key)
        except Exception:
            log.warning("f5_tts: the saved checkpoints could not be deleted", exc_info=True)


# Progress and failures ---------------------------------------------------------------------------


class _Progress:
    """The trainer's epoch bars → step progress between 0.12 and 0.95."""

    def __init__(self, ctx: TaskContext, keeper: _Keeper, resumed: int) -> None:
        self.ctx, self.keeper = ctx, keeper
        self.reached = 0.0
        self.update, self.total = resumed, 0
        self.loss: float | None = None

    def report(self, fraction: float, message: str) -> None:
        self.reached = max(self.reached, min(0.99, fraction))
        self.ctx.progress(self.reached, message)

    def line(self, line: str) -> None:
        if SAVED_RE.search(line):
            self.keeper.saved()
            return
        bar = parse_tqdm(line)
        m = EPOCH_RE.match(bar.desc) if bar is not None else None
        if bar is None or m is None:
            return
        epoch, epochs = int(m.group(1)), int(m.group(2))
        self.total = bar.total * epochs
        self.update = int(bar.postfix.get("update", (epoch - 1) * bar.total + bar.n))
        self.loss = bar.postfix.get("loss", self.loss)
        loss = f", loss {self.loss:.3g}" if self.loss is not None else ""
        self.report(0.12 + 0.83 * min(1.0, self.update / max(1, self.total)),
                    f"F5-TTS: update {self.update}/{self.total}{loss}")


def _last_line(output: str, pattern: str) -> str:
    found = [line.strip() for line in output.splitlines() if re.search(pattern, line)]
    return (found[-1] if found else "")[:400]


def _hint(s: F5TtsFinetuneSettings, what: str):
    def hint(output: str) -> StepFailure | None:
        if what.startswith("transcribing") and re.search(r"couldn't find it in the cached files|LocalEntryNotFoundError|"
                                              r"offline mode|outgoing traffic has been disabled", output):
            return StepFailure("engine_unavailable", f"{NAME}: the speech recogniser {ASR_MODEL} (F5-TTS's Whisper, "
                               "which writes the voice reference's transcript) is not in the Hugging Face cache of "
                               f"this box: download it there (huggingface-cli download {ASR_MODEL}) in F5-TTS's "
                               "environment", retryable=False)
        if re.search(r"LocalEntryNotFoundError|outgoing traffic has been disabled|cannot find the requested files",
                     output):
            return StepFailure("engine_unavailable", f"{NAME}: weights missing: F5-TTS's pretrained checkpoint "
                               f"({HUB_CHECKPOINTS[s.f5_tts_finetune_model]}) is not in the Hugging Face cache of this "
                               "box: download it there, or set F5_TTS_FINETUNE_PRETRAIN", retryable=False)
        if "pretrained vocab.txt not found" in output:
            return StepFailure("engine_unavailable", f"{NAME}: F5-TTS is not installed from its checkout (pip install "
                               "-e): " + _last_line(output, "vocab.txt not found"), retryable=False)
        if re.search(r"error: (unrecognized arguments|argument |the following arguments)", output):
            return StepFailure("engine_unavailable", f"{NAME}: F5-TTS's {what} refused its command line ("
                               + _last_line(output, r"error: ") + "): this F5-TTS version is not the one the engine "
                               "knows", retryable=False)
        if re.search(r"out of memory|OutOfMemoryError", output, re.I):
            return StepFailure("out_of_memory", f"{NAME}: F5-TTS ran out of GPU memory while {what} ("
                               + _last_line(output, r"out of memory|OutOfMemory")[:300]
                               + "): a smaller F5_TTS_FINETUNE_BATCH_SIZE, or a GPU with more free memory")
        return None

    return hint


def _failure(exc: BaseException, s: F5TtsFinetuneSettings, what: str, progress: _Progress | None,
             keeper: _Keeper | None) -> StepFailure:
    kept = (f"; the checkpoint of update {keeper.uploaded} is kept: a retry resumes from it"
            if keeper is not None and keeper.uploaded else "")
    at = f" at update {progress.update}/{progress.total}" if progress is not None and progress.total else ""
    if isinstance(exc, Cancelled):
        return StepFailure("cancelled", f"{NAME}: cancelled while {what}{at}{kept}")
    if isinstance(exc, ToolTimeout):
        return StepFailure("timeout", f"{NAME}: the fine-tune ran past F5_TTS_FINETUNE_TIMEOUT_S "
                           f"({s.f5_tts_finetune_timeout_s:g} s) while {what}{at} and was stopped{kept}")
    failure = run_failure(NAME, exc, hint=_hint(s, what))
    if failure.code == "engine_failed":
        failure = StepFailure("engine_failed", f"{NAME}: F5-TTS failed while {what}{at}: {failure.message}")
    if kept and failure.code in ("engine_failed", "out_of_memory"):
        failure = StepFailure(failure.code, failure.message + kept, retryable=failure.retryable)
    return failure


@engine("voice_trainer", NAME)
class F5TtsFinetune(Engine):
    """F5-TTS fine-tuned on the voice reference (its own Whisper writing the transcript), resumed from
    its last uploaded checkpoint when retried; the f5_tts tts engine speaks with the result."""

    # F5-TTS's code: MIT; the pretrained weights fine-tuned (and so the result): CC-BY-NC-4.0.
    # The voice profile is measured with praat-parselmouth (GPL-3.0).
    licence = "MIT AND CC-BY-NC-4.0 AND GPL-3.0-or-later"
    non_commercial = True
    device = "gpu"
    version = "1"
    settings_group = F5TtsFinetuneSettings

    problems = ProblemCache()

    @classmethod
    def problem(cls) -> str | None:
        try:
            s = load_group(F5TtsFinetuneSettings)
        except ConfigError as exc:
            return str(exc)
        found = _missing(s)
        if found:
            return "; ".join(found)
        python = s.f5_tts_python
        assert python
        return cls.problems.get(python, lambda: _layout(python, "likeness_probe")[1])

    @classmethod
    def settings_key(cls) -> str:
        try:
            s = load_group(F5TtsFinetuneSettings)
        except ConfigError:
            return ""
        pretrain = s.f5_tts_finetune_pretrain
        return ":".join(str(v) for v in (s.f5_tts_finetune_model, pretrain.name if pretrain else "",
                                         s.f5_tts_finetune_epochs, s.f5_tts_finetune_batch_size,
                                         s.f5_tts_finetune_learning_rate, s.f5_tts_finetune_warmup_updates,
                                         s.f5_tts_finetune_mixed_precision))

    def train(self, ctx: TaskContext) -> StepOutput:
        s = step_settings(F5TtsFinetuneSettings)
        problems = _missing(s)
        if problems:
            raise StepFailure("engine_unavailable", f"the {NAME} voice trainer cannot run: " + "; ".join(problems),
                              retryable=False)
        assert s.f5_tts_python
        deadline = time.monotonic() + s.f5_tts_finetune_timeout_s
        dataset_name = "likeness_" + hashlib.sha256(f"{ctx.job_id}\x1f{ctx.step}".encode()).hexdigest()[:16]
        layout, problem = _layout(s.f5_tts_python, dataset_name)
        if layout is None:
            raise StepFailure("engine_unavailable", f"the {NAME} voice trainer cannot run: {problem}", retryable=False)

        ctx.progress(0.0, "measuring the voice")
        measured = DatasetVoiceTrainer().train(ctx)  # voice_profile.json, as the other voice trainers make it
        ref = ctx.input("voice_reference")
        folder = ctx.path("f5")  # a fresh folder: what a failed try left here is not trusted
        shutil.rmtree(folder, ignore_errors=True)
        (folder / "wavs").mkdir(parents=True)
        clip = folder / "wavs" / "segment_0.wav"
        ctx.storage.get_file(ref.key, clip)
        ckpts, data = Path(layout["ckpts"]), Path(layout["data"])
        env = dict(os.environ, PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1",
                   ACCELERATE_MIXED_PRECISION=s.f5_tts_finetune_mixed_precision)
        try:
            for path in (ckpts, data):
                shutil.rmtree(path, ignore_errors=True)
            return self._train(ctx, s, env, deadline, folder, clip, ckpts, data, dataset_name, ref, measured)
        finally:
            for path in (ckpts, data):  # F5-TTS's checkout: what this run put there
                shutil.rmtree(path, ignore_errors=True)

    def _run(self, argv: list[str], s: F5TtsFinetuneSettings, what: str, ctx: TaskContext, deadline: float,
             env: dict[str, str], cwd: Path, on_line=None, progress: _Progress | None = None,
             keeper: _Keeper | None = None) -> list[str]:
        remaining = deadline - time.monotonic()
        try:
            if remaining <= 0:
                raise ToolTimeout("no time was left")
            return stream(argv, remaining, ctx.cancelled, on_line=on_line, cwd=cwd, env=env)
        except (Cancelled, ToolTimeout, ToolExited) as exc:
            if keeper is not None:
                keeper.stop(final=True)  # what the next attempt resumes from
            raise _failure(exc, s, what, progress, keeper) from None
        except BaseException:
            if keeper is not None:
                keeper.stop(final=True)
            raise

    def _train(self, ctx: TaskContext, s: F5TtsFinetuneSettings, env: dict[str, str], deadline: float, folder: Path,
               clip: Path, ckpts: Path, data: Path, dataset_name: str, ref: Any, measured: StepOutput) -> StepOutput:
        assert s.f5_tts_python
        python = s.f5_tts_python

        # The transcript.
        text = " ".join(str(ref.outputs.get("voiceTranscript") or "").split())
        transcribed = not text
        if transcribed:
            ctx.progress(0.03, f"F5-TTS: transcribing the voice reference ({ASR_MODEL})")
            lines = self._run([python, "-c", _TRANSCRIBE, str(clip), s.f5_tts_finetune_asr_language or ""], s,
                              "transcribing the voice reference", ctx, deadline, env, folder)
            said = [line[len(TRANSCRIPT_MARK):] for line in lines if line.startswith(TRANSCRIPT_MARK)]
            if not said:
                raise StepFailure("engine_failed", f"{NAME}: F5-TTS's transcribe printed no transcript: "
                                  + " | ".join(lines[-5:])[-500:])
            text = " ".join(str(json.loads(said[-1])).split())
            if len(text) < 3:
                raise StepFailure("bad_input", f"{NAME}: F5-TTS's speech recogniser heard no words in the voice "
                                  f"reference ({text!r}): upload a voice sample where the person speaks",
                                  retryable=False)

        # The dataset.
        ctx.progress(0.08, "F5-TTS: preparing the dataset")
        metadata = folder / "metadata.csv"
        with metadata.open("w", encoding="utf-8", newline="") as f:
            w = csv.writer(f, delimiter="|")
            w.writerow(["audio_file", "text"])
            w.writerow([str(clip.resolve()), text])
        self._run([python, "-m", "f5_tts.train.datasets.prepare_csv_wavs", str(metadata), str(data)], s,
                  "preparing the dataset", ctx, deadline, env, folder)
        if not (data / "raw.arrow").is_file():
            raise StepFailure("engine_failed", f"{NAME}: F5-TTS's prepare_csv_wavs wrote no raw.arrow in {data}")

        # The fine-tune, resumed when a checkpoint of this step is in storage.
        ckpts.mkdir(parents=True, exist_ok=True)
        fingerprint = _fingerprint(s, file_sha256(clip), text)
        resumed, resume_note, saved_key = _resume_point(ctx, fingerprint, ckpts)
        keeper = _Keeper(ctx, ckpts, folder / "upload", fingerprint, resumed, saved_key)
        progress = _Progress(ctx, keeper, resumed)
        progress.report(0.1, f"F5-TTS: resuming from update {resumed}" if resumed else "F5-TTS: fine-tuning")
        every = s.f5_tts_finetune_save_per_updates
        argv = [python, "-m", "f5_tts.train.finetune_cli", "--exp_name", s.f5_tts_finetune_model,
                "--dataset_name", dataset_name, "--finetune", "--tokenizer", "pinyin",
                "--epochs", str(s.f5_tts_finetune_epochs), "--learning_rate", f"{s.f5_tts_finetune_learning_rate:g}",
                "--batch_size_per_gpu", str(s.f5_tts_finetune_batch_size), "--batch_size_type", "frame",
                "--num_warmup_updates", str(s.f5_tts_finetune_warmup_updates),
                "--save_per_updates", str(every), "--last_per_updates", str(every), "--keep_last_n_checkpoints", "0"]
        if s.f5_tts_finetune_pretrain is not None:
            argv += ["--pretrain", str(s.f5_tts_finetune_pretrain.resolve())]
        keeper.start()
        self._run(argv, s, "fine-tuning", ctx, deadline, env, folder, on_line=progress.line, progress=progress,
                  keeper=keeper)
        keeper.stop(final=False)

        # The result.
        last = ckpts / LAST
        updates = _checkpoint_update(last) if last.is_file() else None
        if updates is None:
            raise StepFailure("engine_failed", f"{NAME}: F5-TTS's fine-tune ended without a whole {LAST} in {ckpts}")
        progress.report(0.96, "F5-TTS: uploading the fine-tuned checkpoint")
        meta = {"engine": NAME, "model": s.f5_tts_finetune_model, "updates": updates,
                "licence": "CC-BY-NC-4.0 (derived from F5-TTS's pretrained weights)"}
        ckpt = ctx.upload("f5_tts_model.pt", last, "voice_checkpoint", "application/octet-stream", meta)
        notes = [f"fine-tuned from {s.f5_tts_finetune_pretrain.name if s.f5_tts_finetune_pretrain else 'the hub'}'s "
                 f"{s.f5_tts_finetune_model} on the voice reference ({updates} updates)",
                 f"transcript by {ASR_MODEL}" if transcribed else "transcript given with the voice reference"]
        if resume_note:
            notes.append(resume_note)
        doc: dict[str, Any] = {
            "engine": NAME, "trained": True, "ckptKey": ckpt["key"], "referenceText": text, "referenceKey": ref.key,
            "referenceDurationSec": ref.outputs.get("voiceDurationSec"), "model": s.f5_tts_finetune_model,
            "updates": updates, "epochs": s.f5_tts_finetune_epochs, "resumedFromUpdate": resumed or None,
            "finalLoss": round(progress.loss, 6) if progress.loss is not None else None,
            "transcribedBy": ASR_MODEL if transcribed else None, "usableBy": [NAME], "notes": notes,
        }
        model = ctx.upload_json("voice_model.json", doc, "voice_model")
        keeper.clear()
        ctx.progress(1.0, f"F5-TTS: fine-tuned ({updates} updates)")
        outputs = {**measured.outputs, "voiceModel": {
            "engine": NAME, "trained": True, "ckptKey": ckpt["key"], "referenceText": text, "updates": updates,
            "resumedFromUpdate": resumed or None, **({"resumeNote": resume_note} if resume_note else {})}}
        return StepOutput([*measured.artifacts, ckpt, model], outputs)
