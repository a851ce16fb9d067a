"""Speaker similarity with resemblyzer (the ``bench`` extra: its encoder weights ship in its wheel).

``voice_gain`` is the bench's measure of the voice shaping: how much closer to the speaker's
sample the shaped synthetic voice is than the unshaped one. resemblyzer (and torch) are imported
on first use only, so the worker never loads them.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

_LOCK = threading.Lock()
_ENCODER = None


def _encoder():
    global _ENCODER
    with _LOCK:
        if _ENCODER is None:
            from resemblyzer import VoiceEncoder

            _ENCODER = VoiceEncoder(device="cpu", verbose=False)
        return _ENCODER


def speaker_embedding(wav: Path) -> np.ndarray:
    """resemblyzer's d-vector of the speech in ``wav`` (16 kHz, silences trimmed by its VAD)."""
    from resemblyzer import preprocess_wav

    return _encoder().embed_utterance(preprocess_wav(Path(wav)))


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def voice_gain(reference_wav: Path, shaped_wav: Path, unshaped_wav: Path) -> float:
    """similarity(reference, shaped) - similarity(reference, unshaped); > 0: the shaping helps."""
    ref = speaker_embedding(reference_wav)
    return _cosine(ref, speaker_embedding(shaped_wav)) - _cosine(ref, speaker_embedding(unshaped_wav))
