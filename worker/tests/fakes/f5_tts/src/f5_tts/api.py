"""A protocol-faithful fake of F5-TTS's Python API (``from f5_tts.api import F5TTS``) for the
f5_tts engine's tests: no torch, no weights; real speech made by espeak-ng at 24 kHz.

Compared with SWivid/F5-TTS at 2ae2c9bd9b64dab2cb069c4b97e5e7673c521e01, src/f5_tts/api.py and
src/f5_tts/infer/utils_infer.py:

- ``F5TTS(model="F5TTS_v1_Base", ckpt_file="", vocab_file="", ode_method="euler", use_ema=True,
  vocoder_local_path=None, device=None, hf_cache_dir=None)``: an unknown model has no
  configs/<model>.yaml; the vocoder and the model are loaded with the same prints ("Download Vocos
  from huggingface charactr/vocos-mel-24khz", "vocab : …", "model : …"); a ``ckpt_file`` that does
  not exist fails as safetensors' ``load_file`` (or ``torch.load`` for .pt) fails;
  ``target_sample_rate`` 24000, ``mel_spec_type`` "vocos".
- ``infer(ref_file, ref_text, gen_text, show_info=print, progress=tqdm, target_rms=0.1,
  cross_fade_duration=0.15, sway_sampling_coef=-1, cfg_strength=2, nfe_step=32, speed=1.0,
  fix_duration=None, remove_silence=False, file_wave=None, file_spec=None, seed=None)`` returns
  ``(wav float32 [samples], 24000, spec float32 [100, frames])``; sets ``self.seed``;
  ``preprocess_ref_audio_text`` (reference clipped to 12 s, transcribed when ``ref_text`` is empty,
  ". " appended); ``infer_process``' ``chunk_text`` with ``max_chars`` from the reference's
  characters per second and (22 - reference seconds); ``progress.tqdm`` over the batches; the
  batches cross-faded over ``cross_fade_duration``; ``export_wav`` with soundfile.

Failure switch: FAKE_F5_TTS_FAIL, read at each call: ``checkpoint`` (the default checkpoint is
not in the Hugging Face cache and the hub cannot be reached), ``oom`` (torch.OutOfMemoryError in
the first batch), ``error`` (a RuntimeError in the model), ``hang`` (infer never returns),
``crash`` (the process dies of SIGSEGV), ``slow`` (each batch takes 0.3 s).
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

MODELS = {"F5TTS_v1_Base", "F5TTS_Base", "E2TTS_Base", "F5TTS_Small", "E2TTS_Small"}
TARGET_SAMPLE_RATE = 24000
HOP_LENGTH = 256
N_MEL_CHANNELS = 100


class OutOfMemoryError(RuntimeError):
    pass


OutOfMemoryError.__module__ = "torch"


class LocalEntryNotFoundError(FileNotFoundError):
    pass


LocalEntryNotFoundError.__module__ = "huggingface_hub.errors"


def _fail() -> str:
    return os.environ.get("FAKE_F5_TTS_FAIL", "")


def chunk_text(text, max_chars=135):
    """utils_infer.chunk_text."""
    chunks = []
    current_chunk = ""
    sentences = re.split(r"(?<=[;:,.!?])\s+|(?<=[；：，。！？])", text)
    for sentence in sentences:
        if not sentence:
            continue
        if len(current_chunk.encode("utf-8")) + len(sentence.encode("utf-8")) <= max_chars:
            current_chunk += sentence + " " if sentence and len(sentence[-1].encode("utf-8")) == 1 else sentence
        else:
            if current_chunk:
                chunks.append(current_chunk.strip())
            current_chunk = sentence + " " if sentence and len(sentence[-1].encode("utf-8")) == 1 else sentence
    if current_chunk:
        chunks.append(current_chunk.strip())
    return chunks


def _espeak(text: str, speed: float) -> np.ndarray:
    with tempfile.TemporaryDirectory(prefix="fake-f5-") as td:
        raw, out = Path(td) / "e.wav", Path(td) / "o.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", str(int(175 * speed)), "-w", str(raw), text],
                       check=True, capture_output=True, timeout=60)
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(raw), "-ac", "1", "-ar",
                        str(TARGET_SAMPLE_RATE), "-c:a", "pcm_f32le", str(out)], check=True, capture_output=True,
                       timeout=60)
        x, _ = sf.read(out, dtype="float32")
    return np.asarray(x, dtype=np.float32)


class F5TTS:
    def __init__(self, model="F5TTS_v1_Base", ckpt_file="", vocab_file="", ode_method="euler", use_ema=True,
                 vocoder_local_path=None, device=None, hf_cache_dir=None):
        if model not in MODELS:  # OmegaConf.load(files("f5_tts").joinpath(f"configs/{model}.yaml"))
            raise FileNotFoundError(2, "No such file or directory", str(Path(__file__).parent / f"configs/{model}.yaml"))
        self.mel_spec_type = "vocos"
        self.target_sample_rate = TARGET_SAMPLE_RATE
        self.ode_method = ode_method
        self.use_ema = use_ema
        self.device = device or "cuda"
        if vocoder_local_path is not None:
            print(f"Load vocos from local path {vocoder_local_path}")
            if not Path(vocoder_local_path, "config.yaml").exists():
                raise FileNotFoundError(2, "No such file or directory", f"{vocoder_local_path}/config.yaml")
        else:
            print("Download Vocos from huggingface charactr/vocos-mel-24khz")
        if not ckpt_file:
            if _fail() == "checkpoint":  # cached_path(hf://SWivid/F5-TTS/…) offline, not in the cache
                raise LocalEntryNotFoundError(
                    "An error happened while trying to locate the file on the Hub and we cannot find the requested "
                    "files in the local cache. Please check your connection and try again or make sure your "
                    "Internet connection is on.")
            ckpt_file = str(Path(hf_cache_dir or "~/.cache/huggingface/hub").expanduser()
                            / f"models--SWivid--F5-TTS/{model}/model_1250000.safetensors")
        else:
            if not Path(ckpt_file).exists():
                if ckpt_file.endswith(".safetensors"):  # safetensors.torch.load_file
                    raise FileNotFoundError(f'No such file or directory: "{ckpt_file}"')
                raise FileNotFoundError(2, "No such file or directory", ckpt_file)  # torch.load
        print("\nvocab : ", vocab_file or str(Path(__file__).parent / "infer/examples/vocab.txt"))
        print("token : ", "custom")
        print("model : ", ckpt_file, "\n")
        self.ckpt_file = ckpt_file

    def transcribe(self, ref_audio, language=None):
        return "Some call me nature, others call me mother nature."

    def export_wav(self, wav, file_wave, remove_silence=False):
        sf.write(file_wave, wav, self.target_sample_rate)

    def export_spectrogram(self, spec, file_spec):
        np.save(file_spec, spec)

    def infer(self, ref_file, ref_text, gen_text, show_info=print, progress=None, target_rms=0.1,
              cross_fade_duration=0.15, sway_sampling_coef=-1, cfg_strength=2, nfe_step=32, speed=1.0,
              fix_duration=None, remove_silence=False, file_wave=None, file_spec=None, seed=None):
        if seed is None:
            seed = random.randint(0, sys.maxsize)
        random.seed(seed)
        self.seed = seed

        # preprocess_ref_audio_text
        show_info("Converting audio...")
        ref, ref_sr = sf.read(ref_file, dtype="float32", always_2d=True)  # AudioSegment.from_file
        ref = ref.mean(axis=1)[: int(12 * ref_sr)]
        if len(ref) >= int(12 * ref_sr):
            show_info("Audio is over 12s, clipping short. (3)")
        if not ref_text.strip():
            show_info("No reference text provided, transcribing reference audio...")
            ref_text = self.transcribe(ref_file)
        else:
            show_info("Using custom reference text...")
        if not ref_text.endswith(". ") and not ref_text.endswith("。"):
            ref_text += " " if ref_text.endswith(".") else ". "
        print("\nref_text  ", ref_text)

        # infer_process
        ref_s = len(ref) / ref_sr
        max_chars = int(len(ref_text.encode("utf-8")) / ref_s * (22 - ref_s) * speed)
        batches = chunk_text(gen_text, max_chars=max_chars)
        for i, b in enumerate(batches):
            print(f"gen_text {i}", b)
        show_info(f"Generating audio in {len(batches)} batches...")
        if not batches:
            show_info("No text batches to generate.")
            return None, TARGET_SAMPLE_RATE, None

        rms = float(np.sqrt(np.mean(ref**2))) if ref.size else 0.0
        waves = []
        iterator = progress.tqdm(batches) if progress is not None else batches
        for i, text in enumerate(iterator):
            fail = _fail()
            if fail == "oom" and i == 0:
                raise OutOfMemoryError(
                    "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 23.64 GiB of "
                    "which 1.05 GiB is free. Including non-PyTorch memory, this process has 22.58 GiB memory in use.")
            if fail == "error":
                raise RuntimeError("shape '[1, -1, 16, 64]' is invalid for input of size 1000")
            if fail == "hang":
                while True:
                    time.sleep(1)
            if fail == "crash":
                os.kill(os.getpid(), signal.SIGSEGV)
            if fail == "slow":
                time.sleep(0.3)
            wave = _espeak(text, speed)
            level = float(np.sqrt(np.mean(wave**2))) if wave.size else 0.0
            if level > 0:
                wave = wave * (target_rms / level)  # the model speaks at target_rms
            if rms < target_rms:  # generated_wave * rms / target_rms
                wave = wave * (rms / target_rms)
            waves.append(wave)

        final = waves[0]
        for nxt in waves[1:]:
            n = min(int(cross_fade_duration * TARGET_SAMPLE_RATE), len(final), len(nxt))
            if n <= 0:
                final = np.concatenate([final, nxt])
                continue
            faded = final[-n:] * np.linspace(1, 0, n) + nxt[:n] * np.linspace(0, 1, n)
            final = np.concatenate([final[:-n], faded, nxt[n:]])
        wav = final.astype(np.float32)
        spec = np.zeros((N_MEL_CHANNELS, len(wav) // HOP_LENGTH), dtype=np.float32)
        if file_wave is not None:
            self.export_wav(wav, file_wave, remove_silence)
        if file_spec is not None:
            self.export_spectrogram(spec, file_spec)
        return wav, TARGET_SAMPLE_RATE, spec
