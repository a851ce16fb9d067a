"""Fake of F5-TTS's src/f5_tts/infer/utils_infer.py: only its speech recogniser, what the f5_tts
voice trainer calls (compared with SWivid/F5-TTS at 2ae2c9bd9b64dab2cb069c4b97e5e7673c521e01):
``initialize_asr_pipeline(device, dtype=None)`` builds transformers' "automatic-speech-recognition"
pipeline of ``openai/whisper-large-v3-turbo``; ``transcribe(ref_audio, language=None)`` returns its
``["text"].strip()``. The fake hears FAKE_F5_TTS_TRANSCRIPT (default: the line the real example
reference says). With FAKE_F5_TTS_FAIL=no-asr-model the model is not in the Hugging Face cache of an
offline box: transformers' OSError, as ``cached_file`` words it.
"""

import os

import soundfile as sf
from f5_tts._fake import fail

device = "cuda"
asr_pipe = None
ASR_MODEL = "openai/whisper-large-v3-turbo"


def initialize_asr_pipeline(device: str = device, dtype=None):
    global asr_pipe
    if fail() == "no-asr-model":
        raise OSError(
            f"We couldn't connect to 'https://huggingface.co' to load this file, couldn't find it in the cached "
            f"files and it looks like {ASR_MODEL} is not the path to a directory containing a file named "
            "config.json.\nCheckout your internet connection or see how to run the library in offline mode at "
            "'https://huggingface.co/docs/transformers/installation#offline-mode'.")
    asr_pipe = lambda audio, **kw: {"text": " " + os.environ.get(  # noqa: E731
        "FAKE_F5_TTS_TRANSCRIPT", "Some call me nature, others call me mother nature.") + " "}


def transcribe(ref_audio, language=None):
    global asr_pipe
    if asr_pipe is None:
        initialize_asr_pipeline(device=device)
    sf.info(ref_audio)  # the pipeline reads the file: a missing or unreadable one fails here
    return asr_pipe(
        ref_audio,
        chunk_length_s=30,
        batch_size=128,
        generate_kwargs={"task": "transcribe", "language": language} if language else {"task": "transcribe"},
        return_timestamps=False,
    )["text"].strip()
