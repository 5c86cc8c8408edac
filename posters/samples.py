"""Sample data: what an operator's preview shows, and a deterministic photo-like background for tests and bench."""
from __future__ import annotations

import io
import random

from PIL import Image, ImageFilter

from posters.render import PosterInputs, QRPayload

SAMPLE_NICKNAME = "小林的店🌿"
SAMPLE_PLACEHOLDERS = {"store_name": "静安店", "partner_grade": "金牌推广员"}


def sample_inputs(public_base_url: str = "https://example.com") -> PosterInputs:
    return PosterInputs(SAMPLE_NICKNAME, None, QRPayload("text", f"{public_base_url}/s/sample"),
                        dict(SAMPLE_PLACEHOLDERS))


def _noise(rng: random.Random, w: int, h: int, size: tuple[int, int]) -> Image.Image:
    return Image.frombytes("L", (w, h), rng.randbytes(w * h)).resize(size, Image.BICUBIC)


def photo_like_background(width: int = 750, height: int = 1334, seed: int = 7, fmt: str = "JPEG") -> bytes:
    """Smooth colour fields, mid-scale texture and fine grain, like a photo: it compresses like one."""
    rng = random.Random(seed)
    size = (width, height)
    channels = []
    for _ in range(3):
        coarse = _noise(rng, 6, 10, size)
        mid = _noise(rng, width // 12, height // 12, size)
        fine = _noise(rng, width // 2, height // 2, size)
        layer = Image.blend(coarse, mid, 0.3)
        channels.append(Image.blend(layer, fine, 0.08))
    gradient = Image.linear_gradient("L").resize(size)
    img = Image.merge("RGB", channels)
    img = Image.composite(img, Image.new("RGB", size, (40, 60, 90)), gradient.point(lambda v: 120 + v // 2))
    img = img.filter(ImageFilter.GaussianBlur(0.6))
    out = io.BytesIO()
    img.save(out, fmt, quality=90)
    return out.getvalue()


REFERENCE_SPEC = {
    "canvas": {"width": 750, "height": 1334},
    "background": {"color": "#f4efe6"},
    "output": {"format": "jpeg", "quality": 85},
    "defaults": {"store_name": "链店", "partner_grade": "推广员"},
    "elements": [
        {"type": "avatar", "x": 60, "y": 1040, "size": 120, "shape": "circle", "border_width": 4,
         "border_color": "#ffffff"},
        {"type": "nickname", "x": 200, "y": 1050, "size": 40, "max_width": 260, "color": "#1f1f1f", "bold": True},
        {"type": "text", "x": 200, "y": 1110, "size": 26, "max_width": 260, "color": "#555555",
         "text": "{store_name} · {partner_grade}"},
        {"type": "text", "x": 60, "y": 80, "size": 56, "max_width": 630, "color": "#ffffff", "align": "center",
         "text": "好物一起分享"},
        {"type": "qr", "x": 480, "y": 1010, "size": 220, "margin": 2},
    ],
}
