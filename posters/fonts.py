"""Where the poster fonts come from, and which characters each one can draw.

Text: Noto Sans CJK (OFL), installed by requirements.txt through the `cvttf-notosanscjk-regular` wheel, so a
plain `pip install -r requirements.txt` gives every machine the same CJK glyphs.
Emoji: Noto Color Emoji from Debian's `fonts-noto-color-emoji` (a CBDT bitmap font: FreeType only loads it at
its one strike, 109 px, so emoji are drawn there and scaled). Without it emoji are left out, never drawn as
tofu boxes. `configure(text=..., emoji=...)` overrides either path (the app passes its settings' POSTER_FONT_TEXT /
POSTER_FONT_EMOJI)."""
from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path

import cvttf_NotoSansCJK_Regular
from PIL import ImageFont

EMOJI_STRIKE = 109

_EMOJI_CANDIDATES = (
    "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf",
    "/usr/share/fonts/noto/NotoColorEmoji.ttf",
)
_TEXT_FALLBACKS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
)


class FontMissing(RuntimeError):
    pass


_overrides: dict[str, str | None] = {}


def configure(*, text: str | None = None, emoji: str | None = None) -> None:
    """Use these font files instead of the defaults (emoji "" turns colour emoji off; None keeps the default)."""
    wanted = {"text": text, "emoji": emoji}
    if wanted != _overrides:
        _overrides.clear()
        _overrides.update(wanted)
        for cached in (text_font_path, emoji_font_path, text_codepoints, emoji_codepoints):
            cached.cache_clear()
        _local.__dict__.clear()


@lru_cache(maxsize=1)
def text_font_path() -> str:
    if _overrides.get("text"):
        return _overrides["text"]
    path = Path(cvttf_NotoSansCJK_Regular.__file__).parent / "NotoSansCJKtc-Regular.otf"
    if path.exists():
        return str(path)
    for candidate in _TEXT_FALLBACKS:
        if Path(candidate).exists():
            return candidate
    raise FontMissing("No CJK font: run `pip install -r requirements.txt` (cvttf-notosanscjk-regular).")


@lru_cache(maxsize=1)
def emoji_font_path() -> str | None:
    override = _overrides.get("emoji")
    if override is not None:
        return override or None  # an empty value turns colour emoji off
    return next((c for c in _EMOJI_CANDIDATES if Path(c).exists()), None)


# FreeType faces are not safe to share between threads, so each thread (gunicorn/Flask worker thread, RQ
# worker) keeps its own; loading one costs about a millisecond.
_local = threading.local()


def text_font(size: int) -> ImageFont.FreeTypeFont:
    cache = _local.__dict__.setdefault("text", {})
    font = cache.get(size)
    if font is None:
        font = cache[size] = ImageFont.truetype(text_font_path(), size)
    return font


def emoji_font() -> ImageFont.FreeTypeFont | None:
    if "emoji" not in _local.__dict__:
        path = emoji_font_path()
        _local.emoji = ImageFont.truetype(path, EMOJI_STRIKE) if path else None
    return _local.emoji


def _codepoints(path: str | None) -> frozenset[int]:
    if not path:
        return frozenset()
    from fontTools.ttLib import TTFont

    with TTFont(path, lazy=True, fontNumber=0) as font:
        return frozenset(font["cmap"].getBestCmap())


@lru_cache(maxsize=1)
def text_codepoints() -> frozenset[int]:
    return _codepoints(text_font_path())


@lru_cache(maxsize=1)
def emoji_codepoints() -> frozenset[int]:
    return _codepoints(emoji_font_path())
