"""A member's nickname and avatar from the mini-program's fill-in; posters drawn with them, the member's grade name
and, for store staff, their store."""
from __future__ import annotations

import io

import pytest
from PIL import Image

import app.posters.service as poster_service
from app.grades.service import create_grade, grant_grade
from app.referrals import stores
from tests.factories import make_member
from tests.factories import make_partner, member_headers
from tests.posters.conftest import sample_avatar
from tests.posters.test_api import create_reference_template, png_header_only


def put_nickname(client, rt, member_id, nickname):
    return client.put("/api/mp/me/nickname", headers=member_headers(rt, member_id), json={"nickname": nickname})


def post_avatar(client, rt, member_id, data: bytes, name="avatar.jpg"):
    resp = client.post("/api/mp/me/avatar", headers=member_headers(rt, member_id),
                       data={"file": (io.BytesIO(data), name)}, content_type="multipart/form-data")
    resp.request.input_stream.close()  # the test client spools a large body to a temporary file it never closes
    return resp


def photo(width: int, height: int, fmt: str = "JPEG", exif: bool = False) -> bytes:
    img = Image.new("RGB", (width, height), (200, 120, 40))
    out = io.BytesIO()
    if exif:
        info = Image.Exif()
        info[0x010F] = "PhoneMaker"  # Make
        info[0x0112] = 6  # Orientation: rotate 90° to display upright
        img.save(out, fmt, exif=info)
    else:
        img.save(out, fmt)
    return out.getvalue()


@pytest.fixture
def rendered(monkeypatch):
    """Records the inputs of every poster rendered (the nickname, avatar bytes and placeholders drawn)."""
    seen = []
    real = poster_service.get_or_render

    def spy(store, spec, inputs, load_background):
        seen.append(inputs)
        return real(store, spec, inputs, load_background)

    monkeypatch.setattr(poster_service, "get_or_render", spy)
    monkeypatch.setattr(poster_service, "fetch_avatar", lambda url: pytest.fail(f"fetched {url} from outside"))
    return seen


# ---- nickname ------------------------------------------------------------------------------------------


def test_a_member_sets_a_nickname_and_it_is_trimmed(client, session, rt):
    m = make_member(session)
    session.commit()
    r = put_nickname(client, rt, m.id, "  小明\u3000 同学 ")
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["nickname"] == "小明 同学"
    assert client.get("/api/mp/me", headers=member_headers(rt, m.id)).get_json()["nickname"] == "小明 同学"
    family = "👨\u200d👩\u200d👧 一家"
    assert put_nickname(client, rt, m.id, family).get_json()["nickname"] == family


@pytest.mark.parametrize("nickname, code", [
    ("", "nickname_blank"), ("   ", "nickname_blank"), ("\u3000", "nickname_blank"), ("\u200d", "nickname_blank"),
    ("a" * 33, "nickname_too_long"), ("小明\n换行", "nickname_invalid"), ("零宽\u200b空格", "nickname_invalid"),
    ("bell\x07", "nickname_invalid"), ("\u202eevil", "nickname_invalid"),
])
def test_bad_nicknames_are_refused_with_their_code(client, session, rt, nickname, code):
    m = make_member(session, "原名")
    session.commit()
    r = put_nickname(client, rt, m.id, nickname)
    assert r.status_code == 422 and r.get_json()["code"] == code, r.get_json()
    session.expire_all()
    assert session.get(type(m), m.id).nickname == "原名"


def test_a_nickname_that_is_not_text_is_refused(client, session, rt):
    m = make_member(session)
    session.commit()
    for body in ({"nickname": 12}, {"nickname": None}, {}):
        r = client.put("/api/mp/me/nickname", headers=member_headers(rt, m.id), json=body)
        assert r.status_code == 422, body


def test_thirty_two_characters_are_enough(client, session, rt):
    m = make_member(session)
    session.commit()
    assert put_nickname(client, rt, m.id, "名" * 32).status_code == 200


def test_setting_a_profile_needs_a_signed_in_member(client):
    assert client.put("/api/mp/me/nickname", json={"nickname": "x"}).status_code == 401
    assert client.post("/api/mp/me/avatar", data={"file": (io.BytesIO(photo(100, 100)), "a.jpg")},
                       content_type="multipart/form-data").status_code == 401


# ---- avatar --------------------------------------------------------------------------------------------


def test_an_uploaded_avatar_is_stored_as_a_clean_square_and_served_back(client, session, rt, poster_dir):
    m = make_member(session)
    session.commit()
    r = post_avatar(client, rt, m.id, photo(900, 600, exif=True))
    assert r.status_code == 200, r.get_json()
    url = r.get_json()["avatar_url"]
    assert url.startswith(f"{rt.settings.public_base_url}/avatars/") and url.endswith(".jpg")
    served = client.get(url.removeprefix(rt.settings.public_base_url))
    assert served.status_code == 200 and served.mimetype == "image/jpeg"
    assert served.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    img = Image.open(io.BytesIO(served.data))
    assert img.size == (600, 600) and not img.getexif()  # square, no camera or location data kept
    etag = served.headers["ETag"]
    assert client.get(url.removeprefix(rt.settings.public_base_url),
                      headers={"If-None-Match": etag}).status_code == 304
    big = post_avatar(client, rt, m.id, photo(2000, 2000, fmt="PNG"), "big.png").get_json()["avatar_url"]
    assert big != url
    assert Image.open(io.BytesIO(client.get(big.removeprefix(rt.settings.public_base_url)).data)).size == (640, 640)


def test_unknown_avatars_are_not_found(client):
    assert client.get(f"/avatars/{'0' * 64}.jpg").status_code == 404
    assert client.get("/avatars/..%2F..%2Fetc%2Fpasswd").status_code == 404
    assert client.get("/avatars/abc.png").status_code == 404


@pytest.mark.parametrize("data, code", [
    (b"", "image_empty"),
    (b"this is not an image at all", "image_unreadable"),
    (photo(800, 800)[:2000], "image_unreadable"),  # truncated
    (photo(40, 200), "image_too_small"),
    (png_header_only(5000, 5000), "image_too_many_pixels"),
])
def test_bad_avatars_are_refused_with_their_code(client, session, rt, poster_dir, data, code):
    m = make_member(session)
    session.commit()
    r = post_avatar(client, rt, m.id, data)
    assert r.status_code == 422 and r.get_json()["code"] == code, r.get_json()
    session.expire_all()
    assert session.get(type(m), m.id).avatar_url == ""


def test_an_avatar_over_two_megabytes_is_refused(client, session, rt, poster_dir):
    m = make_member(session)
    session.commit()
    r = post_avatar(client, rt, m.id, b"\xff\xd8" + b"\0" * (2 << 20))
    assert r.status_code == 422 and r.get_json()["code"] == "image_too_large"
    r = post_avatar(client, rt, m.id, b"\0" * (3 << 20))
    assert r.status_code == 413 and r.get_json()["code"] == "payload_too_large"


# ---- posters drawn with them ---------------------------------------------------------------------------


def test_the_poster_shows_the_nickname_and_avatar_the_member_filled_in(client, session, rt, operator_headers,
                                                                      rendered):
    create_reference_template(client, operator_headers)
    partner = make_partner(session, "")
    session.commit()
    partner.nickname = ""  # signed in, never filled in
    session.commit()
    headers = member_headers(rt, partner.id)
    assert client.get("/api/mp/posters", headers=headers).status_code == 200
    assert rendered[-1].nickname == "微信用户" and rendered[-1].avatar is None

    put_nickname(client, rt, partner.id, "小明")
    avatar_url = post_avatar(client, rt, partner.id, sample_avatar(3, size=300)).get_json()["avatar_url"]
    stored = client.get(avatar_url.removeprefix(rt.settings.public_base_url)).data
    poster = client.get("/api/mp/posters", headers=headers).get_json()
    assert poster["cached"] is False
    assert rendered[-1].nickname == "小明" and rendered[-1].avatar == stored  # read from our store, not fetched


def test_the_poster_shows_the_grade_name_even_before_any_grade_was_reached(client, session, rt, operator_headers,
                                                                          rendered):
    create_reference_template(client, operator_headers)
    create_grade(session, code="g1", rank=1, name="见习推广员")
    create_grade(session, code="g2", rank=2, name="金牌推广员")
    partner = make_partner(session, "小红")
    session.commit()
    headers = member_headers(rt, partner.id)
    client.get("/api/mp/posters", headers=headers)
    assert rendered[-1].placeholders.get("partner_grade") == "见习推广员"  # the lowest grade, as everywhere
    grant_grade(session, partner.id, "g2", reason="top seller", actor="operator:1")
    session.commit()
    client.get("/api/mp/posters", headers=headers)
    assert rendered[-1].placeholders.get("partner_grade") == "金牌推广员"
    assert "store_name" not in rendered[-1].placeholders  # a partner is not store staff: the template default


def test_a_clerks_poster_names_their_store(client, session, rt, operator_headers, rendered):
    create_reference_template(client, operator_headers)
    shop = stores.create_store(session, "静安寺店")
    clerk = make_member(session, "李导购")
    stores.assign_staff(session, clerk.id, shop.id, "clerk")
    session.commit()
    r = client.get("/api/mp/posters", headers=member_headers(rt, clerk.id))
    assert r.status_code == 200, r.get_json()
    assert rendered[-1].placeholders.get("store_name") == "静安寺店"
