"""WORKER_GPUS: one child process per GPU, each consuming its card's queue alone.

The worker process (the bridge, the job DAGs, its own queues) starts, for each listed index i,
``python -m likeness_worker.main --gpu-child i --parent-pid <its pid>`` with, in its environment:
``CUDA_VISIBLE_DEVICES=i`` (every tool it runs sees that one card, as device 0),
``CUDA_DEVICE_ORDER=PCI_BUS_ID`` unless set (so i is nvidia-smi's index), ``WORKER_QUEUES=gpu<i>``,
no ``WORKER_GPUS``, and ``WORKER_METRICS_PORT`` + 1 + i (0 stays 0). A child runs Dramatiq actors
on its queue and advertises itself; it never takes jobs (no bridge) and never opens Postgres.

The parent's main thread supervises them: a child that exits is started again, after 0.5 s
doubling to 30 s while it keeps dying within a minute of its start. On SIGTERM or SIGINT the
parent sends SIGTERM to every child at once; they stop as the parent does (running steps get
WORKER_SHUTDOWN_GRACE_S), and a child still there at the end of that grace is killed. A child
asks Linux for SIGTERM when its parent dies (PR_SET_PDEATHSIG) and also watches its parent's pid,
so a parent killed with SIGKILL leaves no child behind. Children ignore SIGINT: a Ctrl-C in a
terminal reaches the whole process group, and the parent stops them itself.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from .config import Settings

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
RESTART_MIN_S = 0.5
RESTART_MAX_S = 30.0
STABLE_AFTER_S = 60.0  # a child that ran this long starts again at once when it dies


def child_env(settings: Settings, index: int, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of GPU ``index``'s child: the parent's, narrowed to that card and queue."""
    env = dict(os.environ if base is None else base)
    env.pop("WORKER_GPUS", None)
    env["WORKER_QUEUES"] = f"gpu{index}"
    env["CUDA_VISIBLE_DEVICES"] = str(index)
    env.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    port = settings.worker_metrics_port
    env["WORKER_METRICS_PORT"] = str(port + 1 + index) if port else "0"
    return env


def child_command(index: int) -> list[str]:
    return [sys.executable, "-m", "likeness_worker.main", "--gpu-child", str(index), "--parent-pid", str(os.getpid())]


@dataclass
class GpuChild:
    index: int
    proc: subprocess.Popen | None = None
    started_at: float = 0.0
    failures: int = 0  # deaths in a row, each within STABLE_AFTER_S of its start
    restart_at: float | None = None
    pids: list[int] = field(default_factory=list)  # every pid it had, for the log and the tests

    @property
    def queue(self) -> str:
        return f"gpu{self.index}"


class GpuChildren:
    """The GPU child processes of one worker; ``supervise`` runs in the main thread (see below)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.children = [GpuChild(i) for i in settings.worker_gpus]
        self.stopping = False

    def start(self) -> None:
        for child in self.children:
            self._spawn(child)

    def _spawn(self, child: GpuChild) -> None:
        # From the main thread only: PR_SET_PDEATHSIG fires when the *thread* that forked the
        # child ends, and the main thread lives as long as the process.
        child.proc = subprocess.Popen(child_command(child.index), env=child_env(self.settings, child.index))
        child.started_at = time.monotonic()
        child.restart_at = None
        child.pids.append(child.proc.pid)
        log.info("GPU %d: child %d consumes %s (CUDA_VISIBLE_DEVICES=%d)", child.index, child.proc.pid,
                 child.queue, child.index)

    def supervise(self) -> None:
        """Starts again the children that exited (after their back-off). Call it from the main
        thread, often (the worker's main loop does, every half second)."""
        if self.stopping:
            return
        now = time.monotonic()
        for child in self.children:
            if child.proc is not None and child.proc.poll() is not None:
                lived = now - child.started_at
                child.failures = 0 if lived >= STABLE_AFTER_S else child.failures + 1
                delay = 0.0 if child.failures == 0 else min(RESTART_MAX_S, RESTART_MIN_S * 2 ** (child.failures - 1))
                log.warning("GPU %d: child %d exited with %s after %.1f s; starting it again in %.1f s",
                            child.index, child.proc.pid, child.proc.returncode, lived, delay)
                child.proc = None
                child.restart_at = now + delay
            if child.proc is None and child.restart_at is not None and now >= child.restart_at:
                try:
                    self._spawn(child)
                except OSError as exc:  # e.g. out of processes: try again later
                    child.failures += 1
                    child.restart_at = now + RESTART_MAX_S
                    log.error("GPU %d: cannot start its child: %s", child.index, exc)

    def terminate(self) -> None:
        """SIGTERM to every child (each stops within WORKER_SHUTDOWN_GRACE_S); no more restarts."""
        self.stopping = True
        for child in self.children:
            if child.proc is not None and child.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    child.proc.send_signal(signal.SIGTERM)

    def wait(self, deadline: float) -> None:
        """Waits for the children until ``deadline`` (time.monotonic()), then kills those left."""
        self.terminate()
        for child in self.children:
            if child.proc is None:
                continue
            try:
                child.proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("GPU %d: child %d still running after the grace period; killing it", child.index,
                            child.proc.pid)
                with contextlib.suppress(ProcessLookupError):
                    child.proc.kill()
                child.proc.wait()


def die_with_parent(parent_pid: int) -> bool:
    """In a child: SIGTERM when the parent dies (Linux; elsewhere the child's loop watches the
    parent's pid). False when the parent is already gone."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            log.warning("prctl(PR_SET_PDEATHSIG) failed: errno %d", ctypes.get_errno())
    except (OSError, AttributeError):  # not Linux
        log.debug("no prctl here; watching the parent's pid instead")
    # Asked after prctl: a parent that died before it is seen here.
    return os.getppid() == parent_pid
