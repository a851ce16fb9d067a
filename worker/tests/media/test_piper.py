"""The piper tts: timings checked against the audio it wrote, shaping measured on the output."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from likeness_worker.media import piper_tts
from likeness_worker.media.errors import BadInput, Cancelled
from likeness_worker.media.piper_tts import VOICES, pick_voice, plan_shaping, synthesize_piper
from likeness_worker.media.voice import measure_voice

from .conftest import read_mono, rms_db

pytestmark = pytest.mark.usefixtures("tools")

JOE = VOICES["en_US-joe-medium"]
# Phrases and words separated by commas and full stops: pauses a silence detector can find.
PAUSES = ("One, two, three. Four, five, six. Red apples, green pears, and yellow lemons. "
          "Stop. Look. Listen. Then, after a short rest, we begin again.")
NARRATION = ("Welcome to Likeness. We turn a few photos and a voice sample into a talking video, "
             "in the year 2024. This clip was made entirely on a laptop!")
# A speaker well apart from joe: higher pitch, a shorter vocal tract, no rate (rate unchanged).
HIGHER = {"median_f0_hz": 165.0, "formants_hz": [f * 1.15 for f in JOE["formants_hz"]]}


def silences(path: Path, below_db: float = 45.0, min_s: float = 0.06) -> list[tuple[float, float]]:
    """Runs of 20 ms windows (5 ms hop) quieter than the loudest one by ``below_db``, in seconds.

    45 dB: piper's pauses are nearly digital silence, while a weak final fricative (the v of
    "five") sits 35-45 dB down and would otherwise count as pause."""
    x, sr = read_mono(path)
    hop, win = int(0.005 * sr), int(0.02 * sr)
    n = (len(x) - win) // hop
    frames = np.lib.stride_tricks.sliding_window_view(x, win)[::hop][:n]
    db = 20 * np.log10(np.maximum(np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1)), 1e-7))
    quiet = np.concatenate([[False], db < db.max() - below_db, [False]])
    edges = np.flatnonzero(np.diff(quiet.astype(int)))
    runs = [((a * hop + win / 2) / sr, (b * hop + win / 2) / sr) for a, b in zip(edges[::2], edges[1::2], strict=True)]
    return [r for r in runs if r[1] - r[0] >= min_s]


def pause_errors(path: Path, words: list[dict]) -> tuple[np.ndarray, int, int]:
    """For every pause the timings predict (>= 80 ms between two words), the distance (s) from
    the word end / next word start to the edges of the silence measured there."""
    runs = silences(path)
    errs, predicted, found = [], 0, 0
    for a, b in itertools.pairwise(words):
        if b["start"] - a["end"] < 0.08:
            continue
        predicted += 1
        hit = [r for r in runs if r[0] < b["start"] and r[1] > a["end"]]  # overlaps the pause
        if not hit:
            continue
        found += 1
        r = max(hit, key=lambda r: min(r[1], b["start"]) - max(r[0], a["end"]))
        errs += [r[0] - a["end"], r[1] - b["start"]]
    return np.abs(np.array(errs)), predicted, found


@pytest.fixture(scope="module")
def spoken(tmp_path_factory):
    out = tmp_path_factory.mktemp("piper") / "speech.wav"
    return out, synthesize_piper(NARRATION, out, None)


def test_wav_format_words_and_phonemes(spoken):
    path, res = spoken
    info = sf.info(str(path))
    assert (info.samplerate, info.channels, info.subtype) == (24000, 1, "PCM_16")
    words, phonemes = res["words"], res["phonemes"]
    assert [w["word"] for w in words] == NARRATION.split()  # "2024" and "in the" merged by espeak
    assert 0.0 <= info.duration - words[-1]["end"] <= 0.25  # the tail is cut to 0.2 s
    for a, b in itertools.pairwise(words):
        assert a["start"] < a["end"] <= b["start"]
    assert res["voice"] == "en_US-joe-medium" and "unshaped" in res["shaping"]["notes"][0]
    # phonemes: in order, each inside one word, and every word has some
    assert len(phonemes) > 3 * len(words)
    for a, b in itertools.pairwise(phonemes):
        assert a["start"] < a["end"] <= b["start"] + 1e-9
    for w in words:
        inside = [p for p in phonemes if w["start"] <= p["start"] and p["end"] <= w["end"]]
        assert inside, w
    assert all(p["phoneme"] and not p["phoneme"].isspace() for p in phonemes)
    assert {"ˈ", " ", ",", "."}.isdisjoint(p["phoneme"] for p in phonemes)  # marks and pauses


def test_vowels_sound_and_pauses_are_quiet(spoken):
    path, res = spoken
    x, sr = read_mono(path)
    loud = rms_db(x)
    vowels = [p for p in res["phonemes"] if p["phoneme"][0] in "aeiouæɑɐɒɔəɛɜɪʊʌ"]
    level = np.array([rms_db(x[int(p["start"] * sr): int(p["end"] * sr)]) for p in vowels]) - loud
    # vowels are the loud part of speech (measured: median -1 dB; 50 ms late: -5 dB); a few
    # reduced ones ("a", "into") are soft
    assert np.median(level) > -2.5 and np.sum(level < -20) <= len(vowels) // 10, level
    w = res["words"]
    for a, b in itertools.pairwise(w):
        if a["word"].endswith("."):  # sentence breaks hold silence
            gap = x[int((a["end"] + 0.02) * sr): int((b["start"] - 0.02) * sr)]
            assert gap.size > 0.05 * sr and rms_db(gap) < loud - 25, (a, b)


@pytest.mark.parametrize("profile", [None, {**HIGHER, "articulation_rate_sps": 4.0}],
                         ids=["unshaped", "shaped"])
def test_word_timings_match_the_pauses_measured_in_the_audio(tmp_path, profile):
    out = tmp_path / "pauses.wav"
    res = synthesize_piper(PAUSES, out, profile)
    errs, predicted, found = pause_errors(out, res["words"])
    ms = errs * 1000
    print(f"\n{'shaped' if profile else 'unshaped'}: {found}/{predicted} pauses found, edge error "
          f"median {np.median(ms):.0f} ms, p90 {np.percentile(ms, 90):.0f} ms, max {ms.max():.0f} ms")
    assert predicted >= 12 and found >= 0.8 * predicted
    assert np.median(ms) < 40 and np.percentile(ms, 90) < 80  # measured: ~10 ms and ~30 ms


def test_shaping_moves_pitch_and_formants_toward_the_profile(tmp_path, spoken):
    plain = measure_voice(spoken[0])
    out = tmp_path / "higher.wav"
    res = synthesize_piper(NARRATION, out, HIGHER)
    m = measure_voice(out)
    sh = res["shaping"]
    assert sh["targetF0Hz"] == HIGHER["median_f0_hz"] and sh["formantRatio"] == pytest.approx(1.15, abs=0.01)
    assert sh["lengthScale"] == sh["durationRatio"] == 1.0 and any("no speaking rate" in n for n in sh["notes"])
    ratio = math.exp(np.mean(np.log(np.array(m["formants_hz"]) / np.array(plain["formants_hz"]))))
    print(f"\nF0 {plain['median_f0_hz']} -> {m['median_f0_hz']} Hz (target {HIGHER['median_f0_hz']}); "
          f"formants {plain['formants_hz']} -> {m['formants_hz']} (x{ratio:.3f}, asked x1.15)")
    assert abs(math.log(m["median_f0_hz"] / HIGHER["median_f0_hz"])) < math.log(1.08)
    assert 1.06 < ratio < 1.25
    # and downwards: a deeper speaker
    low = synthesize_piper(NARRATION, tmp_path / "low.wav", {"median_f0_hz": 70.0})
    assert low["shaping"]["formantRatio"] == 1.0 and any("no formants" in n for n in low["shaping"]["notes"])
    assert abs(math.log(measure_voice(tmp_path / "low.wav")["median_f0_hz"] / 70.0)) < math.log(1.08)


def test_rate_sets_the_length_scale_and_the_duration(tmp_path, spoken):
    base = spoken[1]["words"][-1]["end"]
    slow = synthesize_piper(NARRATION, tmp_path / "slow.wav", {"articulation_rate_sps": 4.0})
    fast = synthesize_piper(NARRATION, tmp_path / "fast.wav", {"articulation_rate_sps": 6.0})
    want_slow, want_fast = slow["shaping"]["durationRatio"], fast["shaping"]["durationRatio"]
    assert want_slow == pytest.approx(JOE["articulation_rate_sps"] / 4.0, abs=0.01) and want_fast < 1
    assert slow["shaping"]["lengthScale"] > want_slow and fast["shaping"]["lengthScale"] < want_fast
    for res, want in ((slow, want_slow), (fast, want_fast)):
        got = res["words"][-1]["end"] / base
        print(f"\nduration x{got:.3f}, asked x{want:.3f} (length scale {res['shaping']['lengthScale']})")
        assert got == pytest.approx(want, rel=0.1)  # the model draws its durations: +-3 % a run
    assert sf.info(str(tmp_path / "slow.wav")).duration > sf.info(str(tmp_path / "fast.wav")).duration
    # a sample read as far-apart phrases: the rate is clamped, and the shaping says so
    crawl = plan_shaping("en_US-joe-medium", {"speaking_rate_sps": 1.0})
    assert crawl["durationRatio"] == piper_tts.DURATION_RATIO[1] and "clamped" in crawl["notes"][0]


def test_the_same_narration_gets_the_same_timings(tmp_path, spoken):
    # A redelivered step may synthesize again: its timings must still fit the other run's audio.
    out, first = spoken
    again = synthesize_piper(NARRATION, tmp_path / "again.wav", None)
    assert again["words"] == first["words"] and again["phonemes"] == first["phonemes"]
    assert sf.info(str(tmp_path / "again.wav")).frames == sf.info(str(out)).frames


def test_voice_table_matches_a_fresh_measurement(tmp_path):
    """VOICES holds each voice's measure_voice() on CALIBRATION_TEXT: it must still be true."""
    out = tmp_path / "cal.wav"
    synthesize_piper(piper_tts.CALIBRATION_TEXT, out, None)
    m = measure_voice(out)
    assert abs(math.log(m["median_f0_hz"] / JOE["median_f0_hz"])) < math.log(1.05), m
    for got, want in zip(m["formants_hz"], JOE["formants_hz"], strict=True):
        assert abs(math.log(got / want)) < math.log(1.06), m
    assert m["articulation_rate_sps"] == pytest.approx(JOE["articulation_rate_sps"], rel=0.12)


def test_voice_choice():
    assert pick_voice(None) == pick_voice({"median_f0_hz": None}) == "en_US-joe-medium"
    assert pick_voice({"median_f0_hz": 210.0}) in VOICES  # the nearest installed voice
    with pytest.raises(BadInput, match="unknown piper voice"):
        synthesize_piper("Hello.", Path("/nonexistent/x.wav"), None, voice="nobody")


@pytest.mark.parametrize("text", ["", "   ", "... !"])
def test_empty_narration_is_bad_input(tmp_path, text):
    with pytest.raises(BadInput):
        synthesize_piper(text, tmp_path / "x.wav", None)


def test_cancel_stops_between_sentences(tmp_path):
    calls = []

    def cancelled() -> bool:
        calls.append(1)
        return len(calls) > 1  # let the first sentence through

    with pytest.raises(Cancelled):
        synthesize_piper(PAUSES, tmp_path / "x.wav", HIGHER, cancelled=cancelled)
    assert len(calls) == 2 and not (tmp_path / "x.wav").exists()


def test_registry_default_tts_is_piper_and_espeak_stays_selectable():
    from likeness_worker.engines import load_engines

    registry = load_engines()
    assert registry.resolve("tts")[0] == "piper"
    assert registry.resolve("tts", {"tts": "espeak"})[0] == "espeak"


@pytest.mark.parametrize("engine", ["piper", "espeak"])
def test_engine_writes_speech_and_timings(tmp_path, engine):
    from likeness_worker.engines import TaskContext, load_engines
    from likeness_worker.storage import LocalStorage

    storage = LocalStorage(tmp_path / "objects")
    storage.put_json("profiles/p/voice_profile.json", {**HIGHER, "speaking_rate_sps": 3.0})
    ctx = TaskContext(
        job_id="job", attempt=1, step="tts", task_kind="tts", engine=engine,
        work_dir=tmp_path / "work", storage=storage,
        command={"kind": "generate_video", "payload": {
            "profile": {"voiceProfileKey": "profiles/p/voice_profile.json"},
            "script": {"narration": "Hello, and welcome to Likeness."}}},
    )
    out = load_engines().resolve("tts", {"tts": engine})[1]().synthesize(ctx)
    timings = storage.get_json(next(a["key"] for a in out.artifacts if a["kind"] == "timings"))
    assert set(timings) == {"durationSec", "words", "phonemes", "voice", "shaping"}
    assert [w["word"] for w in timings["words"]] == ["Hello,", "and", "welcome", "to", "Likeness."]
    assert len(timings["phonemes"]) > 15 and timings["phonemes"][-1]["end"] <= timings["durationSec"]
    assert out.outputs["voice"] == timings["voice"] and out.outputs["shaping"] == timings["shaping"]
    assert out.outputs["durationSec"] == pytest.approx(timings["durationSec"]) and timings["durationSec"] > 1.0
    if engine == "piper":
        assert timings["shaping"]["targetF0Hz"] == HIGHER["median_f0_hz"]


def test_voice_gain_on_the_alsa_speaker(tmp_path):
    """The shaped voice is nearer the demo speaker (ALSA's recordings) than the unshaped one."""
    pytest.importorskip("resemblyzer", reason="the bench extra (resemblyzer) is not installed")
    from likeness_worker.media.voice import prepare_voice
    from likeness_worker.media.voice_similarity import voice_gain

    parts = sorted(Path("/usr/share/sounds/alsa").glob("[FRS]*_*.wav"))
    if len(parts) < 4:
        pytest.skip("ALSA's recorded speech is not installed (apt-get install alsa-utils)")
    x = np.concatenate([read_mono(p)[0] for p in parts])
    sf.write(tmp_path / "alsa.wav", x, read_mono(parts[0])[1])
    ref = prepare_voice(tmp_path / "alsa.wav", tmp_path / "ref.wav").path
    synthesize_piper(NARRATION, tmp_path / "shaped.wav", measure_voice(ref))
    synthesize_piper(NARRATION, tmp_path / "unshaped.wav", None)
    gain = voice_gain(ref, tmp_path / "shaped.wav", tmp_path / "unshaped.wav")
    print(f"\nvoice_gain on ALSA's speaker: {gain:+.3f}")
    assert gain > 0.03
