"""The built-in talking head: a portrait (or a moving video of it) whose face speaks the
narration — lips from the phoneme timeline and the speech energy, blinks, small head motion —
streamed frame by frame into one encode."""

from __future__ import annotations

import math
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from .encode import FPS, encode_timeout, frame_reader, frame_writer
from .errors import BadInput, ToolFailed
from .face_mesh import FACE_OVAL, MeshTracker, detect_mesh, warm_mesh
from .face_rig import FaceRig, Pose, paint_mouth
from .video import audio_seconds, read_rgb
from .visemes import RATE, blink_track, frame_samples, head_tracks, mouth_tracks, speech_envelope


def _seconds(speech_wav: Path) -> float:
    seconds = audio_seconds(speech_wav)
    if not seconds:
        raise ToolFailed(f"{speech_wav.name} holds no audio")
    return seconds


def performance(speech_wav: Path, timings: dict, face_h: float, n_frames: int, fps: int,
                seed: int) -> list[Pose]:
    """The face's pose at every frame."""
    n = int(math.ceil(n_frames / fps * RATE)) + RATE
    env = speech_envelope(speech_wav, n)
    mouth = frame_samples(mouth_tracks(timings.get("phonemes"), env), n_frames, fps)
    blink = frame_samples(blink_track(n, seed), n_frames, fps)
    head = frame_samples(head_tracks(n, env, face_h, seed), n_frames, fps)
    return [Pose(open=float(m[0]), spread=float(m[1]), round=float(m[2]), blink_r=float(b),
                 blink_l=float(b), turn=float(h[0]), head_x=float(h[1]), head_y=float(h[2]))
            for m, b, h in zip(mouth, blink, head, strict=True)]


def warm_talking() -> None:
    """What a first render would otherwise wait for: the face mesh model, and OpenCV's colour
    tables built on first use (~0.1 s each)."""
    warm_mesh()
    tiny = np.zeros((8, 8, 3), np.uint8)
    for code in (cv2.COLOR_RGB2LAB, cv2.COLOR_RGB2YUV_I420):
        cv2.cvtColor(tiny, code)


def seed_of(text: str) -> int:
    """A stable seed (the same job renders the same blinks and motion on a retry)."""
    return zlib.crc32(text.encode())


def _rig(rgb: np.ndarray, lm: np.ndarray | None) -> FaceRig:
    if lm is None:
        raise BadInput("no face found in the scene to animate: use a profile whose portrait shows one face clearly")
    try:
        return FaceRig(rgb, lm)
    except (ValueError, cv2.error) as exc:
        raise BadInput(f"the face in the scene cannot be animated ({exc}): use a portrait where "
                       "the whole face is inside the picture") from exc


def _summary(poses: list[Pose], fps: int) -> dict:
    opens = np.array([p.open for p in poses])
    blinks = np.array([p.blink_r for p in poses])
    starts = int(np.sum((blinks[1:] > 0.5) & (blinks[:-1] <= 0.5)))
    return {"frames": len(poses), "fps": fps, "mouthOpenMean": round(float(opens.mean()), 3),
            "mouthClosedShare": round(float(np.mean(opens < 0.05)), 3), "blinks": starts}


def animate_portrait(
    still: Path, speech_wav: Path, timings: dict, out: Path, width: int, height: int, *,
    seed: int, video_filter: str | None = None, fps: int = FPS,
    progress: Callable[[float], None] | None = None, cancelled: Callable[[], bool] | None = None,
) -> dict:
    """Animate the face of ``still`` (already width x height) to the speech; the frames are
    encoded once, as the final H.264 stream, exactly round(speech seconds x fps) of them."""
    rgb = read_rgb(still)
    if rgb.shape[:2] != (height, width):
        raise ValueError(f"scene is {rgb.shape[1]}x{rgb.shape[0]}, expected {width}x{height}")
    rig = _rig(rgb, detect_mesh(rgb))
    n = max(1, int(round(_seconds(speech_wav) * fps)))
    poses = performance(speech_wav, timings, rig.face_h, n, fps, seed)
    def draw(pose: Pose) -> np.ndarray:
        frame = rig.image.copy()
        rig.render(pose, frame)
        return frame

    step = max(1, n // 20)
    with frame_writer(out, width, height, n_frames=n, fps=fps, video_filter=video_filter,
                      cancelled=cancelled) as w:
        for i, frame in enumerate(_ahead(draw, poses)):
            w.write(frame)
            if progress is not None and ((i + 1) % step == 0 or i + 1 == n):
                progress((i + 1) / n)
    return _summary(poses, fps)


def _ahead(fn: Callable, items: list, threads: int = 2, window: int = 6) -> Iterator:
    """fn over items, in order, on a few threads (OpenCV and numpy release the GIL while they
    work), at most ``window`` results ahead of the consumer: memory stays flat."""
    with ThreadPoolExecutor(threads, thread_name_prefix="render") as pool:
        pending: deque = deque()
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


# Points that move with the head but not with the mouth or the lids: the face's own frame of
# reference along a moving video.
_STABLE = [i for i in FACE_OVAL if i not in (152, 148, 176, 149, 150, 136, 172, 58, 377, 400, 378, 379, 365, 397, 288)] + [
    33, 133, 263, 362, 1, 4, 5, 6, 168, 197, 195, 70, 63, 105, 66, 107, 336, 296, 334, 293, 300]


def lipsync_video(
    video: Path, speech_wav: Path, timings: dict, out: Path, width: int, height: int, *,
    seed: int, video_filter: str | None = None, fps: int = FPS,
    progress: Callable[[float], None] | None = None, cancelled: Callable[[], bool] | None = None,
) -> dict:
    """Make the face of a moving video speak: the face is tracked on every frame (MediaPipe's
    mesh), the rig built on the first frame is carried onto each frame by the similarity
    transform between the tracked face and the first one (smoothed), and the frames are encoded
    once as the final stream. The video is read as a stream, never held in memory."""
    n = max(1, int(round(_seconds(speech_wav) * fps)))
    tracker = MeshTracker()
    rig: FaceRig | None = None
    poses: list[Pose] = []
    smooth = None
    lost = 0
    step = max(1, n // 20)
    try:
        with frame_reader(video, width, height, fps=fps, cancelled=cancelled,
                          timeout=encode_timeout(n, width, height)) as frames, \
                frame_writer(out, width, height, n_frames=n, fps=fps, video_filter=video_filter,
                             cancelled=cancelled) as w:
            last = None
            for i in range(n):
                frame = next(frames, None)
                if frame is None:  # the motion is shorter than the speech: hold its last frame
                    if last is None:
                        raise ToolFailed("the motion video has no frames")
                    frame = last
                last = frame
                lm = tracker(frame)
                if rig is None:
                    rig = _rig(frame, lm)
                    ref = rig.points[_STABLE].astype(np.float32)
                    poses = performance(speech_wav, timings, rig.face_h, n, fps, seed)
                if lm is None:
                    lost += 1  # keep the last transform: the face is where it just was
                else:
                    m, _ = cv2.estimateAffinePartial2D(ref, lm[_STABLE].astype(np.float32))
                    if m is not None:
                        smooth = m if smooth is None else 0.6 * m + 0.4 * smooth
                out_frame = np.array(frame)
                _render_on(rig, poses[i], frame, out_frame, smooth)
                w.write(out_frame)
                if progress is not None and ((i + 1) % step == 0 or i + 1 == n):
                    progress((i + 1) / n)
    finally:
        tracker.close()
    return {**_summary(poses, fps), "trackedFrames": n - lost}


def _render_on(rig: FaceRig, pose: Pose, frame: np.ndarray, out: np.ndarray,
               m: np.ndarray | None) -> None:
    """Pose the rig's face on ``frame``, where the face sits at similarity ``m`` (2 x 3) from
    where it was on the rig's picture."""
    if m is None:
        m = np.array([[1, 0, 0], [0, 1, 0]], dtype=np.float64)
    x0, y0, x1, y1 = rig.roi
    src = rig.source_backward(pose)  # rig picture coords, per rig ROI pixel
    disp = src - rig.grid  # zero outside the animated region
    corners = np.array([[x0, y0, 1], [x1, y0, 1], [x0, y1, 1], [x1, y1, 1]], dtype=np.float64) @ m.T
    H, W = out.shape[:2]
    bx0, by0 = np.maximum(np.floor(corners.min(0)).astype(int), 0)
    bx1, by1 = np.minimum(np.ceil(corners.max(0)).astype(int) + 1, (W, H))
    if bx1 <= bx0 or by1 <= by0:
        return
    a, t = m[:, :2], m[:, 2]
    det = a[0, 0] * a[1, 1] - a[0, 1] * a[1, 0]  # no LAPACK in the frame loop (see face_rig)
    ai = np.array([[a[1, 1], -a[0, 1]], [-a[1, 0], a[0, 0]]]) / det
    gy, gx = np.mgrid[by0:by1, bx0:bx1].astype(np.float32)
    # frame pixel -> rig picture: p0 = A^-1 (p - t); its source there: p0 + disp(p0); back: A s + t
    p0x = ai[0, 0] * (gx - t[0]) + ai[0, 1] * (gy - t[1])
    p0y = ai[1, 0] * (gx - t[0]) + ai[1, 1] * (gy - t[1])
    d = cv2.remap(disp, p0x - x0, p0y - y0, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                  borderValue=0)
    sx, sy = p0x + d[..., 0], p0y + d[..., 1]
    mx = (a[0, 0] * sx + a[0, 1] * sy + t[0]).astype(np.float32)
    my = (a[1, 0] * sx + a[1, 1] * sy + t[1]).astype(np.float32)
    out[by0:by1, bx0:bx1] = cv2.remap(frame, mx, my, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT101)
    vtx = np.einsum("ij,nj->ni", a, rig.vertices(pose)) + t  # no BLAS in the frame loop
    scale = float(math.sqrt(abs(det)))
    paint_mouth(rig, out, vtx, down=a @ rig.v / scale, scale=scale)
