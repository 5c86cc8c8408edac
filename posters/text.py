"""One line of mixed CJK, Latin and emoji text: split into runs per font, measured, ellipsised, drawn.

Pillow has no font fallback, so each user-perceived character (a cluster: base plus joiners, variation
selectors, skin tones, flag pairs, keycaps) is given to the text font or the emoji font by what their cmaps
hold; a cluster neither can draw is dropped rather than shown as a tofu box."""
from __future__ import annotations

import unicodedata
from functools import lru_cache

from PIL import Image, ImageDraw

from posters import fonts

ELLIPSIS = "…"
ZWJ = 0x200D
_EXTENDERS = {0xFE0E, 0xFE0F, 0x20E3, ZWJ}


def _extends(cp: int) -> bool:
    return (cp in _EXTENDERS or 0x1F3FB <= cp <= 0x1F3FF or 0xE0020 <= cp <= 0xE007F
            or unicodedata.combining(chr(cp)) != 0)


def _regional(cp: int) -> bool:
    return 0x1F1E6 <= cp <= 0x1F1FF


def clusters(text: str) -> list[str]:
    out: list[str] = []
    prev = None
    for ch in text:
        cp = ord(ch)
        joins = out and (_extends(cp) or prev == ZWJ or (
            _regional(cp) and len(out[-1]) == 1 and _regional(ord(out[-1]))))
        if joins:
            out[-1] += ch
        else:
            out.append(ch)
        prev = cp
    return out


def _is_emoji(cluster: str) -> bool:
    cps = [ord(c) for c in cluster]
    emoji_cps = fonts.emoji_codepoints()
    if cps[0] not in emoji_cps:
        return False
    if cps[0] not in fonts.text_codepoints():
        return True
    # Both fonts have it (digits, ©, ❤): the emoji form only when asked for (VS16, keycap, joined sequence).
    return any(c in (0xFE0F, 0x20E3, ZWJ) or 0x1F3FB <= c <= 0x1F3FF for c in cps[1:])


def runs(text: str) -> list[tuple[bool, str]]:
    """[(is_emoji, text), ...] with clusters neither font can draw left out."""
    text_cps = fonts.text_codepoints()
    out: list[tuple[bool, str]] = []
    for cl in clusters(text):
        if cl.isspace():
            cl = " "
        emoji = _is_emoji(cl)
        if not emoji:
            if ord(cl[0]) not in text_cps:
                continue
            cl = "".join(c for c in cl if ord(c) in text_cps)  # a stray VS16 after text is not a glyph here
        if out and out[-1][0] == emoji:
            out[-1] = (emoji, out[-1][1] + cl)
        else:
            out.append((emoji, cl))
    return out


def _scale(size: int) -> float:
    return size / fonts.EMOJI_STRIKE


def _run_width(emoji: bool, text: str, size: int) -> float:
    if emoji:
        return fonts.emoji_font().getlength(text) * _scale(size)
    return fonts.text_font(size).getlength(text)


def width(parts: list[tuple[bool, str]], size: int) -> float:
    return sum(_run_width(e, t, size) for e, t in parts)


def fit(text: str, size: int, max_width: int) -> list[tuple[bool, str]]:
    """The runs of text, cut at a cluster boundary and ended with … when the whole would be wider than max_width."""
    parts = runs(text)
    if width(parts, size) <= max_width:
        return parts
    cl = [(e, c) for e, t in parts for c in clusters(t)]
    lo, hi = 0, len(cl)
    while lo < hi:  # the longest prefix that still fits with the ellipsis
        mid = (lo + hi + 1) // 2
        if width(_merge(cl[:mid]) + [(False, ELLIPSIS)], size) <= max_width:
            lo = mid
        else:
            hi = mid - 1
    head = cl[:lo]
    while head and head[-1][1].isspace():
        head.pop()
    return _merge(head + [(False, ELLIPSIS)])


def _merge(items: list[tuple[bool, str]]) -> list[tuple[bool, str]]:
    out: list[tuple[bool, str]] = []
    for e, t in items:
        if out and out[-1][0] == e:
            out[-1] = (e, out[-1][1] + t)
        else:
            out.append((e, t))
    return out


@lru_cache(maxsize=256)
def _emoji_image(text: str, size: int) -> Image.Image:
    """An emoji run drawn at the font's only strike, scaled to size; its baseline sits at its ascent line."""
    font = fonts.emoji_font()
    ascent, descent = font.getmetrics()
    w = max(1, int(round(font.getlength(text))))
    big = Image.new("RGBA", (w, ascent + descent), (0, 0, 0, 0))
    ImageDraw.Draw(big).text((0, ascent), text, font=font, anchor="ls", embedded_color=True)
    s = _scale(size)
    return big.resize((max(1, round(w * s)), max(1, round((ascent + descent) * s))), Image.LANCZOS)


def draw_line(canvas: Image.Image, x: int, y: int, parts: list[tuple[bool, str]], size: int, color: str,
              align: str, max_width: int, bold: bool = False) -> None:
    """Draw runs on one line whose top is y; x and max_width bound it, align places it within them."""
    font = fonts.text_font(size)
    total = width(parts, size)
    if align == "center":
        x = x + (max_width - total) / 2
    elif align == "right":
        x = x + max_width - total
    baseline = y + font.getmetrics()[0]
    draw = ImageDraw.Draw(canvas)
    stroke = max(1, size // 28) if bold else 0
    cursor = float(x)
    for emoji, text in parts:
        if emoji:
            img = _emoji_image(text, size)
            ascent = round(fonts.emoji_font().getmetrics()[0] * _scale(size))
            canvas.paste(img, (round(cursor), round(baseline - ascent)), img)
        else:
            draw.text((cursor, baseline), text, font=font, fill=color, anchor="ls",
                      stroke_width=stroke, stroke_fill=color)
        cursor += _run_width(emoji, text, size)
