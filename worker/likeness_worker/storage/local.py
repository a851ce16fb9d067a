"""Local folder storage: object ``key`` lives at ``STORAGE_DIR/key``.

Every write goes to a temp file in the same folder, is fsynced, then renamed over the target:
rename is atomic on one filesystem, so readers (the api, another worker) never see half a file.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .base import ObjectMissing, Storage, check_key


class LocalStorage(Storage):
    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _atomic_write(self, key: str, write) -> int:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return target.stat().st_size

    def put_file(self, key: str, path: Path, content_type: str = "application/octet-stream") -> int:
        with open(path, "rb") as src:
            return self._atomic_write(key, lambda f: shutil.copyfileobj(src, f, 1 << 20))

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> int:
        return self._atomic_write(key, lambda f: f.write(data))

    def get_file(self, key: str, path: Path) -> Path:
        src = self._path(key)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copyfile(src, path)
        except FileNotFoundError:
            raise ObjectMissing(key) from None
        return path

    def get_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise ObjectMissing(key) from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def list(self, prefix: str) -> Iterator[str]:
        keys = []
        for dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                if name.startswith(".tmp-"):
                    continue  # a write in progress is not an object yet
                key = os.path.relpath(os.path.join(dirpath, name), self.root).replace(os.sep, "/")
                if key.startswith(prefix):
                    keys.append(key)
        return iter(sorted(keys))
