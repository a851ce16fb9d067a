"""``comfyui`` motion engine: the scene set in motion by Stable Video Diffusion on a ComfyUI server,
as long as the speech, handed on losslessly to the lip sync (the ``svd_wav2lip`` pipeline).

One run: free the models the image stage left loaded (POST /free: SVD needs the VRAM SD held);
upload the scene (POST /upload/image); fill the img2vid workflow (COMFYUI_MOTION_WORKFLOW: the
scene, size at the output's aspect ratio, frames, fps, motion bucket, seed); run it
(``runner.run_graph``); download the frames its SaveImage wrote, in order. SVD makes a few
seconds (25 frames at 6 fps); the clip is played forward then backward, as many times as the
speech needs, at 25 fps with neighbouring frames blended, each frame fitted to the output size.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ...config import ComfyUISettings
from ...errors import StepFailure
from ..base import Engine, StepOutput, TaskContext, engine
from ..builtin.video import LOSSLESS_NOTE
from .client import ComfyClient, ComfyHttpError
from .image import workflow_key
from .runner import Health, comfy_errors, download, output_images, run_graph, seed_for, server_url, settings, workflow
from .workflow import Workflow

CLIP_SETTINGS = ("frames", "fps", "motion_bucket", "augmentation")


def fill(wf: Workflow, s: ComfyUISettings, values: dict[str, Any] | None) -> dict[str, Any]:
    filled = {k: wf.defaults[k] for k in CLIP_SETTINGS if k in wf.defaults and k in wf.bindings}
    if s.comfyui_motion_checkpoint and "checkpoint" in wf.bindings:
        filled["checkpoint"] = s.comfyui_motion_checkpoint
    filled.update(values or {})
    return wf.fill(filled)


def _health_graph(wf: Workflow, s: ComfyUISettings) -> dict[str, Any]:
    return fill(wf, s, None)


def ping_pong(n_clip: int, clip_fps: float, n_out: int, fps: float) -> list[tuple[int, int, float]]:
    """For each output frame: (frame a, frame b, weight of b) of the clip played forward then
    backward in a loop, in time (not frame count), so motion keeps its speed at any output rate."""
    if n_clip == 1:
        return [(0, 0, 0.0)] * n_out
    period = 2 * (n_clip - 1)
    out = []
    for i in range(n_out):
        u = (i / fps * clip_fps) % period
        pos = u if u <= n_clip - 1 else period - u
        a = min(int(math.floor(pos)), n_clip - 1)
        b = min(a + 1, n_clip - 1)
        out.append((a, b, pos - a))
    return out


def handed_on_size(width: int, height: int, pixels: int) -> tuple[int, int]:
    """The output's aspect ratio at no more pixels than the model made: frames are not scaled up
    here (the lip sync works on fewer pixels, the upscale step, Real-ESRGAN, adds the detail)."""
    scale = min(1.0, math.sqrt(pixels / (width * height)))
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


def fit(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scaled to cover width x height, centre-cropped: the clip has the output's aspect ratio
    within a rounding to the model's multiple, so little is cut."""
    h, w = rgb.shape[:2]
    scale = max(width / w, height / h)
    sw, sh = max(width, round(w * scale)), max(height, round(h * scale))
    scaled = cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_LANCZOS4 if scale > 1 else cv2.INTER_AREA)
    x, y = (sw - width) // 2, (sh - height) // 2
    return np.ascontiguousarray(scaled[y:y + height, x:x + width])


@engine("motion", "comfyui")
class ComfyUIMotion(Engine):
    """Stable Video Diffusion on ComfyUI: the scene in motion, looped back and forth to the
    speech's length, handed on losslessly to the lip sync."""

    # ComfyUI: GPL-3.0; SVD's weights: Stability AI's licence for SVD, released for non-commercial
    # research and later under its Community License (commercial use only below a revenue cap):
    # flagged non-commercial. FFmpeg with libx264 and OpenCV for the frames.
    licence = "GPL-3.0-only AND LicenseRef-Stability-AI-SVD AND GPL-2.0-or-later AND Apache-2.0"
    non_commercial = True
    uses_comfyui = True
    device = "gpu"
    tools = ("ffmpeg",)
    version = "1"

    # LoadImage's list holds what was uploaded: the scene is not there before the step uploads it.
    health = Health(lambda s: s.comfyui_motion_workflow, _health_graph, uploads="image")

    @classmethod
    def problem(cls) -> str | None:
        return super().problem() or cls.health.problem()

    @classmethod
    def settings_key(cls) -> str:
        s = settings()
        return workflow_key(s.comfyui_motion_workflow, s, s.comfyui_motion_checkpoint)

    def animate(self, ctx: TaskContext) -> StepOutput:
        s = settings()
        url = server_url(s, "comfyui motion")
        wf = workflow(s.comfyui_motion_workflow, s)
        if wf.kind != "img2vid":
            raise StepFailure("bad_input", f"COMFYUI_MOTION_WORKFLOW={wf.name} is a {wf.kind} workflow; the motion "
                              "engine needs an img2vid one (its sidecar says \"kind\": \"img2vid\")", retryable=False)
        p = ctx.payload
        width, height = int(p["width"]), int(p["height"])
        scene = ctx.fetch_input("scene", "scene.png")
        duration = float(ctx.input("speech").outputs["durationSec"])
        gen_w, gen_h = wf.generation_size(width, height)
        scene_sha = hashlib.sha256(scene.read_bytes()).hexdigest()[:16]

        with ComfyClient(url, timeout_s=s.comfyui_request_timeout_s) as client, comfy_errors(wf):
            ctx.progress(0.0, "ComfyUI: freeing the image model for SVD")
            with contextlib.suppress(ComfyHttpError):  # an older server without /free: SVD may still fit
                client.free(unload_models=True, free_memory=True)
            uploaded = client.upload_image(scene, name=f"likeness_{scene_sha}.png", overwrite=True)
            image = f"{uploaded['subfolder']}/{uploaded['name']}" if uploaded.get("subfolder") else uploaded["name"]
            values = {"image": image, "width": gen_w, "height": gen_h, "seed": seed_for(wf.name, scene_sha, gen_w, gen_h)}
            graph = fill(wf, s, values)
            history = run_graph(ctx, client, graph, wf, s)
            saved = output_images(history, wf)
            frames_dir = ctx.path("out/frames/.keep").parent
            paths: list[Path] = []
            for i, item in enumerate(saved):
                path = frames_dir / f"{i:05}.png"
                path.write_bytes(download(client, item))
                paths.append(path)

        clip_fps = float(graph_value(graph, wf, "fps") or wf.defaults.get("fps") or 6)
        out = ctx.path("out/motion.mkv")
        size = handed_on_size(width, height, gen_w * gen_h)
        frames = self._loop(ctx, paths, clip_fps, duration, size[0], size[1], out)
        meta = {"durationSec": round(duration, 3), "frames": frames, "width": size[0], "height": size[1],
                "encode": LOSSLESS_NOTE, "subtitlesBurned": False, "workflow": wf.name,
                "clipFrames": len(paths), "clipFps": clip_fps, "generatedSize": [gen_w, gen_h], "loop": "ping-pong"}
        if wf.licence:
            meta["licence"] = wf.licence
        ref = ctx.upload("motion.mkv", out, "video_raw", "video/x-matroska", meta)
        outputs = {"videoKey": ref["key"], **meta}
        if size != (width, height):
            outputs["note"] = (f"handed on at the clip's resolution, {size[0]}x{size[1]}: the upscale step brings it to "
                               f"{width}x{height}")
        return StepOutput([ref], outputs)

    @staticmethod
    def _loop(ctx: TaskContext, paths: list[Path], clip_fps: float, duration: float, width: int, height: int,
              out: Path) -> int:
        from ...media.encode import FPS, frame_writer

        clip = []
        for path in paths:
            bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if bgr is None:
                raise StepFailure("engine_failed", f"ComfyUI saved a frame that is not an image: {path.name}")
            clip.append(fit(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), width, height).astype(np.float32))
        n_out = max(1, math.ceil(duration * FPS))
        plan = ping_pong(len(clip), clip_fps, n_out, FPS)
        with frame_writer(out, width, height, n_frames=n_out, lossless=True, cancelled=ctx.cancelled) as w:
            for i, (a, b, t) in enumerate(plan):
                frame = clip[a] if t == 0 else clip[a] * (1 - t) + clip[b] * t
                w.write(np.clip(frame + 0.5, 0, 255).astype(np.uint8))
                if i % 25 == 0:
                    ctx.progress(0.96 + 0.04 * i / n_out, "looping the clip to the speech's length")
        return n_out


def graph_value(graph: dict[str, Any], wf: Workflow, name: str) -> Any:
    targets = wf.bindings.get(name)
    return graph[targets[0].node]["inputs"].get(targets[0].input) if targets else None
