"""Built-in text-to-speech: espeak-ng, with word timings measured from its own word events."""

from __future__ import annotations

import json
import math
import re
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf

from . import proc
from .errors import BadInput, ToolFailed

SAMPLE_RATE = 24000
DEFAULT_RATE = 175  # espeak-ng words per minute (its default)
TAIL_S = 0.2  # silence kept after the last word
_HELPER = Path(__file__).with_name("_espeak_events.py")

# Median F0 (Hz) that espeak-ng 1.51 produces at pitch -p 0/25/50/75/99, measured with
# praat-parselmouth on two English sentences (see tests/media/test_tts.py for the check).
# The male voice spans ~67-169 Hz, the female variant f3 ~144-336 Hz. A profile's median F0
# picks the voice (>= 165 Hz: f3) and the -p value by interpolating log F0 in its table.
PITCH_TABLE = {
    "en-us": ((0, 25, 50, 75, 99), (66.9, 80.5, 100.8, 129.9, 169.0)),
    "en-us+f3": ((0, 25, 50, 75, 99), (144.1, 171.7, 209.8, 262.8, 335.6)),
}
FEMALE_F0_HZ = 165.0


def espeak_voice_for(voice_profile: dict | None) -> tuple[str, int]:
    """(espeak voice, pitch 0-99) approaching the profile's median F0; default en-us, 50."""
    f0 = (voice_profile or {}).get("median_f0_hz")
    if not f0 or not math.isfinite(float(f0)) or float(f0) <= 0:
        return "en-us", 50
    f0 = float(f0)
    voice = "en-us+f3" if f0 >= FEMALE_F0_HZ else "en-us"
    ps, fs = PITCH_TABLE[voice]
    p = float(np.interp(math.log(f0), [math.log(v) for v in fs], ps))
    return voice, int(round(min(99.0, max(0.0, p))))


def _active_frames(x: np.ndarray, sr: int, frame_s: float = 0.01) -> np.ndarray:
    n = int(sr * frame_s)
    frames = len(x) // n
    rms = np.sqrt(np.mean(x[: frames * n].reshape(frames, n) ** 2, axis=1))
    db = 20 * np.log10(np.maximum(rms, 1e-7))
    thr = max(float(db.max()) - 40.0, -60.0) if db.size else 0.0
    return db > thr


def join_silent_tokens(tokens: list[str], timed: dict[int, dict]) -> list[dict]:
    """Words with their timings (``timed``: token index -> {"start", ...}); a token that made no
    sound of its own (lone punctuation, a dash) is joined to its neighbour's word."""
    words: list[dict] = []
    pending = ""
    for i, tok in enumerate(tokens):
        if i in timed:
            words.append({"word": (pending + " " + tok).strip(), **timed[i]})
            pending = ""
        elif words:
            words[-1]["word"] += " " + tok
        else:
            pending = (pending + " " + tok).strip()
    if pending and words:
        words[0]["word"] = pending + " " + words[0]["word"]
    return words


def _words_from_events(text: str, events: list[dict], active: np.ndarray, frame_s: float,
                       duration: float) -> list[dict]:
    tokens = [(m.start(), m.end(), m.group()) for m in re.finditer(r"\S+", text)]
    starts: dict[int, float] = {}
    for ev in events:
        if ev["length"] <= 0:
            continue
        pos = ev["text_position"] - 1  # espeak counts characters from 1
        for i, (a, b, _) in enumerate(tokens):
            if a <= pos < b:
                starts.setdefault(i, ev["audio_ms"] / 1000.0)
                break
    # Tokens espeak did not announce (lone punctuation, a dash) join their neighbour.
    words = join_silent_tokens([tok for _, _, tok in tokens], {i: {"start": t} for i, t in starts.items()})
    idx_active = np.flatnonzero(active)
    speech_end = (idx_active[-1] + 1) * frame_s if idx_active.size else duration
    for k, w in enumerate(words):
        nxt = words[k + 1]["start"] if k + 1 < len(words) else speech_end
        # the word ends where its audio does: drop the pause before the next word
        a, b = int(w["start"] / frame_s), int(math.ceil(nxt / frame_s))
        seg = np.flatnonzero(active[a:b])
        end = (a + seg[-1] + 1) * frame_s if seg.size else nxt
        w["end"] = max(min(end, nxt), w["start"] + 0.01)
    return words


def _phonemes_from_events(events: list[dict], cut: float) -> list[dict]:
    out = []
    for ev, nxt in zip(events, events[1:] + [{"audio_ms": cut * 1000.0}], strict=True):
        start, end = ev["audio_ms"] / 1000.0, min(nxt["audio_ms"] / 1000.0, cut)
        if ev["phoneme"] and end > start:  # an empty name is a pause
            out.append({"phoneme": ev["phoneme"], "start": round(start, 3), "end": round(end, 3)})
    return out


def synthesize_espeak(
    text: str,
    out_wav: Path,
    voice_profile: dict | None = None,
    *,
    rate: int = DEFAULT_RATE,
    timeout: float | None = None,
    cancelled: Callable[[], bool] | None = None,
    phonemes: list[dict] | None = None,
) -> list[dict]:
    """Speak ``text`` with espeak-ng into a 24 kHz mono 16-bit WAV; return word timings.

    Timings ([{word, start, end}], seconds) come from espeak-ng's word events, i.e. from the
    very audio written (the trailing silence is cut to 0.2 s after the last word).
    ``voice_profile["median_f0_hz"]`` sets the voice and pitch (see ``espeak_voice_for``).
    A ``phonemes`` list is filled with [{phoneme (IPA), start, end}] from espeak's phoneme
    events (each phoneme lasts until the next event; pauses are left out).
    """
    text = " ".join((text or "").split())
    if not re.search(r"\w", text):
        raise BadInput("the narration is empty: write at least one word")
    chosen, pitch = espeak_voice_for(voice_profile)
    if timeout is None:
        timeout = 30.0 + len(text) / 50.0
    out_wav = Path(out_wav)
    out_wav.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_wav.parent) as td:
        raw, meta = Path(td) / "espeak.wav", Path(td) / "events.json"
        req = json.dumps({"text": text, "voice": chosen, "pitch": pitch, "rate": int(rate)})
        proc.run([sys.executable, str(_HELPER), str(raw), str(meta)], timeout=timeout,
                 cancelled=cancelled, input=req.encode())
        info = json.loads(meta.read_text())
        x, sr = sf.read(str(raw), dtype="float32")
        if x.size == 0:
            raise ToolFailed("espeak-ng produced no audio")
        frame_s = 0.01
        active = _active_frames(x, sr, frame_s)
        words = _words_from_events(text, info["words"], active, frame_s, len(x) / sr)
        if not words:
            raise BadInput("espeak-ng found no words to speak in the narration")
        cut = min(len(x) / sr, words[-1]["end"] + TAIL_S)
        tmp = Path(td) / "out.wav"
        proc.run(["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-i", str(raw), "-af",
                  f"atrim=end={cut:.4f},aresample={SAMPLE_RATE}:resampler=soxr",
                  "-ac", "1", "-c:a", "pcm_s16le", str(tmp)],
                 timeout=timeout, cancelled=cancelled)
        tmp.replace(out_wav)
    if phonemes is not None:
        phonemes.extend(_phonemes_from_events(info.get("phonemes", []), cut))
    return [{"word": w["word"], "start": round(w["start"], 3), "end": round(w["end"], 3)}
            for w in words]
