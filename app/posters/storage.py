"""Which BlobStore this process uses: local disk under the instance folder unless configured otherwise."""
from __future__ import annotations

import os
from functools import lru_cache

from app.config import INSTANCE_DIR, Settings
from posters.store import BlobStore, LocalDiskStore


def background_name(sha256: str) -> str:
    return f"backgrounds/{sha256}"


@lru_cache(maxsize=8)
def _disk(root: str) -> LocalDiskStore:
    return LocalDiskStore(root)


def poster_store(settings: Settings) -> BlobStore:
    """settings.extra["poster_store_dir"], else POSTER_STORE_DIR, else <instance>/posters.

    An object store would be returned here instead; everything else only sees the BlobStore interface."""
    root = settings.extra.get("poster_store_dir") or os.environ.get("POSTER_STORE_DIR") or INSTANCE_DIR / "posters"
    return _disk(str(root))
