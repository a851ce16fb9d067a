"""Resident host of Wav2Lip for the ``wav2lip`` engines: Wav2Lip's own ``inference.py``, imported
once, its checkpoint loaded once and its face detection kept per source; then one run per request.

Run with Wav2Lip's Python (WAV2LIP_PYTHON) in its checkout (the cwd: ``inference.py`` imports
``audio``, ``models``, ``face_detection`` beside it), as a plain script (Python 3.7 or newer; only
the standard library besides Wav2Lip)::

    python wav2lip_host.py --checkpoint_path /abs/checkpoints/wav2lip_gan.pth

inference.py (github.com/Rudrabha/Wav2Lip) parses its command line when it is imported (``args =
parser.parse_args()`` at module level) and its functions read that global ``args``: ``main()``
reads the face and the speech, ``datagen`` calls ``face_detect(frames)`` (S3FD, built on each call)
and ``main`` calls ``load_model(args.checkpoint_path)`` at its first batch. So this host:

- sets ``sys.argv`` to a valid command line, then ``import inference``;
- replaces ``inference.load_model`` with one that keeps the model it loaded, by checkpoint (one at
  a time: another checkpoint replaces it), and loads ``--checkpoint_path`` before it says ready;
- wraps ``inference.face_detect`` with a cache: the boxes it found, by the source file's SHA-256,
  the settings that shape the frames or the boxes (``--pads``, ``--resize_factor``, ``--crop``,
  ``--rotate``, ``--nosmooth``, ``--static``) and the number of frames (its smoothing window at the
  end depends on it); a hit crops the same boxes out of this run's frames, as face_detect returns
  them (``[[face, (y1, y2, x1, x2)], …]``), and draws face_detect's bar at its end (``Face
  detection (cached):``); a failure (no face) is not kept;
- per request, parses the request's arguments with inference.py's own ``parser`` (an unknown flag
  fails as there, status 2), adds what it adds (``img_size``, ``static`` for a jpg/png/jpeg face),
  sets ``inference.args``, and calls ``inference.main()`` in the request's folder (``cwd``): its
  ``temp/`` and ``results/`` are relative to it.

Protocol (engines/gpu/resident.py): JSON lines; the real stdout is kept for them, everything
printed (Wav2Lip's prints, its tqdm bars, its ffmpeg) goes to stderr.

- on start ``{"event": "ready", "checkpoint", "device"}``, or ``{"event": "error", "type",
  "message", "traceback"}`` and exit status 1 (inference.py or the checkpoint does not load);
- per request ``{"id", "cwd", "argv": [...]}`` (inference.py's arguments): ``{"id", "event":
  "done", "outfile", "faceCached"}`` or ``{"id", "event": "error", "type", "message",
  "traceback"}``, then the line ``\\x1elikeness-end <id>`` on stderr;
- ``{"quit": true}`` or the end of stdin: exit. It also exits when the worker dies.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys

import host_io  # beside this script: the protocol (engines/gpu/host_io.py)

FACE_CACHE_ENTRIES = 64  # sources whose boxes are kept (a few numbers a frame)


class Wav2LipHost:
    """inference.py imported once, with its load_model and face_detect kept between runs."""

    def __init__(self, inference) -> None:
        self.inference = inference
        self.base_args = inference.args  # what inference.py set at import beyond its parser (img_size)
        self._load_model = inference.load_model
        self._face_detect = inference.face_detect
        self.model_key: tuple | None = None
        self.model = None
        self.faces: collections.OrderedDict = collections.OrderedDict()
        self.source = ""  # the SHA-256 of this run's face file
        self.face_cached = False
        inference.load_model = self.load_model
        inference.face_detect = self.face_detect

    def load_model(self, path):
        st = os.stat(path)
        key = (os.path.realpath(path), st.st_size, st.st_mtime_ns)
        if key != self.model_key:
            self.model = self.model_key = None  # one model on the card at a time
            host_io.free_cuda()
            self.model = self._load_model(path)
            self.model_key = key
        return self.model

    def face_detect(self, images):
        args = self.inference.args
        key = (self.source, len(images), tuple(args.pads), args.resize_factor, tuple(args.crop), bool(args.rotate),
               bool(args.nosmooth), bool(args.static))
        boxes = self.faces.get(key) if self.source else None
        if boxes is not None:
            self.faces.move_to_end(key)
            self.face_cached = True
            # face_detect's bar, at its end at once (the step's progress reads the bars in order)
            batches = -(-len(images) // max(1, int(args.face_det_batch_size)))
            sys.stderr.write(f"\rFace detection (cached): 100%|██████████| {batches}/{batches} [00:00<00:00]\n")
            sys.stderr.flush()
            return [[image[y1:y2, x1:x2], (y1, y2, x1, x2)] for image, (y1, y2, x1, x2) in zip(images, boxes)]  # noqa: B905 - Python 3.7+
        results = self._face_detect(images)
        if self.source:
            self.faces[key] = [coords for _face, coords in results]
            while len(self.faces) > FACE_CACHE_ENTRIES:
                self.faces.popitem(last=False)
        return results

    def run(self, folder: str, argv: list) -> dict:
        inference = self.inference
        home = os.getcwd()
        os.chdir(folder)
        try:
            args = inference.parser.parse_args([str(a) for a in argv])
            for name, value in vars(self.base_args).items():
                if not hasattr(args, name):
                    setattr(args, name, value)
            # inference.py's own line after its parse_args, for this run's face
            if os.path.isfile(args.face) and args.face.split('.')[1] in ['jpg', 'png', 'jpeg']:
                args.static = True
            inference.args = args
            self.source = host_io.file_sha256(args.face) if os.path.isfile(args.face) else ""
            self.face_cached = False
            inference.main()
            return {"outfile": os.path.abspath(args.outfile), "faceCached": self.face_cached}
        finally:
            os.chdir(home)


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(description="Wav2Lip resident host (JSON lines on stdin/stdout)")
    parser.add_argument("--checkpoint_path", required=True)
    opts = parser.parse_args(argv)
    host_io.start()
    # Wav2Lip's modules (inference, audio, models, face_detection, hparams) from its checkout, the
    # cwd; not from this script's folder (Python put it first on sys.path).
    here = os.path.dirname(os.path.abspath(__file__))
    checkout = os.getcwd()
    sys.path[:] = [checkout] + [p for p in sys.path if os.path.abspath(p or os.curdir) not in (here, checkout)]

    try:
        # inference.py parses sys.argv when imported: a valid command line (the run's come later)
        sys.argv = ["inference.py", "--checkpoint_path", opts.checkpoint_path, "--face", "face.mp4",
                    "--audio", "speech.wav"]
        import inference

        host = Wav2LipHost(inference)
        host.load_model(opts.checkpoint_path)
    except BaseException as exc:  # noqa: BLE001 - reported, then exit
        host_io.send(host_io.error(exc))
        return 1
    host_io.send({"event": "ready", "checkpoint": opts.checkpoint_path, "device": str(getattr(inference, "device", ""))})

    host_io.serve(lambda req: host.run(str(req["cwd"]), list(req["argv"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
