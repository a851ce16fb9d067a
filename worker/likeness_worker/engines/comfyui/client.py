"""A small synchronous client of ComfyUI's HTTP and WebSocket API (what its server.py serves).

HTTP with httpx, the WebSocket with websockets' sync client: the engine runs in a Dramatiq actor
thread, one step at a time, so nothing here is async. Errors are three kinds the engine maps to
step failures: ``ComfyUnreachable`` (no connection, a dropped socket: the server may come back),
``ComfyRejected`` (HTTP 400 from POST /prompt: the graph failed validation, with ComfyUI's
``error`` and ``node_errors``) and ``ComfyHttpError`` (any other unexpected status).

The routes (ComfyUI server.py, ``PromptServer.__init__``):

- ``GET /object_info`` and ``GET /object_info/{node_class}``: node classes with their
  ``input.required/optional`` specs; a combo (file list) is ``[[names...], {...}]`` or, for nodes
  of the newer schema, ``["COMBO", {"options": [names...]}]``.
- ``POST /prompt`` ``{prompt, client_id}`` → ``{prompt_id, number, node_errors}``; 400
  ``{error: {type, message, details, extra_info}, node_errors: {id: {errors, dependent_outputs,
  class_type}}}`` (``error`` is the plain string ``"no prompt"`` in older versions).
- ``GET /history/{prompt_id}`` → ``{prompt_id: {prompt, outputs: {node: {images: [...]}}, status:
  {status_str, completed, messages}}}``, or ``{}`` while it has not finished.
- ``GET /view?filename=&subfolder=&type=`` → the file.
- ``POST /upload/image`` multipart (``image``, ``overwrite``, ``type``, ``subfolder``) →
  ``{name, subfolder, type}``.
- ``GET /queue`` → ``{queue_running: [items], queue_pending: [items]}``, an item being
  ``[number, prompt_id, prompt, extra_data, outputs_to_execute, ...]``.
- ``POST /interrupt`` (``{prompt_id}``: newer versions interrupt only that prompt; older ones
  ignore the body and interrupt whatever runs), ``POST /queue {delete: [ids]}``,
  ``POST /free {unload_models, free_memory}``.
- ``GET /ws?clientId=``: JSON text messages ``{type, data}`` (binary ones are previews).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx


class ComfyError(Exception):
    pass


class ComfyUnreachable(ComfyError):
    """No answer: connection refused, DNS, a timeout, a dropped WebSocket."""


class ComfyHttpError(ComfyError):
    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        super().__init__(f"ComfyUI {method} {path} answered {status}: {body[:300]}")
        self.status = status


class ComfyRejected(ComfyError):
    """POST /prompt answered 400: ComfyUI's validate_prompt refused the graph."""

    def __init__(self, error: Any, node_errors: Any) -> None:
        self.error = error
        self.node_errors = node_errors if isinstance(node_errors, dict) else {}
        super().__init__(describe_rejection(error, self.node_errors))


def describe_rejection(error: Any, node_errors: dict[str, Any]) -> str:
    """One readable line of ComfyUI's 400 answer: the error's message, then each node's errors."""
    if isinstance(error, dict):
        head = str(error.get("message") or error.get("type") or "invalid prompt")
        details = str(error.get("details") or "")
        if details and not node_errors:
            head += f": {details}"
    else:
        head = str(error or "invalid prompt")
    parts = []
    for node_id, info in sorted(node_errors.items()):
        errs = info.get("errors") or [] if isinstance(info, dict) else []
        what = "; ".join(f"{e.get('message', '?')}: {e.get('details', '')}".rstrip(": ") for e in errs)
        cls = info.get("class_type", "?") if isinstance(info, dict) else "?"
        parts.append(f"node {node_id} ({cls}): {what or 'invalid'}")
    return head + (" — " + " | ".join(parts) if parts else "")


def combo_options(spec: Any) -> list[str] | None:
    """The allowed values of an input spec from /object_info when it is a combo, else None."""
    if not isinstance(spec, (list, tuple)) or not spec:
        return None
    kind = spec[0]
    if isinstance(kind, list):
        return [str(v) for v in kind]
    if kind == "COMBO" and len(spec) > 1 and isinstance(spec[1], dict):
        return [str(v) for v in spec[1].get("options") or []]
    return None


class ComfyClient:
    def __init__(self, base_url: str, *, timeout_s: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout_s)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ComfyClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # HTTP -------------------------------------------------------------------------------------
    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:  # connect, read, timeouts, protocol
            raise ComfyUnreachable(f"ComfyUI at {self.base_url} did not answer {method} {path}: "
                                   f"{type(exc).__name__}: {exc}") from exc

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        r = self._request(method, path, **kwargs)
        if r.status_code != 200:
            raise ComfyHttpError(method, path, r.status_code, r.text)
        try:
            return r.json()
        except ValueError as exc:
            raise ComfyHttpError(method, path, r.status_code, f"not JSON: {r.text[:200]}") from exc

    def _ok(self, method: str, path: str, **kwargs: Any) -> None:
        r = self._request(method, path, **kwargs)
        if r.status_code != 200:
            raise ComfyHttpError(method, path, r.status_code, r.text)

    def object_info(self, node_class: str | None = None) -> dict[str, Any]:
        """All node classes, or one (``{}`` when the server has no such class)."""
        path = "/object_info" if node_class is None else f"/object_info/{node_class}"
        out = self._json("GET", path)
        return out if isinstance(out, dict) else {}

    def queue_prompt(self, prompt: dict[str, Any], client_id: str) -> dict[str, Any]:
        """POST /prompt; ComfyRejected on a 400 (the graph failed validation)."""
        r = self._request("POST", "/prompt", json={"prompt": prompt, "client_id": client_id})
        if r.status_code == 400:
            try:
                body = r.json()
            except ValueError:
                body = {"error": r.text}
            raise ComfyRejected(body.get("error"), body.get("node_errors"))
        if r.status_code != 200:
            raise ComfyHttpError("POST", "/prompt", r.status_code, r.text)
        return r.json()

    def history(self, prompt_id: str) -> dict[str, Any] | None:
        """The prompt's history entry once it has finished (well or not), else None."""
        out = self._json("GET", f"/history/{prompt_id}")
        return out.get(prompt_id) if isinstance(out, dict) else None

    def queue(self) -> tuple[list[str], list[str]]:
        """Prompt ids running and waiting (GET /queue: items ``[number, prompt_id, prompt, ...]``)."""
        out = self._json("GET", "/queue")

        def ids(items: Any) -> list[str]:
            return [str(i[1]) for i in items or [] if isinstance(i, list) and len(i) > 1]

        return ids(out.get("queue_running")), ids(out.get("queue_pending"))

    def view(self, filename: str, subfolder: str = "", type: str = "output") -> bytes:
        r = self._request("GET", "/view", params={"filename": filename, "subfolder": subfolder, "type": type})
        if r.status_code != 200:
            raise ComfyHttpError("GET", f"/view?filename={filename}", r.status_code, r.text)
        return r.content

    def upload_image(self, path: Path, *, name: str | None = None, subfolder: str = "",
                     type: str = "input", overwrite: bool = True) -> dict[str, Any]:
        """POST /upload/image; returns ``{name, subfolder, type}`` (the name may differ from the
        one sent when ``overwrite`` is false and the file exists)."""
        data = {"overwrite": "true" if overwrite else "false", "type": type, "subfolder": subfolder}
        with Path(path).open("rb") as f:
            files = {"image": (name or Path(path).name, f, "image/png")}
            return self._json("POST", "/upload/image", data=data, files=files)

    def interrupt(self, prompt_id: str | None = None) -> None:
        self._ok("POST", "/interrupt", json={"prompt_id": prompt_id} if prompt_id else {})

    def delete_queued(self, prompt_ids: list[str]) -> None:
        self._ok("POST", "/queue", json={"delete": prompt_ids})

    def free(self, *, unload_models: bool = True, free_memory: bool = True) -> None:
        """Ask ComfyUI to unload its models and free VRAM after the current prompt."""
        self._ok("POST", "/free", json={"unload_models": unload_models, "free_memory": free_memory})

    # WebSocket --------------------------------------------------------------------------------
    def ws_url(self, client_id: str) -> str:
        parts = urlsplit(self.base_url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + "/ws", f"clientId={client_id}", ""))

    @contextmanager
    def events(self, client_id: str) -> Iterator[Events]:
        """The /ws messages for ``client_id``; connect BEFORE queueing, so that none is missed."""
        from websockets.exceptions import WebSocketException
        from websockets.sync.client import connect

        try:
            opened = connect(self.ws_url(client_id), open_timeout=self.timeout_s, max_size=None, close_timeout=2)
        except (OSError, TimeoutError, WebSocketException) as exc:
            raise ComfyUnreachable(f"ComfyUI at {self.base_url}: no WebSocket: {type(exc).__name__}: {exc}") from exc
        with opened as ws:
            yield Events(ws)


class Events:
    """Reads one /ws connection."""

    def __init__(self, ws: Any) -> None:
        self._ws = ws

    def next(self, timeout_s: float) -> dict[str, Any] | None:
        """The next JSON message (``{type, data}``), or None when none came within ``timeout_s``.
        Binary messages (preview images) are skipped."""
        from websockets.exceptions import ConnectionClosed

        try:
            raw = self._ws.recv(timeout=timeout_s)
        except TimeoutError:
            return None
        except ConnectionClosed as exc:
            raise ComfyUnreachable(f"ComfyUI closed the WebSocket: {exc}") from exc
        if isinstance(raw, bytes):
            return {"type": "binary", "data": None}
        try:
            msg = json.loads(raw)
        except ValueError:
            return {"type": "unparsed", "data": raw[:200]}
        return msg if isinstance(msg, dict) else {"type": "unparsed", "data": None}
