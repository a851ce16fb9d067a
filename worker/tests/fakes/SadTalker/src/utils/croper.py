"""SadTalker's src/utils/croper.py: the face box of the source image, and the crop and quad that
--preprocess crop/full use. The detector here is a stand-in: the face is taken to be the middle
of the image (none in a flat image). FAKE_SADTALKER_FAIL=noface finds none, and fails where and as SadTalker does (it
raises a str, which Python 3 turns into "TypeError: exceptions must derive from BaseException",
the traceback showing the line with the message); =edge puts the face across the right edge,
so that the paste back of --preprocess full fails in seamlessClone as it does for such photos."""

import cv2
import numpy as np
from src.face3d.extract_kp_videos_safe import KeypointExtractor
from src.utils.fake_io import fail


class Preprocesser:
    def __init__(self, device='cuda'):
        self.predictor = KeypointExtractor(device)

    def get_landmark(self, img_np):
        """The face box (x0, y0, x1, y1) in place of the 68 landmarks; None when no face."""
        if fail('noface') or img_np.std() < 2:  # a flat image has no face
            return None
        h, w = img_np.shape[:2]
        side = 0.5 * min(w, h)
        cx = w - 0.25 * side if fail('edge') else 0.5 * w
        cy = 0.45 * h
        return np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2])

    def align_face(self, img, lm, output_size=1024):
        """rsize, crop, quad as SadTalker's align_face computes them (quad relative to the crop,
        clamped to the image's width, not the crop's: hence the edge failure)."""
        h, w = img.shape[:2]
        rsize = (w, h)
        x0, y0, x1, y1 = lm
        qsize = x1 - x0
        border = max(int(np.rint(qsize * 0.1)), 3)
        crop = (int(np.floor(x0)), int(np.floor(y0)), int(np.ceil(x1)), int(np.ceil(y1)))
        crop = (max(crop[0] - border, 0), max(crop[1] - border, 0), min(crop[2] + border, w), min(crop[3] + border, h))
        quad = np.array([x0, y0, x1, y1], dtype=float)
        if crop[2] - crop[0] < w or crop[3] - crop[1] < h:
            quad -= [crop[0], crop[1], crop[0], crop[1]]
        quad = quad + 0.5
        lx = max(quad[0], 0)
        ly = max(quad[1], 0)
        rx = min(quad[2], w)
        ry = min(quad[3], w)
        return rsize, crop, [lx, ly, rx, ry]

    def crop(self, img_np_list, still=False, xsize=512):    # first frame for all video
        img_np = img_np_list[0]
        lm = self.get_landmark(img_np)

        if lm is None:
            raise 'can not detect the landmark from source image'  # noqa: B016 - SadTalker's own: its traceback is what a run prints
        rsize, crop, quad = self.align_face(img=img_np, lm=lm, output_size=xsize)
        clx, cly, crx, cry = crop
        lx, ly, rx, ry = quad
        lx, ly, rx, ry = int(lx), int(ly), int(rx), int(ry)
        for _i in range(len(img_np_list)):
            _inp = img_np_list[_i]
            _inp = cv2.resize(_inp, (rsize[0], rsize[1]))
            _inp = _inp[cly:cry, clx:crx]
            if not still:
                _inp = _inp[ly:ry, lx:rx]
            img_np_list[_i] = _inp
        return img_np_list, crop, quad
