"""Fencing: one owner per job attempt, so a worker that was paused cannot write over its successor.

A worker frozen past WORKER_RECLAIM_IDLE_MS (SIGSTOP, a long GC, a VM freeze) has its command
taken over by another worker. When it wakes up it still runs the attempt's DAG in its threads.
Each take writes a fresh token under ``{prefix}:owner:{jobId}:{attempt}``; every event the worker
XADDs goes through a script that checks the token in the same Redis call, and a step checks it
before writing its ``_done.json``. A worker whose token was replaced raises ``Fenced`` and drops
the job without a word: no event, no marker, no XACK.

A token that is simply gone means Redis lost its data (a restart without persistence): the owner
writes it again and goes on; if the api re-sends the command meanwhile, the new take wins.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import redis

OWNER_TTL_S = 7 * 86_400

# KEYS: owner key. ARGV: token, ttl. 1 when the caller owns the attempt (again), 0 when not.
_CLAIM = """
local owner = redis.call('GET', KEYS[1])
if owner == false then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
  return 1
end
if owner == ARGV[1] then return 1 end
return 0
"""

# KEYS: owner key, stream. ARGV: token, ttl, maxlen, field, value. The entry id, or nil when fenced.
_FENCED_XADD = """
local owner = redis.call('GET', KEYS[1])
if owner == false then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
elseif owner ~= ARGV[1] then
  return false
end
return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', ARGV[4], ARGV[5])
"""


class Fenced(Exception):
    """Another worker has taken this job attempt over."""


@dataclass
class Fence:
    job_id: str
    attempt: int
    key: str
    token: str
    lost: bool = False

    def fenced(self) -> Fenced:
        self.lost = True
        return Fenced(f"job {self.job_id} attempt {self.attempt} was taken over by another worker")


@dataclass
class Fences:
    """The fences this process holds, by (jobId, attempt)."""

    client: redis.Redis
    _held: dict[tuple[str, int], Fence] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._claim = self.client.register_script(_CLAIM)
        self._xadd = self.client.register_script(_FENCED_XADD)

    def hold(self, fence: Fence) -> bool:
        """False when this process already runs that attempt (a re-sent copy of its command)."""
        with self._lock:
            if (fence.job_id, fence.attempt) in self._held:
                return False
            self._held[(fence.job_id, fence.attempt)] = fence
            return True

    def release(self, fence: Fence) -> None:
        with self._lock:
            if self._held.get((fence.job_id, fence.attempt)) is fence:
                del self._held[(fence.job_id, fence.attempt)]

    def get(self, job_id: str, attempt: int) -> Fence | None:
        return self._held.get((job_id, attempt))

    def check(self, key: str, token: str, fence: Fence | None = None) -> None:
        """Raise Fenced unless ``token`` still owns the attempt (a lost key is written again)."""
        if fence is not None and fence.lost:
            raise fence.fenced()
        if not self._claim(keys=[key], args=[token, OWNER_TTL_S]):
            if fence is not None:
                raise fence.fenced()
            raise Fenced(f"{key} is held by another worker")

    def xadd(self, fence: Fence, stream: str, maxlen: int, field_name: str, value: str) -> Any:
        """XADD, only while ``fence`` owns its attempt (one Redis call: no gap to pause in)."""
        if fence.lost:
            raise fence.fenced()
        entry_id = self._xadd(keys=[fence.key, stream], args=[fence.token, OWNER_TTL_S, maxlen, field_name, value])
        if entry_id is None:
            raise fence.fenced()
        return entry_id
