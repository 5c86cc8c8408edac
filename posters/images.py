"""Decoding untrusted images safely: operator backgrounds, WeChat avatars, mini-program codes.

Pillow decodes lazily, so the pixel count is checked from the header before any pixel is decoded; a file
claiming more pixels than the limit (a decompression bomb) is refused without allocating its canvas."""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from functools import lru_cache

from PIL import Image, ImageDraw, ImageOps

ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP")
BACKGROUND_MAX_BYTES = 10 << 20
BACKGROUND_MAX_PIXELS = 4096 * 4096
AVATAR_MAX_BYTES = 1 << 20
AVATAR_MAX_PIXELS = 2048 * 2048
# A member's own avatar, uploaded from the mini-program's avatar fill-in (chooseAvatar, then uploadFile).
AVATAR_UPLOAD_MAX_BYTES = 2 << 20
AVATAR_UPLOAD_MAX_PIXELS = 4096 * 4096
AVATAR_UPLOAD_MIN_SIDE = 64
AVATAR_STORED_SIDE = 640  # stored square, at most this many pixels a side


class ImageRejected(ValueError):
    """Not an image we accept; `code` is stable for the API, the message says what to do."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class ImageInfo:
    format: str
    width: int
    height: int


def _open(data: bytes, max_bytes: int, max_pixels: int) -> Image.Image:
    if not data:
        raise ImageRejected("image_empty", "The file is empty.")
    if len(data) > max_bytes:
        raise ImageRejected("image_too_large", f"The file is larger than {max_bytes // (1 << 20)} MB.")
    try:
        with warnings.catch_warnings():
            # Pillow only warns between MAX_IMAGE_PIXELS and twice that; treat the warning as the refusal it is.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRejected("image_too_many_pixels", "The image has too many pixels.") from None
    except Exception:
        raise ImageRejected("image_unreadable", "This is not a JPEG, PNG or WebP image.") from None
    w, h = img.size
    if w * h > max_pixels or w < 1 or h < 1:
        raise ImageRejected("image_too_many_pixels", f"The image is {w}x{h}; at most {max_pixels} pixels.")
    return img


def inspect_background(data: bytes) -> ImageInfo:
    """Validate an operator's upload fully (header, pixel count, and a complete decode)."""
    img = _open(data, BACKGROUND_MAX_BYTES, BACKGROUND_MAX_PIXELS)
    try:
        img.load()
    except Exception:
        raise ImageRejected("image_unreadable", "The image is truncated or corrupt.") from None
    if img.width < 100 or img.height < 100:
        raise ImageRejected("image_too_small", "The background must be at least 100x100 pixels.")
    return ImageInfo(img.format, img.width, img.height)


def normalize_avatar_upload(data: bytes) -> tuple[bytes, ImageInfo]:
    """Validate a member's uploaded avatar and re-encode it: a square JPEG of at most AVATAR_STORED_SIDE pixels,
    upright (EXIF orientation applied) and without metadata (no location or camera data is kept).

    Refuses with ImageRejected: image_empty, image_too_large (over 2 MB), image_unreadable (not a complete
    JPEG, PNG or WebP), image_too_many_pixels (over 16 megapixels, checked from the header before decoding),
    image_too_small (a side under 64 pixels)."""
    img = _open(data, AVATAR_UPLOAD_MAX_BYTES, AVATAR_UPLOAD_MAX_PIXELS)
    try:
        img.load()
    except Exception:
        raise ImageRejected("image_unreadable", "The image is truncated or corrupt.") from None
    if min(img.size) < AVATAR_UPLOAD_MIN_SIDE:
        raise ImageRejected("image_too_small", f"The avatar must be at least {AVATAR_UPLOAD_MIN_SIDE}x"
                                               f"{AVATAR_UPLOAD_MIN_SIDE} pixels.")
    img = ImageOps.exif_transpose(img)
    side = min(min(img.size), AVATAR_STORED_SIDE)
    square = ImageOps.fit(_flatten(img), (side, side), Image.LANCZOS)
    buf = io.BytesIO()
    square.save(buf, format="JPEG", quality=88, optimize=True)
    return buf.getvalue(), ImageInfo("JPEG", side, side)


def _flatten(img: Image.Image, color: str = "#ffffff") -> Image.Image:
    if img.mode in ("RGBA", "LA", "P", "PA"):
        img = img.convert("RGBA")
        base = Image.new("RGB", img.size, color)
        base.paste(img, mask=img.getchannel("A"))
        return base
    return img.convert("RGB")


def decode_background(data: bytes, width: int, height: int, color: str) -> Image.Image:
    img = _open(data, BACKGROUND_MAX_BYTES, BACKGROUND_MAX_PIXELS)
    img = ImageOps.exif_transpose(img)
    return ImageOps.fit(_flatten(img, color), (width, height), Image.LANCZOS)


def decode_avatar(data: bytes | None, size: int) -> Image.Image | None:
    """A square RGB avatar of size px, or None when the bytes are missing, too big or not an image."""
    if not data:
        return None
    try:
        img = _open(data, AVATAR_MAX_BYTES, AVATAR_MAX_PIXELS)
        if img.format == "JPEG":
            img.draft("RGB", (size, size))  # decode at a reduced scale: much faster for big photos
        img = ImageOps.exif_transpose(img)
        return ImageOps.fit(_flatten(img), (size, size), Image.LANCZOS)
    except Exception:  # a broken avatar must never fail the poster
        return None


def decode_code_image(data: bytes, size: int) -> Image.Image:
    """A fetched mini-program code (PNG bytes) scaled into a size x size box, RGBA."""
    img = _open(data, AVATAR_MAX_BYTES, AVATAR_MAX_PIXELS).convert("RGBA")
    return ImageOps.contain(img, (size, size), Image.LANCZOS)


@lru_cache(maxsize=32)
def default_avatar(size: int) -> Image.Image:
    """A neutral silhouette, drawn rather than shipped, for members whose avatar is missing or broken."""
    k = 4
    s = size * k
    img = Image.new("RGB", (s, s), "#dfe3e8")
    d = ImageDraw.Draw(img)
    d.ellipse((s * 0.32, s * 0.18, s * 0.68, s * 0.54), fill="#aab2bd")
    d.ellipse((s * 0.14, s * 0.60, s * 0.86, s * 1.25), fill="#aab2bd")
    return img.resize((size, size), Image.LANCZOS)


@lru_cache(maxsize=32)
def shape_mask(shape: str, size: int, radius: int) -> Image.Image:
    """An anti-aliased L mask (drawn at 4x and reduced) for a circle or rounded square."""
    k = 4
    big = Image.new("L", (size * k, size * k), 0)
    d = ImageDraw.Draw(big)
    if shape == "circle":
        d.ellipse((0, 0, size * k - 1, size * k - 1), fill=255)
    else:
        d.rounded_rectangle((0, 0, size * k - 1, size * k - 1), radius=radius * k, fill=255)
    return big.resize((size, size), Image.LANCZOS)
