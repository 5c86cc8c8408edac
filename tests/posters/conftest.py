"""Poster fixtures: a reference template on a smooth background (small golden PNGs), sample avatars, stores."""
from __future__ import annotations

import hashlib
from dataclasses import replace
import io
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageDraw

from posters import PosterInputs, QRPayload, parse_spec
from posters.samples import REFERENCE_SPEC
from posters.store import LocalDiskStore

GOLDEN = Path(__file__).parent / "golden"


def smooth_background(width: int = 750, height: int = 1334) -> bytes:
    """A vertical two-colour gradient with a soft disc: deterministic and small as a golden PNG."""
    top, bottom = (233, 96, 64), (250, 226, 180)
    img = Image.new("RGB", (width, height))
    d = ImageDraw.Draw(img)
    for y in range(height):
        t = y / (height - 1)
        d.line([(0, y), (width, y)], fill=tuple(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)))
    d.ellipse((175, 300, 575, 700), fill=(255, 240, 220))
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def sample_avatar(seed: int = 1, size: int = 256, fmt: str = "JPEG") -> bytes:
    img = Image.new("RGB", (size, size), (40 * seed % 255, 120, 200))
    d = ImageDraw.Draw(img)
    d.ellipse((size * 0.25, size * 0.15, size * 0.75, size * 0.65), fill=(250, 210, 170))
    d.rectangle((0, size * 0.7, size, size), fill=(30, 30, 30 + 20 * seed % 200))
    out = io.BytesIO()
    img.save(out, fmt, quality=92)
    return out.getvalue()


def diff_stats(a: Image.Image, b: Image.Image) -> tuple[float, float]:
    """(share of pixels whose channels differ by more than 40 levels, mean absolute difference)."""
    assert a.size == b.size, (a.size, b.size)
    diff = ImageChops.difference(a.convert("RGB"), b.convert("RGB")).convert("L")
    hist = diff.histogram()
    total = a.width * a.height
    far = sum(hist[41:]) / total
    mean = sum(i * n for i, n in enumerate(hist)) / total
    return far, mean


def matches(a: Image.Image, b: Image.Image) -> bool:
    # Tight enough that a nickname moved by a few pixels or a missing emoji fails (see test_comparison_*),
    # loose enough for anti-aliasing noise between FreeType builds.
    far, mean = diff_stats(a, b)
    return far < 0.0005 and mean < 0.5


@pytest.fixture(scope="session")
def background() -> bytes:
    return smooth_background()


@pytest.fixture(scope="session")
def spec(background):
    return parse_spec({**REFERENCE_SPEC, "background": {"sha256": hashlib.sha256(background).hexdigest()}})


@pytest.fixture
def store(tmp_path):
    return LocalDiskStore(tmp_path / "posters")


QR_URL = "https://liebian.test/s/m42"


def inputs(nickname: str, avatar: bytes | None = None, **kw) -> PosterInputs:
    return PosterInputs(nickname, avatar, QRPayload("text", kw.pop("qr", QR_URL)),
                        kw.pop("placeholders", {"store_name": "静安店", "partner_grade": "金牌推广员"}), **kw)


# ---- database and HTTP world -------------------------------------------------------------------------


@pytest.fixture
def poster_dir(rt, tmp_path):
    """Posters and backgrounds for this test go to a temporary store (the runtime is read per request)."""
    rt.settings = rt.settings.with_(posters=replace(rt.settings.posters, store_dir=str(tmp_path / "store")))
    return tmp_path / "store"


@pytest.fixture
def operator_headers(client, session, poster_dir):
    from app.identity.operators import create_operator

    create_operator(session, "designer", "correct horse battery")
    session.commit()
    token = client.post("/api/admin/login", json={"username": "designer", "password": "correct horse battery"})
    return {"Authorization": "Bearer " + token.get_json()["access_token"]}
