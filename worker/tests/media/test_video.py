import subprocess

import cv2
import numpy as np
import pytest
from conftest import ASTRONAUT_FACE, read_frames

from likeness_worker.media.errors import Cancelled
from likeness_worker.media.faces import detect_faces
from likeness_worker.media.subtitles import subtitle_cues, write_srt
from likeness_worker.media.tts import synthesize_espeak
from likeness_worker.media.video import (
    OUTPUT_LUFS,
    frame_portrait,
    ken_burns,
    mux,
    probe,
    upscale_lanczos,
)
from likeness_worker.media.voice import loudness

from .conftest import write_rgb


@pytest.fixture(scope="module")
def portrait(astronaut_rgb, tmp_path_factory):
    return write_rgb(tmp_path_factory.mktemp("portrait") / "portrait.png", astronaut_rgb)


@pytest.mark.parametrize("size", [(512, 512), (1280, 720), (720, 1280)])
def test_frame_portrait_places_the_face(portrait, tmp_path, size):
    w, h = size
    out = tmp_path / "scene.png"
    box = frame_portrait(portrait, ASTRONAUT_FACE, out, w, h)
    img = cv2.cvtColor(cv2.imread(str(out)), cv2.COLOR_BGR2RGB)
    assert img.shape[:2] == (h, w)
    assert box["w"] / w <= 0.61  # narrow frames (9:16): the width decides
    assert 0.40 <= box["h"] / h <= 0.55 or box["w"] / w >= 0.59
    assert abs(box["x"] + box["w"] / 2 - w / 2) <= 2
    # measured, not just computed: the detector finds the face where we said it is
    faces = detect_faces(img)
    assert len(faces) == 1
    f = faces[0]
    assert abs(f.x + f.w / 2 - w / 2) < 0.05 * w
    eye_y = (f.keypoints[0][1] + f.keypoints[1][1]) / 2
    assert 0.25 * h <= eye_y <= 0.42 * h


def test_frame_portrait_fills_beyond_the_photo(astronaut_rgb, tmp_path):
    # face close to the left edge: the frame reaches past the photo and gets a blurred fill
    src = write_rgb(tmp_path / "edge.png", np.ascontiguousarray(astronaut_rgb[:, 120:]))
    box = frame_portrait(src, {**ASTRONAUT_FACE, "x": 54}, tmp_path / "s.png", 1280, 720)
    img = cv2.imread(str(tmp_path / "s.png"))
    assert box["filled_fraction"] > 0.1
    assert img[:, :100].mean() > 5  # not black bars


def test_ken_burns_frame_count_and_visible_zoom(portrait, tmp_path):
    still = tmp_path / "scene.png"
    frame_portrait(portrait, ASTRONAUT_FACE, still, 256, 256)
    out = tmp_path / "motion.mp4"
    seen = []
    ken_burns(still, out, 3.02, 256, 256, progress=seen.append)
    info = probe(out, count_frames=True)
    assert info["video_codec"] == "h264" and info["fps"] == 25
    assert info["nb_frames"] == round(3.02 * 25) == 76
    assert info["streams"][0]["pix_fmt"] == "yuv420p"
    assert seen[-1] == 1.0 and seen == sorted(seen) and len(seen) >= 10
    frames = read_frames(out)
    assert len(frames) == 76
    first, last = frames[0].astype(np.float32), frames[-1].astype(np.float32)
    assert np.abs(first - last).mean() > 3  # the picture moved
    # consecutive frames differ only a little: slow and smooth, no jumps
    diffs = [np.abs(frames[i + 1].astype(np.float32) - frames[i]).mean() for i in range(75)]
    assert max(diffs) < 3.0
    # it is a zoom in: the detected face grows from the first to the last frame
    f0 = detect_faces(cv2.cvtColor(frames[0], cv2.COLOR_BGR2RGB))[0]
    f1 = detect_faces(cv2.cvtColor(frames[-1], cv2.COLOR_BGR2RGB))[0]
    assert 1.03 < f1.w / f0.w < 1.15


def test_ken_burns_can_be_cancelled(portrait, tmp_path):
    calls = {"n": 0}

    def cancelled():
        calls["n"] += 1
        return calls["n"] > 5

    out = tmp_path / "m.mp4"
    with pytest.raises(Cancelled):
        ken_burns(portrait, out, 20.0, 256, 256, cancelled=cancelled)
    assert not out.exists()
    assert not list(tmp_path.glob(".*tmp*"))


def test_upscale_keeps_frames_and_fps(portrait, tmp_path):
    small = tmp_path / "small.mp4"
    ken_burns(portrait, small, 1.0, 128, 128)
    big = tmp_path / "big.mp4"
    upscale_lanczos(small, big, 320, 180)
    a, b = probe(small, count_frames=True), probe(big, count_frames=True)
    assert (b["width"], b["height"]) == (320, 180)
    assert b["nb_frames"] == a["nb_frames"] == 25 and b["fps"] == 25


def test_srt_groups_words_and_breaks_at_sentences(tmp_path):
    words = [{"word": w, "start": i * 0.5, "end": i * 0.5 + 0.4}
             for i, w in enumerate(["One", "two", "three.", "Four", "five", "six", "seven", "eight", "nine", "ten", "eleven"])]
    cues = subtitle_cues(words, max_words=4)
    assert [c["text"] for c in cues] == ["One two three.", "Four five six seven",
                                         "eight nine ten eleven"]
    out = tmp_path / "s.srt"
    write_srt(words, out, max_words=4)
    text = out.read_text()
    assert text.startswith("1\n00:00:00,000 --> 00:00:01,400\nOne two three.\n\n2\n00:00:01,500 --> ")
    assert text.count(" --> ") == 3


def test_mux_makes_the_final_mp4(portrait, tmp_path, tools):
    words = synthesize_espeak("Hello from Likeness. This is the final video, with subtitles.",
                              tmp_path / "speech.wav")
    speech = probe(tmp_path / "speech.wav")["duration_sec"]
    # a motion clip 1 s shorter than the speech: the last frame must be held
    ken_burns(portrait, tmp_path / "short.mp4", speech - 1.0, 256, 256)
    write_srt(words, tmp_path / "subs.srt")
    res = mux(tmp_path / "short.mp4", tmp_path / "speech.wav", tmp_path / "video.mp4",
              tmp_path / "subs.srt")
    assert res["has_subtitles"] and (res["width"], res["height"], res["fps"]) == (256, 256, 25)
    info = probe(tmp_path / "video.mp4", count_frames=True)
    codecs = {s["codec_type"]: s["codec_name"] for s in info["streams"]}
    assert codecs == {"video": "h264", "audio": "aac", "subtitle": "mov_text"}
    assert info["sample_rate"] == 48000
    assert abs(info["duration_sec"] - speech) <= 0.04 + 0.03  # AAC priming rounds up a frame
    assert abs(info["video_duration_sec"] - speech) <= 0.04
    assert abs(info["audio_duration_sec"] - speech) <= 0.04
    assert info["nb_frames"] == round(speech * 25)
    # the speech is loudness-normalised for online video (-16 LUFS)
    assert abs(loudness(tmp_path / "video.mp4")["input_i"] - OUTPUT_LUFS) <= 2.0
    # faststart: the moov atom comes before the media data
    head = (tmp_path / "video.mp4").read_bytes()[:200_000]
    assert 0 <= head.find(b"moov") < head.find(b"mdat")
    # the subtitle text survives the round trip
    srt = subprocess.run(["ffmpeg", "-v", "error", "-i", str(tmp_path / "video.mp4"),
                          "-map", "0:s:0", "-f", "srt", "-"], capture_output=True, check=True)
    assert b"Hello from Likeness." in srt.stdout
    # a longer video is cut to the speech
    ken_burns(portrait, tmp_path / "long.mp4", speech + 2.0, 256, 256)
    res2 = mux(tmp_path / "long.mp4", tmp_path / "speech.wav", tmp_path / "v2.mp4", None)
    assert not res2["has_subtitles"]
    assert abs(res2["video_duration_sec"] - speech) <= 0.04


@pytest.mark.parametrize("size", [(720, 1280), (512, 512), (1280, 720)], ids=["9:16", "1:1", "16:9"])
def test_frame_portrait_frames_each_aspect_ratio_without_stretching(astronaut_rgb, portrait, tmp_path, size):
    w, h = size
    box = frame_portrait(portrait, ASTRONAUT_FACE, tmp_path / "scene.png", w, h)
    out = cv2.cvtColor(cv2.imread(str(tmp_path / "scene.png")), cv2.COLOR_BGR2RGB)
    assert out.shape[:2] == (h, w)
    # re-detected in the output: one face, centred, a sensible size, wholly inside with room around it
    faces = detect_faces(out)
    assert len(faces) == 1
    f, src = faces[0], detect_faces(astronaut_rgb)[0]
    assert abs(f.x + f.w / 2 - w / 2) <= 0.02 * w
    assert 0.3 <= f.h / h <= 0.6 and f.w / w <= 0.65
    assert min(f.x, w - f.x - f.w) >= 0.04 * w and min(f.y, h - f.y - f.h) >= 0.1 * h
    assert all(0 < x < w and 0 < y < h for x, y in f.keypoints)
    # not stretched: the face keeps its shape...
    assert abs((f.w / f.h) / (src.w / src.h) - 1) <= 0.03
    # ...and the output, scaled back by 1/s on both axes, matches the source face best; 5 % more
    # on one axis than the other already matches clearly worse
    s = box["h"] / ASTRONAUT_FACE["h"]
    x, y, fw, fh = (ASTRONAUT_FACE[k] for k in ("x", "y", "w", "h"))
    face = cv2.cvtColor(astronaut_rgb[y:y + fh, x:x + fw], cv2.COLOR_RGB2GRAY)
    grey = cv2.cvtColor(out, cv2.COLOR_RGB2GRAY)

    def match(stretch: float) -> float:
        back = cv2.resize(grey, None, fx=1 / (s * stretch), fy=stretch / s, interpolation=cv2.INTER_AREA)
        return float(cv2.matchTemplate(back, face, cv2.TM_CCOEFF_NORMED).max())

    same = match(1.0)
    assert same >= 0.97
    assert same - 0.03 >= max(match(0.95), match(1.05))
