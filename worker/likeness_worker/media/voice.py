"""The voice sample: clean reference clip (``prepare``) and its measured prosody (``train_voice``)."""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from . import proc
from .errors import BadInput, ToolFailed, ToolTimeout

SAMPLE_RATE = 24000
TARGET_LUFS = -20.0
TARGET_TP = -1.5
FRAME_S = 0.02
MIN_SPEECH_S = 1.0
EDGE_PAD_S = 0.15
MAX_INPUT_S = 600  # decode at most the first 10 minutes of an upload


@dataclass
class VoiceClip:
    path: Path
    duration_sec: float
    loudness_lufs: float


def _frame_db(x: np.ndarray, sr: int) -> np.ndarray:
    n = int(round(FRAME_S * sr))
    frames = len(x) // n
    if frames == 0:
        return np.zeros(0)
    rms = np.sqrt(np.mean(x[: frames * n].reshape(frames, n).astype(np.float64) ** 2, axis=1))
    return 20 * np.log10(np.maximum(rms, 1e-6))


def speech_mask(x: np.ndarray, sr: int) -> np.ndarray:
    """Per 20 ms frame: is it speech? Energy above an adaptive threshold.

    Threshold = the louder of (loud frames' level - 30 dB), (noise floor + 8 dB), -55 dBFS;
    frames shorter than 60 ms between two speech frames are bridged (stops inside words).
    """
    db = _frame_db(x, sr)
    if db.size == 0:
        return np.zeros(0, dtype=bool)
    loud = float(np.percentile(db, 95))
    floor = float(np.percentile(db, 10))
    thr = max(loud - 30.0, floor + 8.0, -55.0)
    mask = db > thr
    idx = np.flatnonzero(mask)
    if idx.size > 1:
        gaps = np.flatnonzero(np.diff(idx) <= 3)  # gap of <= 2 frames
        for g in gaps:
            mask[idx[g]: idx[g + 1]] = True
    return mask


# The voice sample is the user's file: ffmpeg may read it only as a plain audio container, from
# this one file. A playlist or concat script (HLS behind an ID3 header sniffs as mp3) would
# otherwise make ffmpeg open other files on this machine.
AUDIO_DEMUXERS = "wav,mp3,ogg,flac,matroska,webm,mov,mp4,m4a,3gp,3g2,mj2"


def _decode(src: Path, timeout: float, cancelled: Callable[[], bool] | None) -> np.ndarray:
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error",
           "-format_whitelist", AUDIO_DEMUXERS, "-protocol_whitelist", "file",
           "-i", f"file:{src}", "-t",
           str(MAX_INPUT_S), "-vn", "-ac", "1", "-ar", str(SAMPLE_RATE), "-f", "f32le", "-"]
    try:
        out = proc.run(cmd, timeout=timeout, cancelled=cancelled).stdout
    except ToolTimeout:
        raise
    except ToolFailed as exc:
        detail = str(exc).replace(str(src), "voice sample")
        raise BadInput(f"cannot read the voice sample as audio ({detail})") from exc
    return np.frombuffer(out, dtype=np.float32).copy()


_LOUDNORM_JSON = re.compile(r"\{[^{}]*\"input_i\"[^{}]*\}", re.S)


def loudness(path: Path, timeout: float = 60.0,
             cancelled: Callable[[], bool] | None = None, *,
             target_lufs: float = TARGET_LUFS) -> dict:
    """EBU R128 measurement by ffmpeg's loudnorm (first pass): input_i, input_tp, input_lra,
    input_thresh and target_offset (towards ``target_lufs``) for a second, linear pass."""
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-i", str(path), "-map", "0:a:0", "-af",
           f"loudnorm=I={target_lufs}:TP={TARGET_TP}:LRA=20:print_format=json", "-f", "null", "-"]
    res = proc.run(cmd, timeout=timeout, cancelled=cancelled)
    m = _LOUDNORM_JSON.search(res.stderr.decode("utf-8", "replace"))
    if not m:
        raise ToolFailed("ffmpeg loudnorm printed no measurement")
    return {k: float(v) for k, v in json.loads(m.group(0)).items()
            if k != "normalization_type"}


def _best_window(mask: np.ndarray, n: int) -> int:
    """First frame of the n-frame window with the most speech, preferring pauses at its edges."""
    cs = np.concatenate([[0], np.cumsum(mask.astype(np.int64))])
    starts = np.arange(0, len(mask) - n + 1)
    score = (cs[starts + n] - cs[starts]).astype(np.float64)
    # cutting inside a word costs about a quarter second of speech
    score -= 12.0 * mask[starts] + 12.0 * mask[starts + n - 1]
    return int(starts[int(np.argmax(score))])


def prepare_voice(
    src: Path,
    out_wav: Path,
    max_sec: float = 12.0,
    *,
    target_lufs: float = TARGET_LUFS,
    timeout: float = 120.0,
    cancelled: Callable[[], bool] | None = None,
) -> VoiceClip:
    """Decode, trim silence, pick the best <= ``max_sec`` window, loudness-normalise.

    Output: mono 24 kHz 16-bit PCM WAV at ``target_lufs`` (two-pass ffmpeg loudnorm, linear
    gain when the true peak allows). Raises ``BadInput`` when there is < 1 s of speech.
    """
    x = _decode(Path(src), timeout, cancelled)
    sr = SAMPLE_RATE
    n = int(round(FRAME_S * sr))
    mask = speech_mask(x, sr)
    speech_s = float(mask.sum()) * FRAME_S
    if speech_s < MIN_SPEECH_S:
        heard = "no speech" if speech_s == 0 else f"only {speech_s:.1f} s of speech"
        raise BadInput(f"the voice sample has {heard} (need at least {MIN_SPEECH_S:g} s; "
                       "record 5-15 s of clear speech)")
    idx = np.flatnonzero(mask)
    pad = int(round(EDGE_PAD_S / FRAME_S))
    f0, f1 = max(0, idx[0] - pad), min(len(mask), idx[-1] + 1 + pad)
    win = int(max_sec / FRAME_S)
    if f1 - f0 > win:
        f0 = f0 + _best_window(mask[f0:f1], win)
        f1 = f0 + win
    clip = x[f0 * n: f1 * n].astype(np.float32)
    fade = min(len(clip) // 4, int(0.01 * sr))
    if fade > 0:
        ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
        clip[:fade] *= ramp
        clip[-fade:] *= ramp[::-1]

    out_wav = Path(out_wav)
    out_wav.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_wav.parent) as td:
        raw = Path(td) / "clip.wav"
        sf.write(raw, clip, sr, subtype="FLOAT")
        m = loudness(raw, timeout, cancelled, target_lufs=target_lufs)
        if not np.isfinite(m["input_i"]):
            raise BadInput("the voice sample is silent")
        norm = (f"loudnorm=I={target_lufs}:TP={TARGET_TP}:LRA=20:measured_I={m['input_i']}:"
                f"measured_TP={m['input_tp']}:measured_LRA={m['input_lra']}:"
                f"measured_thresh={m['input_thresh']}:offset={m['target_offset']}:linear=true")
        tmp = Path(td) / "out.wav"
        proc.run(["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-i", str(raw), "-af",
                  norm, "-ar", str(sr), "-ac", "1", "-c:a", "pcm_s16le", str(tmp)],
                 timeout=timeout, cancelled=cancelled)
        final = loudness(tmp, timeout, cancelled, target_lufs=target_lufs)
        os.replace(tmp, out_wav)
    info = sf.info(str(out_wav))
    return VoiceClip(path=out_wav, duration_sec=round(info.frames / info.samplerate, 3),
                     loudness_lufs=round(final["input_i"], 2))


def _pitch_values(snd) -> np.ndarray:
    """Voiced F0 values (Hz). Two passes (De Looze & Hirst): a wide search, then a range
    fitted to this speaker (0.75 x Q1 .. 2 x Q3) to avoid octave jumps."""
    p = snd.to_pitch_ac(time_step=0.01, pitch_floor=60.0, pitch_ceiling=700.0)
    f = p.selected_array["frequency"]
    f = f[f > 0]
    if f.size < 5:
        return f
    q1, q3 = np.percentile(f, [25, 75])
    floor, ceil = max(40.0, 0.75 * q1), min(1000.0, 2.0 * q3)
    p = snd.to_pitch_ac(time_step=0.01, pitch_floor=floor, pitch_ceiling=ceil)
    f2 = p.selected_array["frequency"]
    return f2[f2 > 0]


def _syllable_nuclei(snd) -> int:
    """Count syllable nuclei: intensity peaks (de Jong & Wempe 2009).

    Peaks above (99th-percentile intensity - 25 dB), separated from the previous kept peak
    by a dip of at least 2 dB, and voiced (pitch defined at the peak).
    """
    intensity = snd.to_intensity(minimum_pitch=50.0)
    vals = intensity.values[0]
    times = intensity.xs()
    if vals.size < 3:
        return 0
    thr = float(np.percentile(vals, 99)) - 25.0
    pitch = snd.to_pitch_ac(time_step=0.01, pitch_floor=60.0, pitch_ceiling=500.0)
    peaks = [i for i in range(1, len(vals) - 1)
             if vals[i] > thr and vals[i] >= vals[i - 1] and vals[i] > vals[i + 1]]
    kept: list[int] = []
    for i in peaks:
        if kept:
            j = kept[-1]
            dip = float(vals[j: i + 1].min())
            if min(vals[j], vals[i]) - dip < 2.0:
                if vals[i] > vals[j]:
                    kept[-1] = i
                continue
        kept.append(i)
    voiced = 0
    for i in kept:
        f0 = pitch.get_value_at_time(float(times[i]))
        if not math.isnan(f0) and f0 > 0:
            voiced += 1
    return voiced


FORMANT_CEILING_HZ = 5500.0  # one Burg ceiling for every voice, so two voices' ratios compare


def _formants(snd) -> list[float] | None:
    """Median F1, F2, F3 (Hz) over the voiced frames, or None with too few of them.

    The same fixed analysis for every voice (speaker sample or synthesized): what matters is the
    ratio between two voices (vocal-tract length), not each value on its own."""
    pitch = snd.to_pitch_ac(time_step=0.01, pitch_floor=60.0, pitch_ceiling=500.0)
    f0 = pitch.selected_array["frequency"]
    times = pitch.xs()[f0 > 0]
    if times.size < 20:
        return None
    fm = snd.to_formant_burg(time_step=0.01, max_number_of_formants=5.0,
                             maximum_formant=FORMANT_CEILING_HZ, window_length=0.025)
    out = []
    for i in (1, 2, 3):
        v = np.array([fm.get_value_at_time(i, float(t)) for t in times])
        v = v[np.isfinite(v)]
        if v.size < 10:
            return None
        out.append(round(float(np.median(v)), 1))
    return out


def measure_voice(wav: Path) -> dict:
    """Median F0, F0 range (5th/95th percentile), speaking rate (syllables/s over the clip),
    articulation rate (syllables/s of speech, pauses left out), median formants F1-F3 over
    voiced frames (``formants_hz``), duration."""
    import parselmouth

    snd = parselmouth.Sound(str(wav))
    if snd.n_channels > 1:
        snd = snd.convert_to_mono()
    duration = float(snd.duration)
    f = _pitch_values(snd)
    median: float | None
    lo: float | None
    hi: float | None
    if f.size:
        median, lo, hi = (float(v) for v in (np.median(f), *np.percentile(f, [5, 95])))
    else:
        median = lo = hi = None
    nuclei = _syllable_nuclei(snd) if duration >= 0.5 else 0
    rate = round(nuclei / duration, 2) if nuclei and duration > 0 else None
    speech_s = float(speech_mask(snd.values[0], int(snd.sampling_frequency)).sum()) * FRAME_S
    artic = round(nuclei / speech_s, 2) if nuclei and speech_s > 0 else None

    def r(v: float | None) -> float | None:
        return None if v is None else round(v, 1)

    return {"median_f0_hz": r(median), "f0_min_hz": r(lo), "f0_max_hz": r(hi),
            "speaking_rate_sps": rate, "articulation_rate_sps": artic, "formants_hz": _formants(snd),
            "duration_sec": round(duration, 3), "voiced_frames": int(f.size)}
