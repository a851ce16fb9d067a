"""Resident processes of GPU tools: a host script, run with the tool's own Python, that loads the
model once and then serves requests, so that the steps after the first skip the load.

A host (``f5_tts_host.py``, ``wav2lip_host.py``…) speaks JSON lines on its stdout, which it keeps
for them (everything the tool prints goes to its stderr):

- on start ``{"event": "ready", …}``, or ``{"event": "error", "type", "message", "traceback"}``
  and an exit when the tool cannot be loaded;
- per request line ``{"id", …}``: ``{"id", "event": "progress", "n", "total"}`` as it goes, then
  ``{"id", "event": "done", …}`` or ``{"id", "event": "error", "type", "message", "traceback"}``
  (the host stays up), and on stderr the line ``END_MARK <id>`` after the request's last line, so
  that what it printed for this request (its tqdm bars, its log) is all handed on before the answer;
- ``{"quit": true}`` or the end of stdin: it exits; it also exits when the worker dies.

Here, the worker's side (``Resident``: one host per tool in this worker process):

- started on the first request, in its own process group (``media.proc``'s spawn: it dies with
  the worker), and kept; a host that exited is started again by the next request, and so is one
  whose command line changed (another checkpoint, another checkout);
- each request runs under the tool's lock (one at a time: one model on the card), waiting for it
  as the step's cancel and time limit allow;
- what the host prints on stderr is handed, line by line, to the request's ``on_line`` in the
  step's thread (tqdm bars as they are drawn, as ``media.proc.stream`` does for a script), and kept
  (the last ``STDERR_LINES``) to say why it failed;
- a cancel or the time limit (the whole step, the start and the model's load included) kills the
  host's process group (its VRAM comes back whole), and the next request starts a fresh one;
- ``release()`` (another engine needs the card: engines/gpu/vram.py) stops it.

Failures come back as ``media.proc``'s: ``Cancelled``, ``ToolTimeout`` (its message ends with the
last lines printed, as ``stream``'s does), ``HostDied`` (a ``ToolExited``: its status and what it
printed, for ``tooling.run_failure``), ``ToolFailed`` (the Python could not be started), and
``HostError`` for a request that failed in a host that is still up.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import queue
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from ...media.errors import Cancelled, ToolFailed, ToolTimeout
from ...media.proc import ToolExited

POLL_S = 0.1
STDERR_LINES = 200
END_MARK = "\x1elikeness-end"  # a host's stderr line after each request: "<END_MARK> <id>"
END_WAIT_S = 2.0  # after the answer, how long its last stderr lines may take to come

IsCancelled = Callable[[], bool]


class HostDied(ToolExited):
    """The host exited; ``output`` is what it printed (stderr) and its last error, for run_failure."""


class HostError(Exception):
    """One request failed inside the host (it is still up): the exception the tool raised, and
    ``output``: what it printed for that request, then the traceback (as a script's output reads)."""

    def __init__(self, msg: dict[str, Any], printed: list[str] | None = None) -> None:
        self.type = str(msg.get("type") or "Exception")
        self.message = str(msg.get("message") or "")
        self.traceback = str(msg.get("traceback") or "")
        self.printed = list(printed or [])
        super().__init__(f"{self.type}: {self.message}")

    @property
    def output(self) -> str:
        return "\n".join([*self.printed, self.traceback.rstrip(), f"{self.type}: {self.message}"])


class Host:
    """One running host: its process (its own group), its protocol lines, its stderr tail."""

    def __init__(self, cmd: list[str], key: tuple[Any, ...], *, tool: str, limit: str,
                 cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
        self.key = key
        self.cmd = cmd
        self.tool = tool  # in messages: "Wav2Lip"
        self.limit = limit  # the time limit's variable, in messages: "WAV2LIP_TIMEOUT_S"
        self.ready: dict[str, Any] = {}
        self.errors: deque[str] = deque(maxlen=STDERR_LINES)
        # ("msg", dict) from stdout, ("line", str) and ("end", id) from stderr, ("exit", None)
        self.items: queue.Queue[tuple[str, Any]] = queue.Queue()
        # Not media.proc's spawn: its kernel signal kills the child when the thread that started it
        # ends, and this one outlives the step's thread. The host watches for the worker's death itself.
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         start_new_session=True, cwd=cwd,
                                         env={**(env if env is not None else os.environ), "PYTHONUNBUFFERED": "1"})
        except OSError as exc:  # its Python or its folder went away since the check
            raise ToolFailed(f"{cmd[0]} could not be started: {exc}") from exc
        self._ids = 0
        name = os.path.basename(cmd[1] if len(cmd) > 1 else cmd[0])
        threading.Thread(target=self._read_out, name=f"{name}-out", daemon=True).start()
        threading.Thread(target=self._read_err, name=f"{name}-err", daemon=True).start()

    # Readers ------------------------------------------------------------------------------------
    def _read_out(self) -> None:
        out: IO[bytes] = self.proc.stdout  # type: ignore[assignment]
        for raw in out:
            line = raw.decode("utf-8", "replace").strip()
            if not line:
                continue
            try:
                msg = json.loads(line)
            except ValueError:
                self.errors.append(line)  # not ours: keep it for the diagnosis
                continue
            if isinstance(msg, dict):
                self.items.put(("msg", msg))
        self.items.put(("exit", None))

    def _read_err(self) -> None:
        """Lines split on ``\\n`` and ``\\r`` (tqdm redraws with ``\\r``); a bar drawn without its
        line's end yet is handed on at once (as media.proc.stream does)."""
        err = self.proc.stderr
        assert isinstance(err, io.BufferedReader)
        pending, shown = b"", b""

        def take(raw: bytes, *, partial: bool = False) -> None:
            text = raw.decode("utf-8", "replace").rstrip()
            if END_MARK in text:  # at a line's start, or after a bar a failure left unfinished
                text, _, req_id = text.partition(END_MARK)
                take(text.encode())
                self.items.put(("end", req_id.strip()))
                return
            if not text:
                return
            if not partial:
                self.errors.append(text)
            self.items.put(("line", text))

        for chunk in iter(lambda: err.read1(65536), b""):
            pending += chunk
            *lines, pending = pending.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
            for raw in lines:
                if raw.rstrip() != shown:
                    take(raw)
                else:
                    self.errors.append(raw.decode("utf-8", "replace").rstrip())
                shown = b""
            bar = pending.rstrip()
            if bar.endswith(b"]") and b"%|" in bar and bar != shown:
                take(bar, partial=True)
                shown = bar
        take(pending)

    # Life ---------------------------------------------------------------------------------------
    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        self._kill_group()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        self._kill_group()  # what it left in its group (an ffmpeg it ran)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()

    def _kill_group(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def died(self, last: dict[str, Any] | None = None) -> HostDied:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        time.sleep(0.05)  # the stderr reader's last lines
        output = "\n".join(self.errors)
        if last is not None:
            output += f"\n{last.get('traceback') or ''}\n{last.get('type')}: {last.get('message')}"
        code = self.proc.returncode if self.proc.returncode is not None else -1
        return HostDied(f"the {self.tool} host exited (status {code})", code, output)

    # Protocol -----------------------------------------------------------------------------------
    def _next(self, deadline: float, cancelled: IsCancelled, doing: str, recent: deque[str]) -> tuple[str, Any]:
        """The next item; kills the host on cancel or deadline."""
        while True:
            if cancelled():
                self.kill()
                raise Cancelled(f"cancelled while {doing}; the {self.tool} host was stopped")
            if time.monotonic() > deadline:
                self.kill()
                raise ToolTimeout(f"{self.tool} ran past its time limit ({self.limit}) while {doing}; the host "
                                  "was stopped: " + " | ".join(list(recent)[-5:]))
            try:
                return self.items.get(timeout=POLL_S)
            except queue.Empty:
                continue

    def wait_ready(self, deadline: float, cancelled: IsCancelled, doing: str,
                   on_line: Callable[[str], None] | None = None) -> dict[str, Any]:
        recent: deque[str] = deque(maxlen=STDERR_LINES)
        while True:
            kind, item = self._next(deadline, cancelled, doing, recent)
            if kind == "line":
                recent.append(item)
                if on_line is not None:
                    on_line(item)
                continue
            if kind == "end":
                continue
            if kind == "msg" and item.get("event") == "ready":
                self.ready = item
                return item
            self.kill()
            raise self.died(item if kind == "msg" else None)

    def request(self, request: dict[str, Any], deadline: float, cancelled: IsCancelled, doing: str, *,
                on_progress: Callable[[int, int], None] | None = None,
                on_line: Callable[[str], None] | None = None) -> dict[str, Any]:
        """Sends one request; its ``done`` answer, else raises (see the module docstring)."""
        while True:  # lines printed between requests are not this request's
            try:
                kind, _ = self.items.get_nowait()
            except queue.Empty:
                break
            if kind == "exit":
                raise self.died()
        self._ids += 1
        req_id = f"r{self._ids}"
        try:
            stdin: IO[bytes] = self.proc.stdin  # type: ignore[assignment]
            stdin.write((json.dumps({**request, "id": req_id}) + "\n").encode())
            stdin.flush()
        except (BrokenPipeError, OSError):
            raise self.died() from None
        printed: deque[str] = deque(maxlen=STDERR_LINES)
        answer: dict[str, Any] | None = None
        ended, ended_by = False, 0.0  # the end mark (its pipe is not the answer's: either may come first)
        while True:
            if answer is not None and ended:
                break
            if answer is not None:
                try:
                    kind, item = self.items.get(timeout=max(0.0, ended_by - time.monotonic()))
                except queue.Empty:
                    break  # a host that does not mark its ends: what came is all there is
            else:
                kind, item = self._next(deadline, cancelled, doing, printed)
            if kind == "exit":
                if answer is not None:
                    break
                raise self.died()
            if kind == "line":
                printed.append(item)
                if on_line is not None:
                    on_line(item)
            elif kind == "end":
                ended = ended or item == req_id
            elif item.get("id") != req_id:
                continue
            elif item.get("event") == "progress":
                if on_progress is not None:
                    on_progress(int(item.get("n") or 0), int(item.get("total") or 1))
            elif item.get("event") in ("done", "error"):
                answer, ended_by = item, time.monotonic() + END_WAIT_S
        if answer.get("event") == "error":
            raise HostError(answer, list(printed))
        return answer


class Resident:
    """The resident host of one tool in this worker process (shared by the engines over it)."""

    def __init__(self, tool: str, limit: str) -> None:
        self.tool, self.limit = tool, limit
        self.lock = threading.RLock()
        self.host: Host | None = None

    def warm(self) -> bool:
        """A host is up (the next request skips the load)."""
        return self.host is not None and self.host.alive()

    @contextlib.contextmanager
    def turn(self, deadline: float, cancelled: IsCancelled) -> Iterator[None]:
        """This tool's lock, waited for as long as the step's cancel and time limit allow."""
        while not self.lock.acquire(timeout=POLL_S):
            if cancelled():
                raise Cancelled(f"cancelled while waiting for the {self.tool} host (busy with another step)")
            if time.monotonic() > deadline:
                raise ToolTimeout(f"{self.tool} ran past its time limit ({self.limit}) while waiting for its host "
                                  "(busy with another step)")
        try:
            yield
        finally:
            self.lock.release()

    def ensure(self, cmd: list[str], deadline: float, cancelled: IsCancelled, *, cwd: Path | None = None,
               env: dict[str, str] | None = None, on_line: Callable[[str], None] | None = None) -> Host:
        """The running host for this command line: the one up, else a fresh one, once it is ready.
        Call it holding ``turn``."""
        key = (tuple(cmd), str(cwd or ""))
        host = self.host
        if host is not None and (host.key != key or not host.alive()):
            host.kill()
            self.host = host = None
        if host is None:
            host = Host(cmd, key, tool=self.tool, limit=self.limit, cwd=cwd, env=env)
            try:
                host.wait_ready(deadline, cancelled, f"starting the {self.tool} host", on_line)
            except BaseException:
                host.kill()
                raise
            self.host = host
        return host

    def drop(self) -> None:
        """Stop the host (a fresh one next time): after a failure that may have left it unwell."""
        with self.lock:
            if self.host is not None:
                self.host.kill()
                self.host = None

    release = drop
