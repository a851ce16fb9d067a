"""Resident host of SadTalker for the ``sadtalker`` engine: SadTalker's own ``inference.py``,
imported once, its three models built once and the crop and 3DMM coefficients of a source kept;
then ``inference.main(args)`` per request.

Run with SadTalker's Python (SADTALKER_PYTHON) in its checkout (the cwd: ``inference.py`` imports
``src.…`` beside it; facexlib's weights are looked up in ``gfpgan/weights`` under it), as a plain
script (Python 3.7 or newer; only the standard library besides SadTalker)::

    python sadtalker_host.py --checkpoint_dir /abs/checkpoints --size 256 --preprocess full

inference.py (github.com/OpenTalker/SadTalker, commit cd4c0465) builds its argument parser under
``if __name__ == '__main__'`` and calls ``main(args)``, which reads ``sys.argv[0]`` to find
``src/config``, calls ``init_path(…)``, builds ``CropAndExtract``, ``Audio2Coeff`` and
``AnimateFromCoeff`` (every model loaded from disk, on each run), crops the source and extracts its
3DMM coefficients (``CropAndExtract.generate``: facexlib's face detection and landmarks, then the
3DMM net), and renders. So this host:

- imports ``inference`` with ``sys.argv[0]`` set to the checkout's ``inference.py``, and builds
  inference.py's own parser: the statements of its ``__main__`` block before ``args =
  parser.parse_args()`` (``parser = ArgumentParser()`` and its ``add_argument`` calls), taken
  from its source and run as they are (not a copy: the checkout's flags, whatever its version);
- replaces ``inference.CropAndExtract``, ``Audio2Coeff`` and ``AnimateFromCoeff`` with factories
  that keep the model they built, by the ``init_path(…)`` result (and the files it names: size,
  mtime) and the device, one of each at a time (another key replaces it); it builds them for its
  own ``--checkpoint_dir``, ``--size`` and ``--preprocess`` before it says ready;
- wraps ``CropAndExtract.generate`` with a cache: by the source file's SHA-256 and suffix,
  ``crop_or_resize`` (--preprocess), ``pic_size`` (--size), ``source_image_flag`` and the model's
  key, the files it wrote (``<pic>.mat``, the crop ``<pic>.png``, the landmarks) kept in a folder
  of the host's (not in the run's ``save_dir``, which main removes unless --verbose) and its
  ``crop_info``; a hit copies the files into this run's folder (``first_frame_dir``) under this
  run's names, prints ``3DMM Extraction (cached)`` and skips the detection and its bars; a source
  with no coefficients (no face) is not kept;
- per request, parses the arguments with that parser (an unknown flag fails as there, status 2),
  sets ``args.device`` as inference.py does (``cuda`` when ``torch.cuda.is_available()`` and not
  ``--cpu``), sets ``sys.argv``, and calls ``inference.main(args)`` in the request's ``cwd`` (the
  checkout, as a run of the script: ``gfpgan/weights`` for the enhancer, ffmpeg's temporary files).

Protocol (engines/gpu/resident.py): JSON lines; the real stdout is kept for them, everything
printed (SadTalker's prints, its tqdm bars, its ffmpeg) goes to stderr.

- on start ``{"event": "ready", "device", "checkpointDir"}``, or ``{"event": "error", "type",
  "message", "traceback"}`` and exit status 1 (inference.py or a model does not load);
- per request ``{"id", "cwd", "argv": [...]}`` (inference.py's arguments): ``{"id", "event":
  "done", "faceCached"}`` or ``{"id", "event": "error", "type", "message", "traceback"}``, then the
  line ``\\x1elikeness-end <id>`` on stderr;
- ``{"quit": true}`` or the end of stdin: exit. It also exits when the worker dies.
"""

from __future__ import annotations

import argparse
import ast
import collections
import copy
import os
import shutil
import sys
import tempfile

import host_io  # beside this script: the protocol (engines/gpu/host_io.py)

CROP_CACHE_ENTRIES = 64  # sources whose crop and coefficients are kept (a few hundred KB each)
CACHE_PREFIX = "likeness-sadtalker-host-"  # <tempdir>/<prefix><pid>: this host's crops


def inference_parser(script: str, namespace: dict) -> argparse.ArgumentParser:
    """inference.py's own parser: the statements of its ``if __name__ == '__main__':`` block before
    ``args = parser.parse_args()``, run in the module's namespace (``ArgumentParser`` as it imported it)."""
    with open(script, encoding="utf-8") as f:
        tree = ast.parse(f.read(), script)
    for node in tree.body:
        test = getattr(node, "test", None)
        if isinstance(node, ast.If) and isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) \
                and test.left.id == "__name__":
            body = []
            for stmt in node.body:
                if isinstance(stmt, ast.Assign) and "parse_args" in ast.dump(stmt.value):
                    break
                body.append(stmt)
            scope = dict(namespace)
            exec(compile(ast.Module(body=body, type_ignores=[]), script, "exec"), scope)  # inference.py's own lines
            parser = scope.get("parser")
            if isinstance(parser, argparse.ArgumentParser):
                return parser
    raise RuntimeError(f"{script}: no argument parser found in its __main__ block (not SadTalker's inference.py?)")


def _model_key(sadtalker_path: dict, device) -> tuple:
    """What a model is built from: init_path's result (and the files it names, as they are now) and the device."""
    parts = []
    for name in sorted(sadtalker_path):
        value = sadtalker_path[name]
        stat = os.stat(value) if isinstance(value, str) and os.path.isfile(value) else None
        parts.append((name, repr(value), stat and (stat.st_size, stat.st_mtime_ns)))
    return tuple(parts), str(device)


class SadTalkerHost:
    """inference.py imported once, with its three models and its source crops kept between runs."""

    def __init__(self, inference, script: str) -> None:
        self.inference = inference
        self.script = script
        self.parser = inference_parser(script, vars(inference))
        self.models: dict = {}  # class name -> (key, model)
        self.crops: collections.OrderedDict = collections.OrderedDict()  # key -> (folder, pic name, crop_info)
        self.cache_root = tempfile.mkdtemp(prefix=f"{CACHE_PREFIX}{os.getpid()}-")
        self._entries = 0
        self.face_cached = False
        for name in ("CropAndExtract", "Audio2Coeff", "AnimateFromCoeff"):
            setattr(inference, name, self._factory(name, getattr(inference, name)))

    # Models -------------------------------------------------------------------------------------
    def _factory(self, name: str, cls):
        def build(sadtalker_path, device):
            key = _model_key(sadtalker_path, device)
            held = self.models.get(name)
            if held is not None and held[0] == key:
                return held[1]
            if held is not None:  # one of each on the card at a time
                del self.models[name]
                held = None
                host_io.free_cuda()
            model = cls(sadtalker_path, device)
            if name == "CropAndExtract":
                model.generate = self._cached_generate(key, model.generate)
            self.models[name] = (key, model)
            return model

        build.__name__ = name
        return build

    def preload(self, argv: list) -> str:
        """Builds the models a run with these arguments uses (as main() does); the device."""
        args = self.parse(argv)
        root = os.path.split(self.script)[0]
        paths = self.inference.init_path(args.checkpoint_dir, os.path.join(root, "src/config"), args.size,
                                         args.old_version, args.preprocess)
        for name in ("CropAndExtract", "Audio2Coeff", "AnimateFromCoeff"):
            getattr(self.inference, name)(paths, args.device)
        return args.device

    # The source's crop and coefficients --------------------------------------------------------
    def _cached_generate(self, model_key: tuple, generate):
        def cached(input_path, save_dir, crop_or_resize="crop", source_image_flag=False, pic_size=256):
            if not os.path.isfile(input_path):  # its own error
                return generate(input_path, save_dir, crop_or_resize, source_image_flag=source_image_flag,
                                pic_size=pic_size)
            pic_name = os.path.splitext(os.path.split(input_path)[-1])[0]
            key = (model_key, host_io.file_sha256(input_path), os.path.splitext(input_path)[1].lower(), str(crop_or_resize),
                   int(pic_size), bool(source_image_flag))
            entry = self.crops.get(key)
            if entry is None:
                self._entries += 1
                folder = os.path.join(self.cache_root, str(self._entries))
                os.makedirs(folder)
                try:
                    result = generate(input_path, folder, crop_or_resize, source_image_flag=source_image_flag,
                                      pic_size=pic_size)
                except BaseException:
                    shutil.rmtree(folder, ignore_errors=True)
                    raise
                if result[0] is None:  # no face: not kept
                    shutil.rmtree(folder, ignore_errors=True)
                    return result
                entry = (folder, pic_name, copy.deepcopy(result[2]))
                self.crops[key] = entry
                while len(self.crops) > CROP_CACHE_ENTRIES:
                    shutil.rmtree(self.crops.popitem(last=False)[1][0], ignore_errors=True)
            else:
                self.crops.move_to_end(key)
                self.face_cached = True
                print("3DMM Extraction (cached)")
            folder, cached_name, crop_info = entry
            os.makedirs(save_dir, exist_ok=True)
            for name in os.listdir(folder):  # <pic>.mat, <pic>.png, <pic>_landmarks.txt: under this run's name
                shutil.copyfile(os.path.join(folder, name), os.path.join(save_dir, pic_name + name[len(cached_name):]))
            return (os.path.join(save_dir, pic_name + ".mat"), os.path.join(save_dir, pic_name + ".png"),
                    copy.deepcopy(crop_info))

        return cached

    # A run --------------------------------------------------------------------------------------
    def parse(self, argv: list):
        args = self.parser.parse_args([str(a) for a in argv])
        # inference.py's own lines after its parse_args
        if self.inference.torch.cuda.is_available() and not args.cpu:
            args.device = "cuda"
        else:
            args.device = "cpu"
        return args

    def run(self, folder: str, argv: list) -> dict:
        home = os.getcwd()
        os.chdir(folder)
        try:
            args = self.parse(argv)
            sys.argv = [self.script, *[str(a) for a in argv]]
            self.face_cached = False
            self.inference.main(args)
            return {"faceCached": self.face_cached}
        finally:
            os.chdir(home)

    def close(self) -> None:
        shutil.rmtree(self.cache_root, ignore_errors=True)


def _remove_stale_caches() -> None:
    """The crop folders of hosts that were killed (a cancel, the time limit): they could not."""
    root = tempfile.gettempdir()
    for name in os.listdir(root):
        if not name.startswith(CACHE_PREFIX):
            continue
        try:
            pid = int(name[len(CACHE_PREFIX):].split("-")[0])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)
        except (ValueError, PermissionError):
            continue


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(description="SadTalker resident host (JSON lines on stdin/stdout)")
    parser.add_argument("--checkpoint_dir", required=True)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--preprocess", default="crop")
    opts = parser.parse_args(argv)
    host_io.start()
    # SadTalker's modules (inference, src.…) from its checkout, the cwd; not from this script's
    # folder (Python put it first on sys.path).
    here = os.path.dirname(os.path.abspath(__file__))
    checkout = os.getcwd()
    sys.path[:] = [checkout] + [p for p in sys.path if os.path.abspath(p or os.curdir) not in (here, checkout)]
    _remove_stale_caches()

    host = None
    try:
        script = os.path.join(checkout, "inference.py")
        sys.argv = [script]  # main() finds src/config beside sys.argv[0]; ArgumentParser's prog
        import inference

        host = SadTalkerHost(inference, script)
        device = host.preload(["--checkpoint_dir", opts.checkpoint_dir, "--size", opts.size,
                               "--preprocess", opts.preprocess])
    except BaseException as exc:  # noqa: BLE001 - reported, then exit
        host_io.send(host_io.error(exc))
        if host is not None:
            host.close()
        return 1
    host_io.send({"event": "ready", "device": device, "checkpointDir": opts.checkpoint_dir})

    try:
        host_io.serve(lambda req: host.run(str(req["cwd"]), list(req["argv"])))
    finally:
        host.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
