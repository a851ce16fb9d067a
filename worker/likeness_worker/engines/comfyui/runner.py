"""Running one workflow on a ComfyUI server for a step: what the image and motion engines share.

``run_graph`` checks the graph against the server's /object_info (refused at once, bad_input, not
retried, when a class, a checkpoint or a LoRA is missing), opens /ws with a fresh client id, POSTs
/prompt and follows the messages for our prompt id (progress → ``ctx.progress``) to its /history
entry. ``comfy_errors`` maps what the client raises to step failures.

Failures (errors.py codes): graph refused by ComfyUI → bad_input; ``execution_error`` → engine_failed,
or out_of_memory when the exception says "out of memory"; ``execution_interrupted`` (someone else
pressed cancel in ComfyUI) → engine_failed; past COMFYUI_TIMEOUT_S → timeout; no connection →
engine_unavailable. A cancelled job interrupts the prompt (POST /interrupt) and deletes it from the
queue (POST /queue) before the step fails as cancelled.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ...config import ComfyUISettings, ConfigError, load_comfyui_settings
from ...errors import StepFailure
from ..base import TaskContext
from ..health import ProblemCache
from .client import ComfyClient, ComfyError, ComfyHttpError, ComfyRejected, ComfyUnreachable
from .workflow import Workflow, WorkflowError, check_against, load_workflow

PROBLEM_TIMEOUT_S = 3.0
# Without any message for this long, /history is read in case the end was missed.
POLL_HISTORY_S = 5.0
# After a cancel or a timeout, how long to wait for ComfyUI to confirm the interrupt.
INTERRUPT_WAIT_S = 5.0
WS_TICK_S = 0.25


def settings() -> ComfyUISettings:
    try:
        return load_comfyui_settings()
    except ConfigError as exc:
        raise StepFailure("bad_input", str(exc)) from None


def server_url(s: ComfyUISettings, engine: str) -> str:
    if not s.comfyui_url:
        raise StepFailure("engine_unavailable", f"the {engine} engine needs COMFYUI_URL (the ComfyUI server)",
                          retryable=False)
    return s.comfyui_url


def workflow(name: str, s: ComfyUISettings) -> Workflow:
    try:
        return load_workflow(name, s.comfyui_workflows_dir)
    except WorkflowError as exc:
        raise StepFailure("bad_input", str(exc)) from None


def is_out_of_memory(message: str, exception_type: str = "") -> bool:
    text = f"{exception_type} {message}".lower()
    return "out of memory" in text or "outofmemoryerror" in text


def seed_for(*parts: object) -> int:
    """The same request makes the same output (a step reused or run again agrees with itself)."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:6], "big")  # < 2**48: well inside KSampler's seed range


def infos(client: ComfyClient, wf: Workflow, graph: dict[str, Any] | None = None) -> dict[str, Any]:
    """/object_info/<class> of each class the graph uses (light: not the whole node list)."""
    found: dict[str, Any] = {}
    for cls in sorted(wf.class_types(graph)):
        found.update(client.object_info(cls))
    return found


class Health:
    """An engine's ``problem()``: the workflow loads and the server can run it (its classes and
    models are there), asked at most every PROBLEM_TTL_S per settings."""

    def __init__(self, workflow_name: Callable[[ComfyUISettings], str],
                 graph: Callable[[Workflow, ComfyUISettings], dict[str, Any]], *, uploads: str | None = None) -> None:
        self._workflow_name = workflow_name
        self._graph = graph
        self._uploads = uploads  # the binding whose file the step uploads (motion: "image")
        self._answers = ProblemCache()

    def clear(self) -> None:
        self._answers.clear()

    def problem(self) -> str | None:
        try:
            s = load_comfyui_settings()
        except ConfigError as exc:
            return str(exc)
        if not s.comfyui_url:
            return "COMFYUI_URL is not set"
        return self._answers.get(s, lambda: self._check(s))

    def _check(self, s: ComfyUISettings) -> str | None:
        assert s.comfyui_url
        try:
            wf = load_workflow(self._workflow_name(s), s.comfyui_workflows_dir)
        except WorkflowError as exc:
            return str(exc)
        try:
            with ComfyClient(s.comfyui_url, timeout_s=min(PROBLEM_TIMEOUT_S, s.comfyui_request_timeout_s)) as client:
                graph = self._graph(wf, s)
                uploaded = frozenset((t.node, t.input) for t in wf.bindings.get(self._uploads or "", []))
                problems = check_against(graph, infos(client, wf, graph), uploaded)
        except ComfyUnreachable:
            return f"ComfyUI at {s.comfyui_url} is unreachable"
        except ComfyError as exc:
            return str(exc)
        return f"workflow {wf.name}: " + "; ".join(problems) if problems else None


@contextmanager
def comfy_errors(wf: Workflow) -> Iterator[None]:
    """What the client raises, as step failures."""
    try:
        yield
    except ComfyUnreachable as exc:
        raise StepFailure("engine_unavailable", str(exc), retryable=True) from None
    except ComfyRejected as exc:
        raise StepFailure("bad_input", f"ComfyUI refused workflow {wf.name}: {exc}", retryable=False) from None
    except ComfyHttpError as exc:  # a 5xx: the server is in trouble; anything else: it disagrees
        raise StepFailure("engine_unavailable" if exc.status >= 500 else "engine_failed", str(exc)) from None


def run_graph(ctx: TaskContext, client: ComfyClient, graph: dict[str, Any], wf: Workflow,
              s: ComfyUISettings) -> dict[str, Any]:
    """Queue the graph (checked against the server's /object_info first) and follow it to its end;
    its /history entry."""
    problems = check_against(graph, infos(client, wf, graph))
    if problems:
        raise StepFailure("bad_input", f"ComfyUI at {client.base_url} cannot run workflow {wf.name}: "
                          + "; ".join(problems), retryable=False)
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


def output_images(entry: dict[str, Any], wf: Workflow) -> list[dict[str, Any]]:
    """The files the workflow's output node saved (``type`` output, in order); engine_failed when none."""
    outputs = entry.get("outputs") or {}
    images = (outputs.get(wf.output) or {}).get("images") or []
    saved = [i for i in images if i.get("type", "output") == "output"] or images
    if not saved:
        made = ", ".join(sorted(outputs)) or "none"
        raise StepFailure("engine_failed", f"ComfyUI's workflow {wf.name} saved no image at node {wf.output} "
                          f"(nodes with outputs: {made})")
    return saved


def download(client: ComfyClient, image: dict[str, Any]) -> bytes:
    return client.view(str(image["filename"]), str(image.get("subfolder", "")), str(image.get("type", "output")))
