"""``f5_tts`` tts engine: the narration spoken in the profile's voice by F5-TTS (zero-shot voice
cloning from the voice reference), through its Python API in a resident process; word and
phoneme timings by aligning what it said (``media.align``: F5-TTS gives none).

F5-TTS's API (src/f5_tts/api.py of SWivid/F5-TTS): ``F5TTS(model="F5TTS_v1_Base", ckpt_file="",
vocab_file="", ode_method="euler", use_ema=True, vocoder_local_path=None, device=None,
hf_cache_dir=None)`` loads the model (the checkpoint from the Hugging Face cache when
``ckpt_file`` is empty); ``infer(ref_file, ref_text, gen_text, …, nfe_step=32, speed=1.0,
file_wave=None, seed=None)`` returns ``(wav, sample_rate, spectrogram)`` at 24 kHz. It takes the
reference clipped to 12 s, and transcribes it with Whisper when ``ref_text`` is empty.

The resident process: ``f5_tts_host.py`` (beside this file), run with the tool's Python
(F5_TTS_PYTHON, the environment F5-TTS is installed in), started on the first step of this worker
process and kept: the model loads once (engines/gpu/resident.py; its JSON lines: see the host). A
host that died is started again by the next request; a cancel or the time limit (F5_TTS_TIMEOUT_S,
the whole step) kills it (its process group), and the next request starts a fresh one; so does an
out-of-memory (a fresh process gets its VRAM back whole). ``release()`` (another engine needs the
card) stops it.

F5-TTS is trained on clips of at most ~30 s (reference and generated speech together), so the
narration is cut into chunks of whole sentences of at most ``CHUNK_CHARS`` characters (~25 s of
speech at ~14 characters a second; F5-TTS batches within a chunk by itself), each generated with
its own request (progress per batch, a cancel noticed at once), joined with short pauses at one
speech level (RMS over the active frames), and aligned chunk by chunk.

The reference transcript: the profile's voice model (``voiceModelKey``: a JSON ``{"engine":
"f5_tts", "referenceText": …, "ckptKey"?: a fine-tuned checkpoint}``) when it has one; otherwise
F5-TTS transcribes the reference itself (its Whisper must then be in its Hugging Face cache).
A fine-tuned checkpoint restarts the host with it (the host runs one model at a time).

Failures: F5_TTS_PYTHON unset or missing → engine_unavailable; the checkpoint missing (a file, or
not in the Hugging Face cache of an offline box) → engine_unavailable, not retried; CUDA out of
memory → out_of_memory; the host crashing → engine_failed; past F5_TTS_TIMEOUT_S → timeout.

Licence: F5-TTS's code is MIT; its released weights (F5TTS_v1_Base…) are CC-BY-NC-4.0, trained on
Emilia (non-commercial): the engine is advertised as non-commercial.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from pydantic import BaseModel, ConfigDict, Field

from ...config import ConfigError, load_group
from ...errors import StepFailure
from ...media.errors import Cancelled, ToolFailed, ToolTimeout
from ...media.proc import ToolExited
from ..base import Engine, StepOutput, TaskContext, engine
from ..builtin.speech import publish_speech
from ..health import ProblemCache
from .resident import Host, HostDied, HostError, Resident
from .tooling import run_failure

NAME = "f5_tts"
HOST_SCRIPT = Path(__file__).with_name("f5_tts_host.py")
CHARS_PER_S = 14.0  # English narration, F5-TTS at speed 1
CHUNK_S = 25.0
CHUNK_CHARS = int(CHARS_PER_S * CHUNK_S)
PAUSE_S = 0.3
_HUB_MISSING = "cannot find the requested files in the local cache"


class F5TtsSettings(BaseModel):
    """F5_TTS_*: all optional; the engine is unhealthy until F5_TTS_PYTHON names the Python that
    has f5-tts installed."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    f5_tts_python: str | None = None  # the Python of F5-TTS's environment (pip install f5-tts)
    f5_tts_model: str = Field("F5TTS_v1_Base", pattern=r"^[A-Za-z0-9_.\-]{1,64}$")  # F5TTS(model=…)
    f5_tts_ckpt_file: Path | None = None  # F5TTS(ckpt_file=…); unset: the Hugging Face cache's
    f5_tts_vocab_file: Path | None = None  # F5TTS(vocab_file=…); unset: the package's
    f5_tts_vocoder_dir: Path | None = None  # F5TTS(vocoder_local_path=…); unset: the Hugging Face cache's
    f5_tts_hf_cache_dir: Path | None = None  # F5TTS(hf_cache_dir=…)
    f5_tts_device: str | None = None  # F5TTS(device=…); unset: cuda when there is one
    f5_tts_nfe_step: int = Field(32, ge=4, le=128)  # infer(nfe_step=…): flow steps, quality against time
    f5_tts_timeout_s: float = Field(900.0, gt=0)  # the whole step, loading the model included


def _settings() -> F5TtsSettings:
    try:
        return load_group(F5TtsSettings)
    except ConfigError as exc:
        raise StepFailure("bad_input", str(exc)) from None


def _python_problem(s: F5TtsSettings) -> str | None:
    if not s.f5_tts_python:
        return "F5_TTS_PYTHON is not set (the Python of F5-TTS's environment)"
    import shutil

    if shutil.which(s.f5_tts_python) is None:
        return f"F5_TTS_PYTHON ({s.f5_tts_python}) does not exist or is not executable"
    for var, path in (("F5_TTS_CKPT_FILE", s.f5_tts_ckpt_file), ("F5_TTS_VOCAB_FILE", s.f5_tts_vocab_file),
                      ("F5_TTS_VOCODER_DIR", s.f5_tts_vocoder_dir)):
        if path is not None and not path.exists():
            return f"weights missing: {var} ({path}) does not exist"
    return None


def seed_for(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()[:4], "big") & 0x7FFFFFFF


def _hint(output: str) -> StepFailure | None:
    if _HUB_MISSING in output or "LocalEntryNotFoundError" in output:
        return StepFailure("engine_unavailable", f"{NAME}: weights missing: F5-TTS's checkpoint or vocoder is not in "
                           "its Hugging Face cache and the hub cannot be reached; download them on the box, or set "
                           "F5_TTS_CKPT_FILE / F5_TTS_VOCODER_DIR", retryable=False)
    if "No such file or directory" in output and "configs/" in output and ".yaml" in output:
        return StepFailure("bad_input", f"{NAME}: F5-TTS has no model named by F5_TTS_MODEL", retryable=False)
    return None


@engine("tts", NAME)
class F5Tts(Engine):
    """The narration in the profile's voice by F5-TTS (zero-shot cloning of the voice reference),
    in a resident process; timings by alignment."""

    # F5-TTS's code: MIT; its released weights: CC-BY-NC-4.0 (non-commercial). The aligner runs
    # piper-tts (GPL-3.0) with the en_US-joe-medium voice (MIT); ffmpeg decodes.
    licence = "MIT AND CC-BY-NC-4.0 AND GPL-3.0-or-later"
    non_commercial = True
    device = "gpu"
    version = "1"
    settings_group = F5TtsSettings
    tools = ("ffmpeg",)

    _resident = Resident("F5-TTS", "F5_TTS_TIMEOUT_S")  # its host: one per worker process
    problems = ProblemCache()

    @classmethod
    def settings_key(cls) -> str:
        try:
            s = load_group(F5TtsSettings)
        except ConfigError:
            return ""
        return "|".join([s.f5_tts_model, str(s.f5_tts_ckpt_file or ""), str(s.f5_tts_vocab_file or ""),
                         str(s.f5_tts_nfe_step)])

    # Health -----------------------------------------------------------------------------------
    @classmethod
    def problem(cls) -> str | None:
        tool_missing = super().problem()
        if tool_missing:
            return tool_missing
        try:
            s = load_group(F5TtsSettings)
        except ConfigError as exc:
            return str(exc)
        answer = _python_problem(s)
        if answer:
            return answer
        assert s.f5_tts_python
        python = s.f5_tts_python
        return cls.problems.get(python, lambda: cls._check_python(python))

    @staticmethod
    def _check_python(python: str) -> str | None:
        """Whether that Python can find f5_tts.api (found, not imported: torch takes seconds)."""
        code = ("import importlib.util as u,sys; "
                "sys.exit(0 if u.find_spec('f5_tts') and u.find_spec('f5_tts.api') else 3)")
        try:
            res = subprocess.run([python, "-c", code], capture_output=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"F5_TTS_PYTHON ({python}) does not run: {exc}"
        if res.returncode == 3:
            return f"f5-tts is not installed in F5_TTS_PYTHON ({python}): no module f5_tts.api"
        if res.returncode != 0:
            return f"F5_TTS_PYTHON ({python}) failed: {res.stderr.decode(errors='replace').strip()[-300:]}"
        return None

    @classmethod
    def release(cls) -> None:
        """Stop the host: its model leaves the card."""
        cls._resident.release()

    # The host ---------------------------------------------------------------------------------
    @classmethod
    def _ensure_host(cls, s: F5TtsSettings, ckpt: Path | None, deadline: float, cancelled) -> Host:
        assert s.f5_tts_python
        cmd = [s.f5_tts_python, str(HOST_SCRIPT), "--model", s.f5_tts_model]
        ckpt = ckpt or s.f5_tts_ckpt_file
        for flag, value in (("--ckpt-file", ckpt), ("--vocab-file", s.f5_tts_vocab_file),
                            ("--vocoder-local-path", s.f5_tts_vocoder_dir), ("--hf-cache-dir", s.f5_tts_hf_cache_dir),
                            ("--device", s.f5_tts_device)):
            if value:
                cmd += [flag, str(value)]
        return cls._resident.ensure(cmd, deadline, cancelled)

    # Synthesize -------------------------------------------------------------------------------
    def synthesize(self, ctx: TaskContext) -> StepOutput:
        s = _settings()
        unset = _python_problem(s)
        if unset:
            raise StepFailure("engine_unavailable", f"the {NAME} engine cannot run: {unset}", retryable=False)
        try:
            return self._synthesize(ctx, s)
        except (Cancelled, ToolTimeout, ToolExited) as exc:
            raise run_failure(NAME, exc, hint=_hint) from None

    def _synthesize(self, ctx: TaskContext, s: F5TtsSettings) -> StepOutput:
        from ...media import align

        narration = " ".join(str(ctx.payload["script"]["narration"] or "").split())
        chunks = align.split_sentences(narration, CHUNK_CHARS)
        if not chunks:
            raise StepFailure("bad_input", "the narration is empty: write at least one word")
        deadline = time.monotonic() + s.f5_tts_timeout_s
        profile = ctx.payload["profile"]
        ref = ctx.fetch(profile["voiceReferenceKey"], "voice_reference.wav")
        model = self._voice_model(ctx, profile)
        ckpt = self._checkpoint(ctx, model)

        reached = [0.0]

        def report(fraction: float, message: str) -> None:
            reached[0] = max(reached[0], fraction)
            ctx.progress(reached[0], message)

        parts: list[np.ndarray] = []
        cls = type(self)
        with cls._resident.turn(deadline, ctx.cancelled):
            report(0.0, "F5-TTS: ready" if cls._resident.warm() else "F5-TTS: starting")
            host = cls._ensure_host(s, ckpt, deadline, ctx.cancelled)
            sample_rate = int(host.ready.get("sampleRate") or 24000)
            for i, text in enumerate(chunks):
                report(0.05 + 0.75 * i / len(chunks), f"F5-TTS: sentence {i + 1}/{len(chunks)}")
                wav = ctx.path(f"out/chunks/{i:03d}.wav")

                def on_progress(n: int, total: int, i: int = i) -> None:
                    report(0.05 + 0.75 * (i + n / max(1, total)) / len(chunks),
                           f"F5-TTS: sentence {i + 1}/{len(chunks)}, batch {n}/{total}")

                request = {"refFile": str(ref), "refText": (model or {}).get("referenceText") or "",
                           "genText": text, "fileWave": str(wav), "seed": seed_for(narration, i),
                           "nfeStep": s.f5_tts_nfe_step, "speed": 1.0}
                try:
                    done = host.request(request, deadline, ctx.cancelled, f"speaking sentence {i + 1}/{len(chunks)}",
                                        on_progress=on_progress)
                except HostError as exc:
                    raise self._request_failure(exc, f"on sentence {i + 1}/{len(chunks)}") from None
                x, sr = sf.read(done["fileWave"], dtype="float32", always_2d=True)
                mono = x.mean(axis=1)
                if sr != sample_rate:
                    mono = align.resample(mono, sr, sample_rate, cancelled=ctx.cancelled)
                parts.append(mono)
            sr = sample_rate
        report(0.8, f"F5-TTS: {len(chunks)} sentences spoken")

        try:
            track, placed = align.join_speech(parts, sr, PAUSE_S)
            out = ctx.path("out/speech.wav")
            sf.write(str(out), track, sr, subtype="PCM_16")
            pieces = []
            for i, ((offset, y), text) in enumerate(zip(placed, chunks, strict=True)):
                if ctx.cancelled():
                    raise Cancelled("cancelled while aligning the words")
                report(0.8 + 0.18 * i / len(chunks), f"aligning sentence {i + 1}/{len(chunks)}")
                t = align.align_audio(align.resample(y, sr, align.SR, cancelled=ctx.cancelled), text,
                                      cancelled=ctx.cancelled)
                pieces.append(align.shift_timings(t, offset))
        except (ToolFailed, ValueError) as exc:
            if isinstance(exc, ToolTimeout):
                raise
            raise StepFailure("engine_failed", f"{NAME}: {exc}") from None
        timings = align.merge_timings(pieces)
        notes = ["zero-shot from the voice reference" if not ckpt else "the profile's fine-tuned checkpoint"]
        if not (model or {}).get("referenceText"):
            notes.append("no transcript of the voice reference: F5-TTS transcribed it")
        result = publish_speech(ctx, out, {**timings, "voice": f"F5-TTS {s.f5_tts_model}", "shaping": {"notes": notes},
                                     "engine": NAME, "sampleRate": sr})
        report(1.0, "F5-TTS: done")
        return result

    # Steps of synthesize ----------------------------------------------------------------------
    @staticmethod
    def _voice_model(ctx: TaskContext, profile: dict[str, Any]) -> dict[str, Any] | None:
        key = profile.get("voiceModelKey")
        if not key:
            return None
        doc = ctx.storage.get_json_or_none(key)
        if not isinstance(doc, dict) or doc.get("engine") != NAME or doc.get("trained") is False:
            return None
        return doc

    @staticmethod
    def _checkpoint(ctx: TaskContext, model: dict[str, Any] | None) -> Path | None:
        """The profile's fine-tuned checkpoint, kept outside the step's folder (the host keeps
        using it after the step) under a name from its key."""
        key = (model or {}).get("ckptKey")
        if not key:
            return None
        suffix = ".safetensors" if str(key).endswith(".safetensors") else ".pt"
        dest = Path(tempfile.gettempdir()) / "likeness-f5" / f"{hashlib.sha256(str(key).encode()).hexdigest()[:20]}{suffix}"
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
            try:
                ctx.storage.get_file(str(key), tmp)
                tmp.replace(dest)
            finally:
                tmp.unlink(missing_ok=True)
        return dest

    @classmethod
    def _request_failure(cls, exc: HostError, what: str) -> StepFailure:
        text = f"{exc.type}: {exc.message}\n{exc.traceback}"
        failure = run_failure(NAME, HostDied(str(exc), 1, text), hint=_hint)
        if failure.code == "out_of_memory":
            cls._resident.drop()  # a fresh process gets its VRAM back whole
            return StepFailure("out_of_memory", f"{NAME} ran out of GPU memory {what}: {exc.message[:300]} "
                               "(the host was restarted)", retryable=True)
        if failure.code == "engine_failed":
            return StepFailure("engine_failed", f"{NAME}: F5-TTS failed {what}: {exc.type}: {exc.message[:500]}")
        return failure

