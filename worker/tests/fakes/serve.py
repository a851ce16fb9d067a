"""Every GPU tool's fake at once, for the end-to-end test (e2e/gpu-engines.e2e.test.ts).

``python worker/tests/fakes/serve.py DIR [SUBJECT]`` starts the fake ComfyUI and GPT-SoVITS servers, lays
out the fake checkouts of Wav2Lip, SadTalker and Real-ESRGAN under DIR (with placeholder weights
where the tools look for them), a small SD 1.5 checkpoint for the fake kohya, and prints ONE line:
(SUBJECT: a photo the fake ComfyUI draws when a LoRA is loaded, as a person LoRA draws its person)
the JSON object of the worker's environment that points each engine at its fake. It serves until
its standard input closes (the test's process ends) or it gets SIGTERM.
"""

from __future__ import annotations

import json
import signal
import struct
import sys
import threading
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from fakes.comfyui import FakeComfyUI  # noqa: E402
from fakes.face_media import copy_checkout  # noqa: E402
from fakes.gpt_sovits import FakeGptSovits  # noqa: E402
from fakes.realesrgan import install_checkout  # noqa: E402

FAKES = TESTS / "fakes"
# Where each tool's own download script puts its weights (the engines check that they are there).
WAV2LIP_WEIGHTS = ("checkpoints/wav2lip_gan.pth", "face_detection/detection/sfd/s3fd.pth")
SADTALKER_WEIGHTS = ("checkpoints/SadTalker_V0.0.2_256.safetensors", "checkpoints/mapping_00109-model.pth.tar",
                     "checkpoints/mapping_00229-model.pth.tar", "gfpgan/weights/alignment_WFLW_4HG.pth",
                     "gfpgan/weights/detection_Resnet50_Final.pth")


def sd15_checkpoint(path: Path) -> Path:
    """A small but real .safetensors file (the fake kohya reads its header and first bytes)."""
    header = json.dumps({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                         "__metadata__": {"modelspec.architecture": "stable-diffusion-v1"}}).encode()
    header += b" " * (-len(header) % 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 16)
    return path


def small_svd_workflow(folder: Path) -> Path:
    """The built-in SVD workflow at a quarter of its pixels, as a user's own (COMFYUI_WORKFLOWS_DIR):
    the clip's frames, then the lip sync and the upscale, cost less on the test machine's CPU."""
    builtin = TESTS.parents[1] / "deploy" / "comfyui" / "workflows"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "img2vid_svd_small.json").write_text((builtin / "img2vid_svd.json").read_text())
    sidecar = json.loads((builtin / "img2vid_svd.likeness.json").read_text())
    sidecar["size"] = {"pixels": 65536, "multiple": 64}
    (folder / "img2vid_svd_small.likeness.json").write_text(json.dumps(sidecar, indent=2))
    return folder


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 2):
        print("usage: serve.py DIR [SUBJECT]", file=sys.stderr)
        return 2
    root = Path(argv[0]).resolve()
    root.mkdir(parents=True, exist_ok=True)
    comfy = FakeComfyUI(root / "comfyui", subject=Path(argv[1]) if len(argv) == 2 else None).start()
    sovits = FakeGptSovits().start()
    shared = root / "gpt-sovits-shared"
    shared.mkdir(exist_ok=True)
    python = sys.executable
    env = {
        "COMFYUI_URL": comfy.url,
        "COMFYUI_LORAS_DIR": str(comfy.loras_dir),
        "COMFYUI_WORKFLOWS_DIR": str(small_svd_workflow(root / "workflows")),
        "COMFYUI_MOTION_WORKFLOW": "img2vid_svd_small",
        "GPT_SOVITS_URL": sovits.url,
        "GPT_SOVITS_SHARED_DIR": str(shared),
        "WAV2LIP_DIR": str(copy_checkout(FAKES / "Wav2Lip", root / "Wav2Lip", WAV2LIP_WEIGHTS)),
        "WAV2LIP_PYTHON": python,
        "SADTALKER_DIR": str(copy_checkout(FAKES / "SadTalker", root / "SadTalker", SADTALKER_WEIGHTS)),
        "SADTALKER_PYTHON": python,
        "REALESRGAN_DIR": str(install_checkout(root / "Real-ESRGAN")),
        "REALESRGAN_PYTHON": python,
        "KOHYA_DIR": str(FAKES / "sd-scripts"),
        "KOHYA_PYTHON": python,
        "KOHYA_LAUNCH": "python",
        "KOHYA_BASE_MODEL": str(sd15_checkpoint(root / "models" / "v1-5-pruned-emaonly.safetensors")),
    }
    print(json.dumps(env), flush=True)

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    done.wait()
    comfy.stop()
    sovits.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
