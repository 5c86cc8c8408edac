"""The QR code box: a QR drawn from text, or a fetched mini-program code image fitted into the box."""
from __future__ import annotations

from functools import lru_cache

import qrcode
from PIL import Image
from qrcode.constants import ERROR_CORRECT_M


@lru_cache(maxsize=256)
def qr_image(text: str, size: int, margin: int, color: str, background: str) -> Image.Image:
    """A size x size RGB QR code with whole-pixel modules (uneven modules scan badly), centred in the box."""
    qr = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=1, border=margin)
    qr.add_data(text.encode("utf-8"))
    qr.make(fit=True)
    matrix = qr.get_matrix()
    n = len(matrix)
    modules = Image.frombytes("1", (n, n), _pack(matrix, n))  # 1 = dark module
    px = max(1, size // n)
    scaled = modules.resize((n * px, n * px), Image.NEAREST)
    box = Image.new("RGB", (size, size), background)
    offset = (size - n * px) // 2
    box.paste(Image.new("RGB", scaled.size, color), (offset, offset), scaled)
    return box


def _pack(matrix: list[list[bool]], n: int) -> bytes:
    rows = bytearray()
    for row in matrix:
        bits = 0
        for dark in row:
            bits = (bits << 1) | bool(dark)
        pad = (-n) % 8
        rows += (bits << pad).to_bytes((n + pad) // 8, "big")
    return bytes(rows)
