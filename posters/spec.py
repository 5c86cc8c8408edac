"""A poster template as data: canvas, background, output format and placed elements.

`parse_spec` turns the operator's JSON into frozen dataclasses, refusing anything the renderer could not draw
(element off the canvas, unknown font, unknown placeholder), so a saved template always renders."""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

FORMATS = ("jpeg", "png", "webp")
FONTS = ("sans",)
PLACEHOLDERS = ("nickname", "store_name", "partner_grade")
MAX_CANVAS = 2000
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_PLACEHOLDER = re.compile(r"\{(\w*)\}")


class SpecError(ValueError):
    """The template spec cannot be rendered; `errors` maps a field path to what is wrong with it."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class Avatar:
    x: int
    y: int
    size: int
    shape: str = "circle"  # circle | rounded
    corner_radius: int = 0
    border_width: int = 0
    border_color: str = "#ffffff"
    type: str = "avatar"


@dataclass(frozen=True)
class Text:
    """Nickname (type "nickname") or free text with {placeholders} (type "text"), one line, ellipsised."""

    x: int
    y: int
    max_width: int
    size: int
    type: str = "text"
    text: str = ""
    font: str = "sans"
    color: str = "#222222"
    align: str = "left"  # left | center | right, within [x, x + max_width]
    bold: bool = False


@dataclass(frozen=True)
class QRBox:
    x: int
    y: int
    size: int
    margin: int = 2  # quiet zone, in modules; scanners need at least 1 against a busy background
    color: str = "#000000"
    background: str = "#ffffff"
    type: str = "qr"


Element = Avatar | Text | QRBox


@dataclass(frozen=True)
class TemplateSpec:
    width: int
    height: int
    background_sha256: str | None
    background_color: str = "#ffffff"
    format: str = "jpeg"
    quality: int = 85
    elements: tuple[Element, ...] = ()
    defaults: dict[str, str] = field(default_factory=dict)  # placeholder values when the caller has none

    def to_dict(self) -> dict[str, Any]:
        return {
            "canvas": {"width": self.width, "height": self.height},
            "background": {"sha256": self.background_sha256, "color": self.background_color},
            "output": {"format": self.format, "quality": self.quality},
            "elements": [asdict(e) for e in self.elements],
            "defaults": dict(sorted(self.defaults.items())),
        }

    @property
    def fingerprint(self) -> str:
        """Identity of what the template draws: equal specs render equal posters."""
        blob = json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()


class _Reader:
    def __init__(self):
        self.errors: dict[str, str] = {}

    def get(self, obj: Any, key: str, path: str, kind: type, default: Any = ..., lo=None, hi=None, choices=None):
        where = f"{path}.{key}" if path else key
        if not isinstance(obj, dict) or key not in obj or obj[key] is None:
            if default is ...:
                self.errors[where] = "required"
            return None if default is ... else default
        value = obj[key]
        if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            self.errors[where] = "must be an integer"
            return None
        if kind is not int and not isinstance(value, kind):
            self.errors[where] = f"must be a {kind.__name__}"
            return None
        if lo is not None and value < lo or hi is not None and value > hi:
            self.errors[where] = f"must be between {lo} and {hi}"
            return None
        if choices is not None and value not in choices:
            self.errors[where] = f"must be one of {', '.join(choices)}"
            return None
        if kind is str and where.endswith(("color", "background")) and not _COLOR.match(value):
            self.errors[where] = "must be a colour like #1a2b3c"
            return None
        return value


def parse_spec(data: Any) -> TemplateSpec:
    r = _Reader()
    if not isinstance(data, dict):
        raise SpecError({"spec": "must be an object"})
    canvas = data.get("canvas")
    width = r.get(canvas, "width", "canvas", int, lo=100, hi=MAX_CANVAS)
    height = r.get(canvas, "height", "canvas", int, lo=100, hi=MAX_CANVAS)
    bg = data.get("background") or {}
    sha = r.get(bg, "sha256", "background", str, default=None)
    if sha is not None and not _SHA256.match(sha):
        r.errors["background.sha256"] = "must be the sha256 of an uploaded background"
    bg_color = r.get(bg, "color", "background", str, default="#ffffff")
    out = data.get("output") or {}
    fmt = r.get(out, "format", "output", str, default="jpeg", choices=FORMATS)
    quality = r.get(out, "quality", "output", int, default=85, lo=40, hi=95)
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict) or \
            not all(isinstance(k, str) and isinstance(v, str) for k, v in defaults.items()):
        r.errors["defaults"] = "must map placeholder names to strings"
        defaults = {}
    for k in defaults:
        if k not in PLACEHOLDERS:
            r.errors[f"defaults.{k}"] = f"unknown placeholder; known: {', '.join(PLACEHOLDERS)}"

    elements: list[Element] = []
    raw_elements = data.get("elements")
    if not isinstance(raw_elements, list) or not raw_elements:
        r.errors["elements"] = "must be a non-empty list"
        raw_elements = []
    if len(raw_elements) > 20:
        r.errors["elements"] = "at most 20 elements"
        raw_elements = []
    for i, el in enumerate(raw_elements):
        path = f"elements[{i}]"
        kind = r.get(el, "type", path, str, choices=("avatar", "nickname", "text", "qr"))
        if kind is None:
            continue
        x = r.get(el, "x", path, int, lo=0, hi=MAX_CANVAS)
        y = r.get(el, "y", path, int, lo=0, hi=MAX_CANVAS)
        if kind == "avatar":
            size = r.get(el, "size", path, int, lo=16, hi=1000)
            shape = r.get(el, "shape", path, str, default="circle", choices=("circle", "rounded"))
            radius = r.get(el, "corner_radius", path, int, default=(size or 0) // 5, lo=0, hi=500)
            bw = r.get(el, "border_width", path, int, default=0, lo=0, hi=40)
            bc = r.get(el, "border_color", path, str, default="#ffffff")
            item: Element | None = Avatar(x, y, size, shape, radius, bw, bc) if None not in (x, y, size) else None
            w = h = size
        elif kind == "qr":
            size = r.get(el, "size", path, int, lo=80, hi=1000)
            margin = r.get(el, "margin", path, int, default=2, lo=0, hi=8)
            fg = r.get(el, "color", path, str, default="#000000")
            bgc = r.get(el, "background", path, str, default="#ffffff")
            item = QRBox(x, y, size, margin, fg, bgc) if None not in (x, y, size) else None
            w = h = size
        else:
            size = r.get(el, "size", path, int, lo=8, hi=200)
            max_width = r.get(el, "max_width", path, int, lo=20, hi=MAX_CANVAS)
            text = r.get(el, "text", path, str, default="" if kind == "nickname" else ...)
            if kind == "text" and text is not None:
                if not text.strip() or len(text) > 200:
                    r.errors[f"{path}.text"] = "must be 1 to 200 characters"
                for name in _PLACEHOLDER.findall(text):
                    if name not in PLACEHOLDERS:
                        r.errors[f"{path}.text"] = f"unknown placeholder {{{name}}}; known: {', '.join(PLACEHOLDERS)}"
            font = r.get(el, "font", path, str, default="sans", choices=FONTS)
            color = r.get(el, "color", path, str, default="#222222")
            align = r.get(el, "align", path, str, default="left", choices=("left", "center", "right"))
            bold = r.get(el, "bold", path, bool, default=False)
            ok = None not in (x, y, size, max_width, text, font, color, align, bold)
            item = Text(x, y, max_width, size, kind, text or "", font, color, align, bold) if ok else None
            w, h = max_width, int((size or 0) * 1.5)
        if item is None:
            continue
        if width and height and (x + w > width or y + h > height):
            r.errors[path] = f"does not fit on the {width}x{height} canvas"
            continue
        elements.append(item)
    if sum(isinstance(e, QRBox) for e in elements) > 1:
        r.errors["elements"] = "at most one QR code box"
    if r.errors:
        raise SpecError(r.errors)
    return TemplateSpec(width, height, sha, bg_color, fmt, quality, tuple(elements), dict(defaults))


def fill_placeholders(text: str, values: dict[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), ""), text)
