"""Content-addressed cache: same inputs -> stored bytes without rendering; any changed input -> a new key."""
from __future__ import annotations

import dataclasses

import pytest

import posters.cache
from posters import get_or_render, poster_key
from posters.store import LocalDiskStore
from tests.posters.conftest import inputs, sample_avatar


@pytest.fixture
def renders(monkeypatch):
    calls = []
    real = posters.cache.render_poster

    def counting(*args):
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(posters.cache, "render_poster", counting)
    return calls


def test_second_request_returns_the_stored_bytes_without_rendering(store, spec, background, renders):
    loads = []

    def load():
        loads.append(1)
        return background

    first = get_or_render(store, spec, inputs("张小凡", sample_avatar(1)), load)
    again = get_or_render(store, spec, inputs("张小凡", sample_avatar(1)), load)
    assert first.rendered and not again.rendered
    assert again.data == first.data and again.key == first.key
    assert len(renders) == 1 and len(loads) == 1


def test_the_store_survives_a_new_process(tmp_path, spec, background, renders):
    first = get_or_render(LocalDiskStore(tmp_path), spec, inputs("张小凡"), lambda: background)
    again = get_or_render(LocalDiskStore(tmp_path), spec, inputs("张小凡"), lambda: background)
    assert again.data == first.data and len(renders) == 1


@pytest.mark.parametrize("change", [
    dict(nickname="张小凡2"),
    dict(avatar=sample_avatar(2)),
    dict(qr="https://liebian.test/s/m43"),
    dict(placeholders={"store_name": "徐汇店"}),
    dict(format="png"),
])
def test_any_changed_input_gives_a_new_key(spec, change):
    base = inputs("张小凡", sample_avatar(1))
    kw = {"nickname": "张小凡", "avatar": sample_avatar(1)} | change
    changed = inputs(kw.pop("nickname"), kw.pop("avatar"), **kw)
    assert poster_key(spec, changed) != poster_key(spec, base)


def test_a_new_template_version_gives_a_new_key(spec):
    edited = dataclasses.replace(spec, quality=80)
    assert poster_key(edited, inputs("张小凡")) != poster_key(spec, inputs("张小凡"))


def test_equal_inputs_give_equal_keys(spec):
    assert poster_key(spec, inputs("张小凡", sample_avatar(1))) == poster_key(spec, inputs("张小凡", sample_avatar(1)))


def test_store_refuses_names_that_are_not_content_addresses(store):
    for name in ("../etc/passwd", "posters/../../x.jpg", "posters/ZZ.jpg"):
        with pytest.raises(ValueError):
            store.get(name)
