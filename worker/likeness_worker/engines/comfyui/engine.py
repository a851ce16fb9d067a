"""``comfyui`` image engine: the scene rendered by a ComfyUI server from a workflow (text to image
with the profile's LoRA), then framed to the output size around the face.

One render: load the workflow and its bindings; ask the server's /object_info for each node class
the graph uses and refuse at once (bad_input, not retried) when a class, the checkpoint or the
LoRA is missing; fill in prompt, seed, size, checkpoint, LoRA; open /ws with a fresh client id;
POST /prompt; follow the messages for our prompt id (progress → ``ctx.progress``); on success
read /history, download the SaveImage PNG through /view and frame it as the built-in ``portrait``
engine frames the portrait (``media.video.fit_scene``).

Failures (errors.py codes): graph refused by ComfyUI → bad_input; ``execution_error`` → engine_failed,
or out_of_memory when the exception says "out of memory"; ``execution_interrupted`` (someone else
pressed cancel in ComfyUI) → engine_failed; past COMFYUI_TIMEOUT_S → timeout; no connection →
engine_unavailable. A cancelled job interrupts the prompt (POST /interrupt) and deletes it from the
queue (POST /queue) before the step fails as cancelled.
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from typing import Any

from ...config import ComfyUISettings, ConfigError, load_comfyui_settings
from ...errors import StepFailure
from ..base import Engine, StepOutput, TaskContext, engine
from .client import ComfyClient, ComfyError, ComfyHttpError, ComfyRejected, ComfyUnreachable
from .workflow import Workflow, WorkflowError, check_against, load_workflow

# problem() runs at every advert heartbeat (a few seconds): its answer is kept this long.
PROBLEM_TTL_S = 30.0
PROBLEM_TIMEOUT_S = 3.0
# Without any message for this long, /history is read in case the end was missed.
POLL_HISTORY_S = 5.0
# After a cancel or a timeout, how long to wait for ComfyUI to confirm the interrupt.
INTERRUPT_WAIT_S = 5.0
WS_TICK_S = 0.25


def _settings() -> ComfyUISettings:
    try:
        return load_comfyui_settings()
    except ConfigError as exc:
        raise StepFailure("bad_input", str(exc)) from None


def is_out_of_memory(message: str, exception_type: str = "") -> bool:
    text = f"{exception_type} {message}".lower()
    return "out of memory" in text or "outofmemoryerror" in text


def seed_for(*parts: object) -> int:
    """The same request makes the same image (a step reused or run again agrees with itself)."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:6], "big")  # < 2**48: well inside KSampler's seed range


def build_prompt(stage: str, trigger: str | None) -> str:
    stage = " ".join(stage.split())
    if trigger and trigger.lower() not in stage.lower():
        return f"{trigger}, {stage}" if stage else trigger
    return stage or "a portrait photo of a person, facing the camera"


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

    _problem_lock = threading.Lock()
    _problem_cache: tuple[float, tuple[Any, ...], str | None] | None = None

    # Health -----------------------------------------------------------------------------------
    @classmethod
    def problem(cls) -> str | None:
        try:
            s = load_comfyui_settings()
        except ConfigError as exc:
            return str(exc)
        if not s.comfyui_url:
            return "COMFYUI_URL is not set"
        key = (s.comfyui_url, s.comfyui_workflow, str(s.comfyui_workflows_dir), s.comfyui_checkpoint, s.comfyui_lora)
        with cls._problem_lock:
            cached = cls._problem_cache
            if cached is not None and cached[1] == key and time.monotonic() - cached[0] < PROBLEM_TTL_S:
                return cached[2]
            answer = cls._check(s)
            cls._problem_cache = (time.monotonic(), key, answer)
            return answer

    @classmethod
    def _check(cls, s: ComfyUISettings) -> str | None:
        assert s.comfyui_url
        try:
            wf = load_workflow(s.comfyui_workflow, s.comfyui_workflows_dir)
        except WorkflowError as exc:
            return str(exc)
        try:
            with ComfyClient(s.comfyui_url, timeout_s=min(PROBLEM_TIMEOUT_S, s.comfyui_request_timeout_s)) as client:
                problems = check_against(_graph_for(wf, s, None), _infos(client, wf))
        except ComfyUnreachable:
            return f"ComfyUI at {s.comfyui_url} is unreachable"
        except ComfyError as exc:
            return str(exc)
        return f"workflow {wf.name}: " + "; ".join(problems) if problems else None

    # Render -----------------------------------------------------------------------------------
    def render(self, ctx: TaskContext) -> StepOutput:
        s = _settings()
        if not s.comfyui_url:
            raise StepFailure("engine_unavailable", "the comfyui engine needs COMFYUI_URL (the ComfyUI server)",
                              retryable=False)
        try:
            wf = load_workflow(s.comfyui_workflow, s.comfyui_workflows_dir)
        except WorkflowError as exc:
            raise StepFailure("bad_input", str(exc)) from None
        p = ctx.payload
        width, height = int(p["width"]), int(p["height"])
        profile = p.get("profile") or {}
        prompt_text = build_prompt(str((p.get("script") or {}).get("stage") or ""), profile.get("triggerWord"))
        gen_w, gen_h = wf.generation_size(width, height)
        values = {"prompt": prompt_text, "width": gen_w, "height": gen_h,
                  "seed": seed_for(wf.name, prompt_text, gen_w, gen_h)}
        graph = _graph_for(wf, s, values)

        client = ComfyClient(s.comfyui_url, timeout_s=s.comfyui_request_timeout_s)
        try:
            ctx.progress(0.0, f"ComfyUI: checking workflow {wf.name}")
            problems = check_against(graph, _infos(client, wf, graph))
            if problems:
                raise StepFailure("bad_input", f"ComfyUI at {s.comfyui_url} cannot run workflow {wf.name}: "
                                  + "; ".join(problems), retryable=False)
            history = self._run(ctx, client, graph, wf, s)
            png = ctx.path("out/comfyui.png")
            png.write_bytes(_download_output(client, history, wf))
        except ComfyUnreachable as exc:
            raise StepFailure("engine_unavailable", str(exc), retryable=True) from None
        except ComfyRejected as exc:
            raise StepFailure("bad_input", f"ComfyUI refused workflow {wf.name}: {exc}", retryable=False) from None
        except ComfyHttpError as exc:  # a 5xx: the server is in trouble; anything else: it disagrees
            raise StepFailure("engine_unavailable" if exc.status >= 500 else "engine_failed", str(exc)) from None
        finally:
            client.close()

        from ...media.video import fit_scene

        out = ctx.path("out/scene.png")
        box = fit_scene(png, out, width, height)
        meta: dict[str, Any] = {"faceBox": box, "width": width, "height": height, "engine": "comfyui",
                                "workflow": wf.name, "generatedSize": [gen_w, gen_h], "prompt": prompt_text,
                                "seed": values["seed"]}
        if wf.licence:
            meta["licence"] = wf.licence
        ref = ctx.upload("scene.png", out, "scene", "image/png", meta)
        outputs: dict[str, Any] = {"faceBox": box, "workflow": wf.name}
        if box is None:
            outputs["note"] = "no face found in the generated image: it is centre-cropped to the output size"
        return StepOutput([ref], outputs)

    def _run(self, ctx: TaskContext, client: ComfyClient, graph: dict[str, Any], wf: Workflow,
             s: ComfyUISettings) -> dict[str, Any]:
        """Queue the graph and follow it to its end; its /history entry."""
        client_id = uuid.uuid4().hex
        deadline = time.monotonic() + s.comfyui_timeout_s
        with client.events(client_id) as events:
            if ctx.cancelled():
                raise StepFailure("cancelled", "cancelled before the prompt was queued")
            queued = client.queue_prompt(graph, client_id)
            prompt_id = str(queued["prompt_id"])
            ctx.progress(0.02, f"ComfyUI: queued ({wf.name})")
            titles = {nid: (n.get("_meta") or {}).get("title") or n["class_type"] for nid, n in graph.items()}
            node_count = len(graph)
            done_nodes: set[str] = set()
            quiet_since = time.monotonic()
            reached = [0.02]

            def report(fraction: float, message: str) -> None:  # never backwards (a node after the sampler)
                reached[0] = max(reached[0], fraction)
                ctx.progress(reached[0], message)

            while True:
                if ctx.cancelled():
                    _stop(client, events, prompt_id)
                    raise StepFailure("cancelled", f"cancelled: ComfyUI prompt {prompt_id} interrupted")
                if time.monotonic() > deadline:
                    _stop(client, events, prompt_id)
                    raise StepFailure("timeout", f"ComfyUI did not finish workflow {wf.name} in "
                                      f"{s.comfyui_timeout_s:g} s (COMFYUI_TIMEOUT_S); prompt {prompt_id} interrupted")
                msg = events.next(WS_TICK_S)
                if msg is None:
                    if time.monotonic() - quiet_since > POLL_HISTORY_S:
                        quiet_since = time.monotonic()
                        entry = client.history(prompt_id)
                        if entry is not None:
                            return _finished(entry, prompt_id, wf)
                    continue
                quiet_since = time.monotonic()
                kind, data = msg.get("type"), msg.get("data") or {}
                if not isinstance(data, dict) or data.get("prompt_id") not in (prompt_id, None):
                    continue  # another client's prompt
                if kind == "progress" and data.get("prompt_id") == prompt_id:
                    value, top = float(data.get("value", 0)), float(data.get("max", 0) or 1)
                    sampling = str(data.get("node"))
                    report(0.05 + 0.9 * min(1.0, value / top),
                           f"ComfyUI: {titles.get(sampling, sampling)} {int(value)}/{int(top)}")
                elif kind == "executing" and data.get("prompt_id") == prompt_id:
                    node = data.get("node")
                    if node is None:  # main.py prompt_worker: the prompt is done
                        return _finished(_history(client, prompt_id), prompt_id, wf)
                    done_nodes.add(str(node))
                    report(0.05, f"ComfyUI: {titles.get(str(node), node)} ({len(done_nodes)}/{node_count} nodes)")
                elif kind == "execution_cached" and data.get("prompt_id") == prompt_id:
                    done_nodes.update(str(n) for n in data.get("nodes") or [])
                elif kind in ("execution_success", "execution_error", "execution_interrupted") \
                        and data.get("prompt_id") == prompt_id:
                    if kind == "execution_success":
                        return _finished(_history(client, prompt_id), prompt_id, wf)
                    raise _failure(kind, data, wf)


def _graph_for(wf: Workflow, s: ComfyUISettings, values: dict[str, Any] | None) -> dict[str, Any]:
    """The workflow with the settings' checkpoint and LoRA (and ``values``) filled in."""
    filled: dict[str, Any] = dict(values or {})
    if s.comfyui_checkpoint and "checkpoint" in wf.bindings:
        filled["checkpoint"] = s.comfyui_checkpoint
    if "lora_name" in wf.bindings:
        filled["lora_name"] = s.comfyui_lora or None
        if s.comfyui_lora and "lora_strength" in wf.bindings and "lora_strength" in wf.defaults:
            filled["lora_strength"] = float(wf.defaults["lora_strength"])
    if values is not None and "negative" in wf.bindings and "negative" in wf.defaults:
        filled["negative"] = str(wf.defaults["negative"])
    return wf.fill(filled)


def _infos(client: ComfyClient, wf: Workflow, graph: dict[str, Any] | None = None) -> dict[str, Any]:
    """/object_info/<class> of each class the graph uses (light: not the whole node list)."""
    infos: dict[str, Any] = {}
    for cls in sorted(wf.class_types(graph)):
        infos.update(client.object_info(cls))
    return infos


def _history(client: ComfyClient, prompt_id: str) -> dict[str, Any]:
    """The history entry right after the end message (ComfyUI writes it before sending that)."""
    for _ in range(20):
        entry = client.history(prompt_id)
        if entry is not None:
            return entry
        time.sleep(0.1)
    raise StepFailure("engine_failed", f"ComfyUI finished prompt {prompt_id} but has no history of it")


def _finished(entry: dict[str, Any], prompt_id: str, wf: Workflow) -> dict[str, Any]:
    """The entry of a prompt that ran to its end; the failure it reports otherwise."""
    status = entry.get("status") or {}
    if status.get("status_str") == "error" or status.get("completed") is False:
        for kind, data in reversed(status.get("messages") or []):
            if kind in ("execution_error", "execution_interrupted"):
                raise _failure(kind, data, wf)
        raise StepFailure("engine_failed", f"ComfyUI prompt {prompt_id} ended with an error")
    return entry


def _failure(kind: str, data: dict[str, Any], wf: Workflow) -> StepFailure:
    node = f"node {data.get('node_id')} ({data.get('node_type')})"
    if kind == "execution_interrupted":
        return StepFailure("engine_failed", f"ComfyUI interrupted workflow {wf.name} at {node} (not by Likeness)")
    message = str(data.get("exception_message") or "").strip()
    etype = str(data.get("exception_type") or "")
    if is_out_of_memory(message, etype):
        return StepFailure("out_of_memory", f"ComfyUI ran out of GPU memory at {node}: {message[:500]}", retryable=True)
    return StepFailure("engine_failed", f"ComfyUI failed at {node}: {etype}: {message[:1000]}")


def _stop(client: ComfyClient, events: Any, prompt_id: str) -> None:
    """Interrupt our prompt if it runs, delete it if it still waits; wait briefly until ComfyUI
    has let go of it (its end message, its history, or gone from the queue)."""
    try:
        client.interrupt(prompt_id)
        client.delete_queued([prompt_id])
    except ComfyError:
        return
    end = time.monotonic() + INTERRUPT_WAIT_S
    while time.monotonic() < end:
        try:
            msg = events.next(WS_TICK_S)
            if msg is not None:
                data = msg.get("data") or {}
                if data.get("prompt_id") == prompt_id and (
                        msg.get("type") in ("execution_interrupted", "execution_error", "execution_success")
                        or (msg.get("type") == "executing" and data.get("node") is None)):
                    return
                continue
            running, pending = client.queue()
            if prompt_id not in running and prompt_id not in pending:
                return
        except ComfyError:
            return


def _download_output(client: ComfyClient, entry: dict[str, Any], wf: Workflow) -> bytes:
    outputs = entry.get("outputs") or {}
    images = (outputs.get(wf.output) or {}).get("images") or []
    image = next((i for i in images if i.get("type", "output") == "output"), images[0] if images else None)
    if image is None:
        made = ", ".join(sorted(outputs)) or "none"
        raise StepFailure("engine_failed", f"ComfyUI's workflow {wf.name} saved no image at node {wf.output} "
                          f"(nodes with outputs: {made})")
    return client.view(str(image["filename"]), str(image.get("subfolder", "")), str(image.get("type", "output")))
