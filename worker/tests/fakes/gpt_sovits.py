"""A protocol-faithful fake of GPT-SoVITS's ``api_v2.py`` server, for the gpt_sovits engine's tests
(no GPU, no weights): a real HTTP server that speaks real audio (espeak-ng, at the 32 kHz a v2
model returns).

Compared with RVC-Boss/GPT-SoVITS at 48b1a0169a28582a8984402f82cf438d3bfa6aca:

- api_v2.py: the flags (``-a/--bind_addr``, ``-p/--port``, ``-c/--tts_config``); ``GET /tts`` (query
  parameters, FastAPI's parsing: a bad number is 422 ``{"detail": [...]}``; ``text_lang`` or
  ``prompt_lang`` missing is ``.lower()`` on None, a 500 "Internal Server Error") and ``POST /tts``
  (the ``TTS_Request`` body, unknown fields ignored); ``check_params``' 400 ``{"message": …}``
  texts, in its order; the ``streaming_mode`` check; ``tts_handle``'s 400 ``{"message": "tts
  failed", "Exception": str(e)}``; ``pack_audio`` (wav: soundfile of int16 samples; raw; ogg;
  aac through ffmpeg) and the streaming answer (``wave_header_chunk`` then raw chunks);
  ``/control`` (400 ``{"message": "command is required"}``; restart, exit), ``/set_gpt_weights``,
  ``/set_sovits_weights`` (400 "gpt weight path is required" / "change gpt weight failed" with the
  exception), ``/set_refer_audio``.
- GPT_SoVITS/TTS_infer_pack/TTS.py ``TTS.run``: ``"{ref_audio_path} not exists"`` (ValueError) for a
  reference the server cannot see, the reference's 3-10 s check (OSError "参考音频在3~10秒范围外，
  请更换！", on the 16 kHz samples), the prompt cache keyed by the reference path, and what an
  exception *during inference* does: the traceback is printed and the generator first yields
  ``(16000, np.zeros(16000, int16))``, which the non-streaming api returns as a 200 WAV (one second
  of silence at 16 kHz). ``audio_postprocess``: ``fragment_interval`` s of silence after each
  fragment, int16 samples. ``TTS_Config``: v2's languages and 32 kHz.
- text_segmentation_method.py: the method names cut0-cut5; cut5's punctuation split.
- init_t2s_weights / init_vits_weights: a path that does not exist ends in FileNotFoundError
  "[Errno 2] No such file or directory: '<path>'".

Failure switches (the attribute ``fail``, else the environment variable FAKE_GPT_SOVITS_FAIL, read
at each request): ``oom`` (CUDA out of memory during inference: traceback on stderr and the 200
silent placeholder), ``oom_ref`` (out of memory while loading the reference: 400 "tts failed"),
``error`` (a RuntimeError in the text front end: 400 "tts failed"), ``hang`` (the /tts request never
ends; the fake notes when the client drops it), ``crash`` (the connection is closed without an
answer). Runnable alone: ``python tests/fakes/gpt_sovits.py -a 127.0.0.1 -p 9880``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import wave
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import soundfile as sf

VERSION = "v2"
V1_LANGUAGES = ["auto", "en", "zh", "ja", "all_zh", "all_ja"]
V2_LANGUAGES = ["auto", "auto_yue", "en", "zh", "ja", "yue", "ko", "all_zh", "all_ja", "all_yue", "all_ko"]
CUT_METHODS = ["cut0", "cut1", "cut2", "cut3", "cut4", "cut5"]
SAMPLING_RATE = 32000  # a v2 model's hps["data"]["sampling_rate"]
DEFAULT_GPT = "GPT_SoVITS/pretrained_models/gsv-v2final-pretrained/s1bert25hz-5kh-longer-epoch=12-step=369668.ckpt"
DEFAULT_SOVITS = "GPT_SoVITS/pretrained_models/gsv-v2final-pretrained/s2G2333k.pth"
REF_RANGE_MESSAGE = "参考音频在3~10秒范围外，请更换！"
OOM_MESSAGE = ("CUDA out of memory. Tried to allocate 1.95 GiB. GPU 0 has a total capacity of 23.64 GiB of which "
               "1.12 GiB is free. Of the allocated memory 20.51 GiB is allocated by PyTorch, and 1.37 GiB is reserved "
               "by PyTorch but unallocated.")
CUT5_PUNDS = {",", ".", ";", "?", "!", "、", "，", "。", "？", "！", "：", "…"}

# TTS_Request (api_v2.py): field -> (type, default)
FIELDS: dict[str, tuple[str, Any]] = {
    "text": ("str", None), "text_lang": ("str", None), "ref_audio_path": ("str", None),
    "aux_ref_audio_paths": ("list", None), "prompt_lang": ("str", None), "prompt_text": ("str", ""),
    "top_k": ("int", 15), "top_p": ("float", 1), "temperature": ("float", 1), "text_split_method": ("str", "cut5"),
    "batch_size": ("int", 1), "batch_threshold": ("float", 0.75), "split_bucket": ("bool", True),
    "speed_factor": ("float", 1.0), "fragment_interval": ("float", 0.3), "seed": ("int", -1),
    "media_type": ("str", "wav"), "streaming_mode": ("bool|int", False), "parallel_infer": ("bool", True),
    "repetition_penalty": ("float", 1.35), "sample_steps": ("int", 32), "super_sampling": ("bool", False),
    "overlap_length": ("int", 2), "min_chunk_length": ("int", 16),
}
_TRUE = {"1", "true", "t", "yes", "y", "on"}
_FALSE = {"0", "false", "f", "no", "n", "off"}


class _Invalid(Exception):
    def __init__(self, detail: dict[str, Any]) -> None:
        self.detail = detail


def _parse(name: str, kind: str, value: Any, where: str) -> Any:
    """Pydantic's lax parsing of one parameter, as FastAPI applies it; _Invalid with its error."""
    def bad(etype: str, msg: str) -> _Invalid:
        return _Invalid({"type": etype, "loc": [where, name], "msg": msg, "input": value})

    if value is None:
        return None
    if kind == "str":
        if not isinstance(value, str):
            raise bad("string_type", "Input should be a valid string")
        return value
    if kind == "list":
        if not isinstance(value, list):
            raise bad("list_type", "Input should be a valid list")
        return value
    if kind in ("bool", "bool|int"):
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        if kind == "bool|int":
            try:
                return int(value)
            except (TypeError, ValueError):
                raise bad("int_parsing", "Input should be a valid integer, unable to parse string as an integer") from None
        raise bad("bool_parsing", "Input should be a valid boolean, unable to interpret input")
    if kind == "int":
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        try:
            return int(str(value).strip())
        except ValueError:
            raise bad("int_parsing", "Input should be a valid integer, unable to parse string as an integer") from None
    try:  # float
        return float(value)
    except (TypeError, ValueError):
        raise bad("float_parsing", "Input should be a valid number, unable to parse string as a number") from None


def cut5(inp: str) -> list[str]:
    """text_segmentation_method.cut5: split after each punctuation mark, drop punctuation-only items."""
    inp = inp.strip("\n")
    merged, items = [], []
    for i, char in enumerate(inp):
        items.append(char)
        if char in CUT5_PUNDS and not (char == "." and 0 < i < len(inp) - 1 and inp[i - 1].isdigit()
                                       and inp[i + 1].isdigit()):
            merged.append("".join(items))
            items = []
    if items:
        merged.append("".join(items))
    return [m for m in merged if not set(m).issubset(CUT5_PUNDS)]


def espeak_samples(text: str, sr: int, speed: float = 1.0) -> np.ndarray:
    """espeak-ng reading ``text``, as float32 samples at ``sr``."""
    with tempfile.TemporaryDirectory(prefix="fake-gsv-") as td:
        raw, out = Path(td) / "espeak.wav", Path(td) / "out.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", str(int(175 * speed)), "-w", str(raw), text],
                       check=True, capture_output=True, timeout=60)
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(raw), "-ac", "1", "-ar", str(sr),
                        "-c:a", "pcm_f32le", str(out)], check=True, capture_output=True, timeout=60)
        x, _ = sf.read(out, dtype="float32")
    return np.asarray(x, dtype=np.float32)


def wave_header_chunk(frame_input: bytes = b"", channels: int = 1, sample_width: int = 2,
                      sample_rate: int = 32000) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as vfout:
        vfout.setnchannels(channels)
        vfout.setsampwidth(sample_width)
        vfout.setframerate(sample_rate)
        vfout.writeframes(frame_input)
    return buf.getvalue()


def pack_audio(data: np.ndarray, rate: int, media_type: str) -> bytes:
    buf = io.BytesIO()
    if media_type == "ogg":
        sf.write(buf, data, rate, format="ogg")
    elif media_type == "aac":
        res = subprocess.run(["ffmpeg", "-f", "s16le", "-ar", str(rate), "-ac", "1", "-i", "pipe:0", "-c:a", "aac",
                              "-b:a", "192k", "-vn", "-f", "adts", "pipe:1"], input=data.tobytes(),
                             capture_output=True, timeout=60)
        buf.write(res.stdout)
    elif media_type == "wav":
        sf.write(buf, data, rate, format="wav")
    else:
        buf.write(data.tobytes())
    return buf.getvalue()


class FakeGptSovits:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, step_s: float = 0.0,
                 log: Any = None) -> None:
        self.version = VERSION
        self.languages = V1_LANGUAGES if VERSION == "v1" else V2_LANGUAGES
        self.sampling_rate = SAMPLING_RATE
        self.step_s = step_s  # extra seconds of "inference" per fragment
        self.fail: str | None = None
        self.gpt_weights = DEFAULT_GPT
        self.sovits_weights = DEFAULT_SOVITS
        self.prompt_ref: str | None = None  # TTS.prompt_cache["ref_audio_path"]
        # What the clients did.
        self.requests: list[tuple[str, str]] = []  # (method, path)
        self.tts: list[dict[str, Any]] = []  # each /tts request as tts_handle saw it
        self.weight_calls: list[tuple[str, str]] = []
        self.dropped = 0  # /tts requests whose client went away before the answer
        self.hanging = threading.Event()
        self._log = log or sys.stderr
        self._stop = threading.Event()
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeGptSovits:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()

    def failure(self) -> str | None:
        return self.fail or os.environ.get("FAKE_GPT_SOVITS_FAIL") or None

    def print(self, *args: Any) -> None:
        print(*args, file=self._log, flush=True)

    # api_v2.py check_params ---------------------------------------------------------------------
    def check_params(self, req: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
        text, text_lang = req.get("text", ""), req.get("text_lang", "")
        ref_audio_path, media_type = req.get("ref_audio_path", ""), req.get("media_type", "wav")
        prompt_lang, text_split_method = req.get("prompt_lang", ""), req.get("text_split_method", "cut5")
        if ref_audio_path in [None, ""]:
            return 400, {"message": "ref_audio_path is required"}
        if text in [None, ""]:
            return 400, {"message": "text is required"}
        if text_lang in [None, ""]:
            return 400, {"message": "text_lang is required"}
        if text_lang.lower() not in self.languages:
            return 400, {"message": f"text_lang: {text_lang} is not supported in version {self.version}"}
        if prompt_lang in [None, ""]:
            return 400, {"message": "prompt_lang is required"}
        if prompt_lang.lower() not in self.languages:
            return 400, {"message": f"prompt_lang: {prompt_lang} is not supported in version {self.version}"}
        if media_type not in ["wav", "raw", "ogg", "aac"]:
            return 400, {"message": f"media_type: {media_type} is not supported"}
        if text_split_method not in CUT_METHODS:
            return 400, {"message": f"text_split_method:{text_split_method} is not supported"}
        return None

    # TTS.run (what the fake can do of it) ----------------------------------------------------------
    def prepare(self, req: dict[str, Any]) -> list[str]:
        """The part of TTS.run before its try: reference and text; raises what the real one raises."""
        ref = req.get("ref_audio_path")
        if ref is not None and ref != self.prompt_ref:
            if not os.path.exists(ref):
                raise ValueError(f"{ref} not exists")
            if self.failure() == "oom_ref":
                raise RuntimeError(OOM_MESSAGE)
            info = sf.info(ref)
            n16k = int(info.frames * 16000 / info.samplerate)
            if n16k > 160000 or n16k < 48000:
                raise OSError(REF_RANGE_MESSAGE)
            self.prompt_ref = ref
        if self.failure() == "error":
            raise RuntimeError("The expanded size of the tensor (512) must match the existing size (768) at "
                               "non-singleton dimension 1")
        text = req["text"].strip("\n")
        fragments = [text] if req.get("text_split_method") == "cut0" else cut5(text)
        return [f for f in fragments if re.sub(r"\W+", "", f)]

    def infer(self, fragments: list[str], req: dict[str, Any]):
        """Yields (sr, int16 audio) once (non-streaming) or per fragment (streaming)."""
        self.print("############ 推理 ############")
        try:
            if self.failure() == "oom":
                raise RuntimeError(OOM_MESSAGE)
            pieces = []
            gap = np.zeros(int(self.sampling_rate * float(req.get("fragment_interval", 0.3))), dtype=np.float32)
            for fragment in fragments:
                if self.step_s:
                    time.sleep(self.step_s)
                x = espeak_samples(fragment, self.sampling_rate, float(req.get("speed_factor") or 1.0))
                peak = float(np.max(np.abs(x))) if x.size else 0.0
                if peak > 1:
                    x = x / peak
                piece = np.concatenate([x, gap]) if len(gap) else x
                if req["streaming_mode"] or req["return_fragment"]:
                    yield self.sampling_rate, (piece * 32768).clip(-32768, 32767).astype(np.int16)
                else:
                    pieces.append(piece)
            if not (req["streaming_mode"] or req["return_fragment"]):
                audio = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
                yield self.sampling_rate, (audio * 32768).clip(-32768, 32767).astype(np.int16)
        except Exception as e:
            self.print(traceback.format_exc().rstrip())
            yield 16000, np.zeros(16000, dtype=np.int16)  # "必须返回一个空音频, 否则会导致显存不释放。"
            raise e

    def set_weights(self, which: str, path: str | None) -> tuple[int, dict[str, Any]]:
        self.weight_calls.append((which, path or ""))
        label = "gpt" if which == "gpt" else "sovits"
        if path in ["", None]:
            return 400, {"message": f"{label} weight path is required"}
        try:
            if not os.path.exists(path):
                raise FileNotFoundError(2, "No such file or directory", path)
            Path(path).read_bytes()  # torch.load / load_sovits_new
        except Exception as e:
            return 400, {"message": f"change {label} weight failed", "Exception": str(e)}
        if which == "gpt":
            self.print(f"Loading Text2Semantic weights from {path}")
            self.gpt_weights = path
        else:
            self.sovits_weights = path
        return 200, {"message": "success"}

    # HTTP -----------------------------------------------------------------------------------------
    def _handler_class(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "uvicorn"
            sys_version = ""

            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: bytes, ctype: str) -> None:
                self.send_response(status)
                self.send_header("content-type", ctype)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _json(self, status: int, obj: Any) -> None:
                self._reply(status, json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode(),
                            "application/json")

            def _server_error(self) -> None:
                self._reply(500, b"Internal Server Error", "text/plain; charset=utf-8")

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                path = parts.path
                query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
                fake.requests.append(("GET", path))
                if path == "/tts":
                    try:
                        params = {n: _parse(n, kind, query.get(n, default), "query")
                                  for n, (kind, default) in FIELDS.items() if n != "aux_ref_audio_paths"}
                    except _Invalid as exc:
                        return self._json(422, {"detail": [exc.detail]})
                    if params["text_lang"] is None or params["prompt_lang"] is None:
                        return self._server_error()  # text_lang.lower() on None
                    params["text_lang"] = params["text_lang"].lower()
                    params["prompt_lang"] = params["prompt_lang"].lower()
                    params["aux_ref_audio_paths"] = None
                    return self._tts(params)
                if path == "/control":
                    command = query.get("command")
                    if command is None:
                        return self._json(400, {"message": "command is required"})
                    if command == "restart":  # os.execl: the process is replaced, nothing is answered
                        fake.prompt_ref = None
                        self.close_connection = True
                        return None
                    if command == "exit":
                        self.close_connection = True
                        threading.Thread(target=fake.stop, daemon=True).start()
                        return None
                    return self._json(200, None)
                if path in ("/set_gpt_weights", "/set_sovits_weights"):
                    status, body = fake.set_weights("gpt" if "gpt" in path else "sovits", query.get("weights_path"))
                    return self._json(status, body)
                if path == "/set_refer_audio":
                    ref = query.get("refer_audio_path")
                    try:
                        if ref is None or not os.path.exists(ref):
                            raise FileNotFoundError(2, "No such file or directory", ref)
                        fake.prompt_ref = ref
                    except Exception as e:
                        return self._json(400, {"message": "set refer audio failed", "Exception": str(e)})
                    return self._json(200, {"message": "success"})
                self._json(404, {"detail": "Not Found"})

            def do_POST(self) -> None:
                path = urlsplit(self.path).path
                fake.requests.append(("POST", path))
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                if path != "/tts":
                    if path in ("/control", "/set_gpt_weights", "/set_sovits_weights", "/set_refer_audio"):
                        return self._json(405, {"detail": "Method Not Allowed"})
                    return self._json(404, {"detail": "Not Found"})
                try:
                    data = json.loads(body)
                except ValueError:
                    return self._json(422, {"detail": [{"type": "json_invalid", "loc": ["body", 0],
                                                        "msg": "JSON decode error", "input": {}}]})
                if not isinstance(data, dict):
                    return self._json(422, {"detail": [{"type": "model_attributes_type", "loc": ["body"],
                                                        "msg": "Input should be a valid dictionary or object to "
                                                               "extract fields from", "input": data}]})
                try:
                    params = {n: _parse(n, kind, data.get(n, default), "body") for n, (kind, default) in FIELDS.items()}
                except _Invalid as exc:
                    return self._json(422, {"detail": [exc.detail]})
                return self._tts(params)

            # api_v2.py tts_handle
            def _tts(self, req: dict[str, Any]) -> None:
                fake.tts.append(dict(req))
                streaming_mode = req.get("streaming_mode", False)
                media_type = req.get("media_type", "wav")
                check = fake.check_params(req)
                if check is not None:
                    return self._json(*check)
                if streaming_mode == 0:
                    streaming_mode, return_fragment = False, False
                elif streaming_mode == 1:
                    streaming_mode, return_fragment = False, True
                elif streaming_mode in (2, 3):
                    streaming_mode, return_fragment = True, False
                else:
                    return self._json(400, {"message": "the value of streaming_mode must be 0, 1, 2, 3(int) or "
                                                       "true/false(bool)"})
                req["streaming_mode"], req["return_fragment"] = streaming_mode, return_fragment
                fake.print(f"{streaming_mode} {return_fragment} False")
                failure = fake.failure()
                if failure == "hang":
                    return self._hang()
                if failure == "crash":
                    self.close_connection = True
                    return None
                try:
                    fragments = fake.prepare(req)
                    gen = fake.infer(fragments, req)
                    if streaming_mode or return_fragment:
                        return self._stream(gen, media_type)
                    if not fragments:
                        sr, audio = 16000, np.zeros(16000, dtype=np.int16)
                    else:
                        sr, audio = next(gen)
                    return self._reply(200, pack_audio(audio, sr, media_type), f"audio/{media_type}")
                except Exception as e:
                    return self._json(400, {"message": "tts failed", "Exception": str(e)})

            def _stream(self, gen, media_type: str) -> None:
                self.send_response(200)
                self.send_header("content-type", f"audio/{media_type}")
                self.send_header("connection", "close")
                self.end_headers()
                self.close_connection = True
                first = True
                try:
                    for sr, chunk in gen:
                        if first and media_type == "wav":
                            self.wfile.write(wave_header_chunk(sample_rate=sr))
                            media_type = "raw"
                        first = False
                        self.wfile.write(pack_audio(chunk, sr, media_type))
                except Exception:  # the stream just ends, as uvicorn ends a failed StreamingResponse
                    pass

            def _hang(self) -> None:
                fake.hanging.set()
                while not fake._stop.is_set():
                    readable, _, _ = select.select([self.connection], [], [], 0.05)
                    if readable and not self.connection.recv(1, socket.MSG_PEEK):  # b"": the client left
                        fake.dropped += 1
                        break
                self.close_connection = True

        return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description="GPT-SoVITS api")
    parser.add_argument("-c", "--tts_config", type=str, default="GPT_SoVITS/configs/tts_infer.yaml", help="tts_infer路径")
    parser.add_argument("-a", "--bind_addr", type=str, default="127.0.0.1", help="default: 127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default="9880", help="default: 9880")
    args = parser.parse_args()
    fake = FakeGptSovits(args.bind_addr, args.port)
    print(f"INFO:     Uvicorn running on http://{args.bind_addr}:{args.port} (Press CTRL+C to quit)", flush=True)
    fake._thread.run()


if __name__ == "__main__":
    main()
