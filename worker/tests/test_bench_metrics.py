"""The bench's figures (likeness_worker.bench): synthetic landmarks and audio with known answers,
then a real clip of the astronaut's face moved by a similarity (head motion, no articulation)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from likeness_worker.bench import metrics as M

FPS = 25.0
RNG = np.random.default_rng(7)


def face(frames: int = 1) -> np.ndarray:
    """A landmark set shaped like a face where it matters: eye corners 40 px apart, cheek sides
    80 px apart, closed inner lips; the other points anywhere on the face."""
    lm = RNG.uniform(10, 90, size=(478, 2))
    lm[33], lm[133], lm[362], lm[263] = (30, 40), (45, 40), (55, 40), (70, 40)
    lm[234], lm[454] = (10, 50), (90, 50)
    for upper, lower in M.INNER_LIP_PAIRS:
        lm[upper] = lm[lower] = (50 + (upper % 5), 75)
    for p1, p2, p3, p4, p5, p6 in M.EYES:  # eyes open: EAR 0.3
        x0, x1 = lm[p1, 0], lm[p4, 0]
        for top, bottom, t in ((p2, p6, 1 / 3), (p3, p5, 2 / 3)):
            x = x0 + t * (x1 - x0)
            lm[top], lm[bottom] = (x, 40 - 0.15 * abs(x1 - x0)), (x, 40 + 0.15 * abs(x1 - x0))
    return np.repeat(lm[None], frames, axis=0)


def open_mouth(lm: np.ndarray, opening: np.ndarray) -> np.ndarray:
    """Move the lower inner lip down by `opening` x the inter-ocular distance, per frame."""
    lm = lm.copy()
    iod = M.inter_ocular(lm)
    for _, lower in M.INNER_LIP_PAIRS:
        lm[:, lower, 1] += opening * iod
    return lm


def syllables(frames: int) -> np.ndarray:
    """A speech-like energy in dB: 4 Hz syllables in three phrases, silence between them."""
    t = np.arange(frames) / FPS
    speaking = (t % 3.0) < 2.2
    return np.where(speaking, -20 + 12 * np.sin(2 * np.pi * 4 * t), -90.0)


# ---------------------------------------------------------------------------------------------


def test_mouth_opening_is_the_inner_lip_gap_over_the_eye_distance():
    lm = open_mouth(face(3), np.array([0.0, 0.1, 0.3]))
    np.testing.assert_allclose(M.mouth_opening(lm), [0.0, 0.1, 0.3], atol=1e-9)
    # The same face twice as large: same figure.
    np.testing.assert_allclose(M.mouth_opening(lm * 2), [0.0, 0.1, 0.3], atol=1e-9)


def test_frame_energy_measures_the_audio_under_each_frame():
    sr = 16000
    t = np.arange(sr) / sr
    audio = np.concatenate([0.5 * np.sin(2 * np.pi * 220 * t), np.zeros(sr)]).astype(np.float32)
    db = M.frame_energy_db(audio, sr, FPS, 60)  # 2.4 s of frames for 2 s of audio
    np.testing.assert_allclose(db[:25], 20 * np.log10(0.5 / np.sqrt(2)), atol=0.1)
    assert (db[25:] <= -119).all()


def test_lipsync_r_is_high_when_the_mouth_follows_the_speech_and_low_when_it_does_not():
    energy = syllables(300)
    env = M.speech_envelope(energy)
    follows = 0.02 + 0.3 * (env - env.min()) / (env.max() - env.min())
    r = M.lipsync_r(M.mouth_opening(open_mouth(face(300), follows)), energy)
    assert r > 0.95
    # A still mouth with detector jitter (today's kenburns video): no correlation.
    still = M.mouth_opening(open_mouth(face(300), 0.11 + RNG.normal(0, 0.003, 300)))
    assert abs(M.lipsync_r(still, energy)) < 0.2
    # Open on silence, closed on speech: strongly negative.
    assert M.lipsync_r(follows.max() - follows, energy) < -0.9
    # Frames without a face are left out, not counted as closed.
    gaps = follows.copy()
    gaps[::10] = np.nan
    assert M.lipsync_r(gaps, energy) > 0.95


def test_silent_closed_counts_silent_frames_away_from_speech():
    energy = syllables(300)
    silent = M.silent_mask(energy, FPS)
    quiet = energy < -60
    assert silent.sum() > 0 and not (silent & ~quiet).any()
    # Frames within 80 ms (2 frames) of speech are not counted as silent.
    edges = np.flatnonzero(np.diff(quiet.astype(int)))
    for e in edges:
        assert not silent[max(e - 1, 0) : e + 3].any()

    closed_on_silence = np.where(quiet, 0.0, 0.25)
    share, n = M.silent_closed(closed_on_silence, energy, FPS)
    assert share == 1.0 and n == silent.sum()
    parted = np.full(300, 0.11)  # the astronaut's parted smile, never closing
    assert M.silent_closed(parted, energy, FPS)[0] == 0.0
    half = np.where(quiet & (np.arange(300) % 2 == 0), 0.0, 0.2)
    assert 0.3 < M.silent_closed(half, energy, FPS)[0] < 0.7
    # No silence at all: nothing to measure.
    assert np.isnan(M.silent_closed(parted, np.full(300, -20.0), FPS)[0])


def similarity(lm: np.ndarray, angle: float, scale: float, shift: tuple[float, float]) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    centre = lm.mean(0)
    return scale * (lm - centre) @ np.array([[c, -s], [s, c]]).T + centre + np.array(shift)


def test_identity_drift_ignores_head_motion_and_articulation():
    base = face()[0]
    frames = [similarity(base, 0.02 * i, 1 + 0.01 * i, (i, -0.5 * i)) for i in range(50)]
    lm = open_mouth(np.stack(frames), 0.3 * (np.arange(50) % 2))  # the mouth moves: not drift
    lm[:, 152] += 5.0  # nor does the chin
    assert M.identity_drift(lm) < 1e-9


def test_identity_drift_measures_the_shape_changing():
    base = face(60)
    width = 80.0
    sigma = 0.01 * width  # each stable point jitters by 1 % of the face width per axis
    noisy = base.copy()
    noisy[1:] += RNG.normal(0, sigma, size=noisy[1:].shape)
    moved = np.stack([similarity(f, 0.1, 1.2, (3, 4)) for f in noisy])
    drift = M.identity_drift(moved)
    # The mean length of a 2-D Gaussian step is sigma * sqrt(pi / 2) ~ 1.25 sigma; the similarity
    # fit absorbs a little of it.
    assert 0.01 < drift < 0.014
    assert np.isnan(M.identity_drift(np.full((5, 478, 2), np.nan)))


def test_blinks_are_dips_of_the_eye_aspect_ratio():
    lm = face(50)
    for i, depth in ((10, 0.9), (11, 0.2), (12, 0.6), (30, 0.5)):  # a blink at 11, one at 30
        for _p1, p2, p3, _p4, p5, p6 in M.EYES:
            for top, bottom in ((p2, p6), (p3, p5)):
                mid = (lm[i, top] + lm[i, bottom]) / 2
                lm[i, top] = mid + depth * (lm[i, top] - mid)
                lm[i, bottom] = mid + depth * (lm[i, bottom] - mid)
    ear = M.eye_aspect_ratio(lm)
    assert ear[0] == pytest.approx(0.3)
    assert M.blink_frames(ear).tolist() == [11, 30]


def test_spread_extremes_picks_distinct_moments():
    v = np.array([0.1, 0.9, 0.95, 0.2, 0.1, 0.8, np.nan, 0.3])
    assert M.spread_extremes(v, 2, 2, largest=True) == [2, 5]
    assert M.spread_extremes(v, 3, 1, largest=False) == [0, 4, 3]


# ---------------------------------------------------------------------------------------------
# A real clip: the astronaut's face, turned and zoomed a little each frame (intended head
# motion), over one second of tone then one of silence.


@pytest.fixture(scope="module")
def astronaut_clip(tools, tmp_path_factory) -> Path:
    import cv2
    from skimage import data

    rgb = data.astronaut()[20:276, 100:356]  # 256 px around the face
    out = tmp_path_factory.mktemp("bench") / "clip.mp4"
    ff = subprocess.Popen(
        ["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "256x256", "-r", "25", "-i", "-",
         "-f", "lavfi", "-i", "sine=frequency=220:duration=1,apad=whole_dur=2",
         "-c:v", "libx264", "-crf", "18", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(out)],
        stdin=subprocess.PIPE)
    for i in range(50):
        m = cv2.getRotationMatrix2D((128, 110), 0.2 * i, 1 + 0.004 * i)
        ff.stdin.write(cv2.warpAffine(rgb, m, (256, 256), borderMode=cv2.BORDER_REFLECT).tobytes())
    ff.stdin.close()
    assert ff.wait() == 0
    return out


def test_a_real_face_clip_is_measured(astronaut_clip, tmp_path):
    from likeness_worker.bench.measure import AUDIO_RATE, contact_sheet, decode_audio, face_landmarks

    lm, fps = face_landmarks(astronaut_clip)
    assert fps == 25.0 and len(lm) == 50
    assert np.isfinite(lm).all()  # the face is found on every frame
    opening = M.mouth_opening(lm)
    # The parted smile of the photo: open, and steady while nothing articulates.
    assert 0.07 < np.median(opening) < 0.16 and np.std(opening) < 0.02
    # Turning and zooming is intended motion, not drift.
    assert M.identity_drift(lm) < 0.01

    audio = decode_audio(astronaut_clip)
    assert abs(len(audio) / AUDIO_RATE - 2.0) < 0.1
    energy = M.frame_energy_db(audio, AUDIO_RATE, fps, len(lm))
    assert energy[:20].min() > energy[30:].max() + 30  # the tone, then silence
    share, n = M.silent_closed(opening, energy, fps)
    assert n > 15 and share == 0.0  # silent frames found; the smile never closes

    sheet = tmp_path / "sheet.png"
    shown = contact_sheet(astronaut_clip, lm, opening, M.eye_aspect_ratio(lm), fps, sheet)
    import cv2

    img = cv2.imread(str(sheet))
    assert img.shape[0] == 3 * (192 + 22) and img.shape[1] == 4 * 192
    assert len(shown["open"]) == 4 and len(shown["closed"]) == 4 and len(shown["blink"]) >= 1
    assert img[:192, :192].std() > 20  # a picture, not an empty tile
