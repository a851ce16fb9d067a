"""Making room on a card before a GPU step: what another engine left there is freed first.

Deleting a model in Python does not give its VRAM back, and the servers that share a card (ComfyUI,
the LLM server) keep their models loaded until told otherwise. So a GPU actor calls ``make_room``
before each step, with the engine its queue ran last (placement.py records it):

- the last engine was ``comfyui`` and this one is not: ``POST /free`` ``{unload_models: true,
  free_memory: true}`` to ComfyUI (COMFYUI_URL; ComfyUI server.py), which unloads its models
  once its current prompt ends;
- the last engine was another one: its ``Engine.release()`` (a resident process, e.g. F5-TTS's
  host, shuts down or drops its model; the default does nothing);
- this engine is an SD or SVD one (task kinds in ``UNLOADS_LLM``) and WORKER_OLLAMA_URL names
  the LLM server sharing the GPU: every model Ollama has loaded (``GET /api/ps`` → ``{models:
  [{name, model, size_vram, …}]}``) is unloaded with ``POST /api/generate {"model": m,
  "keep_alive": 0}`` (Ollama's documented unload: an empty prompt with keep_alive 0 answers
  ``{done: true, done_reason: "unload"}``). The LLM runs before the pictures in a job (the
  script), so this is the order the issue asks for: the LLM goes, then SD or SVD loads.

Nothing here fails a step: each call that fails is logged and the step runs anyway (it may then
run out of memory, which its engine reports as such).
"""

from __future__ import annotations

import logging

import httpx

from ..base import Engine
from ..comfyui.client import ComfyClient, ComfyError

log = logging.getLogger(__name__)

# Task kinds whose GPU engines load Stable Diffusion or Stable Video Diffusion (kohya trains SD).
UNLOADS_LLM = frozenset({"image", "motion", "lora_trainer"})
COMFYUI_ENGINE = "comfyui"
OLLAMA_TIMEOUT_S = 30.0  # one request; an unload returns once the model is gone


def make_room(
    previous: str | None,
    previous_cls: type[Engine] | None,
    task_kind: str,
    name: str,
    *,
    current_cls: type[Engine] | None = None,
    comfyui_url: str | None,
    ollama_url: str | None,
    comfyui_timeout_s: float = 10.0,
    ollama_timeout_s: float = OLLAMA_TIMEOUT_S,
) -> list[str]:
    """Frees the card for a step of ``task_kind/name``; ``previous`` is the engine the card ran
    last ("<task kind>/<name>") and ``previous_cls`` its class when this worker has it. Returns
    what was done (for the log and the tests); never raises."""
    done: list[str] = []
    current = f"{task_kind}/{name}"
    if previous and previous != current:
        previous_name = previous.partition("/")[2]
        # ComfyUI's engines, and those that render through it (the likeness evaluate), share its models.
        previous_on_comfyui = previous_name == COMFYUI_ENGINE or bool(previous_cls and previous_cls.uses_comfyui)
        current_on_comfyui = name == COMFYUI_ENGINE or bool(current_cls and current_cls.uses_comfyui)
        if previous_on_comfyui and not current_on_comfyui and comfyui_url:
            try:
                with ComfyClient(comfyui_url, timeout_s=comfyui_timeout_s) as client:
                    client.free()
                done.append("comfyui: /free")
            except ComfyError as exc:
                log.warning("could not free ComfyUI's VRAM before %s: %s", current, exc)
        # One name is one tool: Wav2Lip's lipsync and talking_head engines share their resident process.
        if previous_cls is not None and previous_name != name and _overrides_release(previous_cls):
            try:
                previous_cls.release()
                done.append(f"{previous}: released")
            except Exception:  # an engine's own code: whatever it raises, the step goes on
                log.warning("releasing %s before %s failed", previous, current, exc_info=True)
    if ollama_url and task_kind in UNLOADS_LLM:
        done += [f"ollama: unloaded {m}" for m in unload_ollama(ollama_url, ollama_timeout_s)]
    if done:
        log.info("before %s: %s", current, "; ".join(done))
    return done


def unload_ollama(url: str, timeout_s: float = OLLAMA_TIMEOUT_S) -> list[str]:
    """Unloads every model the Ollama server at ``url`` has loaded; returns their names."""
    unloaded: list[str] = []
    try:
        with httpx.Client(base_url=url.rstrip("/"), timeout=timeout_s) as http:
            r = http.get("/api/ps")
            r.raise_for_status()
            running = r.json().get("models") or []
            for entry in running:
                model = (entry.get("model") or entry.get("name")) if isinstance(entry, dict) else None
                if not model:
                    continue
                try:
                    r = http.post("/api/generate", json={"model": model, "keep_alive": 0})
                    r.raise_for_status()
                    unloaded.append(model)
                except httpx.HTTPError as exc:
                    log.warning("could not unload Ollama's %s: %s", model, _describe(exc))
    except (httpx.HTTPError, ValueError, AttributeError) as exc:  # no server, an error status, not JSON
        log.warning("could not list Ollama's loaded models at %s: %s", url, _describe(exc))
    return unloaded


def _overrides_release(cls: type[Engine]) -> bool:
    return getattr(cls.release, "__func__", None) is not Engine.release.__func__  # type: ignore[attr-defined]


def _describe(exc: Exception) -> str:
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}: {exc.response.text[:200]}"
    return f"{type(exc).__name__}: {exc}"
