"""Run external tools so that they can be stopped.

A Python time limit cannot stop ffmpeg: every tool runs in its own process group, and on
timeout or cancel the whole group gets SIGKILL (ffmpeg's own children included).
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO

from .errors import Cancelled, ToolFailed, ToolTimeout

POLL_S = 0.1
STDERR_TAIL = 2000


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


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
    try:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            cwd=cwd,
        )
    except FileNotFoundError as exc:
        raise ToolFailed(f"{cmd[0]} is not installed") from exc
    deadline = time.monotonic() + timeout
    pending_input = input
    try:
        while True:
            wait = min(POLL_S, max(0.0, deadline - time.monotonic()))
            try:
                out, err = proc.communicate(input=pending_input, timeout=wait)
                break
            except subprocess.TimeoutExpired:
                pending_input = None  # communicate() keeps feeding what it started with
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
        try:
            proc = subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=errf,
                start_new_session=True,
            )
        except FileNotFoundError as exc:
            raise ToolFailed(f"{cmd[0]} is not installed") from exc
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
