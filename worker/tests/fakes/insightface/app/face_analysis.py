"""FAKE insightface/app/face_analysis.py: FaceAnalysis with the real signatures and prints, over
OpenCV stand-ins for the pack's models (see the package's docstring)."""

import glob
import os.path as osp

import cv2
import numpy as np

from ..utils import DEFAULT_MP_NAME, ensure_available
from .common import Face

__all__ = ["FaceAnalysis"]

DEFAULT_DET_SIZES = [(128, 128), (640, 640)]
EMBED_SIDE = 16
# buffalo_l's files and the task each one's ONNX graph is routed to (model_zoo.ModelRouter).
PACK_TASKS = {"det_10g": "detection", "w600k_r50": "recognition", "1k3d68": "landmark_3d_68",
              "2d106det": "landmark_2d_106", "genderage": "genderage"}


class _Model:
    input_shape = None
    input_mean = 127.5
    input_std = 127.5

    def __init__(self, onnx_file, taskname, providers):
        self.model_file = onnx_file
        self.taskname = taskname
        self.providers = providers
        self.input_shape = {"detection": ["1", 3, "?", "?"], "recognition": ["None", 3, 112, 112]}.get(
            taskname, [1, 3, 192, 192])

    def prepare(self, ctx_id, **kwargs):
        self.ctx_id = ctx_id
        self.options = kwargs


class _Detector(_Model):
    """SCRFD's place: OpenCV's Haar cascade."""

    cascade = None

    def detect(self, img, input_size=None, max_num=0, metric="default"):
        if _Detector.cascade is None:
            _Detector.cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
        grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        boxes, _, weights = _Detector.cascade.detectMultiScale3(grey, 1.1, 5, minSize=(24, 24), outputRejectLevels=True)
        rows = []
        for (x, y, w, h), weight in zip(boxes, np.ravel(weights), strict=True):
            score = float(1.0 - np.exp(-max(float(weight), 0.0)))
            if score >= self.options.get("det_thresh", 0.5):
                rows.append([x, y, x + w, y + h, score])
        det = np.array(sorted(rows, key=lambda r: -r[4]), np.float32).reshape(-1, 5)
        if max_num > 0:
            det = det[:max_num]
        return det, None


class _Recognizer(_Model):
    """ArcFace's place: the face's grey box, 16 x 16, minus its mean."""

    def get(self, img, face):
        x1, y1, x2, y2 = (int(round(v)) for v in face.bbox)
        grey = cv2.cvtColor(img[max(y1, 0):y2, max(x1, 0):x2], cv2.COLOR_BGR2GRAY)
        v = cv2.resize(grey, (EMBED_SIDE, EMBED_SIDE), interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
        face.embedding = v - v.mean()
        return face.embedding


def _get_model(onnx_file, **kwargs):
    task = PACK_TASKS.get(osp.splitext(osp.basename(onnx_file))[0])
    if task is None:
        return None
    providers = kwargs.get("providers", ["CUDAExecutionProvider", "CPUExecutionProvider"])
    print(f"Applied providers: {providers}, with options: {{}}")
    kind = {"detection": _Detector, "recognition": _Recognizer}.get(task, _Model)
    return kind(onnx_file, task, providers)


class FaceAnalysis:
    def __init__(self, name=DEFAULT_MP_NAME, root="~/.insightface", allowed_modules=None, **kwargs):
        self.models = {}
        self.model_dir = ensure_available("models", name, root=root)
        onnx_files = sorted(glob.glob(osp.join(self.model_dir, "*.onnx")))
        for onnx_file in onnx_files:
            model = _get_model(onnx_file, **kwargs)
            if model is None:
                print("model not recognized:", onnx_file)
            elif allowed_modules is not None and model.taskname not in allowed_modules:
                print("model ignore:", onnx_file, model.taskname)
                del model
            elif model.taskname not in self.models and (allowed_modules is None or model.taskname in allowed_modules):
                print("find model:", onnx_file, model.taskname, model.input_shape, model.input_mean, model.input_std)
                self.models[model.taskname] = model
            else:
                print("duplicated model task type, ignore:", onnx_file, model.taskname)
                del model
        assert "detection" in self.models
        self.det_model = self.models["detection"]

    def prepare(self, ctx_id, det_thresh=0.5, det_size=None):
        self.det_thresh = det_thresh
        if det_size is None:
            det_size = list(DEFAULT_DET_SIZES)
        print("set det-size:", det_size)
        self.det_size = det_size
        for taskname, model in self.models.items():
            if taskname == "detection":
                model.prepare(ctx_id, input_size=det_size, det_thresh=det_thresh)
            else:
                model.prepare(ctx_id)

    def get(self, img, max_num=0, det_metric="default"):
        bboxes, kpss = self.det_model.detect(img, max_num=max_num, metric=det_metric)
        if bboxes.shape[0] == 0:
            return []
        ret = []
        for i in range(bboxes.shape[0]):
            bbox = bboxes[i, 0:4]
            det_score = bboxes[i, 4]
            kps = None
            if kpss is not None:
                kps = kpss[i]
            face = Face(bbox=bbox, kps=kps, det_score=det_score)
            for taskname, model in self.models.items():
                if taskname == "detection":
                    continue
                if hasattr(model, "get"):
                    model.get(img, face)
            ret.append(face)
        return ret
