"""Measure a finished video for `npm run bench`; prints one JSON object on stdout.

    python -m likeness_worker.bench.measure --video V.mp4 --speech speech.wav \
        --reference voice_reference.wav --narration TEXT --tts-engine piper \
        --contact-sheet sheet.png

The face is re-detected on every decoded frame with MediaPipe's face mesh in tracking mode and
the energy comes from the MP4's own audio track, so both are what a viewer gets. It is the same
face model the `landmarks` engine builds its rig on, so it is not an independent judge: the
issue's check uses another landmark model, and the figures are meant to be compared run to run.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from . import metrics as M

AUDIO_RATE = 16000
TILE = 192  # contact-sheet tile side, pixels
LABEL_H = 22
PER_ROW = 4


def face_landmarks(video: Path) -> tuple[np.ndarray, float]:
    """(landmarks in pixels, shape (frames, 478, 2), NaN where no face; frames per second)."""
    import mediapipe as mp

    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        raise RuntimeError(f"cannot decode {video}")
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    out: list[np.ndarray] = []
    # Tracking mode (static_image_mode=False), as a video is meant to be read: landmarks follow
    # the face from frame to frame instead of being re-detected from scratch.
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=False, refine_landmarks=True, max_num_faces=1) as mesh:
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            h, w = bgr.shape[:2]
            found = mesh.process(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)).multi_face_landmarks
            if found:
                out.append(np.array([(p.x * w, p.y * h) for p in found[0].landmark]))
            else:
                out.append(np.full((478, 2), np.nan))
    cap.release()
    if not out:
        raise RuntimeError(f"{video} has no video frames")
    return np.stack(out), float(fps)


def decode_audio(video: Path) -> np.ndarray:
    """The MP4's audio track, mono float32 at AUDIO_RATE."""
    r = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(video), "-vn", "-ac", "1", "-ar", str(AUDIO_RATE), "-f", "f32le", "-"],
        capture_output=True,
        check=True,
    )
    return np.frombuffer(r.stdout, dtype=np.float32)


def contact_sheet(video: Path, lm: np.ndarray, opening: np.ndarray, ear: np.ndarray, fps: float, out: Path) -> dict:
    """A PNG grid of face crops: rows of open-mouth moments, closed-mouth moments and blinks,
    each labelled with its time and mouth opening (or eye-aspect ratio). Returns what it shows."""
    gap = int(round(0.5 * fps))
    blinks = M.blink_frames(ear)
    rows = {
        "open": M.spread_extremes(opening, PER_ROW, gap, largest=True),
        "closed": M.spread_extremes(opening, PER_ROW, gap, largest=False),
        # The deepest blinks; with none, the frame where the eyes were most closed, labelled so.
        "blink": (
            [int(i) for i in blinks[np.argsort(ear[blinks])][:PER_ROW]]
            if blinks.size
            else M.spread_extremes(ear, 1, gap, largest=False)
        ),
    }
    wanted = {i for idx in rows.values() for i in idx}
    crops: dict[int, np.ndarray] = {}
    cap = cv2.VideoCapture(str(video))
    i = 0
    while wanted - crops.keys():
        ok, bgr = cap.read()
        if not ok:
            break
        if i in wanted:
            crops[i] = _face_crop(bgr, lm[i])
        i += 1
    cap.release()

    sheet = np.full((len(rows) * (TILE + LABEL_H), PER_ROW * TILE, 3), 255, np.uint8)
    for r, (name, idx) in enumerate(rows.items()):
        for c, f in enumerate(idx):
            if f not in crops:
                continue
            y, x = r * (TILE + LABEL_H), c * TILE
            sheet[y : y + TILE, x : x + TILE] = crops[f]
            if name == "blink":
                label = f"{'blink' if f in set(blinks.tolist()) else 'no blink'} {f / fps:.2f}s ear={ear[f]:.2f}"
            else:  # a "closed" moment that is not closed says so
                shown = "least open" if name == "closed" and not opening[f] < M.CLOSED_BELOW else name
                label = f"{shown} {f / fps:.2f}s m={opening[f]:.3f}"
            cv2.putText(sheet, label, (x + 4, y + TILE + 15), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), sheet)
    return {name: [round(f / fps, 2) for f in idx] for name, idx in rows.items()} | {"blinks": len(blinks)}


def _face_crop(bgr: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """A square around the face (1.5 x its landmark box), the whole frame when no face."""
    h, w = bgr.shape[:2]
    if not np.isfinite(pts).all():
        return cv2.resize(bgr, (TILE, TILE), interpolation=cv2.INTER_AREA)
    (x0, y0), (x1, y1) = pts.min(0), pts.max(0)
    side = min(1.5 * max(x1 - x0, y1 - y0), w, h)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    a = int(np.clip(cx - side / 2, 0, w - side))
    b = int(np.clip(cy - side / 2, 0, h - side))
    s = int(side)
    return cv2.resize(bgr[b : b + s, a : a + s], (TILE, TILE), interpolation=cv2.INTER_AREA)


def voice_gain_figure(reference: Path, shaped: Path, narration: str, tts_engine: str) -> tuple[float, str]:
    """(voice_gain, how it was made). The unshaped voice is the same engine on the same narration
    with no voice profile, so the figure isolates what shaping toward the speaker adds."""
    with tempfile.TemporaryDirectory() as tmp:
        unshaped = Path(tmp) / "unshaped.wav"
        if tts_engine == "piper":
            from ..media.piper_tts import synthesize_piper

            synthesize_piper(narration, unshaped, voice_profile=None)
        elif tts_engine == "espeak":
            from ..media.tts import synthesize_espeak

            synthesize_espeak(narration, unshaped, None)
        else:
            return float("nan"), f"no unshaped voice for tts engine {tts_engine!r}"
        from ..media.voice_similarity import voice_gain

        return float(voice_gain(reference, shaped, unshaped)), f"{tts_engine} shaped vs {tts_engine} unshaped"


def measure(video: Path, speech: Path, reference: Path, narration: str, tts_engine: str, sheet: Path) -> dict:
    lm, fps = face_landmarks(video)
    audio = decode_audio(video)
    energy = M.frame_energy_db(audio, AUDIO_RATE, fps, len(lm))
    opening = M.mouth_opening(lm)
    ear = M.eye_aspect_ratio(lm)
    closed, n_silent = M.silent_closed(opening, energy, fps)
    gain, gain_note = voice_gain_figure(reference, speech, narration, tts_engine)
    shown = contact_sheet(video, lm, opening, ear, fps, sheet)
    face = np.isfinite(opening)
    return {
        "lipsync_r": M.lipsync_r(opening, energy),
        "silent_closed": closed,
        "identity_drift": M.identity_drift(lm),
        "voice_gain": gain,
        "speech_seconds": len(audio) / AUDIO_RATE,
        "details": {
            "frames": len(lm),
            "fps": fps,
            "face_frames": int(face.sum()),
            "silent_frames": n_silent,
            "mouth_opening": {
                "median": float(np.nanmedian(opening)) if face.any() else None,
                "p5": float(np.nanpercentile(opening, 5)) if face.any() else None,
                "p95": float(np.nanpercentile(opening, 95)) if face.any() else None,
            },
            "voice_gain": gain_note,
            "contact_sheet": shown,
        },
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--video", type=Path, required=True)
    ap.add_argument("--speech", type=Path, required=True, help="the tts step's speech.wav (the shaped voice)")
    ap.add_argument("--reference", type=Path, required=True, help="the speaker's sample (prepare's voice_reference.wav)")
    ap.add_argument("--narration", required=True)
    ap.add_argument("--tts-engine", required=True)
    ap.add_argument("--contact-sheet", type=Path, required=True)
    a = ap.parse_args(argv)
    res = measure(a.video, a.speech, a.reference, a.narration, a.tts_engine, a.contact_sheet)
    # NaN is not JSON: null, printed as "nan" by the caller.
    print(json.dumps(_nulls(res), allow_nan=False))
    return 0


def _nulls(x):
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _nulls(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_nulls(v) for v in x]
    return x


if __name__ == "__main__":
    sys.exit(main())
