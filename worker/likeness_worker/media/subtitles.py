"""Subtitles from the speech's word timings: cues, SubRip files, and the filter that burns them in."""

from __future__ import annotations

from pathlib import Path

SUBTITLE_MODES = ("soft", "burned", "none")
MAX_CUE_CHARS = 42  # the usual subtitle line; burned in, a cue this long takes at most two lines
# Burned-in style. The font ships in Debian's fonts-dejavu-core (what fontconfig itself prefers).
BURN_FONT = "DejaVu Sans"
FONT_HEIGHT = 0.05  # font size / frame height: 36 px on 720p
MAX_FONT_WIDTHS = 18  # a tall frame caps the font at width / this: two lines hold a cue
MARGIN_BOTTOM = 0.06  # of the frame height
MARGIN_SIDE = 0.05  # of the frame width


def _srt_time(t: float) -> str:
    ms = max(0, int(round(t * 1000)))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d},{ms:03d}"


def subtitle_cues(words: list[dict], max_words: int = 7, max_chars: int = MAX_CUE_CHARS) -> list[dict]:
    """Group words into cues: at most ``max_words`` words and ``max_chars`` characters (a longer
    word stands alone), a new cue after a sentence end."""
    cues: list[list[dict]] = []
    cur: list[dict] = []
    chars = 0
    for w in words:
        word = str(w["word"])
        if cur and chars + 1 + len(word) > max_chars:
            cues.append(cur)
            cur, chars = [], 0
        chars += len(word) + (1 if cur else 0)
        cur.append(w)
        if len(cur) >= max_words or word.rstrip("\"')]»”’").endswith((".", "!", "?", "…")):
            cues.append(cur)
            cur, chars = [], 0
    if cur:
        cues.append(cur)
    out = []
    for i, c in enumerate(cues):
        start, end = float(c[0]["start"]), float(c[-1]["end"])
        nxt = float(cues[i + 1][0]["start"]) if i + 1 < len(cues) else None
        end = max(end, start + 0.3)  # readable minimum, never into the next cue
        if nxt is not None:
            end = min(end, nxt)
        out.append({"start": start, "end": end, "text": " ".join(str(w["word"]) for w in c)})
    return out


def write_srt(words: list[dict], out_srt: Path, max_words: int = 7, max_chars: int = MAX_CUE_CHARS) -> None:
    """SubRip file from word timings ([{word, start, end}] seconds)."""
    lines = []
    for i, c in enumerate(subtitle_cues(words, max_words, max_chars), start=1):
        lines += [str(i), f"{_srt_time(c['start'])} --> {_srt_time(c['end'])}", c["text"], ""]
    out_srt = Path(out_srt)
    out_srt.parent.mkdir(parents=True, exist_ok=True)
    out_srt.write_text("\n".join(lines), encoding="utf-8")


def subtitle_mode(payload: dict) -> str:
    """The subtitle mode of a generate_video payload: "soft", "burned" or "none".

    Commands queued before the modes existed carry a boolean: true = soft, false = none.
    """
    mode = payload.get("subtitles", "soft")
    if isinstance(mode, bool):
        return "soft" if mode else "none"
    if mode not in SUBTITLE_MODES:
        raise ValueError(f"subtitles must be one of {', '.join(SUBTITLE_MODES)}, not {mode!r}")
    return mode


def _escape(value: str, special: str) -> str:
    return "".join("\\" + c if c in special else c for c in value)


def burn_filter(srt: Path, width: int, height: int) -> str:
    """An ffmpeg filter that draws the SRT's cues into width x height frames with libass.

    White DejaVu Sans with a black outline and a soft shadow, bottom-centred above a margin. The
    font is 5 % of the frame height, capped at 1/18 of the width on tall frames, so that a cue of
    ``write_srt`` (42 characters at most) wraps to two lines at most. Composable: append it to a
    ``-vf`` chain after a comma. An SRT without cues gives ``null`` (libass cannot read it).
    """
    srt = Path(srt)
    if not srt.read_text(encoding="utf-8").strip():
        return "null"
    # libass places an SRT on a 384 x 288 script: x in width / 384 pixels, y and sizes in height / 288.
    per_px = 288 / height
    font_px = min(FONT_HEIGHT * height, width / MAX_FONT_WIDTHS)
    style = {
        "FontName": BURN_FONT,
        "FontSize": font_px * per_px,
        "PrimaryColour": "&H00FFFFFF",  # &HAABBGGRR: opaque white
        "OutlineColour": "&H00000000",  # opaque black
        "BackColour": "&H80000000",  # the shadow: half-transparent black
        "BorderStyle": 1,  # outline and shadow
        "Outline": font_px / 14 * per_px,
        "Shadow": font_px / 24 * per_px,
        "Alignment": 2,  # bottom centre
        "MarginV": round(MARGIN_BOTTOM * 288),
        "MarginL": round(MARGIN_SIDE * 384),
        "MarginR": round(MARGIN_SIDE * 384),
    }
    force_style = ",".join(f"{k}={round(v, 2) if isinstance(v, float) else v}" for k, v in style.items())
    # Two levels of ffmpeg escaping: inside an option value, then inside the filtergraph.
    value = "\\':"
    args = f"filename={_escape(str(srt), value)}:force_style={_escape(force_style, value)}"
    return "subtitles=" + _escape(args, "\\'[],;")
