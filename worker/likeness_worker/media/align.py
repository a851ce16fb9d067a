"""Word and phoneme timings for speech that a tool made without them (GPT-SoVITS, F5-TTS), on the
CPU, with no model to download; and the narration in pieces for tools that speak a bounded length.

Timings. The tool's audio says a known text, so a reading of the same text whose timings are known
can be laid over it:

1. piper (``media.piper_tts``, unshaped) reads the text; its timings are exact for its own audio.
2. Both are decoded to 16 kHz mono and described every ``HOP_S`` by MFCCs (25 ms Hann window, 40
   mel bands, cepstra 1-12 and their deltas; c0, the loudness, left out), each utterance
   normalised to zero mean and unit variance (so two voices compare: the cepstral mean carries
   most of the speaker and the channel).
3. Dynamic time warping (symmetric steps, the diagonal weighted 2) over the speech of both, the
   silence before and after it cut by energy; vectorised along anti-diagonals, at most
   ``MAX_FRAMES`` frames a side (the hop grows for longer audio).
4. Every word and phoneme edge of piper's reading is mapped through the warping path (piecewise
   linear), clamped to the audio's duration, kept in order.

The result has the shape the built-in tts engines write to timings.json (``words`` [{word, start,
end}], ``phonemes`` [{phoneme, start, end}], seconds), plus ``alignment`` (method, mean cost of
the path: ~0.1 for the same voice, ~0.5 for another voice saying the same words; much higher
means the audio did not say the text). Measured (tests/test_align.py, 20 words): piper slowed to
0.8x with ffmpeg atempo, every word edge within 0.03 s of the scaled truth; espeak-ng (another
voice entirely) against piper's reading, median error 0.05 s, 97 % of edges within 0.15 s of
espeak's own word events. English only: piper's voice is.

Pieces. ``split_sentences`` cuts a narration into chunks of whole sentences under a character
budget (a tool's limit per call); ``join_speech`` joins the spoken chunks with short pauses, each
chunk's speech brought to the same level (RMS over its active frames), and says where each lies.
"""

from __future__ import annotations

import itertools
import math
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf

from . import proc
from .errors import BadInput, Cancelled, ToolFailed

SR = 16000
HOP_S = 0.01
WIN_S = 0.025
N_FFT = 512
N_MELS = 40
N_CEPS = 13  # c0..c12; c0 is dropped
MAX_FRAMES = 4000  # per side: the DTW matrices stay under ~100 MB
SPEECH_DB = 40.0  # a frame is speech when within this many dB of the loud frames
EDGE_FRAMES = 3  # kept around the speech span

_WORD = re.compile(r"\w")


# Features -------------------------------------------------------------------------------------
def decode_mono(path: Path, sr: int = SR, *, cancelled: Callable[[], bool] | None = None) -> np.ndarray:
    """Any audio file as float32 mono samples at ``sr`` (ffmpeg, soxr resampling)."""
    res = proc.run(["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-i", str(path), "-vn", "-ac", "1",
                    "-af", f"aresample={sr}:resampler=soxr", "-f", "f32le", "-c:a", "pcm_f32le", "-"],
                   timeout=120, cancelled=cancelled)
    return np.frombuffer(res.stdout, dtype="<f4").astype(np.float32)


def _mel_filterbank(sr: int, n_fft: int, n_mels: int, fmin: float = 20.0, fmax: float | None = None) -> np.ndarray:
    fmax = fmax or sr / 2 - 200

    def mel(f: np.ndarray | float) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    def hz(m: np.ndarray) -> np.ndarray:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)

    edges = hz(np.linspace(mel(fmin), mel(fmax), n_mels + 2))
    bins = np.fft.rfftfreq(n_fft, 1.0 / sr)
    fb = np.zeros((n_mels, len(bins)), dtype=np.float32)
    for m in range(n_mels):
        lo, mid, hi = edges[m], edges[m + 1], edges[m + 2]
        fb[m] = np.maximum(0.0, np.minimum((bins - lo) / (mid - lo), (hi - bins) / (hi - mid)))
    return fb


def _dct_matrix(n_in: int, n_out: int) -> np.ndarray:
    k = np.arange(n_out)[:, None]
    n = np.arange(n_in)[None, :]
    m = np.cos(math.pi / n_in * (n + 0.5) * k) * math.sqrt(2.0 / n_in)
    m[0] /= math.sqrt(2.0)
    return m.astype(np.float32)


def features(x: np.ndarray, sr: int = SR, hop_s: float = HOP_S) -> tuple[np.ndarray, np.ndarray]:
    """(MFCC 1-12 with deltas, one row per hop, not yet normalised; frame level in dB)."""
    hop = max(1, int(round(hop_s * sr)))
    win = int(round(WIN_S * sr))
    n_fft = max(N_FFT, 1 << (win - 1).bit_length())
    pad = np.pad(x.astype(np.float32), (win // 2, win))
    n = max(1, 1 + (len(pad) - win) // hop)
    idx = np.arange(win)[None, :] + hop * np.arange(n)[:, None]
    frames = pad[np.minimum(idx, len(pad) - 1)] * np.hanning(win).astype(np.float32)
    power = np.abs(np.fft.rfft(frames, n_fft)) ** 2
    logmel = np.log(power @ _mel_filterbank(sr, n_fft, N_MELS).T + 1e-8)
    ceps = logmel @ _dct_matrix(N_MELS, N_CEPS).T
    level = 10.0 * np.log10(np.mean(frames**2, axis=1) + 1e-10)
    c = ceps[:, 1:]
    padded = np.pad(c, ((2, 2), (0, 0)), mode="edge")
    delta = (padded[3:-1] - padded[1:-3] + 2 * (padded[4:] - padded[:-4])) / 10.0
    return np.hstack([c, delta]).astype(np.float32), level.astype(np.float32)


def _normalise(f: np.ndarray) -> np.ndarray:
    return (f - f.mean(axis=0)) / (f.std(axis=0) + 1e-6)


def speech_span(level: np.ndarray) -> tuple[int, int]:
    """[first, last + 1) frames of the speech: level within SPEECH_DB of the loud frames."""
    if level.size == 0:
        return 0, 0
    loud = float(np.percentile(level, 95))
    active = np.flatnonzero(level > loud - SPEECH_DB)
    if active.size == 0:
        return 0, len(level)
    return max(0, int(active[0]) - EDGE_FRAMES), min(len(level), int(active[-1]) + 1 + EDGE_FRAMES)


# DTW ------------------------------------------------------------------------------------------
def dtw_path(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """The least-cost monotonic path from (0, 0) to (len(a)-1, len(b)-1) between two feature
    sequences (cosine distance; steps (1,0) and (0,1) cost c, (1,1) costs 2c), as the row and
    column indexes of its cells, and its cost per step of the longer side."""
    n, m = len(a), len(b)
    if n == 0 or m == 0:
        raise ValueError("dtw_path needs two non-empty sequences")
    an = a / (np.linalg.norm(a, axis=1, keepdims=True) + 1e-8)
    bn = b / (np.linalg.norm(b, axis=1, keepdims=True) + 1e-8)
    cost = (1.0 - an @ bn.T).astype(np.float32)
    acc = np.full((n, m), np.inf, dtype=np.float32)
    step = np.zeros((n, m), dtype=np.int8)  # 0 diagonal, 1 from above (i-1), 2 from the left (j-1)
    acc[0, 0] = cost[0, 0]
    for k in range(1, n + m - 1):  # one anti-diagonal at a time: it depends on the two before it
        i = np.arange(max(0, k - m + 1), min(n - 1, k) + 1)
        j = k - i
        c = cost[i, j]
        diag = np.where((i > 0) & (j > 0), acc[np.maximum(i - 1, 0), np.maximum(j - 1, 0)] + 2 * c, np.inf)
        up = np.where(i > 0, acc[np.maximum(i - 1, 0), j] + c, np.inf)
        left = np.where(j > 0, acc[i, np.maximum(j - 1, 0)] + c, np.inf)
        choices = np.stack([diag, up, left])
        best = np.argmin(choices, axis=0)
        acc[i, j] = choices[best, np.arange(len(i))]
        step[i, j] = best
    rows, cols = [n - 1], [m - 1]
    r, q = n - 1, m - 1
    while r > 0 or q > 0:
        s = step[r, q]
        if s == 0:
            r, q = r - 1, q - 1
        elif s == 1:
            r -= 1
        else:
            q -= 1
        rows.append(r)
        cols.append(q)
    mean_cost = float(acc[n - 1, m - 1]) / (n + m)
    return np.asarray(rows[::-1]), np.asarray(cols[::-1]), mean_cost


def warp_function(rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row frames, the mean column each maps to): a monotonic map for ``np.interp``."""
    uniq, first = np.unique(rows, return_index=True)
    sums = np.add.reduceat(cols.astype(np.float64), first)
    counts = np.diff(np.append(first, len(cols)))
    return uniq.astype(np.float64), np.maximum.accumulate(sums / counts)


# Alignment ------------------------------------------------------------------------------------
def align_audio(
    x: np.ndarray,
    text: str,
    *,
    cancelled: Callable[[], bool] | None = None,
    reference: tuple[np.ndarray, dict] | None = None,
) -> dict:
    """Timings of ``text`` in ``x`` (float32 mono at 16 kHz): {"words", "phonemes", "alignment"}.

    ``reference``: (piper's samples at 16 kHz, its timings) when the caller has them already;
    otherwise piper reads the text here (~0.1 s per second of speech on the CPU, plus loading the
    voice once per process).
    """
    if not _WORD.search(text or ""):
        raise BadInput("the narration is empty: there are no words to time")
    stop = cancelled or (lambda: False)
    duration = len(x) / SR
    if duration <= 0:
        raise ToolFailed("the speech to align holds no audio")
    ref_x, ref_t = reference if reference is not None else piper_reference(text, cancelled=cancelled)
    if stop():
        raise Cancelled("cancelled before aligning the speech")

    hop_s = max(HOP_S, max(len(x), len(ref_x)) / SR / MAX_FRAMES)
    fx, lx = features(x, SR, hop_s)
    fr, lr = features(ref_x, SR, hop_s)
    xs, xe = speech_span(lx)
    rs, re_ = speech_span(lr)
    if xe - xs < 2 or re_ - rs < 2:
        raise ToolFailed("the speech to align is silent")
    # normalised over the speech only: silence would pull the mean toward itself
    rows, cols, mean_cost = dtw_path(_normalise(fr[rs:re_]), _normalise(fx[xs:xe]))
    src, dst = warp_function(rows, cols)

    def at(t: float) -> float:
        f = t / hop_s - rs
        mapped = float(np.interp(f, src, dst)) + xs
        if f > src[-1]:  # past the reference's speech: keep its distance from the end of speech
            mapped = xe - 1 + (f - src[-1])
        elif f < 0:
            mapped = xs + f
        return min(duration, max(0.0, mapped * hop_s))

    words = _monotone([{"word": w["word"], "start": at(w["start"]), "end": at(w["end"])} for w in ref_t["words"]],
                      duration)
    phonemes = _monotone([{"phoneme": p["phoneme"], "start": at(p["start"]), "end": at(p["end"])}
                          for p in ref_t.get("phonemes") or []], duration)
    return {
        "words": words,
        "phonemes": phonemes,
        "alignment": {"method": "dtw-mfcc", "reference": f"piper {ref_t.get('voice')}",
                      "hopSec": round(hop_s, 4), "meanCost": round(mean_cost, 4)},
    }


def align_wav(path: Path, text: str, *, cancelled: Callable[[], bool] | None = None) -> dict:
    """``align_audio`` over an audio file."""
    return align_audio(decode_mono(Path(path), cancelled=cancelled), text, cancelled=cancelled)


def piper_reference(text: str, *, cancelled: Callable[[], bool] | None = None) -> tuple[np.ndarray, dict]:
    """piper's reading of ``text`` (16 kHz samples) and its own timings."""
    from .piper_tts import synthesize_piper

    with tempfile.TemporaryDirectory(prefix="align-") as td:
        wav = Path(td) / "reference.wav"
        timings = synthesize_piper(text, wav, None, cancelled=cancelled)
        return decode_mono(wav, cancelled=cancelled), timings


def _monotone(items: list[dict], duration: float) -> list[dict]:
    """Rounded to ms, inside [0, duration], each start at or after the previous start and end."""
    out: list[dict] = []
    floor = 0.0
    for it in items:
        start = min(duration, max(floor, it["start"]))
        end = min(duration, max(start, it["end"]))
        out.append({**it, "start": round(start, 3), "end": round(end, 3)})
        floor = end
    return out


def shift_timings(timings: dict, offset: float) -> dict:
    """``words`` and ``phonemes`` moved ``offset`` seconds later (a piece placed in a longer file)."""
    def move(items: list[dict]) -> list[dict]:
        return [{**it, "start": round(it["start"] + offset, 3), "end": round(it["end"] + offset, 3)} for it in items]

    return {**timings, "words": move(timings["words"]), "phonemes": move(timings.get("phonemes") or [])}


# Pieces ---------------------------------------------------------------------------------------
_SENTENCE_END = re.compile(r"(?<=[.!?;:…])[\"')\]]*\s+|(?<=[。！？；])")
_CLAUSE_END = re.compile(r"(?<=[,，、])\s*")


def split_sentences(text: str, max_chars: int) -> list[str]:
    """``text`` in chunks of whole sentences, each at most ``max_chars`` characters; a sentence
    longer than that is cut at commas, then between words. Chunks without a word are dropped
    (joined to their neighbour)."""
    if max_chars < 20:
        raise ValueError("max_chars must be at least 20")
    text = " ".join((text or "").split())
    pieces: list[str] = []
    for sentence in (s.strip() for s in _SENTENCE_END.split(text)):
        if not sentence:
            continue
        if len(sentence) <= max_chars:
            pieces.append(sentence)
            continue
        for clause in (c.strip() for c in _CLAUSE_END.split(sentence)):
            pieces.extend(_cut_words(clause, max_chars) if len(clause) > max_chars else [clause] if clause else [])
    chunks: list[str] = []
    for piece in pieces:
        if chunks and (len(chunks[-1]) + 1 + len(piece) <= max_chars or not _WORD.search(piece)):
            chunks[-1] += " " + piece
        else:
            chunks.append(piece)
    if len(chunks) > 1 and not _WORD.search(chunks[0]):
        chunks[1] = chunks[0] + " " + chunks[1]
        chunks = chunks[1:]
    return [c for c in chunks if _WORD.search(c)]


def _cut_words(text: str, max_chars: int) -> list[str]:
    out: list[str] = []
    for word in text.split():
        if out and len(out[-1]) + 1 + len(word) <= max_chars:
            out[-1] += " " + word
        else:
            out.append(word)
    return out


def _active(x: np.ndarray, sr: int, frame_s: float = 0.01) -> np.ndarray:
    n = max(1, int(sr * frame_s))
    frames = len(x) // n
    if frames == 0:
        return np.zeros(0, dtype=bool)
    rms = np.sqrt(np.mean(x[: frames * n].reshape(frames, n).astype(np.float64) ** 2, axis=1))
    db = 20 * np.log10(np.maximum(rms, 1e-7))
    return db > max(float(db.max()) - SPEECH_DB, -60.0)


def trim_silence(x: np.ndarray, sr: int, keep_s: float = 0.05) -> np.ndarray:
    """``x`` without the silence before and after its speech (``keep_s`` of it kept each side)."""
    act = _active(x, sr)
    if not act.any():
        return x[:0]
    n = int(sr * 0.01)
    start = max(0, int(np.flatnonzero(act)[0]) * n - int(keep_s * sr))
    end = min(len(x), (int(np.flatnonzero(act)[-1]) + 1) * n + int(keep_s * sr))
    return x[start:end]


def speech_rms(x: np.ndarray, sr: int) -> float:
    """RMS over the active 10 ms frames (the pauses left out)."""
    act = _active(x, sr)
    if not act.any():
        return 0.0
    n = int(sr * 0.01)
    frames = x[: len(act) * n].reshape(len(act), n)[act]
    return float(np.sqrt(np.mean(frames.astype(np.float64) ** 2)))


def join_speech(parts: list[np.ndarray], sr: int, pause_s: float = 0.3,
                peak: float = 0.89) -> tuple[np.ndarray, list[tuple[float, np.ndarray]]]:
    """The spoken chunks as one float32 track: each trimmed of its edge silence, brought to the
    median speech level of all (gain kept within 1/4..4), ``pause_s`` of silence between them,
    the whole scaled down if a peak passes ``peak``. Returns the track and, per chunk, (its
    offset in seconds, its samples as placed) for aligning each chunk on its own. ToolFailed when
    a chunk holds no speech at all."""
    trimmed = [trim_silence(np.asarray(p, dtype=np.float32), sr) for p in parts]
    levels = [speech_rms(p, sr) for p in trimmed]
    silent = [i + 1 for i, v in enumerate(levels) if v <= 0]
    if not parts or silent:
        raise ToolFailed(f"the tool made only silence for chunk {', '.join(map(str, silent))} of {len(parts)}"
                         if parts else "the tool made no speech")
    target = float(np.median(levels))
    gap = np.zeros(int(round(pause_s * sr)), dtype=np.float32)
    out: list[np.ndarray] = []
    placed: list[tuple[int, np.ndarray]] = []
    at = 0
    for p, level in zip(trimmed, levels, strict=True):
        y = p * min(4.0, max(0.25, target / level))
        if out:
            out.append(gap)
            at += len(gap)
        placed.append((at, y))
        out.append(y)
        at += len(y)
    track = np.concatenate(out).astype(np.float32)
    top = float(np.max(np.abs(track))) if track.size else 0.0
    scale = peak / top if top > peak else 1.0
    return track * scale, [(a / sr, y * scale) for a, y in placed]


def resample(x: np.ndarray, sr_from: int, sr_to: int, *, cancelled: Callable[[], bool] | None = None) -> np.ndarray:
    """float32 mono samples from one rate to another (ffmpeg soxr, through a file: proc.run's
    ``input`` can stall on data larger than a pipe's buffer)."""
    if sr_from == sr_to:
        return x.astype(np.float32)
    with tempfile.TemporaryDirectory(prefix="resample-") as td:
        src = Path(td) / "in.wav"
        sf.write(str(src), x.astype(np.float32), sr_from, subtype="FLOAT")
        return decode_mono(src, sr_to, cancelled=cancelled)


def merge_timings(pieces: list[dict]) -> dict:
    """Timings of chunks already shifted to their place, as one: words and phonemes in order."""
    words = list(itertools.chain.from_iterable(p["words"] for p in pieces))
    phonemes = list(itertools.chain.from_iterable(p.get("phonemes") or [] for p in pieces))
    costs = [p["alignment"]["meanCost"] for p in pieces if p.get("alignment")]
    alignment = {**(pieces[0].get("alignment") or {}), "chunks": len(pieces)} if pieces else {}
    if costs:
        alignment["meanCost"] = round(float(np.mean(costs)), 4)
        alignment["worstChunkCost"] = round(max(costs), 4)
    return {"words": words, "phonemes": phonemes, "alignment": alignment}
