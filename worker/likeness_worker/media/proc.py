"""Run external tools so that they can be stopped.

A Python time limit cannot stop ffmpeg: every tool runs in its own process group, and on
timeout or cancel the whole group gets SIGKILL (ffmpeg's own children included). On Linux a tool
also gets SIGKILL when the worker dies (``PR_SET_PDEATHSIG``), so a SIGKILLed worker leaves no
orphaned ffmpeg or espeak-ng behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import io
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO

from .errors import Cancelled, ToolFailed, ToolTimeout

POLL_S = 0.1
STDERR_TAIL = 2000
_PR_SET_PDEATHSIG = 1


def _pdeathsig_preexec() -> Callable[[], None] | None:
    """A preexec_fn asking the kernel to SIGKILL the child when its parent dies (Linux only).

    The kernel sends the signal when the *thread* that forked the child ends; the callers here
    block in that thread until the tool is done, so that is the worker's death. The libc function
    is looked up once, here: between fork and exec the child only makes this one C call.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)

    return preexec


_PREEXEC = _pdeathsig_preexec()


def _spawn(cmd: list[str], **kwargs) -> subprocess.Popen:
    """Popen in a new process group (the unit a timeout or cancel kills) that dies with us."""
    parent = os.getpid()
    preexec = None
    if _PREEXEC is not None:

        def preexec() -> None:
            _PREEXEC()
            if os.getppid() != parent:  # the parent died before prctl: the signal was missed
                os._exit(137)

    try:
        return subprocess.Popen(cmd, start_new_session=True, preexec_fn=preexec, **kwargs)
    except FileNotFoundError as exc:
        raise ToolFailed(f"{cmd[0]} is not installed") from exc


def _kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _tail(data: bytes | str | None) -> str:
    if not data:
        return ""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    return text.strip()[-STDERR_TAIL:]


def run(
    cmd: list[str],
    timeout: float,
    cancelled: Callable[[], bool] | None = None,
    *,
    input: bytes | None = None,
    cwd: str | os.PathLike | None = None,
) -> subprocess.CompletedProcess:
    """Run ``cmd``, capturing stdout and stderr as bytes.

    Kills the process group and raises ``ToolTimeout`` after ``timeout`` seconds, or
    ``Cancelled`` as soon as ``cancelled()`` returns true (checked every 0.1 s). A non-zero
    exit raises ``ToolFailed`` with the tail of stderr.
    """
    if cancelled is not None and cancelled():
        raise Cancelled(f"cancelled before {cmd[0]} started")
    proc = _spawn(
        cmd,
        stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
    )
    deadline = time.monotonic() + timeout
    if input is not None:
        # A thread feeds stdin: communicate() called again after a timeout stops writing what it
        # had not written yet (CPython registers stdin only when given input, and refuses input
        # on a second call), so a large input would leave the tool waiting for the rest forever.
        import threading

        stdin, proc.stdin = proc.stdin, None

        def feed() -> None:
            assert stdin is not None
            with contextlib.suppress(BrokenPipeError, OSError):
                stdin.write(input)
            with contextlib.suppress(BrokenPipeError, OSError):
                stdin.close()

        threading.Thread(target=feed, name=f"stdin-{os.path.basename(cmd[0])}", daemon=True).start()
    try:
        while True:
            wait = min(POLL_S, max(0.0, deadline - time.monotonic()))
            try:
                out, err = proc.communicate(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                if cancelled is not None and cancelled():
                    _kill_group(proc)
                    proc.communicate()
                    raise Cancelled(f"cancelled while {cmd[0]} was running") from None
                if time.monotonic() >= deadline:
                    _kill_group(proc)
                    _, err = proc.communicate()
                    raise ToolTimeout(
                        f"{cmd[0]} ran past its time limit of {timeout:g} s and was stopped"
                        + (f": {_tail(err)}" if err else "")
                    ) from None
    except BaseException:
        if proc.poll() is None:
            _kill_group(proc)
            proc.wait()
        raise
    if proc.returncode != 0:
        raise ToolFailed(f"{cmd[0]} failed (exit {proc.returncode}): {_tail(err)}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


class Pipe:
    """A tool fed on stdin (raw video frames to ffmpeg), killable like ``run``."""

    def __init__(self, proc: subprocess.Popen, cmd: list[str], deadline: float,
                 cancelled: Callable[[], bool] | None, errf: IO[bytes]):
        self.proc = proc
        self.errf = errf
        self.cmd = cmd
        self.deadline = deadline
        self.cancelled = cancelled

    def check(self) -> None:
        if self.cancelled is not None and self.cancelled():
            raise Cancelled(f"cancelled while {self.cmd[0]} was running")
        if time.monotonic() >= self.deadline:
            raise ToolTimeout(f"{self.cmd[0]} ran past its time limit and was stopped")

    def write(self, data: bytes) -> None:
        self.check()
        stdin: IO[bytes] = self.proc.stdin  # type: ignore[assignment]
        try:
            stdin.write(data)
        except BrokenPipeError:
            self.proc.wait()
            self.errf.seek(0)
            err = self.errf.read()
            raise ToolFailed(f"{self.cmd[0]} stopped reading its input: {_tail(err)}") from None


@contextmanager
def pipe(
    cmd: list[str],
    timeout: float,
    cancelled: Callable[[], bool] | None = None,
) -> Iterator[Pipe]:
    """Start ``cmd`` with a writable stdin; on leaving, close stdin and wait for it.

    Any exception inside the block (including ``Cancelled``) kills the process group.
    """
    if cancelled is not None and cancelled():
        raise Cancelled(f"cancelled before {cmd[0]} started")
    # stderr goes to a temporary file: a pipe nobody reads could fill up and stall ffmpeg.
    with tempfile.TemporaryFile() as errf:
        proc = _spawn(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=errf)
        deadline = time.monotonic() + timeout
        p = Pipe(proc, cmd, deadline, cancelled, errf)
        try:
            yield p
            proc.stdin.close()  # type: ignore[union-attr]
            remaining = max(0.1, deadline - time.monotonic())
            while True:
                try:
                    proc.wait(timeout=min(POLL_S, remaining))
                    break
                except subprocess.TimeoutExpired:
                    p.check()
        except BaseException:
            _kill_group(proc)
            proc.wait()
            raise
        if proc.returncode != 0:
            errf.seek(0)
            raise ToolFailed(f"{cmd[0]} failed (exit {proc.returncode}): {_tail(errf.read())}")


@contextmanager
def reader(
    cmd: list[str],
    timeout: float,
    cancelled: Callable[[], bool] | None = None,
) -> Iterator[Pipe]:
    """Start ``cmd`` with a readable stdout (ffmpeg decoding raw frames); ``read_exactly`` gives
    fixed-size chunks. Leaving the block early, or any exception, kills the process group."""
    if cancelled is not None and cancelled():
        raise Cancelled(f"cancelled before {cmd[0]} started")
    with tempfile.TemporaryFile() as errf:
        proc = _spawn(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errf)
        p = Pipe(proc, cmd, time.monotonic() + timeout, cancelled, errf)
        try:
            yield p
        finally:
            if proc.poll() is None:
                _kill_group(proc)
            proc.wait()
            proc.stdout.close()  # type: ignore[union-attr]


def read_exactly(p: Pipe, size: int) -> bytes | None:
    """The next ``size`` bytes of the tool's stdout, or None at its end."""
    p.check()
    data = p.proc.stdout.read(size)  # type: ignore[union-attr]
    if not data:
        if p.proc.wait() != 0:
            p.errf.seek(0)
            raise ToolFailed(f"{p.cmd[0]} failed (exit {p.proc.returncode}): {_tail(p.errf.read())}")
        return None
    if len(data) < size:
        raise ToolFailed(f"{p.cmd[0]} ended in the middle of a frame")
    return data


class ToolExited(ToolFailed):
    """A tool run by ``stream`` exited non-zero; ``output`` is the tail of what it printed
    (stdout and stderr together), for the engine to say why (out of memory, weights missing…)."""

    def __init__(self, message: str, returncode: int, output: str) -> None:
        super().__init__(message)
        self.returncode = returncode
        self.output = output


STREAM_TAIL_LINES = 200


def stream(
    cmd: list[str],
    timeout: float,
    cancelled: Callable[[], bool] | None = None,
    *,
    on_line: Callable[[str], None] | None = None,
    cwd: str | os.PathLike | None = None,
    env: dict[str, str] | None = None,
) -> list[str]:
    """Run a long tool (a GPU model's script) and hand each line it prints to ``on_line``.

    stdout and stderr are read together, split on ``\\n`` and ``\\r`` (tqdm redraws its bar with
    ``\\r``), so a progress bar arrives as it moves. Killed like ``run`` on timeout (``ToolTimeout``)
    or cancel (``Cancelled``); a non-zero exit raises ``ToolExited`` with the output's tail. Returns
    the last ``STREAM_TAIL_LINES`` lines.
    """
    import threading
    from collections import deque

    if cancelled is not None and cancelled():
        raise Cancelled(f"cancelled before {cmd[0]} started")
    proc = _spawn(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=cwd, env=env)
    tail: deque[str] = deque(maxlen=STREAM_TAIL_LINES)
    callback_error: list[BaseException] = []

    def pump() -> None:
        out = proc.stdout
        assert isinstance(out, io.BufferedReader)  # read1: what is there, without waiting for a full block
        pending = b""

        shown = [b""]  # a tqdm bar handed on before its line ended (below)

        def hand_on(raw: bytes) -> None:
            if on_line is not None and not callback_error:
                try:
                    on_line(raw.decode("utf-8", "replace").rstrip())
                except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                    callback_error.append(exc)

        def take(raw: bytes) -> None:
            raw = raw.rstrip()
            if not raw:
                return
            tail.append(raw.decode("utf-8", "replace"))
            if raw != shown[0]:
                hand_on(raw)
            shown[0] = b""

        for chunk in iter(lambda: out.read1(65536), b""):
            pending += chunk
            *lines, pending = pending.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
            for raw in lines:
                take(raw)
            # tqdm ends a redraw with no newline (the next one starts with \r): a whole bar waiting
            # for a slow step is handed on now, not one step late.
            bar = pending.rstrip()
            if bar.endswith(b"]") and b"%|" in bar and bar != shown[0]:
                hand_on(bar)
                shown[0] = bar
        take(pending)  # a last line with no newline (tqdm's final redraw)

    reading = threading.Thread(target=pump, name=f"stream-{os.path.basename(cmd[0])}", daemon=True)
    reading.start()
    deadline = time.monotonic() + timeout
    name = os.path.basename(cmd[0]) if len(cmd) < 2 else f"{os.path.basename(cmd[0])} {os.path.basename(cmd[1])}"
    try:
        while True:
            try:
                proc.wait(timeout=POLL_S)
                break
            except subprocess.TimeoutExpired:
                if callback_error:
                    raise callback_error[0] from None
                if cancelled is not None and cancelled():
                    raise Cancelled(f"cancelled while {name} was running") from None
                if time.monotonic() >= deadline:
                    raise ToolTimeout(f"{name} ran past its time limit of {timeout:g} s and was stopped: "
                                      + " | ".join(list(tail)[-5:])) from None
    except BaseException:
        _kill_group(proc)
        proc.wait()
        reading.join(timeout=5)
        raise
    finally:
        if proc.poll() is not None:
            reading.join(timeout=5)
    _kill_group(proc)  # whatever the tool left running in its group (a dataloader worker)
    if callback_error:
        raise callback_error[0]
    lines = list(tail)
    if proc.returncode != 0:
        raise ToolExited(f"{name} failed (exit {proc.returncode}): " + "\n".join(lines[-20:])[-STDERR_TAIL:],
                         proc.returncode, "\n".join(lines))
    return lines
