"""A protocol-faithful fake of a ComfyUI server, for the comfyui engine's tests (no GPU, no weights).

A real HTTP server (stdlib ThreadingHTTPServer) and a real WebSocket on the same port (the
handshake and framing by websockets' sans-I/O ServerProtocol), speaking the routes and message
shapes of ComfyUI's source; each is cited where it is served:

- server.py ``PromptServer.__init__``: GET /ws?clientId= (sends ``status`` {status, sid} first),
  GET /object_info and /object_info/{node_class} (``node_info``), POST /prompt (``{prompt_id,
  number, node_errors}``, or 400 ``{error, node_errors}``), GET /history/{prompt_id}, GET /view,
  POST /upload/image (``image_upload``: ``{name, subfolder, type}``, " (1)" suffix when the name
  exists and ``overwrite`` is not true), POST /interrupt (optional ``{prompt_id}``), POST /queue
  ``{delete: [...]}``/``{clear}``, POST /free ``{unload_models, free_memory}``.
- server.py ``send_json``: every message is ``{"type": event, "data": data}``.
- execution.py ``validate_prompt``/``validate_inputs``: invalid_prompt (unknown class_type),
  prompt_no_outputs, required_input_missing, return_type_mismatch, value_not_in_list,
  value_smaller_than_min/value_bigger_than_max, prompt_outputs_failed_validation; node_errors
  ``{id: {errors, dependent_outputs, class_type}}``.
- execution.py ``PromptExecutor.execute``: execution_start {prompt_id}, execution_cached {nodes,
  prompt_id}, executing {node, display_node, prompt_id}, executed {node, display_node, output,
  prompt_id}, execution_success {prompt_id} (newer versions), ``handle_execution_error``:
  execution_error {prompt_id, node_id, node_type, executed, exception_message, exception_type,
  traceback, current_inputs, current_outputs} and execution_interrupted {prompt_id, node_id,
  node_type, executed}.
- main.py ``hijack_progress``: progress {value, max, prompt_id, node}; ``prompt_worker``: history
  written (``PromptQueue.task_done``: {prompt, outputs, status: {status_str, completed,
  messages}}) and then executing {node: None, prompt_id}.
- nodes.py ``SaveImage.save_images``: ``{"ui": {"images": [{filename, subfolder, type}]}}`` with
  ``<prefix>_<counter:05>_.png`` (folder_paths.get_save_image_path splits "a/b" into subfolder a).

Execution makes a real PNG of the EmptyLatentImage's size (a gradient coloured by a hash of the
positive prompt) while KSampler reports ``steps`` progress messages; a graph through
SVD_img2vid_Conditioning (comfy_extras/nodes_video_model.py) saves ``video_frames`` PNGs of its
LoadImage input (uploaded to input/) drifting slowly, one SaveImage entry each. LoadImage lists
the files of input/ and LoraLoader those of models/loras (recursively, "sub/name"), as
folder_paths does. Switches for failures:
``error_message``/``error_type`` (execution_error at KSampler step ``error_at_step``), ``hang``
(KSampler never ends until interrupted), and the model lists (``checkpoints``, ``loras``) for a
missing model.
"""

from __future__ import annotations

import copy
import email.parser
import email.policy
import hashlib
import heapq
import json
import queue
import select
import socket
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
from PIL import Image
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol

MAX_RESOLUTION = 16384  # nodes.py
SAMPLERS = ["euler", "euler_ancestral", "dpmpp_2m", "dpmpp_sde"]  # a few of comfy.samplers.KSampler.SAMPLERS
SCHEDULERS = ["normal", "karras", "exponential", "simple"]


def node_classes(checkpoints: list[str], loras: list[str], inputs: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """INPUT_TYPES / RETURN_TYPES / OUTPUT_NODE of the core nodes the workflows use (nodes.py;
    the SVD ones: comfy_extras/nodes_video_model.py)."""
    return {
        "ImageOnlyCheckpointLoader": {
            "required": {"ckpt_name": [list(checkpoints)]},
            "output": ["MODEL", "CLIP_VISION", "VAE"], "category": "loaders/video_models"},
        "LoadImage": {  # nodes.py: the files of the input folder, sorted
            "required": {"image": [sorted(inputs or []), {"image_upload": True}]},
            "output": ["IMAGE", "MASK"], "category": "image"},
        "SVD_img2vid_Conditioning": {
            "required": {"clip_vision": ["CLIP_VISION"], "init_image": ["IMAGE"], "vae": ["VAE"],
                         "width": ["INT", {"default": 1024, "min": 16, "max": MAX_RESOLUTION, "step": 8}],
                         "height": ["INT", {"default": 576, "min": 16, "max": MAX_RESOLUTION, "step": 8}],
                         "video_frames": ["INT", {"default": 14, "min": 1, "max": 4096}],
                         "motion_bucket_id": ["INT", {"default": 127, "min": 1, "max": 1023}],
                         "fps": ["INT", {"default": 6, "min": 1, "max": 1024}],
                         "augmentation_level": ["FLOAT", {"default": 0.0, "min": 0.0, "max": 10.0, "step": 0.01}]},
            "output": ["CONDITIONING", "CONDITIONING", "LATENT"], "category": "conditioning/video_models"},
        "VideoLinearCFGGuidance": {
            "required": {"model": ["MODEL"],
                         "min_cfg": ["FLOAT", {"default": 1.0, "min": 0.0, "max": 100.0, "step": 0.5, "round": 0.01}]},
            "output": ["MODEL"], "category": "sampling/video_models"},
        "CheckpointLoaderSimple": {
            "required": {"ckpt_name": [list(checkpoints), {"tooltip": "The name of the checkpoint (model) to load."}]},
            "output": ["MODEL", "CLIP", "VAE"], "category": "loaders"},
        "LoraLoader": {
            "required": {"model": ["MODEL"], "clip": ["CLIP"], "lora_name": [list(loras)],
                         "strength_model": ["FLOAT", {"default": 1.0, "min": -100.0, "max": 100.0, "step": 0.01}],
                         "strength_clip": ["FLOAT", {"default": 1.0, "min": -100.0, "max": 100.0, "step": 0.01}]},
            "output": ["MODEL", "CLIP"], "category": "loaders"},
        "CLIPTextEncode": {
            "required": {"text": ["STRING", {"multiline": True, "dynamicPrompts": True}], "clip": ["CLIP"]},
            "output": ["CONDITIONING"], "category": "conditioning"},
        "EmptyLatentImage": {
            "required": {"width": ["INT", {"default": 512, "min": 16, "max": MAX_RESOLUTION, "step": 8}],
                         "height": ["INT", {"default": 512, "min": 16, "max": MAX_RESOLUTION, "step": 8}],
                         "batch_size": ["INT", {"default": 1, "min": 1, "max": 4096}]},
            "output": ["LATENT"], "category": "latent"},
        "KSampler": {
            "required": {"model": ["MODEL"],
                         "seed": ["INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF}],
                         "steps": ["INT", {"default": 20, "min": 1, "max": 10000}],
                         "cfg": ["FLOAT", {"default": 8.0, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01}],
                         "sampler_name": [SAMPLERS], "scheduler": [SCHEDULERS],
                         "positive": ["CONDITIONING"], "negative": ["CONDITIONING"], "latent_image": ["LATENT"],
                         "denoise": ["FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01}]},
            "output": ["LATENT"], "category": "sampling"},
        "VAEDecode": {"required": {"samples": ["LATENT"], "vae": ["VAE"]}, "output": ["IMAGE"], "category": "latent"},
        "SaveImage": {
            "required": {"images": ["IMAGE"], "filename_prefix": ["STRING", {"default": "ComfyUI"}]},
            "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"},
            "output": [], "output_node": True, "category": "image"},
    }


def node_info(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """server.py ``node_info``."""
    inputs = {k: spec[k] for k in ("required", "optional", "hidden") if k in spec}
    return {
        "input": inputs,
        "input_order": {k: list(v) for k, v in inputs.items()},
        "output": spec["output"], "output_is_list": [False] * len(spec["output"]), "output_name": spec["output"],
        "name": name, "display_name": name, "description": "", "python_module": "nodes",
        "category": spec["category"], "output_node": bool(spec.get("output_node")),
    }


class _Interrupted(Exception):
    pass


class _WsClient:
    """One /ws connection: messages are queued here and written by its handler thread."""

    def __init__(self) -> None:
        self.outbox: queue.Queue[dict[str, Any]] = queue.Queue()


class FakeComfyUI:
    def __init__(self, root: Path, *, checkpoints: list[str] | None = None, loras: list[str] | None = None,
                 step_s: float = 0.005, subject: Path | None = None) -> None:
        self.root = Path(root)
        self.output_dir = self.root / "output"
        self.input_dir = self.root / "input"
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.input_dir.mkdir(parents=True, exist_ok=True)
        self.checkpoints = list(checkpoints if checkpoints is not None
                                else ["v1-5-pruned-emaonly.safetensors", "sd_xl_base_1.0.safetensors",
                                      "svd_xt.safetensors"])
        # models/loras: listed with the static names, recursively, "sub/name" (folder_paths).
        self.loras_dir = self.root / "models" / "loras"
        self.loras_dir.mkdir(parents=True, exist_ok=True)
        self.loras = list(loras if loras is not None else ["likeness_profile.safetensors"])
        self.step_s = step_s
        # What a LoRA "draws": a photo of its person, put in the middle of the picture when the graph
        # loads a LoRA (a person LoRA's render has that face), so a lip sync downstream finds a face.
        self.subject = subject
        # Failure switches.
        self.error_message: str | None = None
        self.error_type = "RuntimeError"
        self.error_at_step = 2
        self.hang = False
        # What the clients did.
        self.prompts: list[dict[str, Any]] = []  # bodies of POST /prompt
        self.interrupts: list[dict[str, Any]] = []
        self.deleted: list[str] = []
        self.frees: list[dict[str, Any]] = []
        self.requests: list[tuple[str, str]] = []
        self.sent: list[tuple[str | None, dict[str, Any]]] = []  # (sid, message) of every ws message
        # PromptQueue (execution.py).
        self._mutex = threading.RLock()
        self._not_empty = threading.Condition(self._mutex)
        self._queue: list[tuple[Any, ...]] = []
        self._running: dict[int, tuple[Any, ...]] = {}
        self._counter = 0
        self.history: dict[str, dict[str, Any]] = {}
        self._number = 0
        self._interrupt = threading.Event()
        self._sockets: dict[str, _WsClient] = {}
        self._image_counter = 0
        self._stopping = False
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._threads = [threading.Thread(target=self._server.serve_forever, daemon=True),
                         threading.Thread(target=self._worker, daemon=True)]

    # lifecycle --------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeComfyUI:
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stopping = True
        self._interrupt.set()
        with self._not_empty:
            self._not_empty.notify_all()
        self._server.shutdown()
        self._server.server_close()

    # messages (server.py send_json / send_sync) -------------------------------------------------
    def send(self, event: str, data: dict[str, Any], sid: str | None = None) -> None:
        message = {"type": event, "data": data}
        self.sent.append((sid, message))
        targets = list(self._sockets.values()) if sid is None else [self._sockets[sid]] if sid in self._sockets else []
        for client in targets:
            client.outbox.put(message)

    def queue_info(self) -> dict[str, Any]:
        with self._mutex:
            return {"exec_info": {"queue_remaining": len(self._queue) + len(self._running)}}

    def _queue_updated(self) -> None:
        self.send("status", {"status": self.queue_info()})

    def running_ids(self) -> list[str]:
        with self._mutex:
            return [item[1] for item in self._running.values()]

    def pending_ids(self) -> list[str]:
        with self._mutex:
            return [item[1] for item in self._queue]

    # validation (execution.py validate_prompt / validate_inputs) --------------------------------
    def classes(self) -> dict[str, dict[str, Any]]:
        found = [p.relative_to(self.loras_dir).as_posix() for p in self.loras_dir.rglob("*.safetensors")]
        inputs = [p.relative_to(self.input_dir).as_posix() for p in self.input_dir.rglob("*") if p.is_file()]
        return node_classes(self.checkpoints, sorted({*self.loras, *found}), inputs)

    def validate_prompt(self, prompt: dict[str, Any]) -> tuple[bool, Any, list[str], dict[str, Any]]:
        classes = self.classes()
        outputs = set()
        for x, node in prompt.items():
            if "class_type" not in node:
                return (False, {"type": "invalid_prompt",
                                "message": "Cannot execute because a node is missing the class_type property.",
                                "details": f"Node ID '#{x}'", "extra_info": {}}, [], {})
            cls = classes.get(node["class_type"])
            if cls is None:
                return (False, {"type": "invalid_prompt",
                                "message": f"Cannot execute because node {node['class_type']} does not exist.",
                                "details": f"Node ID '#{x}'", "extra_info": {}}, [], {})
            if cls.get("output_node"):
                outputs.add(x)
        if not outputs:
            return (False, {"type": "prompt_no_outputs", "message": "Prompt has no outputs", "details": "",
                            "extra_info": {}}, [], {})
        validated: dict[str, tuple[bool, list[dict[str, Any]], str]] = {}
        good, node_errors, errors = [], {}, []
        for o in sorted(outputs):
            ok, reasons, _ = self._validate_inputs(prompt, o, validated, classes)
            if ok:
                good.append(o)
                continue
            errors.append((o, reasons))
            for node_id, (valid, rs, _) in validated.items():
                if not valid and rs:
                    entry = node_errors.setdefault(node_id, {"errors": rs, "dependent_outputs": [],
                                                             "class_type": prompt[node_id]["class_type"]})
                    entry["dependent_outputs"].append(o)
        if not good:
            details = "\n".join(f"{e['message']}: {e['details']}" for _, rs in errors for e in rs)
            return (False, {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation",
                            "details": details, "extra_info": {}}, [], node_errors)
        return (True, None, good, node_errors)

    def _validate_inputs(self, prompt, unique_id, validated, classes):
        if unique_id in validated:
            return validated[unique_id]
        node = prompt[unique_id]
        required = classes[node["class_type"]]["required"]
        errors, valid = [], True
        for x, info in required.items():
            if x not in node["inputs"]:
                errors.append({"type": "required_input_missing", "message": "Required input is missing",
                               "details": f"{x}", "extra_info": {"input_name": x}})
                continue
            val, type_input = node["inputs"][x], info[0]
            if isinstance(val, list):
                o_id, slot = str(val[0]), val[1]
                if o_id not in prompt:
                    errors.append({"type": "bad_linked_input",
                                   "message": "Bad linked input, must be a length-2 list of [node_id, slot_index]",
                                   "details": f"{x}", "extra_info": {"input_name": x, "received_value": val}})
                    continue
                received = classes[prompt[o_id]["class_type"]]["output"][slot]
                if received != type_input:
                    errors.append({"type": "return_type_mismatch", "message": "Return type mismatch between linked nodes",
                                   "details": f"{x}, {received} != {type_input}", "extra_info": {"input_name": x}})
                    continue
                if not self._validate_inputs(prompt, o_id, validated, classes)[0]:
                    valid = False
                continue
            if isinstance(type_input, list):
                if val not in type_input:
                    listed = f"(list of length {len(type_input)})" if len(type_input) > 20 else str(type_input)
                    errors.append({"type": "value_not_in_list", "message": "Value not in list",
                                   "details": f"{x}: '{val}' not in {listed}",
                                   "extra_info": {"input_name": x, "input_config": info, "received_value": val}})
                continue
            limits = info[1] if len(info) > 1 else {}
            if type_input in ("INT", "FLOAT"):
                if "min" in limits and val < limits["min"]:
                    errors.append({"type": "value_smaller_than_min",
                                   "message": "Value {} smaller than min of {}".format(val, limits["min"]),
                                   "details": f"{x}", "extra_info": {"input_name": x, "received_value": val}})
                elif "max" in limits and val > limits["max"]:
                    errors.append({"type": "value_bigger_than_max",
                                   "message": "Value {} bigger than max of {}".format(val, limits["max"]),
                                   "details": f"{x}", "extra_info": {"input_name": x, "received_value": val}})
        ret = (not errors and valid, errors, unique_id)
        validated[unique_id] = ret
        return ret

    # execution (main.py prompt_worker, execution.py PromptExecutor) -----------------------------
    def _worker(self) -> None:
        while not self._stopping:
            with self._not_empty:
                while not self._queue and not self._stopping:
                    self._not_empty.wait(0.1)
                if self._stopping:
                    return
                item = heapq.heappop(self._queue)
                item_id = self._counter
                self._counter += 1
                self._running[item_id] = item
            self._queue_updated()
            self._interrupt.clear()
            number, prompt_id, prompt, extra_data, outputs = item
            client_id = extra_data.get("client_id")
            messages: list[list[Any]] = []
            ui: dict[str, Any] = {}
            success = self._execute(prompt, prompt_id, client_id, outputs, messages, ui)
            with self._mutex:  # PromptQueue.task_done
                del self._running[item_id]
                self.history[prompt_id] = {
                    "prompt": [number, prompt_id, prompt, extra_data, outputs],
                    "outputs": ui, "meta": {k: {"node_id": k, "display_node": k} for k in ui},
                    "status": {"status_str": "success" if success else "error", "completed": success,
                               "messages": messages},
                }
            self._queue_updated()
            if client_id is not None:
                self.send("executing", {"node": None, "prompt_id": prompt_id}, client_id)

    def _execute(self, prompt, prompt_id, client_id, outputs, messages, ui) -> bool:
        def add(event: str, data: dict[str, Any], broadcast: bool = False) -> None:
            data = {**data, "timestamp": int(time.time() * 1000)}
            messages.append([event, data])
            if client_id is not None or broadcast:
                self.send(event, data, client_id)

        add("execution_start", {"prompt_id": prompt_id})
        add("execution_cached", {"nodes": [], "prompt_id": prompt_id})
        executed: list[str] = []
        order: list[str] = []

        def visit(nid: str) -> None:
            if nid in order:
                return
            for v in prompt[nid]["inputs"].values():
                if isinstance(v, list):
                    visit(str(v[0]))
            order.append(nid)

        for o in sorted(outputs):
            visit(o)
        current = None
        try:
            for nid in order:
                current = nid
                if self._interrupt.is_set():
                    raise _Interrupted
                if client_id is not None:
                    self.send("executing", {"node": nid, "display_node": nid, "prompt_id": prompt_id}, client_id)
                node = prompt[nid]
                if node["class_type"] == "KSampler":
                    self._sample(node, nid, prompt_id, client_id)
                elif node["class_type"] == "SaveImage":
                    out = {"images": self._save(prompt, node)}
                    ui[nid] = out
                    if client_id is not None:
                        self.send("executed", {"node": nid, "display_node": nid, "output": out, "prompt_id": prompt_id},
                                  client_id)
                executed.append(nid)
        except _Interrupted:
            add("execution_interrupted", {"prompt_id": prompt_id, "node_id": current,
                                          "node_type": prompt[current]["class_type"], "executed": executed},
                broadcast=True)
            return False
        except RuntimeError as exc:
            add("execution_error", {
                "prompt_id": prompt_id, "node_id": current, "node_type": prompt[current]["class_type"],
                "executed": executed, "exception_message": str(exc), "exception_type": self.error_type,
                "traceback": ['  File "/ComfyUI/comfy/samplers.py", line 1, in sample\n'],
                "current_inputs": {}, "current_outputs": {}})
            return False
        add("execution_success", {"prompt_id": prompt_id})
        return True

    def _sample(self, node, nid, prompt_id, client_id) -> None:
        steps = int(node["inputs"]["steps"])
        i = 0
        while i < steps or self.hang:
            time.sleep(self.step_s)
            if self._interrupt.is_set():  # comfy.model_management.throw_exception_if_processing_interrupted
                raise _Interrupted
            if self.hang:
                continue
            i += 1
            if self.error_message is not None and i == self.error_at_step:
                raise RuntimeError(self.error_message)
            self.send("progress", {"value": i, "max": steps, "prompt_id": prompt_id, "node": nid}, client_id)

    def _upstream(self, prompt, node, class_type):
        for v in node["inputs"].values():
            if isinstance(v, list):
                up = prompt[str(v[0])]
                if up["class_type"] == class_type:
                    return up
                found = self._upstream(prompt, up, class_type)
                if found is not None:
                    return found
        return None

    def _save(self, prompt, node) -> list[dict[str, str]]:
        """The batch the graph decodes: one text-to-image PNG, or SVD's frames (the LoadImage
        input drifting and zooming slowly), each ``<prefix>_<counter:05>_.png``."""
        svd = self._upstream(prompt, node, "SVD_img2vid_Conditioning")
        if svd is not None:
            return [self._write(node, rgb) for rgb in self._svd_frames(prompt, svd)]
        latent = self._upstream(prompt, node, "EmptyLatentImage")
        sampler = self._upstream(prompt, node, "KSampler")
        w, h = int(latent["inputs"]["width"]), int(latent["inputs"]["height"])
        text = ""
        if sampler is not None:
            pos = prompt[str(sampler["inputs"]["positive"][0])]
            text = str(pos["inputs"].get("text", ""))
        colour = np.frombuffer(hashlib.sha256(text.encode()).digest()[:3], np.uint8).astype(np.float32)
        ramp = (np.linspace(0.3, 1.0, w, dtype=np.float32)[None, :, None]
                * np.linspace(0.5, 1.0, h, dtype=np.float32)[:, None, None])
        rgb = np.clip(ramp * colour[None, None, :] + 20, 0, 255).astype(np.uint8)
        if self.subject is not None and self._upstream(prompt, node, "LoraLoader") is not None:
            person = Image.open(self.subject).convert("RGB")
            scale = 0.8 * min(w / person.width, h / person.height)
            pw, ph = max(1, round(person.width * scale)), max(1, round(person.height * scale))
            x, y = (w - pw) // 2, (h - ph) // 2
            rgb[y:y + ph, x:x + pw] = np.asarray(person.resize((pw, ph), Image.LANCZOS))
        return [self._write(node, rgb)]

    def _svd_frames(self, prompt, svd) -> list[np.ndarray]:
        load = prompt[str(svd["inputs"]["init_image"][0])]
        src = Image.open(self.input_dir / str(load["inputs"]["image"])).convert("RGB")
        w, h = int(svd["inputs"]["width"]), int(svd["inputs"]["height"])
        base = np.asarray(src.resize((w, h), Image.LANCZOS))
        frames = []
        for i in range(int(svd["inputs"]["video_frames"])):
            zoom = 1.0 + 0.004 * i  # a slow push in, as SVD's camera drifts
            cw, ch = round(w / zoom), round(h / zoom)
            x, y = (w - cw) // 2 + i % 3, (h - ch) // 2
            crop = Image.fromarray(base[y:y + ch, x:x + cw]).resize((w, h), Image.LANCZOS)
            frames.append(np.asarray(crop))
        return frames

    def _write(self, node, rgb: np.ndarray) -> dict[str, str]:
        prefix = str(node["inputs"].get("filename_prefix", "ComfyUI"))
        subfolder, _, base = prefix.rpartition("/")
        folder = self.output_dir / subfolder
        folder.mkdir(parents=True, exist_ok=True)
        self._image_counter += 1
        filename = f"{base}_{self._image_counter:05}_.png"
        Image.fromarray(rgb).save(folder / filename, "PNG")
        return {"filename": filename, "subfolder": subfolder, "type": "output"}

    # HTTP -------------------------------------------------------------------------------------
    def _handler_class(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: bytes = b"", ctype: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _json(self, obj: Any, status: int = 200) -> None:
                self._reply(status, json.dumps(obj).encode())

            def _body(self) -> bytes:
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n else b""

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                path, query = parts.path, parse_qs(parts.query)
                fake.requests.append(("GET", path))
                if path == "/ws":
                    return self._websocket(query.get("clientId", [""])[0])
                if path == "/object_info":
                    return self._json({k: node_info(k, v) for k, v in fake.classes().items()})
                if path.startswith("/object_info/"):
                    name = path.removeprefix("/object_info/")
                    spec = fake.classes().get(name)
                    return self._json({name: node_info(name, spec)} if spec else {})
                if path.startswith("/history/"):
                    pid = path.removeprefix("/history/")
                    with fake._mutex:
                        return self._json({pid: copy.deepcopy(fake.history[pid])} if pid in fake.history else {})
                if path == "/prompt":
                    return self._json(fake.queue_info())
                if path == "/queue":  # server.py get_queue: the queue items themselves
                    with fake._mutex:
                        return self._json({"queue_running": [list(i) for i in fake._running.values()],
                                           "queue_pending": [list(i) for i in sorted(fake._queue)]})
                if path == "/view":
                    filename = query.get("filename", [""])[0]
                    if not filename:
                        return self._reply(404)
                    if filename[0] == "/" or ".." in filename:
                        return self._reply(400)
                    base = {"output": fake.output_dir, "input": fake.input_dir}.get(query.get("type", ["output"])[0])
                    if base is None:
                        return self._reply(400)
                    file = base / query.get("subfolder", [""])[0] / Path(filename).name
                    if not file.is_file():
                        return self._reply(404)
                    return self._reply(200, file.read_bytes(), "image/png")
                self._reply(404)

            def do_POST(self) -> None:
                path = urlsplit(self.path).path
                fake.requests.append(("POST", path))
                body = self._body()
                if path == "/upload/image":
                    return self._upload(body)
                try:
                    data = json.loads(body or b"{}")
                except ValueError:
                    data = None
                if path == "/prompt":
                    return self._post_prompt(data if isinstance(data, dict) else {})
                if path == "/interrupt":
                    data = data if isinstance(data, dict) else {}
                    fake.interrupts.append(data)
                    pid = data.get("prompt_id")
                    if not pid or pid in fake.running_ids():
                        fake._interrupt.set()
                    return self._reply(200, b"", "text/plain")
                if path == "/queue":
                    data = data or {}
                    with fake._mutex:
                        if data.get("clear"):
                            fake._queue = []
                        for pid in data.get("delete") or []:
                            fake.deleted.append(pid)
                            fake._queue = [q for q in fake._queue if q[1] != pid]
                            heapq.heapify(fake._queue)
                    fake._queue_updated()
                    return self._reply(200, b"", "text/plain")
                if path == "/free":
                    fake.frees.append(data or {})
                    return self._reply(200, b"", "text/plain")
                self._reply(404)

            def _post_prompt(self, data: dict[str, Any]) -> None:
                fake.prompts.append(copy.deepcopy(data))
                if "number" in data:
                    number = float(data["number"])
                else:
                    number = fake._number
                    if data.get("front"):
                        number = -number
                    fake._number += 1
                if "prompt" not in data:
                    error = {"type": "no_prompt", "message": "No prompt provided", "details": "No prompt provided",
                             "extra_info": {}}
                    return self._json({"error": error, "node_errors": {}}, 400)
                prompt = data["prompt"]
                valid = fake.validate_prompt(prompt)
                extra = dict(data.get("extra_data") or {})
                if "client_id" in data:
                    extra["client_id"] = data["client_id"]
                if not valid[0]:
                    return self._json({"error": valid[1], "node_errors": valid[3]}, 400)
                prompt_id = str(uuid.uuid4())
                with fake._not_empty:
                    heapq.heappush(fake._queue, (number, prompt_id, prompt, extra, valid[2]))
                    fake._not_empty.notify()
                fake._queue_updated()
                self._json({"prompt_id": prompt_id, "number": number, "node_errors": valid[3]})

            def _upload(self, body: bytes) -> None:
                msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                    b"Content-Type: " + self.headers["Content-Type"].encode() + b"\r\n\r\n" + body)
                fields: dict[str, Any] = {}
                for part in msg.iter_parts():
                    name = part.get_param("name", header="content-disposition")
                    fields[str(name)] = (part.get_filename(), part.get_payload(decode=True))
                if "image" not in fields or not fields["image"][0]:
                    return self._reply(400)
                filename = fields["image"][0]
                kind = (fields.get("type") or (None, b"input"))[1].decode() or "input"
                subfolder = (fields.get("subfolder") or (None, b""))[1].decode()
                overwrite = (fields.get("overwrite") or (None, b""))[1].decode()
                base = {"input": fake.input_dir, "output": fake.output_dir}.get(kind, fake.input_dir)
                folder = base / subfolder
                folder.mkdir(parents=True, exist_ok=True)
                stem, dot, ext = filename.rpartition(".")
                i = 1
                while overwrite not in ("true", "1") and (folder / filename).exists():
                    if (folder / filename).read_bytes() == fields["image"][1]:
                        break  # the same image: not saved twice (server.py compare_image_hash)
                    filename = f"{stem} ({i}){dot}{ext}"
                    i += 1
                (folder / filename).write_bytes(fields["image"][1])
                self._json({"name": filename, "subfolder": subfolder, "type": kind})

            def _websocket(self, sid: str) -> None:
                self.close_connection = True
                # The request line and headers were read by http.server: hand them to the protocol
                # as they came, so that its parser moves on to the frames after the handshake.
                proto = ServerProtocol(max_size=None)
                head = f"GET {self.path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in self.headers.items())
                proto.receive_data((head + "\r\n").encode("latin-1"))
                [request] = [e for e in proto.events_received() if isinstance(e, Request)]
                response = proto.accept(request)
                proto.send_response(response)
                self._flush(proto)
                if response.status_code != 101:
                    return
                sid = sid or uuid.uuid4().hex
                client = _WsClient()
                fake._sockets[sid] = client
                try:
                    self._flush_outbox(proto, [{"type": "status", "data": {"status": fake.queue_info(), "sid": sid}}])
                    conn: socket.socket = self.connection
                    while proto.state is not State.CLOSED and not proto.close_expected() and not fake._stopping:
                        readable, _, _ = select.select([conn], [], [], 0.02)
                        if readable:
                            data = conn.recv(65536)
                            if not data:
                                proto.receive_eof()
                                break
                            proto.receive_data(data)
                            proto.events_received()  # a close frame is answered by the protocol itself
                            self._flush(proto)
                        pending = []
                        while not client.outbox.empty():
                            pending.append(client.outbox.get_nowait())
                        if pending and proto.state is State.OPEN:
                            self._flush_outbox(proto, pending)
                except OSError:
                    pass
                finally:
                    if fake._sockets.get(sid) is client:
                        del fake._sockets[sid]

            def _flush_outbox(self, proto: ServerProtocol, messages: list[dict[str, Any]]) -> None:
                for m in messages:
                    proto.send_text(json.dumps(m).encode())
                self._flush(proto)

            def _flush(self, proto: ServerProtocol) -> None:
                for chunk in proto.data_to_send():
                    if chunk:
                        self.wfile.write(chunk)
                    else:  # the protocol's end of stream: the server closes the TCP connection first
                        self.wfile.flush()
                        self.connection.shutdown(socket.SHUT_WR)
                        return
                self.wfile.flush()

        return Handler
