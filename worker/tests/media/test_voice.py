import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from likeness_worker.media.errors import BadInput
from likeness_worker.media.voice import TARGET_LUFS, loudness, measure_voice, prepare_voice, speech_mask

from .conftest import read_mono

ALSA = Path("/usr/share/sounds/alsa")


def _pad_with_silence(src: Path, out: Path, before: float, after: float, gain: float = 0.25,
                      noise_db: float = -70.0) -> float:
    """Write src between stretches of (near) silence; return the speech duration."""
    x, sr = read_mono(src)
    rng = np.random.default_rng(0)
    noise = lambda n: rng.normal(0, 10 ** (noise_db / 20), n).astype(np.float32)  # noqa: E731
    y = np.concatenate([noise(int(before * sr)), x * gain, noise(int(after * sr))])
    sf.write(out, y, sr, subtype="PCM_16")
    return len(x) / sr


def _speech_extent(path: Path) -> float:
    x, sr = read_mono(path)
    idx = np.flatnonzero(speech_mask(x, sr))
    return (idx[-1] - idx[0] + 1) * 0.02


def test_prepare_trims_silence_and_normalises(espeak_speech, tmp_path):
    src = tmp_path / "padded.wav"
    speech = _pad_with_silence(espeak_speech, src, before=2.0, after=3.0)
    # an mp3 upload, as a phone would send: anything ffmpeg decodes is fine
    mp3 = tmp_path / "padded.mp3"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), str(mp3)], check=True)
    clip = prepare_voice(mp3, tmp_path / "ref.wav")
    info = sf.info(str(clip.path))
    assert (info.samplerate, info.channels, info.subtype) == (24000, 1, "PCM_16")
    # 5 s of silence removed; what remains is the speech plus a little edge padding
    assert speech - 0.3 <= clip.duration_sec <= speech + 0.5
    assert abs(info.frames / info.samplerate - clip.duration_sec) < 0.01
    assert _speech_extent(clip.path) >= clip.duration_sec - 0.5
    # loudness measured independently on the output file
    assert abs(loudness(clip.path)["input_i"] - TARGET_LUFS) <= 2.0
    assert abs(clip.loudness_lufs - TARGET_LUFS) <= 2.0


def test_prepare_cuts_to_max_window(espeak_speech, tmp_path):
    clip = prepare_voice(espeak_speech, tmp_path / "ref.wav", max_sec=3.0)
    assert 2.9 <= clip.duration_sec <= 3.0
    x, sr = read_mono(clip.path)
    assert speech_mask(x, sr).mean() > 0.6  # the window picked is mostly speech


@pytest.mark.skipif(not (ALSA / "Front_Center.wav").exists(), reason="alsa-utils sounds absent")
def test_prepare_recorded_human_speech(tmp_path, tools):
    # three short recorded phrases (a human voice) with silence around them
    joined = tmp_path / "alsa.wav"
    names = ["Front_Center.wav", "Front_Left.wav", "Rear_Right.wav"]
    inputs = sum((["-i", str(ALSA / n)] for n in names), [])
    subprocess.run(["ffmpeg", "-v", "error", "-y", *inputs, "-filter_complex",
                    "[0][1][2]concat=n=3:v=0:a=1,adelay=1500,apad=pad_dur=2", str(joined)],
                   check=True)
    clip = prepare_voice(joined, tmp_path / "ref.wav")
    total = sf.info(str(joined)).duration
    assert clip.duration_sec < total - 2.5
    assert abs(clip.loudness_lufs - TARGET_LUFS) <= 2.0
    m = measure_voice(clip.path)
    assert m["median_f0_hz"] is not None and 70 <= m["median_f0_hz"] <= 300


def test_silence_is_bad_input(tmp_path, tools):
    src = tmp_path / "silence.wav"
    sf.write(src, np.zeros(12000, np.float32), 24000)
    with pytest.raises(BadInput, match="no speech"):
        prepare_voice(src, tmp_path / "ref.wav")


def test_short_speech_is_bad_input(espeak_speech, tmp_path):
    x, sr = read_mono(espeak_speech)
    src = tmp_path / "short.wav"
    sf.write(src, np.concatenate([np.zeros(sr, np.float32), x[: int(0.5 * sr)],
                                  np.zeros(sr, np.float32)]), sr)
    with pytest.raises(BadInput, match=r"only 0\.\d s of speech"):
        prepare_voice(src, tmp_path / "ref.wav")


def test_not_audio_is_bad_input(tmp_path, tools):
    src = tmp_path / "voice.m4a"
    src.write_bytes(b"definitely not audio" * 100)
    with pytest.raises(BadInput, match="cannot read the voice sample") as exc:
        prepare_voice(src, tmp_path / "ref.wav")
    assert str(tmp_path) not in str(exc.value)  # no server paths in the user's message


def test_measure_voice_espeak_male(espeak_speech, tmp_path):
    clip = prepare_voice(espeak_speech, tmp_path / "ref.wav")
    m = measure_voice(clip.path)
    assert 85 <= m["median_f0_hz"] <= 150
    assert m["f0_min_hz"] < m["median_f0_hz"] < m["f0_max_hz"]
    assert m["f0_min_hz"] >= 40 and m["f0_max_hz"] <= 250
    # espeak at 175 wpm: about 4-5 syllables per second of speech
    assert 2.5 <= m["speaking_rate_sps"] <= 7.0
    assert abs(m["duration_sec"] - clip.duration_sec) < 0.01


def test_measure_voice_tracks_pitch(tmp_path, tools):
    # a synthetic vowel-like tone at 180 Hz with harmonics, amplitude-modulated into "syllables"
    sr = 24000
    t = np.arange(int(3 * sr)) / sr
    tone = sum(np.sin(2 * np.pi * 180 * k * t) / k for k in range(1, 6))
    env = 0.5 * (1 - np.cos(2 * np.pi * 4 * t))  # 4 bursts per second
    wav = tmp_path / "tone.wav"
    sf.write(wav, (0.2 * tone * env).astype(np.float32), sr)
    m = measure_voice(wav)
    assert abs(m["median_f0_hz"] - 180) < 5
    assert 3.0 <= m["speaking_rate_sps"] <= 5.0


def test_a_playlist_cannot_make_ffmpeg_read_other_files(espeak_speech, tmp_path):
    # An HLS playlist behind an ID3 header sniffs as mp3; unguarded, ffmpeg would decode the
    # local file it names (another user's voice sample, say) as if it were this upload.
    other = tmp_path / "someone-elses.mp3"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(espeak_speech), str(other)], check=True)
    playlist = b"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n" + f"file:{other}\n".encode() + b"#EXT-X-ENDLIST\n"
    id3 = b"ID3\x04\x00\x00\x00\x00\x00\x00"
    src = tmp_path / "sample.mp3"
    src.write_bytes(id3 + playlist)
    with pytest.raises(BadInput, match="cannot read the voice sample"):
        prepare_voice(src, tmp_path / "ref.wav")
