"""ArcFace embeddings of images, for the ``likeness`` evaluate engine (likeness_eval.py).

Run with the Python of an environment that has insightface and onnxruntime (LIKENESS_EVAL_FACE_PYTHON),
as a plain script (the standard library, insightface, numpy and OpenCV only; it imports nothing of
the worker)::

    python face_embed_host.py --root ~/.insightface [--name buffalo_l] [--det-size 640] IMAGE...

It uses insightface's own API (github.com/deepinsight/insightface,
python-package/insightface/app/face_analysis.py): ``FaceAnalysis(name=, root=, providers=,
allowed_modules=)`` loads the model pack's ONNX files from ``<root>/models/<name>/`` (buffalo_l:
the SCRFD detector det_10g.onnx and the ArcFace ResNet-50 w600k_r50.onnx; the landmark and
gender/age models are not loaded), ``prepare(ctx_id=, det_size=)`` readies them, and ``get(img)``
on a BGR image returns the faces found, each with ``.bbox`` (x1, y1, x2, y2), ``.det_score`` and
``.normed_embedding`` (the L2-normalised 512-d ArcFace embedding of the aligned face).

FaceAnalysis downloads a pack it does not find (``ensure_available``); this script never lets it:
a missing model file fails at once with ``FileNotFoundError: [Errno 2] No such file or directory:
'<path>'`` (exit 1), which the engine reports as weights missing.

Output, on stdout, one JSON line per image in the order given (insightface's own prints are
other lines)::

    {"image": PATH, "embedding": [512 floats] | null, "reason": null | "...", "faces": N,
     "bbox": [x1, y1, x2, y2] | null, "detScore": float | null}

The face embedded is the largest one found; no face, or an unreadable image, gives a null
embedding with the reason.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys

PACK_FILES = {"buffalo_l": ("det_10g.onnx", "w600k_r50.onnx")}
PROVIDERS = ["CUDAExecutionProvider", "CPUExecutionProvider"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="ArcFace embeddings of the largest face of each image (JSON lines)")
    p.add_argument("--root", required=True, help="insightface's root: the folder that holds models/<name>/")
    p.add_argument("--name", default="buffalo_l", help="the model pack")
    p.add_argument("--det-size", type=int, default=640, help="the detector's input size (square)")
    p.add_argument("--ctx-id", type=int, default=0, help="the GPU (onnxruntime falls back to the CPU without one)")
    p.add_argument("images", nargs="+")
    return p


def _check_pack(root: str, name: str) -> None:
    """The pack's files must be there: FaceAnalysis would otherwise try to download it."""
    folder = os.path.join(root, "models", name)
    for f in PACK_FILES.get(name, ()):
        path = os.path.join(folder, f)
        if not os.path.isfile(path):
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
    if not os.path.isdir(folder):
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), folder)


def _embed(app, path: str) -> dict:
    import cv2

    out: dict = {"image": path, "embedding": None, "reason": None, "faces": 0, "bbox": None, "detScore": None}
    img = cv2.imread(path, cv2.IMREAD_COLOR)  # BGR, as insightface expects
    if img is None:
        out["reason"] = "the image cannot be read"
        return out
    faces = app.get(img)
    out["faces"] = len(faces)
    if not faces:
        out["reason"] = "no face found"
        return out
    face = max(faces, key=lambda f: float((f.bbox[2] - f.bbox[0]) * (f.bbox[3] - f.bbox[1])))
    emb = face.normed_embedding
    if emb is None:
        out["reason"] = "the model pack has no recognition model"
        return out
    out.update(embedding=[round(float(v), 6) for v in emb], bbox=[round(float(v), 1) for v in face.bbox],
               detScore=round(float(face.det_score), 4))
    return out


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    root = os.path.expanduser(args.root)
    _check_pack(root, args.name)
    from insightface.app import FaceAnalysis

    app = FaceAnalysis(name=args.name, root=root, providers=PROVIDERS, allowed_modules=["detection", "recognition"])
    app.prepare(ctx_id=args.ctx_id, det_size=(args.det_size, args.det_size))
    for path in args.images:
        print(json.dumps(_embed(app, path)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
