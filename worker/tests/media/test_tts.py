import itertools
import math

import pytest
import soundfile as sf

from likeness_worker.media.errors import BadInput
from likeness_worker.media.tts import espeak_voice_for, synthesize_espeak
from likeness_worker.media.voice import measure_voice

from .conftest import read_mono, rms_db

NARRATION = ("Welcome to Likeness. We turn a few photos and a voice sample into a talking "
             "video. This clip was made entirely on a laptop!")


@pytest.fixture(scope="module")
def spoken(tools, tmp_path_factory):
    out = tmp_path_factory.mktemp("tts") / "speech.wav"
    return out, synthesize_espeak(NARRATION, out)


def test_wav_format_and_duration(spoken):
    path, words = spoken
    info = sf.info(str(path))
    assert (info.samplerate, info.channels, info.subtype) == (24000, 1, "PCM_16")
    assert 5.0 < info.duration < 12.0
    # the last word ends just before the end of the file (0.2 s tail kept)
    assert 0.0 <= info.duration - words[-1]["end"] <= 0.3


def test_every_word_is_timed_in_order(spoken):
    _, words = spoken
    assert [w["word"] for w in words] == NARRATION.split()
    for a, b in itertools.pairwise(words):
        assert a["start"] < a["end"] <= b["start"] + 1e-6
    assert words[0]["start"] < 0.2


def test_word_intervals_hold_speech_and_pauses_hold_silence(spoken):
    path, words = spoken
    x, sr = read_mono(path)
    loud = rms_db(x)
    for w in words:
        seg = x[int(w["start"] * sr): int(w["end"] * sr)]
        assert rms_db(seg) > loud - 20, f"no speech energy in {w}"
    # the sentence breaks: the gap after "Likeness." and after "video." is quiet
    for i, w in enumerate(words[:-1]):
        if w["word"].endswith("."):
            gap = x[int((w["end"] + 0.02) * sr): int((words[i + 1]["start"] - 0.02) * sr)]
            assert gap.size > 0.05 * sr and rms_db(gap) < loud - 25, f"no pause after {w}"


def test_pitch_follows_the_voice_profile(tools, tmp_path):
    for target in (95.0, 140.0, 210.0):
        out = tmp_path / f"p{int(target)}.wav"
        synthesize_espeak(NARRATION, out, {"median_f0_hz": target})
        measured = measure_voice(out)["median_f0_hz"]
        assert abs(math.log(measured / target)) < math.log(1.15), (target, measured)


def test_voice_mapping_defaults():
    assert espeak_voice_for(None) == ("en-us", 50)
    assert espeak_voice_for({"median_f0_hz": None}) == ("en-us", 50)
    assert espeak_voice_for({"median_f0_hz": 40})[1] == 0
    assert espeak_voice_for({"median_f0_hz": 220})[0] == "en-us+f3"


def test_non_ascii_words_keep_their_timings(tools, tmp_path):
    text = "Café crème — brûlée, naïve résumé."
    words = synthesize_espeak(text, tmp_path / "fr.wav")
    joined = " ".join(w["word"] for w in words)
    assert joined == text
    assert all(w["end"] > w["start"] for w in words)


@pytest.mark.parametrize("text", ["", "   ", "... !"])
def test_empty_text_is_bad_input(tools, tmp_path, text):
    with pytest.raises(BadInput):
        synthesize_espeak(text, tmp_path / "x.wav")


def test_espeak_phoneme_timings_come_from_its_events(tools, tmp_path):
    phonemes: list[dict] = []
    out = tmp_path / "ph.wav"
    words = synthesize_espeak(NARRATION, out, phonemes=phonemes)
    assert len(phonemes) > 3 * len(words)
    for a, b in itertools.pairwise(phonemes):
        assert a["start"] < a["end"] <= b["start"] + 1e-9
    # each phoneme lies in a word (pauses between words hold none), vowels carry speech energy
    for p in phonemes:
        assert any(w["start"] - 0.02 <= p["start"] and p["end"] <= w["end"] + 0.05 for w in words), p
    x, sr = read_mono(out)
    loud = rms_db(x)
    vowels = [p for p in phonemes if p["phoneme"][0] in "aeiouæɑɐɒɔəɛɜɪʊʌ"]
    assert all(rms_db(x[int(p["start"] * sr): int(p["end"] * sr)]) > loud - 20 for p in vowels)
