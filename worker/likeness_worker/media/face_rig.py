"""A 2D face rig on MediaPipe's mesh: mouth opening, width and rounding, blinks and small head
motion as a warp of the picture, with the mouth's interior (dark, teeth) painted in.

Every motion is a displacement of the mesh's vertices that is linear in one coefficient: jaw
open, spread, round, blink right, blink left, head rotation, head x and y. Each pattern is
spread over the pixels once, piecewise-affinely over the mesh triangles (barycentric weights in
the rest pose), so a frame costs one weighted sum of a few dense fields, a fixed-point inversion
(two remaps of the field) and one remap of the picture: no per-frame rasterisation.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np

from .face_mesh import (
    CHIN,
    FACE_OVAL,
    FOREHEAD,
    LEFT_EYE_LOWER,
    LEFT_EYE_UPPER,
    LIPS_INNER_LOWER,
    LIPS_INNER_UPPER,
    LIPS_OUTER_LOWER,
    LIPS_OUTER_UPPER,
    MESH_POINTS,
    MOUTH_LEFT,
    MOUTH_RIGHT,
    RIGHT_EYE_LOWER,
    RIGHT_EYE_UPPER,
    drop_overlapping,
    mesh_triangles,
)

# Coefficient order of Pose.vector() and of the rig's bases.
BASES = ("open", "spread", "round", "blink_r", "blink_l", "turn", "head_x", "head_y")
RELAX_SIGMAS = (8.0,) * 12 + (4.0,) * 12 + (2.0,) * 12  # smoothing outside the face (_fields)
MAX_GAP = 0.34  # inner-lip gap at open=1, in mouth widths (a wide "ah"; wider looks forced)


@dataclass
class Pose:
    open: float = 0.0  # 0 closed .. 1 wide open
    spread: float = 0.0  # lips spread (ee) > 0
    round: float = 0.0  # lips rounded (oo) 0..1
    blink_r: float = 0.0  # 0 open .. 1 closed
    blink_l: float = 0.0
    turn: float = 0.0  # head roll, radians
    head_x: float = 0.0  # head shift, pixels
    head_y: float = 0.0

    def vector(self) -> np.ndarray:
        return np.array([getattr(self, b) for b in BASES], np.float32)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _thin_plate(ctrl: np.ndarray, values: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Thin-plate spline through ``values`` (k x 2) at ``ctrl`` (k x 2), evaluated ``at``."""
    def u(r2: np.ndarray) -> np.ndarray:
        return 0.5 * r2 * np.log(np.maximum(r2, 1e-12))

    k = len(ctrl)
    scale = max(1.0, float(np.ptp(ctrl, axis=0).max()))
    c, q = ctrl / scale, at / scale  # well conditioned whatever the picture's size
    m = np.zeros((k + 3, k + 3))
    m[:k, :k] = u(((c[:, None] - c[None]) ** 2).sum(-1)) + 1e-6 * np.eye(k)
    m[:k, k] = 1
    m[:k, k + 1:] = c
    m[k, :k] = 1
    m[k + 1:, :k] = c.T
    rhs = np.zeros((k + 3, 2))
    rhs[:k] = values
    coef = np.linalg.solve(m, rhs)
    basis = u(((q[:, None] - c[None]) ** 2).sum(-1))
    return basis @ coef[:k] + coef[k] + q @ coef[k + 1:]


def _strip(upper: tuple[int, ...], lower: tuple[int, ...]) -> list[tuple[int, int, int]]:
    """Triangles filling the hole between two contours that share their end points."""
    tris = []
    for i in range(len(upper) - 1):
        for t in ((upper[i], upper[i + 1], lower[i + 1]), (upper[i], lower[i], lower[i + 1])):
            if len(set(t)) == 3:
                tris.append(t)
    return tris


def _ring(pts: np.ndarray, oval: list[int], anchors: list[int]):
    """Delaunay triangles between the face oval and the ROI border, outside the oval."""
    ids = oval + anchors
    # The face may reach past the picture (a chin cut off by the frame): the subdivision's
    # rectangle holds every point, not just the ROI.
    lo, hi = np.floor(pts[ids].min(0)) - 2, np.ceil(pts[ids].max(0)) + 2
    sub = cv2.Subdiv2D((int(lo[0]), int(lo[1]), int(hi[0] - lo[0]), int(hi[1] - lo[1])))
    where = {}
    for i in ids:
        p = (float(pts[i, 0]), float(pts[i, 1]))
        sub.insert(p)
        where[(round(p[0], 2), round(p[1], 2))] = i
    poly = pts[oval].astype(np.float32)
    out = []
    for t in sub.getTriangleList():
        key = [(round(float(t[k]), 2), round(float(t[k + 1]), 2)) for k in (0, 2, 4)]
        if not all(k in where for k in key):
            continue  # a vertex of Subdiv2D's outer bounding triangle
        tri = tuple(where[k] for k in key)
        c = pts[list(tri)].mean(0)
        if cv2.pointPolygonTest(poly, (float(c[0]), float(c[1])), False) < 0:
            out.append(tri)
    return out


class FaceRig:
    """The rig of one face in one RGB picture (``landmarks``: 478 x 2 pixels).

    ``self.image`` is the picture in the rest pose: lips closed. A mouth that is open in the
    photo (a smile showing teeth) is closed once, here, by an exact piecewise-affine warp, so
    that the per-frame fields never have to squeeze the lips together.
    """

    def __init__(self, image: np.ndarray, landmarks: np.ndarray):
        h_img, w_img = image.shape[:2]
        p = np.asarray(landmarks, np.float64)[:MESH_POINTS]
        self.face_h = float(np.linalg.norm(p[CHIN] - p[FOREHEAD]))
        self.mouth_w = float(np.linalg.norm(p[MOUTH_RIGHT] - p[MOUTH_LEFT]))
        if self.face_h < 8 or self.mouth_w < 4:
            raise ValueError("the face is too small to animate")
        u = (p[MOUTH_RIGHT] - p[MOUTH_LEFT]) / self.mouth_w
        v = np.array([-u[1], u[0]])
        if v @ (p[CHIN] - p[FOREHEAD]) < 0:
            v = -v
        self.u, self.v = u, v

        # Region of interest: the face plus a margin (hair, ears, neck); anchors on its border
        # stay put, so the background beyond it never moves.
        lo, hi = p.min(0), p.max(0)
        fw, fh = hi - lo
        x0, x1 = int(max(0, lo[0] - 0.3 * fw)), int(min(w_img, hi[0] + 0.3 * fw))
        y0, y1 = int(max(0, lo[1] - 0.3 * fh)), int(min(h_img, hi[1] + 0.35 * fh))
        x1, y1 = x0 + (x1 - x0) // 2 * 2, y0 + (y1 - y0) // 2 * 2  # even: see _fields
        self.roi = (x0, y0, x1, y1)
        anchors = []
        n_side = 8
        for k in range(n_side):
            f = k / n_side
            anchors += [(x0 + f * (x1 - x0), y0), (x1, y0 + f * (y1 - y0)),
                        (x1 - f * (x1 - x0), y1), (x0, y1 - f * (y1 - y0))]
        pts = np.vstack([p, np.array(anchors, np.float64)])
        anchor_ids = list(range(MESH_POINTS, len(pts)))
        self.points = pts

        mesh = drop_overlapping(mesh_triangles(), p)
        skin = [tuple(t) for t in mesh] + _ring(pts, list(FACE_OVAL), anchor_ids)
        skin += _strip(RIGHT_EYE_UPPER, RIGHT_EYE_LOWER) + _strip(LEFT_EYE_UPPER, LEFT_EYE_LOWER)
        mouth = _strip(LIPS_INNER_UPPER, LIPS_INNER_LOWER)  # painted over whenever it is open
        self.triangles = np.array(skin + mouth, np.int32)

        closing = self._rest_closing(pts)
        self._closing = None  # (source, closed vertices, triangles) when the photo's mouth was open
        if np.abs(closing).max() > 0.25:
            skin_tris = np.array(skin, np.int32)
            image = warp_exact(image, pts, pts + closing, skin_tris, self.roi)
            self._closing = (pts.copy(), pts + closing, skin_tris)
            pts = pts + closing
            self.points = pts
            image = _clean_lips(image, pts)
        self.image = image
        self.bases = self._bases(pts, len(anchor_ids))
        self._fields()
        self.lip_rgb = _lip_colour(self)

    # -- vertex patterns ---------------------------------------------------------------------
    def _mouth_coords(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        m = (pts[13] + pts[14]) / 2
        rel = pts - m
        return rel @ self.u / self.mouth_w, rel @ self.v / self.mouth_w

    def _rest_closing(self, pts: np.ndarray) -> np.ndarray:
        """Constant displacement that closes a mouth open in the picture (the rest pose is
        closed lips: the avatar's mouth rests closed on silence)."""
        gaps = np.array([max(0.0, float((pts[lo] - pts[up]) @ self.v))
                         for up, lo in zip(LIPS_INNER_UPPER, LIPS_INNER_LOWER, strict=True)])
        g = float(gaps[len(gaps) // 2])
        if g < 0.03 * self.mouth_w:  # closed, or as good as: leave the lips as they are
            return np.zeros_like(pts)
        inner = {i: -gaps[k] * self.v for k, i in enumerate(LIPS_INNER_LOWER)}  # onto the upper lip
        return self._jaw_move(pts, -g, inner, {})

    def _lip_profile(self, pts: np.ndarray, ids: tuple[int, ...]) -> np.ndarray:
        """1 in the middle of the mouth, 0 at the corners."""
        s, _ = self._mouth_coords(pts)
        # An ellipse, not a V: the opening is round at the bottom. The corners, shared with the
        # upper lip, stay where they are (moving them folds the skin around them).
        corner = max(abs(s[MOUTH_LEFT]), abs(s[MOUTH_RIGHT]))
        return np.sqrt(np.clip(1 - (s[list(ids)] / corner) ** 2, 0, 1))

    def _jaw_move(self, pts: np.ndarray, drop: float, inner_lower: dict, upper: dict) -> np.ndarray:
        """The jaw moves by ``drop`` pixels (down > 0) with the lower lip; ``inner_lower`` and
        ``upper`` give some lip points their own displacement. Every other vertex follows by a
        thin-plate spline through the lips, the chin (moving) and the upper face (still): smooth,
        so the skin between lip and chin neither folds nor tears."""
        s, t = self._mouth_coords(pts)
        v = self.v
        corners = (MOUTH_LEFT, MOUTH_RIGHT, 78, 308)
        # Opening, the corners follow the jaw a little (else the cheek beside them shears);
        # closing, they stay (moving up, they would fold into the upper lip).
        fixed: dict[int, np.ndarray] = {i: (0.2 * drop if drop > 0 else 0.0) * v for i in corners}
        upper = {i: dd for i, dd in upper.items() if i not in corners}
        for i, w in zip(LIPS_OUTER_LOWER, self._lip_profile(pts, LIPS_OUTER_LOWER), strict=True):
            fixed.setdefault(i, drop * w * v)
        for i in FACE_OVAL:  # the chin moves with the jaw, less toward the jaw's angles, the rest not
            w = _smoothstep((t[i] - 0.1) / 0.6) * np.exp(-(max(0.0, abs(s[i]) - 0.45) / 0.8) ** 2)
            # Closing a photo's mouth moves only the lips: the outline stays, so the one exact
            # warp of the picture does not bend the neck and collar below it.
            fixed[i] = (drop * float(w) if drop > 0 else 0.0) * v
        for i in LIPS_OUTER_UPPER + (1, 4, 195, 197, 33, 133, 263, 362):
            fixed.setdefault(i, np.zeros(2))
        fixed.update({i: np.asarray(d, np.float64) for i, d in upper.items() if i in LIPS_OUTER_UPPER})
        ids = list(fixed)
        d = np.zeros_like(pts)
        d[:MESH_POINTS] = _thin_plate(pts[ids], np.array([fixed[i] for i in ids]), pts[:MESH_POINTS])
        # Above the upper lip's line nothing follows the jaw (a spline overshoots a little there,
        # and a nostril that twitches with every syllable looks wrong). The line, not the level
        # of the mouth's middle: a smile's corners sit higher.
        line = np.array(LIPS_OUTER_UPPER)[np.argsort(s[list(LIPS_OUTER_UPPER)])]
        t_line = np.interp(s[:MESH_POINTS], s[line], t[line])
        d[:MESH_POINTS] *= _smoothstep((t[:MESH_POINTS] - t_line + 0.04) / 0.14)[:, None]
        for i, w in zip(LIPS_INNER_LOWER, self._lip_profile(pts, LIPS_INNER_LOWER), strict=True):
            if i not in corners:
                d[i] = inner_lower.get(i, drop * w * v)
        for i, dd in upper.items():
            d[i] = dd
        for i in ids:
            d[i] = fixed[i]
        return d

    def _bases(self, pts: np.ndarray, n_anchor: int) -> np.ndarray:
        n = len(pts)
        b = np.zeros((len(BASES), n, 2))
        s, t = self._mouth_coords(pts)
        mw, u, v = self.mouth_w, self.u, self.v
        # open: the jaw drops, the upper lip lifts a little.
        gap = MAX_GAP * mw
        up_w = np.cos(np.pi / 2 * np.clip(np.abs(s) / 0.55, 0, 1))
        upper = {i: -0.15 * gap * up_w[i] * v for i in LIPS_INNER_UPPER}
        upper.update({i: -0.08 * gap * up_w[i] * v for i in LIPS_OUTER_UPPER})
        b[0] = self._jaw_move(pts, 0.85 * gap, {}, upper)
        # spread / round: the corners move out / in; rounding also opens the middle a little.
        # The cheeks follow the corners far out (a narrow falloff stretches the corner's creases
        # into view when the lips round).
        near = np.exp(-((s / 1.2) ** 2 + (t / 0.6) ** 2))
        near[MESH_POINTS:] = 0
        b[1] = np.outer(0.14 * mw * s * near, u)
        b[2] = np.outer(-0.22 * mw * s * near, u)
        for i in LIPS_INNER_LOWER[1:-1] + LIPS_OUTER_LOWER[1:-1]:
            b[2, i] += 0.05 * mw * v
        for i in LIPS_INNER_UPPER[1:-1] + LIPS_OUTER_UPPER[1:-1]:
            b[2, i] -= 0.03 * mw * v
        # blinks: the upper lid comes down onto the lower one, the skin above it follows.
        for k, (lid_upper, lid_lower) in enumerate(((RIGHT_EYE_UPPER, RIGHT_EYE_LOWER),
                                                    (LEFT_EYE_UPPER, LEFT_EYE_LOWER))):
            eye = pts[list(lid_upper)]
            eye_w = float(np.linalg.norm(eye[-1] - eye[0]))
            lid = np.zeros((n, 2))
            for a, c in zip(lid_upper[1:-1], lid_lower[1:-1], strict=True):
                lid[a] = 0.92 * (pts[c] - pts[a])
                lid[c] = 0.06 * (pts[a] - pts[c])
            moved = set(lid_upper[1:-1]) | set(lid_lower[1:-1])
            for i in range(MESH_POINTS):
                if i in moved:
                    continue
                dist = np.linalg.norm(eye - pts[i], axis=1)
                j = int(dist.argmin())
                above = (pts[i] - eye[j]) @ v < 0
                if above and 0 < j < len(lid_upper) - 1 and dist[j] < 0.6 * eye_w:
                    lid[i] = lid[lid_upper[j]] * (1 - dist[j] / (0.6 * eye_w)) * 0.7
            b[3 + k] = lid
        # head: roll about the neck, shift; the ROI border (anchors) stays.
        neck = pts[CHIN] + 0.25 * self.face_h * v
        rel = pts - neck
        b[5] = np.stack([-rel[:, 1], rel[:, 0]], 1)
        b[6, :, 0] = 1.0
        b[7, :, 1] = 1.0
        b[5:, n - n_anchor:] = 0.0
        return b

    # -- dense fields ------------------------------------------------------------------------
    def _fields(self) -> None:
        """Barycentric spreading of every vertex pattern over the ROI's pixels (once)."""
        x0, y0, x1, y1 = self.roi
        h, w = y1 - y0, x1 - x0
        pts = self.points - (x0, y0)
        index = np.full((h, w), -1, np.int32)
        for k, t in enumerate(self.triangles):
            cv2.fillConvexPoly(index, np.round(pts[t] * 16).astype(np.int32), k, cv2.LINE_8, 4)
        # The backward map is computed on a half-resolution grid (the centres of 2 x 2 blocks)
        # and upsampled: the fields are smooth, so this costs nothing visible and a quarter of
        # the time.
        half = (w // 2, h // 2)
        sub = index[0::2, 0::2][: half[1], : half[0]]
        ys, xs = np.nonzero(sub >= 0)
        tri = self.triangles[sub[ys, xs]]
        a, b, c = pts[tri[:, 0]], pts[tri[:, 1]], pts[tri[:, 2]]
        q = np.stack([xs * 2 + 0.5, ys * 2 + 0.5], 1)
        v0, v1, v2 = b - a, c - a, q - a
        den = v0[:, 0] * v1[:, 1] - v1[:, 0] * v0[:, 1]
        flat = np.abs(den) < 1e-6  # the closed mouth's strip: no area, any weights will do
        den[flat] = 1.0
        l1 = (v2[:, 0] * v1[:, 1] - v1[:, 0] * v2[:, 1]) / den
        l2 = (v0[:, 0] * v2[:, 1] - v2[:, 0] * v0[:, 1]) / den
        # A block centre can sit just outside the triangle its corner pixel belongs to: clamp.
        lam = np.clip(np.stack([1 - l1 - l2, l1, l2], 1), 0.0, 1.0)
        lam[flat] = 1 / 3
        lam /= lam.sum(1, keepdims=True)
        l0, l1, l2 = lam[:, 0], lam[:, 1], lam[:, 2]

        def spread(vtx: np.ndarray) -> np.ndarray:
            f = np.zeros((half[1], half[0], 2), np.float32)
            f[ys, xs] = (l0[:, None] * vtx[tri[:, 0]] + l1[:, None] * vtx[tri[:, 1]]
                         + l2[:, None] * vtx[tri[:, 2]])
            return f

        # Outside the face the triangles are large and piecewise-linear motion bends straight
        # lines (a collar, the hair's edge) at their edges: there the field is relaxed into a
        # smooth one between the face's outline and the still border instead.
        face = np.zeros((half[1], half[0]), np.uint8)
        cv2.fillPoly(face, [np.round((pts[list(FACE_OVAL)] - 0.5) / 2 * 16).astype(np.int32)], 1, cv2.LINE_8, 4)
        ring = face == 0
        border = np.zeros_like(ring)
        border[[0, -1], :] = border[:, [0, -1]] = True

        def smooth_outside(f: np.ndarray) -> np.ndarray:
            if np.abs(f[ring]).max(initial=0.0) < 0.02:  # the mouth's and eyes' own motions
                return f
            fixed = f.copy()
            for sigma in RELAX_SIGMAS:  # wide first (reach), then narrow (detail near the face)
                f = cv2.GaussianBlur(f, (0, 0), sigma)
                f[~ring] = fixed[~ring]
                f[border] = 0.0
            return f

        # in steps of the half-resolution grid, as backward() iterates on it
        self.fields = np.stack([smooth_outside(spread(bk) / 2) for bk in self.bases]).reshape(len(BASES), -1)
        self.grid_index = np.dstack(np.meshgrid(np.arange(half[0], dtype=np.float32),
                                                np.arange(half[1], dtype=np.float32)))

    def vertices(self, pose: Pose) -> np.ndarray:
        """Where the vertices are in this pose (pixels)."""
        return self.points + np.einsum("k,knc->nc", pose.vector(), self.bases)

    def backward(self, pose: Pose) -> np.ndarray:
        """For each ROI pixel of the posed picture, where it comes from in ``self.image``
        (h x w x 2, absolute pixels)."""
        x0, y0, x1, y1 = self.roi
        g = self.grid_index
        # einsum, not a BLAS matmul: OpenBLAS's threads would spin on the core the encoder needs
        d = np.einsum("k,kn->n", pose.vector(), self.fields).reshape(g.shape)  # half-grid steps
        # Fixed-point iteration of src = dst - d(src): the fields are smooth except across the
        # opening lips, and that gap is painted over.
        q = g - d
        for _ in range(2):
            q = g - cv2.remap(d, q, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        q = q * 2 + np.array((x0 + 0.5, y0 + 0.5), dtype=np.float32)
        return cv2.resize(q, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)

    def render(self, pose: Pose, out: np.ndarray) -> None:
        """Write the picture in ``pose`` into ``out`` (a copy of ``self.image``: only the ROI
        is written)."""
        x0, y0, x1, y1 = self.roi
        q = self.backward(pose)
        out[y0:y1, x0:x1] = cv2.remap(self.image, q, None, cv2.INTER_LINEAR,
                                      borderMode=cv2.BORDER_REFLECT101)
        paint_mouth(self, out, self.vertices(pose))

    @cached_property
    def grid(self) -> np.ndarray:
        """The ROI's own pixel coordinates (h x w x 2)."""
        x0, y0, x1, y1 = self.roi
        return np.dstack(np.meshgrid(np.arange(x0, x1, dtype=np.float32), np.arange(y0, y1, dtype=np.float32)))

    @cached_property
    def _closed_from(self) -> np.ndarray | None:
        """Closed picture -> source picture coordinates over the ROI (when the mouth was closed)."""
        if self._closing is None:
            return None
        src, dst, tris = self._closing
        x0, y0, x1, y1 = self.roi
        grid = np.zeros((y1, x1, 2), np.float32)  # the coordinates' own picture, up to the ROI
        grid[y0:, x0:] = self.grid
        return warp_exact(grid, src, dst, tris, self.roi, cv2.INTER_LINEAR)[y0:, x0:]

    def source_backward(self, pose: Pose) -> np.ndarray:
        """Like ``backward``, into the picture the rig was built from (before any closing)."""
        q = self.backward(pose)
        if self._closed_from is None:
            return q
        x0, y0 = self.roi[:2]
        return cv2.remap(self._closed_from, q - np.array((x0, y0), dtype=np.float32), None, cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)


def warp_exact(image: np.ndarray, src: np.ndarray, dst: np.ndarray, tris: np.ndarray,
               roi: tuple[int, int, int, int], interpolation: int = cv2.INTER_CUBIC) -> np.ndarray:
    """Piecewise-affine warp moving the vertices ``src`` to ``dst`` (triangles that do not move
    are left as they are). Exact, and slow enough to be used once per rig."""
    out = image.copy()
    x0, y0, x1, y1 = roi
    moving = np.abs(dst - src).max(1) > 1e-3
    for t in tris:
        if not moving[t].any():
            continue
        d = dst[t].astype(np.float32)
        bx0, by0 = np.maximum(np.floor(d.min(0)).astype(int) - 1, (x0, y0))
        bx1, by1 = np.minimum(np.ceil(d.max(0)).astype(int) + 2, (x1, y1))
        if bx1 <= bx0 or by1 <= by0:
            continue
        m = cv2.getAffineTransform((d - (bx0, by0)).astype(np.float32), src[t].astype(np.float32))
        patch = cv2.warpAffine(image, m, (int(bx1 - bx0), int(by1 - by0)),
                               flags=interpolation | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_REFLECT101)
        mask = np.zeros(patch.shape[:2], np.uint8)
        cv2.fillConvexPoly(mask, np.round((d - (bx0, by0)) * 16).astype(np.int32), 1, cv2.LINE_8, 4)
        region = out[by0:by1, bx0:bx1]
        region[mask > 0] = patch[mask > 0]
    return out


def _clean_lips(image: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """After closing a mouth that showed its teeth: MediaPipe's inner lip contour runs inside
    the teeth, so the closed lips carry bits of tooth and of the dark gap. Those pixels (much
    brighter and greyer than the lips, or much darker) are filled in from the lips around them."""
    lips = np.zeros(image.shape[:2], np.uint8)
    for outer, inner in ((LIPS_OUTER_UPPER, LIPS_INNER_UPPER), (LIPS_OUTER_LOWER, LIPS_INNER_LOWER)):
        poly = np.vstack([pts[list(outer)], pts[list(inner)][::-1]])
        cv2.fillPoly(lips, [np.round(poly * 16).astype(np.int32)], 255, cv2.LINE_8, 4)
    near = cv2.dilate(lips, np.ones((5, 5), np.uint8)) > 0
    ys, xs = np.nonzero(lips)
    if len(ys) < 20:
        return image
    y0, y1 = max(0, ys.min() - 8), ys.max() + 9  # the mouth and a margin: all that can change
    x0, x1 = max(0, xs.min() - 8), xs.max() + 9
    crop, lips, near = image[y0:y1, x0:x1], lips[y0:y1, x0:x1], near[y0:y1, x0:x1]
    lab = cv2.cvtColor(crop, cv2.COLOR_RGB2LAB).astype(np.float32)
    inside = lab[lips > 0]
    light, chroma = lab[..., 0], np.hypot(lab[..., 1] - 128, lab[..., 2] - 128)
    lip_light = float(np.median(inside[:, 0]))
    lip_chroma = float(np.median(np.hypot(inside[:, 1] - 128, inside[:, 2] - 128)))
    # Teeth inside the lips; the dark gap's shadow inside and just around them (the corners).
    odd = ((lips > 0) & (light > lip_light + 18) & (chroma < 0.7 * lip_chroma)) | (near & (light < 0.6 * lip_light))
    mask = cv2.dilate(odd.astype(np.uint8) * 255, np.ones((3, 3), np.uint8))
    if not mask.any():
        return image
    out = image.copy()
    out[y0:y1, x0:x1] = cv2.inpaint(np.ascontiguousarray(crop), mask, 3, cv2.INPAINT_TELEA)
    return out


def _lip_colour(rig: FaceRig) -> np.ndarray:
    p, image = rig.points, rig.image
    ring = np.array([p[i] for i in LIPS_OUTER_UPPER + LIPS_OUTER_LOWER], np.int32)
    mask = np.zeros(image.shape[:2], np.uint8)
    cv2.fillPoly(mask, [ring], 1)
    inner = np.array([p[i] for i in LIPS_INNER_UPPER + LIPS_INNER_LOWER[::-1]], np.int32)
    cv2.fillPoly(mask, [inner], 0)
    px = image[mask > 0]
    return px.mean(0) if len(px) else np.array([150.0, 80.0, 80.0])


def _chaikin(line: np.ndarray, rounds: int = 2) -> np.ndarray:
    """Corner cutting (Chaikin) of an open polyline, its end points kept: a smooth curve."""
    for _ in range(rounds):
        a, b = line[:-1], line[1:]
        mid = np.empty((2 * len(a), 2))
        mid[0::2], mid[1::2] = 0.75 * a + 0.25 * b, 0.25 * a + 0.75 * b
        line = np.vstack([line[:1], mid, line[-1:]])
    return line


def paint_mouth(rig: FaceRig, out: np.ndarray, vtx: np.ndarray, down: np.ndarray | None = None,
                scale: float = 1.0) -> None:
    """Fill the opening between the inner lips: a dark interior, the upper teeth under the upper
    lip and, open wide, the tongue low in the mouth; feathered into the warped lips.
    ``vtx``: the posed vertices where ``out`` has them; ``down``/``scale``: the face's downward
    direction and size there, when ``out`` is not the rig's own picture."""
    v = rig.v if down is None else down
    mouth_w = rig.mouth_w * scale
    upper = vtx[list(LIPS_INNER_UPPER)]
    lower = vtx[list(LIPS_INNER_LOWER)]
    gap = float(np.max(((lower - upper) * v).sum(1)))
    upper, lower = _chaikin(upper), _chaikin(lower)  # 11 points make a polygon; lips are curves
    if gap < 1.0:  # closed: the dark line where the lips meet
        mid = (upper + lower) / 2
        lx0, ly0 = np.floor(mid.min(0)).astype(int) - 2
        lx1, ly1 = np.ceil(mid.max(0)).astype(int) + 3
        region = out[max(ly0, 0):ly1, max(lx0, 0):lx1]
        shade = region.copy()
        line = np.round((mid - (max(lx0, 0), max(ly0, 0))) * 16).astype(np.int32)
        cv2.polylines(shade, [line], False, tuple(float(c) for c in rig.lip_rgb * 0.5), 1, cv2.LINE_AA, 4)
        cv2.addWeighted(shade, 0.35, region, 0.65, 0, region)
        return
    poly = np.vstack([upper, lower[::-1]])
    bx0, by0 = np.floor(poly.min(0)).astype(int) - 2
    bx1, by1 = np.ceil(poly.max(0)).astype(int) + 3
    H, W = out.shape[:2]
    bx0, by0, bx1, by1 = max(bx0, 0), max(by0, 0), min(bx1, W), min(by1, H)
    if bx1 <= bx0 or by1 <= by0:
        return
    h, w = by1 - by0, bx1 - bx0
    ss = 4  # sub-pixel precision for an anti-aliased edge
    mask = np.zeros((h, w), np.uint8)
    cv2.fillPoly(mask, [np.round((poly - (bx0, by0)) * (1 << ss)).astype(np.int32)], 255,
                 cv2.LINE_AA, ss)
    alpha = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), 0.6)
    ys, xs = np.mgrid[by0:by1, bx0:bx1].astype(np.float32)
    order_u, order_l = np.argsort(upper[:, 0]), np.argsort(lower[:, 0])
    y_up = np.interp(xs[0], upper[order_u, 0], upper[order_u, 1])[None, :]
    y_lo = np.interp(xs[0], lower[order_l, 0], lower[order_l, 1])[None, :]
    local_gap = np.maximum(y_lo - y_up, 1e-3)
    depth = np.clip((ys - y_up) / local_gap, 0, 1)  # 0 at the upper lip, 1 at the lower
    cx = (upper[0, 0] + upper[-1, 0]) / 2
    half = max(1.0, abs(upper[-1, 0] - upper[0, 0]) / 2)
    side = np.clip(np.abs(xs - cx) / half, 0, 1)
    luma = float(np.mean(rig.lip_rgb)) / 140.0
    # Interior: the lips' own colour, darkened most in the middle of the opening; the tongue's
    # warmer tone low in the mouth.
    dark = rig.lip_rgb * (0.30 + 0.45 * np.abs(depth - 0.45) ** 1.3)[..., None]
    tongue = (np.clip((depth - 0.6) / 0.3, 0, 1) * np.clip(local_gap / (0.2 * mouth_w), 0, 1)
              * (1 - side ** 2))[..., None]
    interior = dark * (1 - 0.8 * tongue) + rig.lip_rgb * 0.62 * 0.8 * tongue
    interior *= (1 - 0.35 * side ** 2)[..., None]
    tooth = np.array([244.0, 240.0, 230.0]) * min(1.0, max(0.6, luma))
    band_up = np.minimum(local_gap * 0.3, 0.07 * mouth_w)
    teeth_up = np.clip((y_up + band_up - ys) / 1.0, 0, 1) * (1 - 0.75 * side ** 3)
    # the teeth are lit from the front and shaded under the lip and toward the corners
    shade = (0.78 + 0.22 * np.clip((ys - y_up) / np.maximum(band_up, 1), 0, 1))[..., None] * (1 - 0.5 * side ** 2)[..., None]
    t = teeth_up[..., None]
    fill = interior * (1 - t) + tooth * shade * t
    region = out[by0:by1, bx0:bx1].astype(np.float32)
    a = alpha[..., None]
    out[by0:by1, bx0:bx1] = np.clip(region * (1 - a) + fill * a + 0.5, 0, 255).astype(np.uint8)
