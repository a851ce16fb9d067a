"""What the face does over time: the mouth from the phoneme timeline (visemes) and the speech's
energy, blinks at natural irregular intervals, and a small head motion.

Everything is sampled at 100 Hz, smoothed (coarticulation: the lips move continuously from one
shape to the next), then read at the frame times.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import soundfile as sf

RATE = 100  # samples per second of the tracks
LEAD_S = 0.03  # the lips move slightly ahead of the sound they make
SILENCE_DBFS = -65.0

# IPA symbol (as espeak-ng / piper write them) -> (open, spread, round) of the lips.
_VISEMES: dict[str, tuple[float, float, float]] = {}
for chars, shape in {
    "aɑæɐɒ": (0.85, 0.15, 0.0),  # open vowels
    "ʌɛeɜ": (0.6, 0.3, 0.0),
    "əɚɝ": (0.42, 0.15, 0.0),
    "iɪjy": (0.28, 0.75, 0.0),  # close front: spread
    "oɔ": (0.55, 0.0, 0.65),  # rounded
    "uʊwɵ": (0.25, 0.0, 0.95),
    "pbm": (0.0, 0.0, 0.0),  # the lips close
    "fv": (0.08, 0.15, 0.0),  # lower lip to the upper teeth
    "θð": (0.25, 0.2, 0.0),
    "tdnlɾ": (0.24, 0.3, 0.0),
    "szʃʒ": (0.14, 0.45, 0.2),
    "kgŋxh": (0.35, 0.1, 0.0),
    "ɹr": (0.25, 0.0, 0.45),
    "ʔ": (0.1, 0.0, 0.0),
}.items():
    for ch in chars:
        _VISEMES[ch] = shape
_MODIFIERS = set("ˈˌːˑ‿ ̃ʲʰ'-_,.!?;: ")


def viseme(phoneme: str) -> tuple[float, float, float] | None:
    """Lip shape of a phoneme (its first letter that has one); None for stress or length marks."""
    for ch in phoneme:
        if ch in _VISEMES:
            return _VISEMES[ch]
        if ch.lower() in _VISEMES:
            return _VISEMES[ch.lower()]
    if all(ch in _MODIFIERS for ch in phoneme):
        return None
    return (0.3, 0.1, 0.0)  # a sound we have no shape for: half open


def speech_envelope(wav: Path, n: int) -> np.ndarray:
    """Loudness of the speech at 100 Hz, 0 (silence) .. 1 (its loud syllables), ``n`` samples."""
    x, sr = sf.read(str(wav), dtype="float32", always_2d=True)
    x = x.mean(1)
    hop, win = sr // RATE, sr // 40  # 10 ms steps, 25 ms windows
    pad = np.pad(x, (win // 2, win))
    frames = np.lib.stride_tricks.sliding_window_view(pad, win)[::hop][:n]
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    db = 20 * np.log10(np.maximum(rms, 1e-6))
    if db.size == 0:
        return np.zeros(n)
    # 38 dB below the loud part is silence, and so is anything under -65 dBFS (a silent or
    # nearly silent file has no loud part to be relative to).
    top = float(np.percentile(db, 95))
    env = np.clip((db - max(top - 38.0, SILENCE_DBFS)) / 34.0, 0.0, 1.0)
    out = np.zeros(n)
    out[: env.size] = env
    return out


def _smooth(x: np.ndarray, sigma_s: float) -> np.ndarray:
    r = max(1, int(3 * sigma_s * RATE))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / (sigma_s * RATE)) ** 2)
    return np.convolve(np.pad(x, r, mode="edge"), k / k.sum(), mode="valid")


def mouth_tracks(phonemes: list[dict] | None, envelope: np.ndarray) -> np.ndarray:
    """(n, 3) open / spread / round at 100 Hz.

    With phonemes, each one holds its lip shape for its duration and the energy scales the
    opening (a stressed vowel opens wider than a murmured one); with none (an engine that gives
    no phoneme timeline) the opening follows the energy alone. Silence closes the lips.
    """
    n = envelope.size
    shape = np.zeros((n, 3))
    if phonemes:
        for ph in phonemes:
            v = viseme(str(ph.get("phoneme", "")))
            if v is None:
                continue
            a = max(0, int(round(float(ph["start"]) * RATE)))
            b = min(n, max(a + 1, int(round(float(ph["end"]) * RATE))))
            shape[a:b] = v
        shape[:, 0] *= 0.45 + 0.75 * np.sqrt(envelope)
    else:
        shape[:, 0] = 0.55 * envelope ** 0.8
        shape[:, 1] = 0.2 * envelope
    voiced = _smooth((envelope > 0.05).astype(float), 0.03)
    shape *= voiced[:, None]
    for k in range(3):
        shape[:, k] = _smooth(shape[:, k], 0.025)
    shape[:, 0] = np.clip(shape[:, 0], 0.0, 1.0)
    return shape


def blink_track(n: int, seed: int) -> np.ndarray:
    """0..1 lid closure at 100 Hz: blinks of ~250 ms, 2-7 s apart (gamma distributed, as people
    blink while talking), now and then a double blink."""
    rng = np.random.default_rng(seed)
    out = np.zeros(n)
    t = rng.uniform(0.8, 2.5)
    close, hold, reopen = 0.08, 0.04, 0.14
    profile = np.concatenate([np.sin(np.linspace(0, math.pi / 2, int(close * RATE))) ** 2,
                              np.ones(int(hold * RATE)),
                              np.cos(np.linspace(0, math.pi / 2, int(reopen * RATE))) ** 2])
    while t * RATE < n:
        a = int(t * RATE)
        seg = profile[: max(0, min(len(profile), n - a))]
        out[a:a + len(seg)] = np.maximum(out[a:a + len(seg)], seg)
        t += (0.35 if rng.random() < 0.12 else 1.6 + rng.gamma(2.0, 1.1))
    return out


def head_tracks(n: int, envelope: np.ndarray, face_h: float, seed: int) -> np.ndarray:
    """(n, 3) roll (radians), x, y (pixels) at 100 Hz: slow drift made of incommensurate sines,
    and a small nod with the speech's stressed syllables."""
    rng = np.random.default_rng(seed + 1)
    t = np.arange(n) / RATE
    out = np.zeros((n, 3))
    amp = (0.018, 0.010 * face_h, 0.008 * face_h)  # ~1 degree, ~1 % of the face
    for k in range(3):
        for f in (0.11, 0.23, 0.41):
            f *= rng.uniform(0.8, 1.25)
            out[:, k] += amp[k] / 3 * np.sin(2 * math.pi * f * t + rng.uniform(0, 2 * math.pi))
    nod = _smooth(np.maximum(0.0, envelope - _smooth(envelope, 0.4)), 0.08)
    out[:, 2] += 0.025 * face_h * nod
    return out


def frame_samples(track: np.ndarray, n_frames: int, fps: int) -> np.ndarray:
    """The track read at each frame's time (slightly ahead: the lips lead the sound)."""
    idx = np.clip(np.round((np.arange(n_frames) / fps + LEAD_S) * RATE).astype(int), 0, len(track) - 1)
    return track[idx]
