"""FAKE insightface, for the tests of the ``likeness`` evaluate engine (engines/gpu/likeness_eval.py,
face_embed_host.py). It is NOT face recognition.

It has the real package's module paths and the API the host uses, with the same signatures
(github.com/deepinsight/insightface, python-package/insightface, commit 7fadd420):
``insightface.app.FaceAnalysis(name='buffalo_l', root='~/.insightface', allowed_modules=None,
**kwargs)`` (``providers`` among the kwargs), ``prepare(ctx_id, det_thresh=0.5, det_size=None)``,
``get(img, max_num=0, det_metric='default')`` → a list of ``insightface.app.common.Face`` with
``.bbox`` (float32 x1, y1, x2, y2), ``.kps`` (None here), ``.det_score``, ``.embedding`` and
``.normed_embedding``; and the same prints and failures when loading a pack: a pack folder that
does not exist is "downloaded" (``download_path: …``, ``Downloading … from …``), which fails as
requests does on a box without the network; a folder without a detection model fails
``assert 'detection' in self.models``.

What stands in for the models (on the BGR image, as the real ones take it):
- detection (``det_10g.onnx``): OpenCV's Haar cascade ``haarcascade_frontalface_default.xml``;
  ``det_score`` is its level weight squashed into 0..1;
- recognition (``w600k_r50.onnx``): the face's box in grey, resized to 16 x 16, minus its mean,
  L2-normalised: a 256-d vector (ArcFace's is 512-d). A deterministic real measurement of the
  face's appearance: the same face framed otherwise scores near 1, another person's face far less.
The ONNX files are not read (empty files do); a file is known by its name in the buffalo_l pack.
"""

__version__ = "0.7.3"

from . import app, utils  # noqa: E402,F401
