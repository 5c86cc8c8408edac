"""Which BlobStore (and which fonts) this process uses: local disk under the instance folder unless configured
otherwise. Every poster path (API, jobs, demo) gets its store here, so the fonts are configured here too."""
from __future__ import annotations

from functools import lru_cache

from app.config import Settings
from posters import fonts
from posters.store import BlobStore, LocalDiskStore


def background_name(sha256: str) -> str:
    return f"backgrounds/{sha256}"


@lru_cache(maxsize=8)
def _disk(root: str) -> LocalDiskStore:
    return LocalDiskStore(root)


def poster_store(settings: Settings) -> BlobStore:
    """The store at settings.posters.store_dir (POSTER_STORE_DIR).

    An object store would be returned here instead; everything else only sees the BlobStore interface."""
    fonts.configure(text=settings.posters.font_text, emoji=settings.posters.font_emoji)
    return _disk(str(settings.posters.store_dir))
