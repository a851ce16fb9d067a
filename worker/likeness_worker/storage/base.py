"""One object-storage interface for the worker; keys are made by the server, never by users."""

from __future__ import annotations

import json
import re
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# Same shape as StorageKey in packages/contracts, plus worker-private markers whose last
# segments may start with "_" (`_done.json`, `_attempts/1.json`): never a user's name.
_KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_\-]*(/[a-z0-9_][a-z0-9_.\-]*)*$")


class ObjectMissing(FileNotFoundError):
    """No object at this key."""


def check_key(key: str) -> str:
    if not _KEY_RE.match(key) or ".." in key or len(key) > 1024:
        raise ValueError(f"invalid storage key {key!r}")
    return key


class Storage(ABC):
    """Objects by key. Writes are all-or-nothing: a reader never sees half an object."""

    @abstractmethod
    def get_file(self, key: str, path: Path) -> Path:
        """Download ``key`` to ``path`` (parents created). ObjectMissing if absent."""

    @abstractmethod
    def put_file(self, key: str, path: Path, content_type: str = "application/octet-stream") -> int:
        """Upload the file; returns its size in bytes."""

    @abstractmethod
    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> int: ...

    @abstractmethod
    def get_bytes(self, key: str) -> bytes: ...

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove ``key``; no error when it is already gone."""

    @abstractmethod
    def list(self, prefix: str) -> Iterator[str]:
        """Every key that starts with ``prefix``, sorted."""

    def copy(self, src: str, dst: str, content_type: str = "application/octet-stream") -> int:
        """``src``'s content at ``dst`` too (through a scratch file); returns its size."""
        with tempfile.TemporaryDirectory(prefix="likeness-copy-") as tmp:
            path = self.get_file(src, Path(tmp) / "object")
            return self.put_file(dst, path, content_type)

    # Small JSON documents (step markers) are common enough to deserve helpers.
    def put_json(self, key: str, doc: Any) -> int:
        return self.put_bytes(key, json.dumps(doc, separators=(",", ":")).encode(), "application/json")

    def get_json(self, key: str) -> Any:
        return json.loads(self.get_bytes(key))

    def get_json_or_none(self, key: str) -> Any | None:
        try:
            return self.get_json(key)
        except ObjectMissing:
            return None
