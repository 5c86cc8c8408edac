"""Where rendered posters and uploaded backgrounds live: a small interface over named immutable blobs.

Names are content addresses (`posters/<key>.jpg`, `backgrounds/<sha256>`), so a put never changes what a
name means and a cache in front of the store never goes stale. An object store implements the same three
methods."""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Protocol

_NAME = re.compile(r"^[a-z]+/[0-9a-f]{16,64}(\.[a-z]{3,4})?$")


class BlobStore(Protocol):
    def get(self, name: str) -> bytes | None: ...

    def put(self, name: str, data: bytes) -> None: ...

    def exists(self, name: str) -> bool: ...


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"not a blob name: {name!r}")
    return name


class LocalDiskStore:
    """Files under root, fanned out by the first two hex digits; writes are atomic (temp file + rename)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def _path(self, name: str) -> Path:
        folder, _, base = check_name(name).partition("/")
        return self.root / folder / base[:2] / base

    def get(self, name: str) -> bytes | None:
        try:
            return self._path(name).read_bytes()
        except FileNotFoundError:
            return None

    def exists(self, name: str) -> bool:
        return self._path(name).exists()

    def put(self, name: str, data: bytes) -> None:
        path = self._path(name)
        if path.exists():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


class MemoryStore:
    """For tests and the benchmark."""

    def __init__(self):
        self.blobs: dict[str, bytes] = {}

    def get(self, name: str) -> bytes | None:
        return self.blobs.get(check_name(name))

    def exists(self, name: str) -> bool:
        return check_name(name) in self.blobs

    def put(self, name: str, data: bytes) -> None:
        self.blobs.setdefault(check_name(name), data)
