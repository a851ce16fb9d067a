"""media/align.py: word and phoneme timings for speech a GPU tool made, by aligning piper's reading
of the same text to it (MFCC + DTW on the CPU), and the narration in pieces for such tools."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from likeness_worker.media import align
from likeness_worker.media.errors import BadInput
from likeness_worker.media.piper_tts import synthesize_piper
from likeness_worker.media.tts import synthesize_espeak

TEXT = "The quick brown fox jumps over the lazy dog. Then it ran across the field, and nobody saw it again."


@pytest.fixture(scope="module")
def piper_wav(tmp_path_factory) -> tuple[Path, dict]:
    path = tmp_path_factory.mktemp("align") / "piper.wav"
    return path, synthesize_piper(TEXT, path, None)


def _edge_errors(truth: list[dict], got: list[dict], scale: float = 1.0, offset: float = 0.0) -> np.ndarray:
    assert [w["word"] for w in got] == [w["word"] for w in truth]
    return np.array([abs(t[k] * scale + offset - g[k]) for t, g in zip(truth, got, strict=True)
                     for k in ("start", "end")])


def test_piper_slowed_by_atempo_lands_on_the_scaled_truth(tmp_path, tools, piper_wav):
    src, truth = piper_wav
    slow = tmp_path / "slow.wav"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(src), "-af", "atempo=0.8", str(slow)], check=True)
    res = align.align_wav(slow, TEXT)
    err = _edge_errors(truth["words"], res["words"], scale=1 / 0.8)
    assert (err < 0.15).mean() >= 0.9 and np.median(err) < 0.05
    # phonemes too: the same count, each inside the audio, in order
    duration = sf.info(slow).duration
    ph = res["phonemes"]
    assert len(ph) == len(truth["phonemes"]) and [p["phoneme"] for p in ph] == [p["phoneme"] for p in truth["phonemes"]]
    assert all(0 <= p["start"] <= p["end"] <= duration for p in ph)
    assert [p["start"] for p in ph] == sorted(p["start"] for p in ph)
    assert res["alignment"]["method"] == "dtw-mfcc" and res["alignment"]["meanCost"] < 0.3


def test_another_voice_with_silence_before_it_is_timed_close_to_its_own_events(tmp_path, tools):
    wav = tmp_path / "espeak.wav"
    truth = synthesize_espeak(TEXT, wav, None)  # espeak-ng's own word events: another voice entirely
    x, sr = sf.read(wav, dtype="float32")
    padded = tmp_path / "padded.wav"
    sf.write(padded, np.concatenate([np.zeros(sr, np.float32), x]), sr)  # one second of silence first
    res = align.align_wav(padded, TEXT)
    err = _edge_errors(truth, res["words"], offset=1.0)
    assert (err < 0.15).mean() >= 0.8 and np.median(err) < 0.08
    assert res["words"][0]["start"] > 0.9


def test_timings_stay_inside_the_audio_and_in_order(piper_wav, tools):
    src, truth = piper_wav
    x = align.decode_mono(src)
    clipped = x[: int(len(x) * 0.98)]  # the tool cut the tail: timings are clamped, not past the end
    res = align.align_audio(clipped, TEXT, reference=(x, truth))
    duration = len(clipped) / align.SR
    words = res["words"]
    assert all(0 <= w["start"] <= w["end"] <= duration + 1e-6 for w in words)
    assert all(a["end"] <= b["start"] for a, b in zip(words, words[1:], strict=False))


def test_no_words_is_bad_input():
    with pytest.raises(BadInput):
        align.align_audio(np.zeros(16000, np.float32), " ... ")


def test_dtw_recovers_a_known_warp():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(200, 12)).astype(np.float32)
    idx = np.clip(np.round(np.arange(300) / 1.5).astype(int), 0, 199)  # b is a, 1.5 times slower
    b = a[idx] + rng.normal(scale=0.05, size=(300, 12)).astype(np.float32)
    rows, cols, cost = align.dtw_path(a, b)
    src, dst = align.warp_function(rows, cols)
    assert rows[0] == cols[0] == 0 and rows[-1] == 199 and cols[-1] == 299
    assert np.all(np.diff(rows) >= 0) and np.all(np.diff(cols) >= 0)
    assert np.max(np.abs(np.interp([50, 100, 150], src, dst) - np.array([75, 150, 225]))) <= 1.5
    assert cost < 0.05


def test_split_sentences_keeps_whole_sentences_under_the_budget():
    text = ("First sentence here. Second one is a little longer! Third? "
            "A very long sentence, with clauses, that goes on and on, past any sensible budget for one call.")
    chunks = align.split_sentences(text, 40)
    assert " ".join(chunks) == text
    assert all(len(c) <= 40 for c in chunks)
    assert chunks[0] == "First sentence here."
    assert chunks[1] == "Second one is a little longer! Third?"  # short sentences share a chunk
    assert chunks[2:] == ["A very long sentence, with clauses,", "that goes on and on,",  # cut at its commas
                          "past any sensible budget for one call."]
    assert align.split_sentences("Hello. ... World.", 200) == ["Hello. ... World."]
    assert align.split_sentences("  ", 200) == []


def test_join_speech_matches_levels_and_places_pauses():
    sr = 16000
    t = np.arange(sr) / sr
    tone = (0.5 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    quiet = np.concatenate([np.zeros(sr // 2, np.float32), tone * 0.3, np.zeros(sr // 2, np.float32)])
    track, placed = align.join_speech([tone, quiet], sr, pause_s=0.3)
    (o1, y1), (o2, y2) = placed
    assert o1 == 0.0 and o2 == pytest.approx(len(y1) / sr + 0.3, abs=1e-3)
    assert len(y2) < len(quiet) - sr // 2  # edge silence trimmed (50 ms kept)
    assert abs(20 * np.log10(align.speech_rms(y1, sr) / align.speech_rms(y2, sr))) < 1.0
    assert len(track) == int(round(o2 * sr)) + len(y2)
    assert np.max(np.abs(track)) <= 0.89 + 1e-6
