"""``gpt_sovits`` tts engine: the narration spoken in the profile's voice by a GPT-SoVITS
``api_v2.py`` server (GPT_SOVITS_URL), word and phoneme timings by aligning what it said
(``media.align``: GPT-SoVITS gives none).

The server's interface (api_v2.py of RVC-Boss/GPT-SoVITS):
- ``POST /tts`` with a JSON body (text, text_lang, ref_audio_path, prompt_text, prompt_lang,
  text_split_method, batch_size, media_type, streaming_mode, seed, …): a WAV (int16; 32 kHz for
  a v2 model) or 400 ``{"message": …}`` for a bad parameter, 400 ``{"message": "tts failed",
  "Exception": …}`` when the pipeline raised before inference (the reference missing or not 3-10
  s, a CUDA out of memory while loading it). An exception *during* inference is printed on the
  server's console and answered 200 with one second of silence at 16 kHz (TTS.run yields that
  placeholder first); the engine recognises it.
- ``GET /set_gpt_weights?weights_path=`` and ``GET /set_sovits_weights?weights_path=``: 200
  ``{"message": "success"}`` or 400 ``{"message": "change … weight failed", "Exception": …}``.
  The weights are the server's, for every client: each step sets the ones it needs.
- ``GET /control`` without a command answers 400 ``{"message": "command is required"}``: the
  health check (it changes nothing).

``ref_audio_path`` (and a weights path) is a path *on the server*: the engine writes the profile's
voice reference (cut to at most 9.5 s at a quiet point: GPT-SoVITS refuses references outside
3-10 s) and the profile's trained weights into GPT_SOVITS_SHARED_DIR, a folder mounted in both the
worker and the GPT-SoVITS container, which the server sees as GPT_SOVITS_SERVER_DIR (default: the
same path). Files are named by their content (reference) or storage key (weights), so a reference
stays in the server's prompt cache from one step to the next.

Weights: the profile's voice model (``voiceModelKey``: a JSON ``{"engine": "gpt_sovits",
"gptWeightsKey": "….ckpt", "sovitsWeightsKey": "….pth", "referenceText"?}`` written by a
GPT-SoVITS voice trainer) when it has one, else GPT_SOVITS_GPT_WEIGHTS / GPT_SOVITS_SOVITS_WEIGHTS
(paths on the server) when set, else whatever the server has loaded now.

The narration goes sentence by sentence (chunks under ``CHUNK_CHARS``): progress per chunk, and a
cancel or the time limit (GPT_SOVITS_TIMEOUT_S, the whole step) is noticed between chunks and
while one is waited for (the request is dropped; the server ends the sentence it is on, it has no
interrupt). The chunks are joined with short pauses at one speech level, and each is aligned on
its own.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import io
import json
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit

import numpy as np
import soundfile as sf
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ...config import ConfigError, load_group
from ...errors import StepFailure
from ...media.errors import BadInput, Cancelled, ToolFailed
from ..base import Engine, StepOutput, TaskContext, engine
from ..builtin.speech import publish_speech
from ..health import ProblemCache
from .tooling import step_settings

NAME = "gpt_sovits"
CHUNK_CHARS = 250  # characters per /tts request: a sentence or a few (about 15 s of speech)
PAUSE_S = 0.3  # between chunks (GPT-SoVITS's own fragment_interval between the fragments of one)
REF_MAX_S = 9.5  # GPT-SoVITS refuses references outside 3-10 s (measured at 16 kHz)
REF_MIN_S = 3.0
PROBLEM_TIMEOUT_S = 3.0
POLL_S = 0.1
_OOM = re.compile(r"out of memory|OutOfMemoryError|CUBLAS_STATUS_ALLOC_FAILED", re.I)

T = TypeVar("T")


class GptSovitsSettings(BaseModel):
    """GPT_SOVITS_*: all optional; the engine is unhealthy until GPT_SOVITS_URL and
    GPT_SOVITS_SHARED_DIR are set."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    gpt_sovits_url: str | None = None  # the api_v2.py server, e.g. http://gpt-sovits:9880
    gpt_sovits_shared_dir: Path | None = None  # a folder mounted in the worker and the server
    gpt_sovits_server_dir: str | None = None  # that folder as the server sees it (default: the same path)
    gpt_sovits_text_lang: str = Field("en", pattern=r"^[a-z_]{2,10}$")  # the narration's language
    gpt_sovits_prompt_lang: str = Field("en", pattern=r"^[a-z_]{2,10}$")  # the voice reference's language
    gpt_sovits_gpt_weights: str | None = None  # server path of the GPT weights for profiles without their own
    gpt_sovits_sovits_weights: str | None = None  # server path of the SoVITS weights, likewise
    gpt_sovits_timeout_s: float = Field(600.0, gt=0)  # the whole step
    gpt_sovits_request_timeout_s: float = Field(10.0, gt=0)  # connecting, and the small requests

    @field_validator("gpt_sovits_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not v.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return v.rstrip("/")

    @property
    def server_dir(self) -> str:
        return (self.gpt_sovits_server_dir or str(self.gpt_sovits_shared_dir or "")).rstrip("/")


def _missing_setting(s: GptSovitsSettings) -> str | None:
    if not s.gpt_sovits_url:
        return "GPT_SOVITS_URL is not set (the GPT-SoVITS api_v2.py server)"
    if s.gpt_sovits_shared_dir is None:
        return ("GPT_SOVITS_SHARED_DIR is not set (a folder mounted in both the worker and the GPT-SoVITS server, "
                "for the voice reference)")
    if not s.gpt_sovits_shared_dir.is_dir():
        return f"GPT_SOVITS_SHARED_DIR ({s.gpt_sovits_shared_dir}) does not exist"
    return None


def seed_for(*parts: object) -> int:
    """The same chunk of the same narration gets the same seed (a re-run agrees with itself)."""
    return int.from_bytes(hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()[:4], "big") & 0x7FFFFFFF


# The reference ---------------------------------------------------------------------------------
def cut_reference(x: np.ndarray, sr: int, max_s: float = REF_MAX_S) -> np.ndarray:
    """``x`` cut to at most ``max_s``: at the quietest 20 ms in its last 30 %, not mid-word."""
    if len(x) <= int(max_s * sr):
        return x
    n = int(0.02 * sr)
    lo, hi = int(0.7 * max_s * sr) // n, int(max_s * sr) // n
    frames = x[: hi * n].reshape(hi, n)
    energy = np.mean(frames[lo:].astype(np.float64) ** 2, axis=1)
    return x[: (lo + int(np.argmin(energy)) + 1) * n]


def place_reference(src: Path, shared: Path, server_dir: str) -> tuple[str, float]:
    """The voice reference as a 16-bit WAV in the shared folder (named by content); its server path
    and duration. BadInput when it is shorter than GPT-SoVITS accepts."""
    try:
        x, sr = sf.read(str(src), dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError) as exc:
        raise BadInput(f"the profile's voice reference cannot be read: {exc}") from None
    x = cut_reference(x.mean(axis=1), sr)
    seconds = len(x) / sr
    if seconds < REF_MIN_S + 0.1:
        raise BadInput(f"the profile's voice reference is {seconds:.1f} s long; GPT-SoVITS needs 3 to 10 s: "
                       "train the profile again with a longer voice sample")
    buf = io.BytesIO()
    sf.write(buf, x, sr, format="WAV", subtype="PCM_16")
    data = buf.getvalue()
    name = f"likeness/refs/{hashlib.sha256(data).hexdigest()[:20]}.wav"
    _write_once(shared / name, lambda tmp: tmp.write_bytes(data))
    return f"{server_dir}/{name}", seconds


def _write_once(dest: Path, write: Callable[[Path], Any]) -> None:
    """Write ``dest`` unless it exists (its name says its content); atomically (a temp + rename)."""
    if dest.exists():
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{threading.get_ident()}.tmp")
    try:
        write(tmp)
        tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)


# The server ------------------------------------------------------------------------------------
class GptSovitsError(Exception):
    """A 4xx/5xx of the server: api_v2's ``{"message", "Exception"?}`` (or FastAPI's 422 detail)."""

    def __init__(self, status: int, body: Any) -> None:
        if isinstance(body, dict) and "detail" in body and "message" not in body:  # FastAPI's 422
            body = {"message": f"request refused: {body['detail']}"}
        self.status = status
        self.body = body if isinstance(body, dict) else {"message": str(body)[:500]}
        self.message = str(self.body.get("message") or body)
        self.exception = str(self.body.get("Exception") or "")
        super().__init__(f"{self.message}: {self.exception}" if self.exception else self.message)


class Unreachable(Exception):
    """No connection to the server."""


class Dropped(Exception):
    """The server closed the connection without an answer."""


@dataclass
class Reply:
    status: int
    content_type: str
    body: bytes

    def error(self) -> GptSovitsError:
        try:
            doc: Any = json.loads(self.body)
        except ValueError:
            doc = self.body.decode("utf-8", "replace").strip() or f"HTTP {self.status}"
        return GptSovitsError(self.status, doc)


class Server:
    """api_v2.py over http.client, one connection per request, so that a cancel can drop the one
    in flight (``abort``: the socket is shut down, the server sees the client go)."""

    def __init__(self, url: str, connect_timeout_s: float) -> None:
        parts = urlsplit(url)
        self.url = url
        self.https = parts.scheme == "https"
        self.host = parts.hostname or "localhost"
        self.port = parts.port or (443 if self.https else 80)
        self.base = parts.path.rstrip("/")
        self.connect_timeout_s = connect_timeout_s
        self._lock = threading.Lock()
        self._conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, *, timeout_s: float, params: dict[str, str] | None = None,
                body: dict[str, Any] | None = None) -> Reply:
        cls = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
        conn = cls(self.host, self.port, timeout=self.connect_timeout_s)
        with self._lock:
            self._conn = conn
        try:
            try:
                conn.connect()
            except OSError as exc:
                raise Unreachable(f"{self.url}: {exc}") from None
            assert conn.sock is not None
            conn.sock.settimeout(timeout_s)
            target = self.base + path + ("?" + urlencode(params) if params else "")
            data = json.dumps(body).encode() if body is not None else None
            headers = {"Content-Type": "application/json"} if data is not None else {}
            try:
                conn.request(method, target, body=data, headers=headers)
                resp = conn.getresponse()
                content = resp.read()
            except TimeoutError:
                raise
            except (http.client.HTTPException, OSError) as exc:
                raise Dropped(f"{type(exc).__name__}: {exc}") from None
            return Reply(resp.status, resp.getheader("content-type") or "", content)
        finally:
            with self._lock:
                self._conn = None
            conn.close()

    def abort(self) -> None:
        with self._lock:
            conn = self._conn
        sock = conn.sock if conn is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class Waiter:
    """Runs one blocking request in a thread while watching the step's cancel flag and deadline;
    a cancel or the deadline drops the request (the server has no interrupt)."""

    def __init__(self, ctx: TaskContext, deadline: float, timeout_s: float) -> None:
        self.ctx, self.deadline, self.timeout_s = ctx, deadline, timeout_s

    def check(self, doing: str) -> None:
        if self.ctx.cancelled():
            raise StepFailure("cancelled", f"{NAME}: cancelled while {doing}")
        if time.monotonic() > self.deadline:
            raise StepFailure("timeout", f"{NAME}: GPT-SoVITS did not finish in {self.timeout_s:g} s "
                              f"(GPT_SOVITS_TIMEOUT_S) while {doing}; the request was dropped")

    def run(self, doing: str, fn: Callable[[], T], abort: Callable[[], None]) -> T:
        self.check(doing)
        box: dict[str, Any] = {}

        def call() -> None:
            try:
                box["value"] = fn()
            except BaseException as exc:  # noqa: BLE001 - handed to the step's thread
                box["error"] = exc

        t = threading.Thread(target=call, name="gpt-sovits-request", daemon=True)
        t.start()
        while t.is_alive():
            t.join(POLL_S)
            if t.is_alive():
                try:
                    self.check(doing)
                except StepFailure:
                    abort()
                    raise
        if "error" in box:
            if isinstance(box["error"], TimeoutError):
                self.deadline = min(self.deadline, time.monotonic())
                self.check(doing)
            raise box["error"]
        return box["value"]

    def remaining(self) -> float:
        return max(0.1, self.deadline - time.monotonic())


def _failure_of(exc: GptSovitsError, what: str, s: GptSovitsSettings, ref_path: str) -> StepFailure:
    """The step failure for a 400 of /tts (check_params' messages, or "tts failed")."""
    text = f"{exc.message} {exc.exception}"
    if _OOM.search(text):
        return StepFailure("out_of_memory", f"{NAME}: GPT-SoVITS ran out of GPU memory {what}: {exc.exception}",
                           retryable=True)
    if exc.message != "tts failed":  # check_params: our request or our settings
        hint = ""
        if "text_lang" in exc.message:
            hint = " (GPT_SOVITS_TEXT_LANG)"
        elif "prompt_lang" in exc.message:
            hint = " (GPT_SOVITS_PROMPT_LANG)"
        return StepFailure("bad_input", f"{NAME}: GPT-SoVITS refused the request {what}: {exc.message}{hint}",
                           retryable=False)
    if "not exists" in exc.exception:
        return StepFailure("engine_unavailable",
                           f"{NAME}: the GPT-SoVITS server cannot read the voice reference at {ref_path}: "
                           f"GPT_SOVITS_SHARED_DIR ({s.gpt_sovits_shared_dir}) must be mounted in the server as "
                           f"GPT_SOVITS_SERVER_DIR ({s.server_dir})", retryable=False)
    if "3~10" in exc.exception:
        return StepFailure("bad_input", f"{NAME}: GPT-SoVITS refused the voice reference (it must be 3 to 10 s "
                           f"long): {exc.exception}", retryable=False)
    if "prompt_text cannot be empty" in exc.exception:
        return StepFailure("bad_input", f"{NAME}: this GPT-SoVITS model (v3/v4) needs the transcript of the voice "
                           "reference (referenceText in the profile's voice model); use a v2 model or add it",
                           retryable=False)
    return StepFailure("engine_failed", f"{NAME}: GPT-SoVITS failed {what}: {exc.exception or exc.message}")


def _is_placeholder(sr: int, x: np.ndarray) -> bool:
    """TTS.run's answer to an exception during inference: 1 s of zeros at 16 kHz (or any silence)."""
    return x.size == 0 or not np.any(x)


@engine("tts", NAME)
class GptSovitsTts(Engine):
    """The narration in the profile's voice by a GPT-SoVITS api_v2.py server (zero-shot from the
    voice reference, or the profile's fine-tuned weights); timings by alignment."""

    # GPT-SoVITS (code and its pretrained weights): MIT. The aligner runs piper-tts (GPL-3.0) with
    # the en_US-joe-medium voice (MIT); ffmpeg decodes.
    licence = "MIT AND GPL-3.0-or-later"
    device = "gpu"
    version = "1"
    settings_group = GptSovitsSettings
    tools = ("ffmpeg",)

    problems = ProblemCache()

    @classmethod
    def settings_key(cls) -> str:
        try:
            s = load_group(GptSovitsSettings)
        except ConfigError:
            return ""
        return "|".join([s.gpt_sovits_text_lang, s.gpt_sovits_prompt_lang, s.gpt_sovits_gpt_weights or "",
                         s.gpt_sovits_sovits_weights or ""])

    # Health -----------------------------------------------------------------------------------
    @classmethod
    def problem(cls) -> str | None:
        tool_missing = super().problem()
        if tool_missing:
            return tool_missing
        try:
            s = load_group(GptSovitsSettings)
        except ConfigError as exc:
            return str(exc)
        unset = _missing_setting(s)
        if unset:
            return unset
        return cls.problems.get((s.gpt_sovits_url, str(s.gpt_sovits_shared_dir)), lambda: cls._check(s))

    @classmethod
    def _check(cls, s: GptSovitsSettings) -> str | None:
        assert s.gpt_sovits_url
        timeout = min(PROBLEM_TIMEOUT_S, s.gpt_sovits_request_timeout_s)
        try:
            reply = Server(s.gpt_sovits_url, timeout).request("GET", "/control", timeout_s=timeout)
        except (Unreachable, Dropped, TimeoutError):
            return f"GPT-SoVITS at {s.gpt_sovits_url} is unreachable"
        if reply.status != 400 or reply.error().message != "command is required":
            return f"{s.gpt_sovits_url} does not answer like GPT-SoVITS api_v2.py (GET /control: {reply.status})"
        return None

    # Synthesize -------------------------------------------------------------------------------
    def synthesize(self, ctx: TaskContext) -> StepOutput:
        from ...media import align

        s = step_settings(GptSovitsSettings)
        unset = _missing_setting(s)
        if unset:
            raise StepFailure("engine_unavailable", f"the {NAME} engine cannot run: {unset}", retryable=False)
        assert s.gpt_sovits_url and s.gpt_sovits_shared_dir
        narration = " ".join(str(ctx.payload["script"]["narration"] or "").split())
        chunks = align.split_sentences(narration, CHUNK_CHARS)
        if not chunks:
            raise StepFailure("bad_input", "the narration is empty: write at least one word")
        profile = ctx.payload["profile"]
        waiter = Waiter(ctx, time.monotonic() + s.gpt_sovits_timeout_s, s.gpt_sovits_timeout_s)

        ctx.progress(0.0, "GPT-SoVITS: placing the voice reference")
        ref_src = ctx.fetch(profile["voiceReferenceKey"], "voice_reference.wav")
        try:
            ref_path, ref_s = place_reference(ref_src, s.gpt_sovits_shared_dir, s.server_dir)
        except BadInput as exc:
            raise StepFailure("bad_input", f"{NAME}: {exc}") from None
        model = self._voice_model(ctx, profile)
        weights = self._weights(ctx, model, s)

        server = Server(s.gpt_sovits_url, s.gpt_sovits_request_timeout_s)
        try:
            for which, path in weights:
                ctx.progress(0.03, f"GPT-SoVITS: loading the {which.upper()} weights")
                self._set_weights(server, waiter, which, path, s)
            parts: list[np.ndarray] = []
            sr = 0
            for i, text in enumerate(chunks):
                ctx.progress(0.05 + 0.75 * i / len(chunks), f"GPT-SoVITS: sentence {i + 1}/{len(chunks)}")
                body = {"text": text, "text_lang": s.gpt_sovits_text_lang, "ref_audio_path": ref_path,
                        "prompt_text": (model or {}).get("referenceText") or "",
                        "prompt_lang": s.gpt_sovits_prompt_lang, "text_split_method": "cut5", "batch_size": 1,
                        "media_type": "wav", "streaming_mode": False, "seed": seed_for(narration, i),
                        "parallel_infer": True, "split_bucket": True, "fragment_interval": PAUSE_S}
                x, chunk_sr = self._tts(server, waiter, body, f"on sentence {i + 1}/{len(chunks)}", s, ref_path)
                if sr and chunk_sr != sr:
                    x = align.resample(x, chunk_sr, sr, cancelled=ctx.cancelled)
                sr = sr or chunk_sr
                parts.append(x)
            ctx.progress(0.8, f"GPT-SoVITS: {len(chunks)} sentences spoken")
        except Unreachable as exc:
            raise StepFailure("engine_unavailable", f"{NAME}: GPT-SoVITS cannot be reached: {exc}",
                              retryable=True) from None
        except Dropped as exc:
            raise StepFailure("engine_failed", f"{NAME}: GPT-SoVITS at {s.gpt_sovits_url} dropped the connection "
                              f"without an answer (did the server crash? see its console): {exc}") from None

        try:
            track, placed = align.join_speech(parts, sr, PAUSE_S)
            out = ctx.path("out/speech.wav")
            sf.write(str(out), track, sr, subtype="PCM_16")
            pieces = []
            for i, ((offset, y), text) in enumerate(zip(placed, chunks, strict=True)):
                waiter.check("aligning the words")
                ctx.progress(0.8 + 0.18 * i / len(chunks), f"aligning sentence {i + 1}/{len(chunks)}")
                t = align.align_audio(align.resample(y, sr, align.SR, cancelled=ctx.cancelled), text,
                                      cancelled=ctx.cancelled)
                pieces.append(align.shift_timings(t, offset))
        except Cancelled:
            raise StepFailure("cancelled", f"{NAME}: cancelled while aligning the words") from None
        except (ToolFailed, ValueError) as exc:
            raise StepFailure("engine_failed", f"{NAME}: {exc}") from None
        timings = align.merge_timings(pieces)
        source = "the profile's GPT-SoVITS weights" if model else (
            "GPT_SOVITS_*_WEIGHTS" if weights else "the weights the server has loaded")
        result = publish_speech(ctx, out, {**timings, "voice": f"GPT-SoVITS ({source})",
                                     "shaping": {"notes": [f"zero-shot from the voice reference ({ref_s:.1f} s)"
                                                           if not model else "fine-tuned on the profile's voice"]},
                                     "engine": NAME, "sampleRate": sr})
        ctx.progress(1.0, "GPT-SoVITS: done")
        return result

    # Steps of synthesize ----------------------------------------------------------------------
    @staticmethod
    def _voice_model(ctx: TaskContext, profile: dict[str, Any]) -> dict[str, Any] | None:
        """The profile's GPT-SoVITS voice model (its manifest), or None when it has none of ours."""
        key = profile.get("voiceModelKey")
        if not key:
            return None
        doc = ctx.storage.get_json_or_none(key)
        if not isinstance(doc, dict) or doc.get("engine") != NAME or doc.get("trained") is False:
            return None
        if not doc.get("gptWeightsKey") or not doc.get("sovitsWeightsKey"):
            raise StepFailure("bad_input", f"{NAME}: the profile's voice model ({key}) names no gptWeightsKey and "
                              "sovitsWeightsKey: train the voice again", retryable=False)
        return doc

    @staticmethod
    def _weights(ctx: TaskContext, model: dict[str, Any] | None, s: GptSovitsSettings) -> list[tuple[str, str]]:
        """(gpt|sovits, server path) to load before speaking: the profile's, else the settings'."""
        assert s.gpt_sovits_shared_dir
        if model is None:
            return [(w, p) for w, p in (("gpt", s.gpt_sovits_gpt_weights), ("sovits", s.gpt_sovits_sovits_weights))
                    if p]
        out = []
        for which, field in (("gpt", "gptWeightsKey"), ("sovits", "sovitsWeightsKey")):
            key = str(model[field])
            suffix = "".join(c for c in Path(key).suffix if c.isalnum() or c == ".")[:10]
            name = f"likeness/weights/{hashlib.sha256(key.encode()).hexdigest()[:20]}{suffix}"
            def fetch(tmp: Path, key: str = key) -> None:
                ctx.storage.get_file(key, tmp)

            _write_once(s.gpt_sovits_shared_dir / name, fetch)
            out.append((which, f"{s.server_dir}/{name}"))
        return out

    @staticmethod
    def _set_weights(server: Server, waiter: Waiter, which: str, path: str, s: GptSovitsSettings) -> None:
        reply = waiter.run(f"loading the {which} weights",
                           lambda: server.request("GET", f"/set_{which}_weights", params={"weights_path": path},
                                                  timeout_s=waiter.remaining()), server.abort)
        if reply.status == 200:
            return
        err = reply.error()
        text = f"{err.message} {err.exception}"
        if _OOM.search(text):
            raise StepFailure("out_of_memory", f"{NAME}: GPT-SoVITS ran out of GPU memory loading {path}", retryable=True)
        if re.search(r"No such file|not exist|not found", text, re.I):
            raise StepFailure("engine_unavailable", f"{NAME}: weights missing on the GPT-SoVITS server: {path} "
                              f"({err.exception or err.message})", retryable=False)
        raise StepFailure("engine_failed" if reply.status >= 500 else "engine_unavailable",
                          f"{NAME}: GPT-SoVITS could not load the {which} weights {path}: {err}",
                          retryable=reply.status >= 500)

    @staticmethod
    def _tts(server: Server, waiter: Waiter, body: dict[str, Any], what: str, s: GptSovitsSettings,
             ref_path: str) -> tuple[np.ndarray, int]:
        reply = waiter.run(f"speaking {what.removeprefix('on ')}",
                           lambda: server.request("POST", "/tts", body=body, timeout_s=waiter.remaining()),
                           server.abort)
        if reply.status == 400:
            raise _failure_of(reply.error(), what, s, ref_path)
        if reply.status != 200:
            raise StepFailure("engine_failed", f"{NAME}: GPT-SoVITS answered {reply.status} {what}: {reply.error()}")
        try:
            x, sr = sf.read(io.BytesIO(reply.body), dtype="float32", always_2d=True)
        except (RuntimeError, sf.LibsndfileError) as exc:
            raise StepFailure("engine_failed", f"{NAME}: GPT-SoVITS's answer {what} is not a WAV: {exc}") from None
        mono = x.mean(axis=1)
        if _is_placeholder(sr, mono):
            raise StepFailure("engine_failed", f"{NAME}: GPT-SoVITS failed during inference {what} and returned its "
                              f"placeholder ({len(mono) / sr:.1f} s of silence at {sr} Hz); the server's console "
                              "shows the traceback (CUDA out of memory is the usual cause)")
        return mono, int(sr)
