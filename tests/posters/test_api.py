"""Operators design templates; partners get their poster in one tap; posters are immutable, cacheable URLs."""
from __future__ import annotations

import io
from datetime import timedelta
import random
import struct
import zlib

import pytest
import zxingcpp
from PIL import Image
from sqlalchemy import select

from app.posters.models import PosterRender, PosterTemplateVersion
from app.referrals import codes
from posters.samples import REFERENCE_SPEC
from tests.factories import make_partner, member_headers
from tests.posters.conftest import sample_avatar, smooth_background


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG claiming width x height pixels: what a decompression bomb looks like before decoding."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def upload(client, headers, data: bytes, name="bg.png"):
    resp = client.post("/api/admin/poster-backgrounds", headers=headers,
                       data={"file": (io.BytesIO(data), name)}, content_type="multipart/form-data")
    resp.request.input_stream.close()  # the test client spools a large body to a temporary file it never closes
    return resp


def create_reference_template(client, headers, name="春季海报", **spec_changes) -> dict:
    sha = upload(client, headers, smooth_background()).get_json()["sha256"]
    spec = {**REFERENCE_SPEC, "background": {"sha256": sha}, **spec_changes}
    resp = client.post("/api/admin/poster-templates", headers=headers, json={"name": name, "spec": spec})
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def decode_qr(data: bytes) -> list[str]:
    return [r.text for r in zxingcpp.read_barcodes(Image.open(io.BytesIO(data)))]


# ---- backgrounds -------------------------------------------------------------------------------------


def test_background_upload_larger_than_the_app_body_limit_is_accepted(client, operator_headers):
    rng = random.Random(3)
    img = Image.frombytes("RGB", (1000, 1000), rng.randbytes(3_000_000))
    out = io.BytesIO()
    img.save(out, "PNG")
    assert len(out.getvalue()) > (1 << 20)
    resp = upload(client, operator_headers, out.getvalue())
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["width"] == 1000 and resp.get_json()["format"] == "png"


@pytest.mark.parametrize("data, code", [
    (b"GIF89a not really", "image_unreadable"),
    (b"", "image_empty"),
    (png_header_only(50_000, 50_000), "image_too_many_pixels"),   # Pillow's DecompressionBombError
    (png_header_only(10_000, 10_000), "image_too_many_pixels"),   # Pillow would only warn
    (png_header_only(5_000, 5_000), "image_too_many_pixels"),     # our own 16 MP limit
    (png_header_only(800, 800), "image_unreadable"),               # header fine, pixels truncated
    (png_header_only(50, 50), "image_unreadable"),
], ids=["not-an-image", "empty", "bomb", "bomb-warning-zone", "over-our-limit", "truncated", "tiny-truncated"])
def test_bad_background_uploads_are_refused_with_a_clear_error(client, operator_headers, data, code):
    resp = upload(client, operator_headers, data)
    assert resp.status_code == 422
    body = resp.get_json()
    assert body["code"] == code and body["message"]


def test_an_upload_over_10_mb_is_refused_as_too_large(client, operator_headers):
    resp = upload(client, operator_headers, b"\xff" * (11 << 20), name="huge.jpg")
    assert resp.status_code == 413 and resp.get_json()["code"] == "payload_too_large"


def test_members_cannot_upload_backgrounds(client, session, rt, poster_dir):
    partner = make_partner(session, "张小凡")
    session.commit()
    assert upload(client, member_headers(rt, partner.id), smooth_background()).status_code == 403


# ---- templates ---------------------------------------------------------------------------------------


def test_editing_the_spec_creates_a_new_version_and_keeps_the_old_one(client, session, operator_headers):
    t = create_reference_template(client, operator_headers)
    assert t["version"] == 1
    spec = {**t["spec"], "output": {"format": "jpeg", "quality": 80}}
    edited = client.patch(f"/api/admin/poster-templates/{t['id']}", headers=operator_headers, json={"spec": spec})
    assert edited.get_json()["version"] == 2
    renamed = client.patch(f"/api/admin/poster-templates/{t['id']}", headers=operator_headers, json={"name": "夏季"})
    assert renamed.get_json()["version"] == 2 and renamed.get_json()["name"] == "夏季"
    detail = client.get(f"/api/admin/poster-templates/{t['id']}", headers=operator_headers).get_json()
    assert [v["version"] for v in detail["versions"]] == [2, 1]
    first = session.scalar(select(PosterTemplateVersion.spec).where(PosterTemplateVersion.version == 1))
    assert first["output"]["quality"] == 85


def test_a_spec_the_renderer_cannot_draw_is_refused_with_details(client, operator_headers):
    sha = upload(client, operator_headers, smooth_background()).get_json()["sha256"]
    spec = {**REFERENCE_SPEC, "background": {"sha256": sha},
            "elements": [{"type": "qr", "x": 700, "y": 10, "size": 200},
                         {"type": "text", "x": 0, "y": 0, "size": 20, "max_width": 100, "text": "{unknown}"}]}
    resp = client.post("/api/admin/poster-templates", headers=operator_headers, json={"name": "x", "spec": spec})
    body = resp.get_json()
    assert resp.status_code == 422 and body["code"] == "poster_spec_invalid"
    assert "elements[0]" in body["details"] and "elements[1].text" in body["details"]


def test_a_spec_with_a_background_never_uploaded_is_refused(client, operator_headers):
    spec = {**REFERENCE_SPEC, "background": {"sha256": "0" * 64}}
    resp = client.post("/api/admin/poster-templates", headers=operator_headers, json={"name": "x", "spec": spec})
    assert resp.status_code == 422 and resp.get_json()["code"] == "poster_background_unknown"


def test_preview_draws_the_template_with_sample_data(client, operator_headers, rt):
    t = create_reference_template(client, operator_headers)
    resp = client.get(f"/api/admin/poster-templates/{t['id']}/preview?format=png", headers=operator_headers)
    assert resp.status_code == 200 and resp.mimetype == "image/png"
    img = Image.open(io.BytesIO(resp.data))
    assert img.size == (750, 1334)
    assert decode_qr(resp.data) == [f"{rt.settings.public_base_url}/s/sample"]


def test_an_unsaved_spec_can_be_previewed(client, operator_headers):
    sha = upload(client, operator_headers, smooth_background()).get_json()["sha256"]
    resp = client.post("/api/admin/poster-templates/preview", headers=operator_headers,
                       json={"spec": {**REFERENCE_SPEC, "background": {"sha256": sha}}})
    assert resp.status_code == 200 and resp.mimetype == "image/jpeg"


# ---- a partner's poster ------------------------------------------------------------------------------


@pytest.fixture
def avatars(monkeypatch):
    """Stands in for the WeChat avatar CDN: records fetches, serves a sample avatar."""
    fetched = []

    def fake_fetch(url):
        fetched.append(url)
        return sample_avatar(1) if "good" in url else None

    monkeypatch.setattr("app.posters.service.fetch_avatar", fake_fetch)
    return fetched


def test_a_partner_gets_a_poster_whose_qr_is_their_exclusive_code(client, session, rt, operator_headers, avatars):
    t = create_reference_template(client, operator_headers)
    partner = make_partner(session, "张小凡", avatar_url="https://thirdwx.qlogo.cn/good/132")
    session.commit()
    resp = client.get(f"/api/mp/posters?template_id={t['id']}", headers=member_headers(rt, partner.id))
    assert resp.status_code == 200, resp.get_json()
    poster = resp.get_json()
    assert poster["url"] == f"{rt.settings.public_base_url}/posters/{poster['key']}.jpg"
    image = client.get(f"/posters/{poster['key']}.jpg")
    assert image.status_code == 200 and image.mimetype == "image/jpeg"
    code = codes.ensure_personal_code(session, partner.id)
    assert decode_qr(image.data) == [codes.share_url(rt.settings.public_base_url, code)]
    assert avatars == ["https://thirdwx.qlogo.cn/good/132"]


def test_the_poster_url_is_immutable_with_an_etag_and_304(client, session, rt, operator_headers, avatars):
    create_reference_template(client, operator_headers)
    partner = make_partner(session, "张小凡")
    session.commit()
    key = client.get("/api/mp/posters", headers=member_headers(rt, partner.id)).get_json()["key"]
    first = client.get(f"/posters/{key}.jpg")
    assert first.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert first.headers["ETag"] == f'"{key}"'
    again = client.get(f"/posters/{key}.jpg", headers={"If-None-Match": f'"{key}"'})
    assert again.status_code == 304 and again.data == b""
    assert client.get(f"/posters/{'0' * 40}.jpg").status_code == 404
    assert client.get("/posters/..%2F..%2Fetc%2Fpasswd").status_code == 404


def test_asking_again_returns_the_same_poster_without_fetching_or_rendering(client, session, rt, operator_headers,
                                                                           avatars, monkeypatch):
    create_reference_template(client, operator_headers)
    partner = make_partner(session, "张小凡", avatar_url="https://thirdwx.qlogo.cn/good/132")
    session.commit()
    headers = member_headers(rt, partner.id)
    first = client.get("/api/mp/posters", headers=headers).get_json()
    monkeypatch.setattr("posters.cache.render_poster", lambda *a: pytest.fail("rendered again"))
    again = client.get("/api/mp/posters", headers=headers).get_json()
    assert again["key"] == first["key"] and again["cached"] is True
    assert len(avatars) == 1
    assert client.get(first["url"].removeprefix(rt.settings.public_base_url)).status_code == 200


def test_a_changed_nickname_or_avatar_gives_a_new_poster(client, session, rt, operator_headers, avatars):
    create_reference_template(client, operator_headers)
    partner = make_partner(session, "张小凡", avatar_url="https://thirdwx.qlogo.cn/good/1")
    session.commit()
    headers = member_headers(rt, partner.id)
    first = client.get("/api/mp/posters", headers=headers).get_json()["key"]
    partner.nickname = "张小凡🌸"
    session.commit()
    renamed = client.get("/api/mp/posters", headers=headers).get_json()["key"]
    partner.avatar_url = "https://thirdwx.qlogo.cn/missing/2"
    session.commit()
    new_avatar = client.get("/api/mp/posters", headers=headers).get_json()["key"]
    assert len({first, renamed, new_avatar}) == 3


def test_an_avatar_that_cannot_be_fetched_still_gives_a_poster_and_is_retried_later(
        client, session, rt, operator_headers, avatars):
    create_reference_template(client, operator_headers)
    partner = make_partner(session, "李四", avatar_url="https://thirdwx.qlogo.cn/missing/9")
    session.commit()
    headers = member_headers(rt, partner.id)
    resp = client.get("/api/mp/posters", headers=headers)
    assert resp.status_code == 200
    assert session.scalar(select(PosterRender.avatar_fallback)) is True
    row = session.scalar(select(PosterRender))
    row.created_at -= timedelta(hours=1)
    session.commit()
    client.get("/api/mp/posters", headers=headers)
    assert len(avatars) == 2  # a stale fallback is tried again rather than kept forever


def test_a_partner_picks_among_active_templates_only(client, session, rt, operator_headers, avatars):
    spring = create_reference_template(client, operator_headers, "春季")
    summer = create_reference_template(client, operator_headers, "夏季")
    client.patch(f"/api/admin/poster-templates/{summer['id']}", headers=operator_headers, json={"active": False})
    partner = make_partner(session, "张小凡")
    session.commit()
    headers = member_headers(rt, partner.id)
    offered = client.get("/api/mp/poster-templates", headers=headers).get_json()["templates"]
    assert [t["name"] for t in offered] == ["春季"]
    resp = client.get(f"/api/mp/posters?template_id={summer['id']}", headers=headers)
    assert resp.status_code == 404 and resp.get_json()["code"] == "poster_template_not_found"
    assert client.get(f"/api/mp/posters?template_id={spring['id']}", headers=headers).status_code == 200


def test_a_template_edit_gives_partners_a_new_poster_on_the_new_version(client, session, rt, operator_headers, avatars):
    t = create_reference_template(client, operator_headers)
    partner = make_partner(session, "张小凡")
    session.commit()
    headers = member_headers(rt, partner.id)
    before = client.get("/api/mp/posters", headers=headers).get_json()
    spec = {**t["spec"], "defaults": {"store_name": "新店", "partner_grade": "推广员"}}
    client.patch(f"/api/admin/poster-templates/{t['id']}", headers=operator_headers, json={"spec": spec})
    after = client.get("/api/mp/posters", headers=headers).get_json()
    assert (before["template_version"], after["template_version"]) == (1, 2)
    assert after["key"] != before["key"]
    # shared ones keep working
    assert client.get(before["url"].removeprefix(rt.settings.public_base_url)).status_code == 200


def test_consumers_without_a_partner_code_get_no_poster(client, session, rt, operator_headers):
    from tests.factories import make_member

    create_reference_template(client, operator_headers)
    consumer = make_member(session, "路人")
    session.commit()
    resp = client.get("/api/mp/posters", headers=member_headers(rt, consumer.id))
    assert resp.status_code in (403, 409) and resp.get_json()["code"]
