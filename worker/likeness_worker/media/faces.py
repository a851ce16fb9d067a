"""Face checks, crops and the kohya-ready dataset (the ``prepare`` step's photo half).

Per photo: MediaPipe face detection (full-range model, short-range as a fallback for close-ups),
then the checks a user can act on: no face, several faces, face too small, too blurry, same
photo twice. Accepted faces are cropped square with margin, resized to 512 px and captioned;
they form a dataset in kohya sd-scripts' DreamBooth layout plus its ``--dataset_config`` TOML.
The best accepted photo (largest, sharpest, most frontal face) becomes the profile portrait.
"""

from __future__ import annotations

import math
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .errors import BadInput

CROP_SIZE = 512
MIN_FACE_PX = 96
# Variance of the Laplacian of the face resized to 128x128 grey. Measured on skimage's
# astronaut (103 px face): sharp 284, Gaussian blur sigma 1 -> 32, 1.5 -> 14, 2 -> 8, 3 -> 4.5.
BLUR_THRESHOLD = 12.0
SHARPNESS_SIZE = 128
# A second face counts as "another person in the photo" when it is at least this fraction of
# the largest face's width; smaller ones (people far in the background) are ignored.
OTHER_FACE_MIN_RATIO = 0.4
DETECT_MAX_SIDE = 1280
PORTRAIT_MAX_SIDE = 1024
CROP_MARGIN = 2.0  # crop side = 2 x face width: face plus hair, chin and a little shoulder
TARGET_STEPS_PER_EPOCH = 150  # kohya repeats: images x repeats ~ 150 per epoch
MAX_REPEATS = 40
CAPTION = "{trigger}, a photo of a person"
TRIGGER_RE = re.compile(r"^[\w][\w\- ]{0,63}$")

_detector_lock = threading.Lock()
_detectors: dict[int, object] = {}


@dataclass
class FacesResult:
    accepted: list[dict]  # name, crop_path, box (+ scores)
    rejected: list[dict]  # name, reason
    portrait_path: Path
    portrait_face_box: dict  # x, y, w, h in portrait pixels
    dataset_dir: Path
    dataset_toml: Path


@dataclass
class _Face:
    x: float
    y: float
    w: float
    h: float
    score: float
    keypoints: list[tuple[float, float]]  # right eye, left eye, nose, mouth, right ear, left ear

    def box(self) -> dict:
        return {"x": int(round(self.x)), "y": int(round(self.y)),
                "w": int(round(self.w)), "h": int(round(self.h))}


def _detector(model_selection: int):
    import mediapipe as mp

    with _detector_lock:
        det = _detectors.get(model_selection)
        if det is None:
            det = mp.solutions.face_detection.FaceDetection(
                model_selection=model_selection, min_detection_confidence=0.5
            )
            _detectors[model_selection] = det
        return det


def detect_faces(rgb: np.ndarray) -> list[_Face]:
    """Faces in an RGB image, in its pixels, largest first."""
    h, w = rgb.shape[:2]
    scale = min(1.0, DETECT_MAX_SIDE / max(h, w))
    small = rgb if scale == 1.0 else cv2.resize(
        rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    small = np.ascontiguousarray(small)
    sh, sw = small.shape[:2]
    faces: list[_Face] = []
    for model in (1, 0):  # full range first; short range catches faces filling the frame
        det = _detector(model)
        with _detector_lock:  # a MediaPipe graph is not safe to share between threads
            res = det.process(small)
        for d in res.detections or []:
            rb = d.location_data.relative_bounding_box
            x0, y0 = max(0.0, rb.xmin * sw), max(0.0, rb.ymin * sh)
            x1, y1 = min(sw, (rb.xmin + rb.width) * sw), min(sh, (rb.ymin + rb.height) * sh)
            if x1 <= x0 or y1 <= y0:
                continue
            kps = [(k.x * sw / scale, k.y * sh / scale) for k in d.location_data.relative_keypoints]
            faces.append(_Face(x0 / scale, y0 / scale, (x1 - x0) / scale, (y1 - y0) / scale,
                               float(d.score[0]), kps))
        if faces:
            break
    faces.sort(key=lambda f: f.w * f.h, reverse=True)
    return faces


def sharpness(rgb: np.ndarray, face: _Face) -> float:
    """Variance of the Laplacian over the face, resized to a fixed size (resolution-neutral)."""
    x0, y0 = int(face.x), int(face.y)
    x1, y1 = int(math.ceil(face.x + face.w)), int(math.ceil(face.y + face.h))
    grey = cv2.cvtColor(rgb[y0:y1, x0:x1], cv2.COLOR_RGB2GRAY)
    grey = cv2.resize(grey, (SHARPNESS_SIZE, SHARPNESS_SIZE), interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def frontality(face: _Face) -> float:
    """1.0 for a face looking straight at the camera, lower when turned or tilted.

    Yaw from the symmetry of the nose between the two ear points, roll from the eye line.
    """
    (rex, rey), (lex, ley), (nx, _), _, (rtx, _), (ltx, _) = face.keypoints
    d1, d2 = abs(nx - rtx), abs(ltx - nx)
    yaw = min(d1, d2) / max(d1, d2, 1e-6)
    roll = math.cos(math.atan2(ley - rey, lex - rex)) if lex != rex else 0.0
    return max(0.0, yaw * max(0.0, roll))


def _read_rgb(path: Path) -> np.ndarray | None:
    # IMREAD_COLOR applies the EXIF orientation of JPEGs, drops alpha and converts 16-bit.
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None or bgr.size == 0:
        return None
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _square_crop(rgb: np.ndarray, face: _Face) -> tuple[int, int, int]:
    """Square (x, y, side) around the face with margin, shifted to stay inside the image."""
    h, w = rgb.shape[:2]
    side = int(round(min(CROP_MARGIN * max(face.w, face.h), w, h)))
    cx = face.x + face.w / 2
    cy = face.y + face.h / 2 - 0.1 * face.h  # a little up: hair matters more than neck
    x = int(round(min(max(cx - side / 2, 0), w - side)))
    y = int(round(min(max(cy - side / 2, 0), h - side)))
    return x, y, side


def _thumb(img: np.ndarray) -> np.ndarray:
    return cv2.resize(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), (16, 16),
                      interpolation=cv2.INTER_AREA).astype(np.float32)


def _toml_str(s: str) -> str:
    out = s.replace("\\", "\\\\").replace('"', '\\"')
    out = "".join(c if ord(c) >= 0x20 and c != "\x7f" else f"\\u{ord(c):04x}" for c in out)
    return f'"{out}"'


def _write_png(path: Path, rgb: np.ndarray) -> None:
    tmp = path.with_name(f".{path.name}.tmp.png")
    if not cv2.imwrite(str(tmp), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}")
    os.replace(tmp, path)


def repeats_for(n_images: int) -> int:
    return max(1, min(MAX_REPEATS, round(TARGET_STEPS_PER_EPOCH / max(1, n_images))))


def prepare_faces(
    images: list[tuple[str, Path]],
    out_dir: Path,
    trigger_word: str,
) -> FacesResult:
    """Check every photo, crop the accepted faces into a kohya dataset, pick the portrait.

    ``images``: (name shown to the user, file). Writes under ``out_dir``: ``dataset/img/
    <repeats>_<trigger_word>/NNN.png`` + ``NNN.txt``, ``dataset.toml`` and ``portrait.png``.
    ``dataset.toml`` names the dataset folder relative to its own folder (run kohya from there,
    or unpack the dataset beside it).
    Raises ``BadInput`` when no photo has a usable face.
    """
    trigger = trigger_word.strip()
    if not TRIGGER_RE.match(trigger):
        raise BadInput(
            f"trigger word {trigger_word!r} cannot name a dataset: use 1-64 letters, digits, "
            "'_', '-' or spaces, starting with a letter or digit")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    candidates: list[dict] = []
    rejected: list[dict] = []
    thumbs: list[tuple[str, np.ndarray]] = []

    def reject(index: int, name: str, reason: str) -> None:
        # index: the photo's place in ``images``, so that two photos with one name stay apart.
        rejected.append({"name": name, "reason": reason, "index": index})

    for index, (name, path) in enumerate(images):
        rgb = _read_rgb(Path(path))
        if rgb is None:
            reject(index, name, "cannot read this file as an image "
                                "(use JPEG, PNG or WebP)")
            continue
        faces = detect_faces(rgb)
        if not faces:
            reject(index, name, "no face found")
            continue
        main = faces[0]
        people = [f for f in faces if f.w >= OTHER_FACE_MIN_RATIO * main.w]
        if len(people) > 1:
            reject(index, name, f"several faces ({len(people)}) — "
                                "use photos of one person")
            continue
        size = int(round(min(main.w, main.h)))
        if size < MIN_FACE_PX:
            reject(index, name, f"face too small ({size}px, need ≥ "
                                f"{MIN_FACE_PX}) — use a closer or "
                                "larger photo")
            continue
        sharp = sharpness(rgb, main)
        if sharp < BLUR_THRESHOLD:
            reject(index, name, f"too blurry (sharpness {sharp:.1f}, "
                                f"need ≥ {BLUR_THRESHOLD:g}) — use a "
                                "sharper photo")
            continue
        cx, cy, side = _square_crop(rgb, main)
        crop = rgb[cy:cy + side, cx:cx + side]
        interp = cv2.INTER_AREA if side >= CROP_SIZE else cv2.INTER_LANCZOS4
        crop = cv2.resize(crop, (CROP_SIZE, CROP_SIZE), interpolation=interp)
        thumb = _thumb(crop)
        dup = next((n for n, t in thumbs if float(np.mean(np.abs(t - thumb))) < 2.0), None)
        if dup is not None:
            reject(index, name, f"same photo as {dup}")
            continue
        thumbs.append((name, thumb))
        front = frontality(main)
        score = (0.4 * min(main.w / 400.0, 1.0) + 0.3 * min(sharp / 100.0, 1.0)
                 + 0.3 * front)
        candidates.append({"name": name, "rgb": rgb, "crop": crop, "face": main,
                           "sharpness": sharp, "frontality": front, "score": score,
                           "crop_box": {"x": cx, "y": cy, "w": side, "h": side}})

    if not candidates:
        reasons = "; ".join(f"{r['name']}: {r['reason']}" for r in rejected) or "no photos"
        raise BadInput(f"no usable face in any photo: {reasons}")

    repeats = repeats_for(len(candidates))
    dataset_dir = out_dir / "dataset"
    sub = f"{repeats}_{trigger}"
    img_dir = dataset_dir / "img" / sub
    img_dir.mkdir(parents=True, exist_ok=True)
    for old in img_dir.iterdir():  # a re-run replaces the previous attempt's files
        if old.is_file():
            old.unlink()
    caption = CAPTION.format(trigger=trigger)
    accepted: list[dict] = []
    for i, c in enumerate(candidates, start=1):
        png = img_dir / f"{i:03d}.png"
        _write_png(png, c["crop"])
        png.with_suffix(".txt").write_text(caption + "\n", encoding="utf-8")
        accepted.append({"name": c["name"], "crop_path": png, "box": c["face"].box(),
                         "crop_box": c["crop_box"], "confidence": round(c["face"].score, 3),
                         "sharpness": round(c["sharpness"], 1),
                         "frontality": round(c["frontality"], 3)})

    root = os.path.relpath(dataset_dir, out_dir)
    dataset_toml = out_dir / "dataset.toml"
    dataset_toml.write_text(
        "# kohya sd-scripts dataset config (--dataset_config), DreamBooth style with captions\n"
        "[general]\n"
        "shuffle_caption = false\n"
        'caption_extension = ".txt"\n'
        "keep_tokens = 1\n"
        "\n"
        "[[datasets]]\n"
        "resolution = 512\n"
        "batch_size = 1\n"
        "enable_bucket = false\n"
        "\n"
        "  [[datasets.subsets]]\n"
        f"  image_dir = {_toml_str(f'{root}/img/{sub}')}\n"
        f"  num_repeats = {repeats}\n"
        f"  class_tokens = {_toml_str(trigger)}\n",
        encoding="utf-8",
    )

    best = max(candidates, key=lambda c: c["score"])
    rgb, face = best["rgb"], best["face"]
    h, w = rgb.shape[:2]
    scale = min(1.0, PORTRAIT_MAX_SIDE / max(h, w))
    if scale < 1.0:
        rgb = cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    portrait_path = out_dir / "portrait.png"
    _write_png(portrait_path, rgb)
    portrait_box = {"x": int(round(face.x * scale)), "y": int(round(face.y * scale)),
                    "w": int(round(face.w * scale)), "h": int(round(face.h * scale))}
    for a, c in zip(accepted, candidates, strict=True):
        a["portrait"] = c is best

    return FacesResult(accepted=accepted, rejected=rejected, portrait_path=portrait_path,
                       portrait_face_box=portrait_box, dataset_dir=dataset_dir,
                       dataset_toml=dataset_toml)
