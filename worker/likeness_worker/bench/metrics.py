"""The bench's figures from per-frame face landmarks and the audio, as pure numpy functions.

Landmarks are MediaPipe face-mesh points (478 with `refine_landmarks=True`) in pixels, one array
of shape (frames, points, 2); a frame without a face is all NaN. Figures are dimensionless: a
distance is divided by a size of the same face, so they do not depend on the output resolution.
"""

from __future__ import annotations

import numpy as np

# Inner-lip pairs (upper, lower): centre and both sides. Their mean gap is the mouth opening; one
# pair alone is noisy when the lips are asymmetric.
INNER_LIP_PAIRS = ((13, 14), (82, 87), (312, 317))
# Outer eye corners: the inter-ocular distance, the face size the mouth opening is divided by (it
# does not change when the mouth or the jaw moves).
EYE_OUTER = (33, 263)
# Face width at the cheekbones, for identity drift.
FACE_SIDES = (234, 454)
# Eye contour p1..p6 of the eye-aspect ratio (Soukupova & Cech 2016): corners p1/p4, lids p2/p6, p3/p5.
EYES = ((33, 160, 158, 133, 153, 144), (362, 385, 387, 263, 373, 380))
# Points whose movement is not intended motion: brows, eye corners, nose, forehead, upper cheeks.
# Left out: lips and the lower face/jaw line (articulation moves them), eyelids (blinks are
# intended), the iris points 468-477 (gaze).
STABLE_POINTS = (
    70, 63, 105, 66, 107, 55, 65, 52, 53, 46,  # left brow
    300, 293, 334, 296, 336, 285, 295, 282, 283, 276,  # right brow
    33, 133, 362, 263,  # eye corners
    1, 4, 5, 6, 168, 197, 195, 98, 327,  # nose
    10, 151, 9, 8, 109, 338, 67, 297,  # forehead
    116, 345,  # upper cheeks
)

SILENCE_BELOW_DB = 30.0  # a frame is silent when its RMS is this far below the 95th percentile
SILENCE_MARGIN_S = 0.08  # ... and every frame within this time of it is silent too
ENVELOPE_FLOOR_DB = 40.0  # the envelope is clipped this far below the 95th percentile
CLOSED_BELOW = 0.05  # mouth closed: inner-lip gap under 5 % of the inter-ocular distance (the
# astronaut's parted smile measures 0.11)
BLINK_RATIO = 0.7  # a blink: eye-aspect ratio under 70 % of its median over the video


def _dist(lm: np.ndarray, a: int, b: int) -> np.ndarray:
    return np.linalg.norm(lm[:, a] - lm[:, b], axis=-1)


def inter_ocular(lm: np.ndarray) -> np.ndarray:
    return _dist(lm, *EYE_OUTER)


def mouth_opening(lm: np.ndarray) -> np.ndarray:
    """Per frame: mean inner-lip gap over the inter-ocular distance (NaN where no face)."""
    gap = np.mean([_dist(lm, a, b) for a, b in INNER_LIP_PAIRS], axis=0)
    return gap / inter_ocular(lm)


def eye_aspect_ratio(lm: np.ndarray) -> np.ndarray:
    """Per frame: mean over both eyes of (|p2-p6| + |p3-p5|) / (2 |p1-p4|); small when closed."""
    ears = [
        (_dist(lm, p2, p6) + _dist(lm, p3, p5)) / (2.0 * _dist(lm, p1, p4))
        for p1, p2, p3, p4, p5, p6 in EYES
    ]
    return np.mean(ears, axis=0)


def frame_energy_db(samples: np.ndarray, sample_rate: int, fps: float, frames: int) -> np.ndarray:
    """RMS in dB of the audio under each video frame: window [i/fps, (i+1)/fps), 40 ms at 25 fps.

    Frames past the end of the audio get the level of silence (-120 dB).
    """
    out = np.full(frames, -120.0)
    for i in range(frames):
        a, b = int(round(i * sample_rate / fps)), int(round((i + 1) * sample_rate / fps))
        win = samples[a:b]
        if win.size:
            out[i] = 20.0 * np.log10(max(float(np.sqrt(np.mean(win.astype(np.float64) ** 2))), 1e-6))
    return out


def smooth(x: np.ndarray, width: int = 3) -> np.ndarray:
    """Centred moving average (edges use the samples they have)."""
    if width <= 1 or x.size == 0:
        return x.astype(float)
    k = np.ones(width)
    return np.convolve(x, k, "same") / np.convolve(np.ones_like(x, dtype=float), k, "same")


def speech_envelope(energy_db: np.ndarray) -> np.ndarray:
    """The envelope lip sync is compared with: dB relative to the 95th percentile, clipped at
    -40 dB (so how silent a pause is does not matter, only that it is one), smoothed over 3 frames."""
    ref = np.percentile(energy_db, 95)
    return smooth(np.clip(energy_db - ref, -ENVELOPE_FLOOR_DB, None), 3)


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson r over the frames where both are finite; 0 when either does not vary."""
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    if a.size < 3 or np.std(a) < 1e-12 or np.std(b) < 1e-12:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def lipsync_r(opening: np.ndarray, energy_db: np.ndarray) -> float:
    return pearson(opening, speech_envelope(energy_db))


def silent_mask(energy_db: np.ndarray, fps: float) -> np.ndarray:
    """Frames SILENCE_BELOW_DB under the 95th percentile with no speech within SILENCE_MARGIN_S
    (the mouth may still be closing after a word, or opening before one)."""
    quiet = energy_db < np.percentile(energy_db, 95) - SILENCE_BELOW_DB
    m = int(round(SILENCE_MARGIN_S * fps))
    padded = np.pad(quiet, m, constant_values=True)
    return np.array([padded[i : i + 2 * m + 1].all() for i in range(quiet.size)], dtype=bool)


def silent_closed(opening: np.ndarray, energy_db: np.ndarray, fps: float) -> tuple[float, int]:
    """(share of silent frames with a face whose mouth is closed, how many such frames)."""
    silent = silent_mask(energy_db, fps) & np.isfinite(opening)
    n = int(silent.sum())
    if n == 0:
        return float("nan"), 0
    return float(np.mean(opening[silent] < CLOSED_BELOW)), n


def fit_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, shift) taking `src` points onto `dst`
    (Umeyama 1991); returns src moved by it."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    u, sig, vt = np.linalg.svd(d.T @ s / len(src))
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1] = -1.0  # a reflection is not a head motion
    rot = u @ np.diag(sign) @ vt
    scale = float(np.sum(sig * sign) / np.mean(np.sum(s**2, axis=1)))
    return scale * s @ rot.T + mu_d


def identity_drift(lm: np.ndarray) -> float:
    """Mean displacement of STABLE_POINTS from the first frame with a face, left over after the
    best similarity transform (the intended head motion: turn, nod in the image plane, zoom), over
    that frame's face width. NaN when no frame has a face."""
    have = np.flatnonzero(np.isfinite(lm).all(axis=(1, 2)))
    if have.size == 0:
        return float("nan")
    ref = lm[have[0]][list(STABLE_POINTS)]
    width = float(np.linalg.norm(lm[have[0], FACE_SIDES[0]] - lm[have[0], FACE_SIDES[1]]))
    residuals = []
    for i in have[1:]:
        pts = lm[i][list(STABLE_POINTS)]
        residuals.append(np.mean(np.linalg.norm(fit_similarity(ref, pts) - pts, axis=1)))
    return float(np.mean(residuals) / width) if residuals else 0.0


def blink_frames(ear: np.ndarray) -> np.ndarray:
    """Frames whose eye-aspect ratio is a local minimum under BLINK_RATIO x its median."""
    ok = np.isfinite(ear)
    if not ok.any():
        return np.array([], dtype=int)
    low = ok & (ear < BLINK_RATIO * np.nanmedian(ear))
    e = np.where(ok, ear, np.inf)
    return np.array(
        [i for i in np.flatnonzero(low) if e[i] <= e[max(i - 1, 0)] and e[i] <= e[min(i + 1, e.size - 1)]],
        dtype=int,
    )


def spread_extremes(values: np.ndarray, count: int, min_gap: int, largest: bool) -> list[int]:
    """Up to `count` frames with the largest (or smallest) finite values, at least `min_gap`
    frames apart, so a contact sheet shows different moments rather than one moment 4 times."""
    ranked = np.argsort(values)
    order = [i for i in (ranked[::-1] if largest else ranked) if np.isfinite(values[i])]
    picked: list[int] = []
    for i in order:
        if all(abs(i - j) >= min_gap for j in picked):
            picked.append(int(i))
            if len(picked) == count:
                break
    return picked
