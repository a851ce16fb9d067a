"""Run espeak-ng through its library and record word events (a child process of tts.py).

Usage: python -m likeness_worker.media._espeak_events OUT.wav OUT.json  (JSON request on stdin:
{"text", "voice", "pitch", "rate"}). Writes 16-bit mono PCM at espeak's native rate and a JSON
document {"sample_rate", "samples", "words": [{"text_position", "length", "audio_ms"}],
"phonemes": [{"phoneme" (IPA), "audio_ms"}]}.

The word events come from espeak-ng's synthesis callback (``espeakEVENT_WORD``): each one
carries the position (ms) at which that word's audio starts in the produced stream, so the
timings are measured on the audio itself, not estimated. Phoneme events (``espeakEVENT_PHONEME``,
asked for in IPA at initialisation) carry the same position for each phoneme. This runs in its own process so that
tts.py can kill it on timeout or cancel like any other tool (see proc.py).
"""

from __future__ import annotations

import ctypes
import json
import sys
import wave
from ctypes import CFUNCTYPE, POINTER, Structure, Union, c_char, c_char_p, c_int, c_short, c_uint, c_void_p

AUDIO_OUTPUT_SYNCHRONOUS = 2
POS_CHARACTER = 1
CHARS_UTF8 = 1
ENDPAUSE = 0x1000
EVENT_LIST_TERMINATED = 0
EVENT_WORD = 1
EVENT_PHONEME = 7
INITIALIZE_PHONEME_EVENTS = 0x0001
INITIALIZE_PHONEME_IPA = 0x0002
PARAM_RATE = 1
PARAM_PITCH = 3


class _EventId(Union):
    _fields_ = [("number", c_int), ("name", c_char_p), ("string", c_char * 8)]


class _Event(Structure):
    _fields_ = [
        ("type", c_int),
        ("unique_identifier", c_uint),
        ("text_position", c_int),
        ("length", c_int),
        ("audio_position", c_int),
        ("sample", c_int),
        ("user_data", c_void_p),
        ("id", _EventId),
    ]


_CALLBACK = CFUNCTYPE(c_int, POINTER(c_short), c_int, POINTER(_Event))


def main() -> int:
    out_wav, out_json = sys.argv[1], sys.argv[2]
    req = json.loads(sys.stdin.read())
    lib = ctypes.CDLL("libespeak-ng.so.1")
    lib.espeak_Initialize.restype = c_int
    rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 200, None,
                                 INITIALIZE_PHONEME_EVENTS | INITIALIZE_PHONEME_IPA)
    if rate <= 0:
        print("espeak-ng could not initialise (espeak-ng-data missing?)", file=sys.stderr)
        return 2
    if lib.espeak_SetVoiceByName(req.get("voice", "en-us").encode()) != 0:
        print(f"espeak-ng has no voice {req.get('voice')!r}", file=sys.stderr)
        return 2
    lib.espeak_SetParameter(PARAM_PITCH, int(req.get("pitch", 50)), 0)
    lib.espeak_SetParameter(PARAM_RATE, int(req.get("rate", 175)), 0)

    chunks: list[bytes] = []
    words: list[dict] = []
    phonemes: list[dict] = []
    total = [0]

    def on_audio(wav, numsamples, events):  # noqa: ANN001
        i = 0
        while events[i].type != EVENT_LIST_TERMINATED:
            ev = events[i]
            if ev.type == EVENT_WORD:
                words.append({"text_position": ev.text_position, "length": ev.length, "audio_ms": ev.audio_position})
            elif ev.type == EVENT_PHONEME:
                name = ev.id.string.split(b"\0", 1)[0].decode("utf-8", "replace")
                phonemes.append({"phoneme": name, "audio_ms": ev.audio_position})
            i += 1
        if wav and numsamples > 0:
            chunks.append(ctypes.string_at(wav, numsamples * 2))
            total[0] += numsamples
        return 0

    cb = _CALLBACK(on_audio)
    lib.espeak_SetSynthCallback(cb)
    data = req["text"].encode("utf-8") + b"\0"
    err = lib.espeak_Synth(data, len(data), 0, POS_CHARACTER, 0, CHARS_UTF8 | ENDPAUSE, None, None)
    lib.espeak_Synchronize()
    lib.espeak_Terminate()
    if err != 0:
        print(f"espeak_Synth failed with code {err}", file=sys.stderr)
        return 3
    pcm = b"".join(chunks)
    with wave.open(out_wav, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    with open(out_json, "w") as f:
        json.dump({"sample_rate": rate, "samples": total[0], "words": words, "phonemes": phonemes}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
