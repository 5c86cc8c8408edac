"""The renderer: golden images, the QR decodes back, Chinese/emoji/long nicknames, avatars that fail."""
from __future__ import annotations

import dataclasses
import io
import os

import pytest
import zxingcpp
from PIL import Image

from posters import fonts, parse_spec, render_poster, text
from posters.render import compose
from posters.spec import Text
from tests.posters.conftest import GOLDEN, QR_URL, diff_stats, inputs, matches, sample_avatar

CASES = {
    "chinese_nickname": lambda: inputs("张小凡", sample_avatar(1)),
    "emoji_nickname": lambda: inputs("花花🌸😀👍🏽", sample_avatar(2)),
    "long_nickname": lambda: inputs("超级无敌长的昵称会被省略号截断ABCDEFGHIJ", sample_avatar(3)),
    "missing_avatar": lambda: inputs("李四", None),
}


def _golden(name: str, img: Image.Image) -> Image.Image:
    path = GOLDEN / f"{name}.png"
    if os.environ.get("POSTER_GOLDEN_UPDATE") == "1":
        img.save(path, optimize=True)
    assert path.exists(), f"missing golden {path.name}: run with POSTER_GOLDEN_UPDATE=1 once, look at it, commit it"
    return Image.open(path)


def test_emoji_font_is_installed():
    assert fonts.emoji_font_path(), "install the colour emoji font: apt-get install -y fonts-noto-color-emoji"


@pytest.mark.parametrize("case", sorted(CASES))
def test_poster_matches_its_golden_image(case, spec, background):
    img = compose(spec, background, CASES[case]())
    far, mean = diff_stats(img, _golden(case, img))
    assert matches(img, _golden(case, img)), f"{case}: {far:.4%} pixels differ, mean difference {mean:.2f}"


def test_comparison_fails_when_the_nickname_moves_a_few_pixels(spec, background):
    nickname = next(e for e in spec.elements if isinstance(e, Text) and e.type == "nickname")
    moved = dataclasses.replace(spec, elements=tuple(
        dataclasses.replace(e, y=e.y + 4) if e is nickname else e for e in spec.elements))
    img = compose(moved, background, CASES["chinese_nickname"]())
    assert not matches(img, _golden("chinese_nickname", img))


def test_comparison_fails_when_the_emoji_are_missing(spec, background):
    img = compose(spec, background, inputs("花花", sample_avatar(2)))
    assert not matches(img, _golden("emoji_nickname", img))


def test_comparison_fails_for_a_different_avatar(spec, background):
    img = compose(spec, background, inputs("张小凡", sample_avatar(5)))
    assert not matches(img, _golden("chinese_nickname", img))


def test_qr_in_the_jpeg_poster_decodes_back_to_the_share_link(spec, background):
    data = render_poster(spec, background, inputs("张小凡", sample_avatar(1)))
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(data)))
    assert [r.text for r in found] == [QR_URL]


def test_a_photo_poster_is_well_under_300_kb_as_jpeg(spec):
    from posters.samples import photo_like_background

    photo = photo_like_background()
    data = render_poster(dataclasses.replace(spec, background_sha256=None), photo, inputs("张小凡", sample_avatar(1)))
    assert data[:3] == b"\xff\xd8\xff" and len(data) < 250_000, len(data)


@pytest.mark.parametrize("fmt, magic", [("png", b"\x89PNG"), ("webp", b"RIFF")])
def test_other_formats_on_request(spec, background, fmt, magic):
    data = render_poster(spec, background, inputs("张小凡", format=fmt))
    assert data.startswith(magic)


def test_long_nickname_is_cut_with_an_ellipsis_inside_max_width():
    parts = text.fit("超级无敌长的昵称会被省略号截断ABCDEFGHIJ", 40, 260)
    line = "".join(t for _, t in parts)
    assert line.endswith("…") and line.startswith("超级无敌")
    assert text.width(parts, 40) <= 260


def test_short_nickname_is_left_whole():
    assert "".join(t for _, t in text.fit("张小凡", 40, 260)) == "张小凡"


def test_emoji_sequences_stay_whole_when_cut():
    family = "👨\u200d👩\u200d👧"
    parts = text.fit("ab" + family * 6, 40, 150)
    emoji = "".join(t for e, t in parts if e)
    assert emoji and len(emoji) % len(family) == 0


def test_characters_no_font_has_are_left_out_not_drawn_as_boxes(spec, background):
    with_unknown = compose(spec, background, inputs("李\U00013000四\U0010fffd", None))
    plain = compose(spec, background, inputs("李四", None))
    assert diff_stats(with_unknown, plain) == (0.0, 0.0)


@pytest.mark.parametrize("avatar", [b"", b"not an image at all", sample_avatar(1)[:200]],
                         ids=["empty", "garbage", "truncated"])
def test_broken_avatar_falls_back_to_the_default(spec, background, avatar):
    broken = compose(spec, background, inputs("李四", avatar))
    missing = compose(spec, background, inputs("李四", None))
    assert diff_stats(broken, missing) == (0.0, 0.0)


def test_avatar_with_too_many_pixels_falls_back_to_the_default(spec, background):
    out = io.BytesIO()
    Image.new("RGB", (4000, 4000), "red").save(out, "PNG")
    huge = compose(spec, background, inputs("李四", out.getvalue()))
    missing = compose(spec, background, inputs("李四", None))
    assert diff_stats(huge, missing) == (0.0, 0.0)


def test_a_mini_program_code_image_is_pasted_into_the_qr_box(spec, background):
    from posters import PosterInputs, QRPayload

    code = io.BytesIO()
    Image.new("RGB", (430, 430), (0, 128, 0)).save(code, "PNG")
    img = compose(spec, background, PosterInputs("李四", None, QRPayload("image", code.getvalue())))
    box = next(e for e in spec.elements if e.type == "qr")
    assert img.getpixel((box.x + box.size // 2, box.y + box.size // 2)) == (0, 128, 0)


def test_a_spec_round_trips_through_its_dict(spec):
    assert parse_spec(spec.to_dict()) == spec


def test_posters_rendered_on_several_threads_equal_the_sequential_ones(spec, background):
    from concurrent.futures import ThreadPoolExecutor

    jobs = [inputs(name, sample_avatar(i % 3 + 1)) for i, name in enumerate(["张小凡", "花花🌸", "李四", "王五😀"] * 3)]
    sequential = [render_poster(spec, background, j) for j in jobs]
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(lambda j: render_poster(spec, background, j), jobs))
    assert parallel == sequential
