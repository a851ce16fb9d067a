"""Subtitles from the speech's word timings: cues, SubRip files."""

from __future__ import annotations

from pathlib import Path


def _srt_time(t: float) -> str:
    ms = max(0, int(round(t * 1000)))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d},{ms:03d}"


def subtitle_cues(words: list[dict], max_words: int = 7) -> list[dict]:
    """Group words into cues: at most ``max_words``, a new cue after a sentence end."""
    cues: list[dict] = []
    cur: list[dict] = []
    for w in words:
        cur.append(w)
        text = str(w["word"]).rstrip("\"')]»”’")
        if len(cur) >= max_words or text.endswith((".", "!", "?", "…")):
            cues.append(cur)
            cur = []
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


def write_srt(words: list[dict], out_srt: Path, max_words: int = 7) -> None:
    """SubRip file from word timings ([{word, start, end}] seconds)."""
    lines = []
    for i, c in enumerate(subtitle_cues(words, max_words), start=1):
        lines += [str(i), f"{_srt_time(c['start'])} --> {_srt_time(c['end'])}", c["text"], ""]
    out_srt = Path(out_srt)
    out_srt.parent.mkdir(parents=True, exist_ok=True)
    out_srt.write_text("\n".join(lines), encoding="utf-8")
