"""Subtitle modes, cues, and burning them in with libass: probed on decoded frames."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import read_frames

from likeness_worker.media.subtitles import MAX_CUE_CHARS, burn_filter, subtitle_cues, subtitle_mode, write_srt

GREY = 96  # the plain frame: mid grey, so white text and a dark outline both show


@pytest.mark.parametrize(("given", "mode"), [
    ("soft", "soft"), ("burned", "burned"), ("none", "none"), (True, "soft"), (False, "none"),
])
def test_subtitle_mode_reads_modes_and_old_booleans(given, mode):
    assert subtitle_mode({"subtitles": given}) == mode


def test_subtitle_mode_refuses_an_unknown_mode():
    with pytest.raises(ValueError, match="'hard'"):
        subtitle_mode({"subtitles": "hard"})


def test_cues_keep_to_the_character_limit():
    text = "Extraordinary possibilities, unprecedented opportunities: everything considered, wonderful."
    words = [{"word": w, "start": i * 0.4, "end": i * 0.4 + 0.3} for i, w in enumerate(text.split())]
    cues = subtitle_cues(words)
    assert all(len(c["text"]) <= MAX_CUE_CHARS for c in cues)
    assert " ".join(c["text"] for c in cues) == text
    # a word longer than the limit stands alone rather than being cut
    long = [{"word": "x" * 50, "start": 0.0, "end": 0.5}, {"word": "y", "start": 0.5, "end": 0.8}]
    assert [c["text"] for c in subtitle_cues(long)] == ["x" * 50, "y"]


def _srt(path: Path, text: str, start: str = "00:00:00,500", end: str = "00:00:02,500") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"1\n{start} --> {end}\n{text}\n", encoding="utf-8")
    return path


def _burn(tmp_path: Path, vf: str, width: int, height: int, seconds: float = 3.0) -> list[np.ndarray]:
    """Encode `seconds` of a plain grey frame through `vf` with x264; the decoded frames (BGR)."""
    out = tmp_path / f"burned_{width}x{height}.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"color=c=0x{GREY:02x}{GREY:02x}{GREY:02x}:s={width}x{height}:r=25",
         "-t", str(seconds), "-vf", vf, "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p", str(out)],
        check=True, capture_output=True, timeout=120)
    frames = read_frames(out)
    assert len(frames) == round(seconds * 25)
    return frames


def _changed(frame: np.ndarray) -> np.ndarray:
    """Pixels that are no longer the plain grey (beyond x264's noise)."""
    return np.abs(frame.astype(np.int16) - GREY).max(axis=2) > 24


def _text_lines(frame: np.ndarray) -> list[tuple[int, int]]:
    """Row spans of white text, one per line of subtitles."""
    rows = np.nonzero((frame.min(axis=2) > 200).sum(axis=1) > 2)[0]
    if rows.size == 0:
        return []
    spans = np.split(rows, np.nonzero(np.diff(rows) > 2)[0] + 1)
    return [(int(s[0]), int(s[-1])) for s in spans]


@pytest.mark.parametrize("size", [(720, 1280), (1280, 720), (512, 512)])
def test_burned_cue_sits_bottom_centre_legibly_and_only_while_it_runs(tools, tmp_path, size):
    w, h = size
    srt = _srt(tmp_path / "subs.srt", "Hello and welcome to the Likeness studio")
    vf = burn_filter(srt, w, h)
    assert vf.startswith("subtitles=") and not vf.endswith(",")
    frames = _burn(tmp_path, f"format=yuv420p,{vf}", w, h)
    before, during, after = frames[5], frames[37], frames[70]  # 0.2 s, 1.5 s, 2.8 s
    for quiet in (before, after):
        assert not _changed(quiet).any()
    changed = _changed(during)
    ys, xs = np.nonzero(changed)
    assert not changed[: h // 2].any()  # the top half is untouched
    assert ys.min() > 0.6 * h and h - ys.max() >= 0.04 * h  # in the lower part, above a margin
    assert abs((xs.min() + xs.max()) / 2 - w / 2) <= 0.02 * w  # centred
    assert xs.min() >= 0.04 * w and w - xs.max() >= 0.04 * w  # inside the side margins
    lines = _text_lines(during)
    assert 1 <= len(lines) <= 2
    # the glyphs of a line (ascender to descender, outline excluded) span ~0.65 of the font size:
    # 5 % of the height (so 3.2 % here), less on tall frames, where the width limits it
    line_h = max(b - a + 1 for a, b in lines)
    assert 0.018 * h <= line_h <= 0.04 * h and line_h >= 14
    # white text with a dark edge: both show against the grey
    assert (during.min(axis=2) > 230).sum() > 200
    assert (during.max(axis=2) < 40).sum() > 200


def test_a_cue_of_the_longest_kind_takes_at_most_two_lines_on_a_tall_frame(tools, tmp_path):
    words = [{"word": w, "start": 0.5 + i * 0.2, "end": 0.6 + i * 0.2}
             for i, w in enumerate(["EXTRAORDINARY", "MAGNIFICENT", "WONDERFUL", "WORDS,", "WILLINGLY"])]
    write_srt(words, tmp_path / "long.srt")
    cue = (tmp_path / "long.srt").read_text().splitlines()[2]
    assert len(cue) == MAX_CUE_CHARS  # in capitals: the widest text a cue can be
    frames = _burn(tmp_path, burn_filter(tmp_path / "long.srt", 720, 1280), 720, 1280, seconds=2.0)
    assert len(_text_lines(frames[20])) == 2  # 0.8 s: the 42-character cue


def test_a_path_with_filter_syntax_in_it_works(tools, tmp_path):
    srt = _srt(tmp_path / "it's: a [tricky], odd; dir\\ name" / "my subs's.srt", "Special characters")
    frames = _burn(tmp_path, f"scale=320:240,{burn_filter(srt, 320, 240)},format=yuv420p", 320, 240, seconds=2.0)
    assert _changed(frames[25])[120:].sum() > 100


def test_an_empty_srt_burns_nothing(tools, tmp_path):
    empty = tmp_path / "empty.srt"
    empty.write_text("", encoding="utf-8")
    vf = burn_filter(empty, 320, 240)
    frames = _burn(tmp_path, f"format=yuv420p,{vf}", 320, 240, seconds=1.0)
    assert not any(_changed(f).any() for f in frames)
