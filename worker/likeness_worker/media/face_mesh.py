"""MediaPipe's 478-point face mesh: detection on a still or along a video, the landmark groups
the animation moves, and the mesh's triangles (its own topology, with holes at the eyes and the
mouth)."""

from __future__ import annotations

import threading
from functools import lru_cache

import cv2
import numpy as np

# Landmark groups (MediaPipe face mesh indices), ordered along each contour.
LIPS_INNER_UPPER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LIPS_INNER_LOWER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
LIPS_OUTER_UPPER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
LIPS_OUTER_LOWER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
# Eyes: upper and lower lid, corner to corner (the subject's right eye is on the image's left).
RIGHT_EYE_UPPER = (33, 246, 161, 160, 159, 158, 157, 173, 133)
RIGHT_EYE_LOWER = (33, 7, 163, 144, 145, 153, 154, 155, 133)
LEFT_EYE_UPPER = (263, 466, 388, 387, 386, 385, 384, 398, 362)
LEFT_EYE_LOWER = (263, 249, 390, 373, 374, 380, 381, 382, 362)
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400,
             377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)
FOREHEAD, CHIN = 10, 152
MOUTH_LEFT, MOUTH_RIGHT = 61, 291  # outer corners (image left, image right)
MESH_POINTS = 468  # the 10 iris points (468-477) are not part of the tessellation

_still_lock = threading.Lock()  # one static graph per process, shared by the steps' threads
_still = None


def _still_mesh():
    global _still
    import mediapipe as mp

    with _still_lock:
        if _still is None:
            _still = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=True, refine_landmarks=True, max_num_faces=1,
                min_detection_confidence=0.5)
        return _still


def warm_mesh() -> None:
    """Load the face mesh model (about a second, once per process) and its tessellation."""
    detect_mesh(np.zeros((64, 64, 3), np.uint8))
    mesh_triangles()


def detect_mesh(rgb: np.ndarray) -> np.ndarray | None:
    """The 478 landmarks (x, y in pixels) of the largest face of an RGB still, or None.

    The mesh's own detector looks for faces that fill much of the picture; a smaller one (a
    generated scene, a wide shot) is found by the full-range face detector first, and the mesh
    runs on a crop around it."""
    mesh = _still_mesh()
    with _still_lock:  # a MediaPipe graph is not safe to share between threads
        lm = _landmarks(mesh, rgb)
    if lm is not None:
        return lm
    from .faces import detect_faces

    faces = detect_faces(rgb)
    if not faces:
        return None
    f = faces[0]
    side = 2.0 * max(f.w, f.h)
    x0, y0 = int(max(0, f.x + f.w / 2 - side / 2)), int(max(0, f.y + f.h / 2 - side / 2))
    crop = rgb[y0:int(y0 + side), x0:int(x0 + side)]
    scale = max(1.0, 384 / max(crop.shape[:2]))
    if scale > 1.0:
        crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    with _still_lock:
        lm = _landmarks(mesh, crop)
    return None if lm is None else lm / scale + (x0, y0)


class MeshTracker:
    """Face mesh along a video: MediaPipe's tracking mode (it re-detects only when it loses the
    face). One tracker per video; it owns its own graph, so parallel steps do not share state."""

    def __init__(self) -> None:
        import mediapipe as mp

        self._m = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=False, refine_landmarks=True, max_num_faces=1,
            min_detection_confidence=0.5, min_tracking_confidence=0.5)

    def __call__(self, rgb: np.ndarray) -> np.ndarray | None:
        return _landmarks(self._m, rgb)  # its own graph: no lock

    def close(self) -> None:
        self._m.close()


def _landmarks(mesh, rgb: np.ndarray) -> np.ndarray | None:
    h, w = rgb.shape[:2]
    res = mesh.process(np.ascontiguousarray(rgb))
    if not res.multi_face_landmarks:
        return None
    lm = res.multi_face_landmarks[0].landmark
    return np.array([(p.x * w, p.y * h) for p in lm], np.float64)


@lru_cache(maxsize=1)
def mesh_triangles() -> np.ndarray:
    """The tessellation's triangles (M x 3 landmark indices).

    MediaPipe publishes the mesh as edges; its faces are the 3-cliques of that graph, less the
    few cliques that are not faces (found on the canonical layout: they contain another vertex or
    overlap a face). Eyes and mouth are holes: no triangle spans them.
    """
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_TESSELATION

    adj: dict[int, set[int]] = {}
    for a, b in FACEMESH_TESSELATION:
        adj.setdefault(a, set()).add(b)
        adj.setdefault(b, set()).add(a)
    tris = {tuple(sorted((a, b, c))) for a in adj for b in adj[a] if b > a
            for c in adj[a] & adj[b] if c > b}
    return np.array(sorted(tris), np.int32)


def drop_overlapping(tris: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Keep the triangles that contain no other vertex (a clique that is not a face of a planar
    mesh always encloses one)."""
    p = pts[:MESH_POINTS, :2]
    a, b, c = p[tris[:, 0]], p[tris[:, 1]], p[tris[:, 2]]
    v0, v1 = b - a, c - a
    det = v0[:, 0] * v1[:, 1] - v1[:, 0] * v0[:, 1]
    ok = np.abs(det) > 1e-9
    rel = p[None, :, :] - a[:, None, :]  # triangles x points x 2
    den = np.where(ok, det, 1.0)[:, None]
    u = (rel[..., 0] * v1[:, None, 1] - v1[:, None, 0] * rel[..., 1]) / den
    w = (v0[:, None, 0] * rel[..., 1] - rel[..., 0] * v0[:, None, 1]) / den
    inside = (u > 1e-3) & (w > 1e-3) & (u + w < 1 - 1e-3)
    inside[np.arange(len(tris))[:, None], tris] = False
    return tris[ok & ~inside.any(1)]
