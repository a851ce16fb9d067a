"""``comfyui`` image engine: the scene rendered by a ComfyUI server from a workflow (text to image
with the profile's LoRA), then framed to the output size around the face.

One render: load the workflow and its bindings; put the profile's trained LoRA where ComfyUI reads
LoRAs (COMFYUI_LORAS_DIR, a folder both see; content-addressed, so copied once); fill in prompt
(with the profile's trigger word), seed, size, checkpoint, LoRA; run it (``runner.run_graph``:
checked against /object_info, queued, followed over /ws); download the SaveImage PNG through /view
and frame it as the built-in ``portrait`` engine frames the portrait (``media.video.fit_scene``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
from typing import Any

from ...config import ComfyUISettings
from ...errors import StepFailure
from ..base import Engine, StepOutput, TaskContext, engine
from .client import ComfyClient
from .runner import Health, comfy_errors, download, output_images, run_graph, seed_for, server_url, settings, workflow
from .workflow import Workflow, load_workflow

# Where a profile's LoRA goes under COMFYUI_LORAS_DIR; ComfyUI names it "<folder>/<file>".
LORA_FOLDER = "likeness"


def build_prompt(stage: str, trigger: str | None) -> str:
    stage = " ".join(stage.split())
    if trigger and trigger.lower() not in stage.lower():
        return f"{trigger}, {stage}" if stage else trigger
    return stage or "a portrait photo of a person, facing the camera"


def fill(wf: Workflow, s: ComfyUISettings, values: dict[str, Any] | None, lora: str | None = None) -> dict[str, Any]:
    """The workflow with the checkpoint, the LoRA (the profile's, else COMFYUI_LORA, else bypassed),
    the workflow's defaults and ``values`` filled in."""
    filled: dict[str, Any] = dict(values or {})
    if s.comfyui_checkpoint and "checkpoint" in wf.bindings:
        filled["checkpoint"] = s.comfyui_checkpoint
    lora = lora or s.comfyui_lora
    if "lora_name" in wf.bindings:
        filled["lora_name"] = lora or None
        if lora and "lora_strength" in wf.bindings and "lora_strength" in wf.defaults:
            filled["lora_strength"] = float(wf.defaults["lora_strength"])
    if values is not None and "negative" in wf.bindings and "negative" in wf.defaults:
        filled["negative"] = str(wf.defaults["negative"])
    return wf.fill(filled)


def place_lora(ctx: TaskContext, s: ComfyUISettings, key: str) -> str:
    """Copy the profile's LoRA into COMFYUI_LORAS_DIR (once: named by its content) and return the
    name ComfyUI lists it by."""
    if s.comfyui_loras_dir is None:
        raise StepFailure("engine_unavailable", "the profile has a trained LoRA, but COMFYUI_LORAS_DIR (a folder "
                          "ComfyUI reads LoRAs from, shared with this worker) is not set", retryable=False)
    local = ctx.fetch(key, "lora.safetensors")
    digest = hashlib.sha256(local.read_bytes()).hexdigest()[:20]
    name = f"{LORA_FOLDER}/{digest}.safetensors"
    target = s.comfyui_loras_dir / name
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        # Its own temp name: the children of several cards share this folder and may copy at once.
        tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.part")
        try:
            shutil.copyfile(local, tmp)
            tmp.replace(target)  # ComfyUI never lists half a file
        finally:
            tmp.unlink(missing_ok=True)
    return name


def _health_graph(wf: Workflow, s: ComfyUISettings) -> dict[str, Any]:
    return fill(wf, s, None)


@engine("image", "comfyui")
class ComfyUIImage(Engine):
    """The scene drawn by ComfyUI (SD 1.5 or SDXL with the profile's LoRA, or a workflow of
    yours), framed to the output size around the face."""

    # ComfyUI: GPL-3.0; OpenCV and MediaPipe (the framing): Apache-2.0; the default workflow's
    # checkpoint (SD 1.5): CreativeML OpenRAIL-M. SDXL's is OpenRAIL++-M, a user's workflow
    # brings its own: the scene's artifact records the workflow's `licence` when it declares one.
    licence = "GPL-3.0-only AND Apache-2.0 AND CreativeML-OpenRAIL-M"
    device = "gpu"
    version = "1"
    uses_comfyui = True

    health = Health(lambda s: s.comfyui_workflow, _health_graph)

    @classmethod
    def problem(cls) -> str | None:
        return cls.health.problem()

    @classmethod
    def settings_key(cls) -> str:
        s = settings()
        return workflow_key(s.comfyui_workflow, s, s.comfyui_checkpoint, s.comfyui_lora)

    def render(self, ctx: TaskContext) -> StepOutput:
        s = settings()
        url = server_url(s, "comfyui")
        wf = workflow(s.comfyui_workflow, s)
        p = ctx.payload
        width, height = int(p["width"]), int(p["height"])
        profile = p.get("profile") or {}
        prompt_text = build_prompt(str((p.get("script") or {}).get("stage") or ""), profile.get("triggerWord"))
        gen_w, gen_h = wf.generation_size(width, height)
        values = {"prompt": prompt_text, "width": gen_w, "height": gen_h,
                  "seed": seed_for(wf.name, prompt_text, gen_w, gen_h)}
        trained_on = profile.get("loraBaseModel")
        if profile.get("loraKey") and trained_on and wf.family and trained_on != wf.family:
            raise StepFailure("engine_unavailable", f"the profile's LoRA was trained on {trained_on}, but workflow "
                              f"{wf.name} is {wf.family}: set COMFYUI_WORKFLOW to a {trained_on} workflow",
                              retryable=False)
        lora = place_lora(ctx, s, profile["loraKey"]) if profile.get("loraKey") else None
        graph = fill(wf, s, values, lora)

        with ComfyClient(url, timeout_s=s.comfyui_request_timeout_s) as client, comfy_errors(wf):
            ctx.progress(0.0, f"ComfyUI: checking workflow {wf.name}")
            history = run_graph(ctx, client, graph, wf, s)
            png = ctx.path("out/comfyui.png")
            png.write_bytes(download(client, output_images(history, wf)[0]))

        from ...media.video import fit_scene

        out = ctx.path("out/scene.png")
        box = fit_scene(png, out, width, height)
        used_lora = lora or s.comfyui_lora
        meta: dict[str, Any] = {"faceBox": box, "width": width, "height": height, "engine": "comfyui",
                                "workflow": wf.name, "generatedSize": [gen_w, gen_h], "prompt": prompt_text,
                                "seed": values["seed"], "lora": used_lora}
        if wf.licence:
            meta["licence"] = wf.licence
        ref = ctx.upload("scene.png", out, "scene", "image/png", meta)
        outputs: dict[str, Any] = {"faceBox": box, "workflow": wf.name,
                                   "lora": "the profile's" if lora else used_lora or "none"}
        if box is None:
            outputs["note"] = "no face found in the generated image: it is centre-cropped to the output size"
        return StepOutput([ref], outputs)


def workflow_key(name: str, s: ComfyUISettings, *models: str | None) -> str:
    """The workflow's files and the models named in the settings, hashed: what changes the output
    besides the request (a missing workflow hashes as its name: the step will say what is wrong)."""
    digest = hashlib.sha256(name.encode())
    try:
        wf = load_workflow(name, s.comfyui_workflows_dir)
        digest.update(wf.path.read_bytes())
        digest.update(wf.path.with_name(f"{wf.name}.likeness.json").read_bytes())
    except (OSError, ValueError):
        pass
    for m in models:
        digest.update(f"\x1f{m or ''}".encode())
    return digest.hexdigest()[:16]
