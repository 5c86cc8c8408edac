"""GET /wechat/callback (WeChat's URL check): only a fresh signature is answered, and echostr is always plain
text, so an old signature/timestamp/nonce triple cannot make our domain serve markup."""
from __future__ import annotations

import time
from urllib.parse import urlencode

import pytest

from wechat import push
from wechat.emulator import msgcrypto


def _args(settings, echostr: str, age: int = 0, nonce: str = "4242") -> dict:
    ts = str(int(time.time()) - age)
    return {"signature": msgcrypto.signature(settings.wechat_token, ts, nonce), "timestamp": ts, "nonce": nonce,
            "echostr": echostr}


@pytest.mark.parametrize("echostr", ["5527484721938201", "<html><script>alert(1)</script></html>",
                                     "<?xml version='1.0'?><x/>", " <svg onload=alert(1)>", "{\"a\": 1}"])
def test_echostr_is_answered_as_text_plain_whatever_it_starts_with(client, settings, echostr):
    r = client.get("/wechat/callback?" + urlencode(_args(settings, echostr)))
    assert r.status_code == 200
    assert r.get_data(as_text=True) == echostr
    assert r.mimetype == "text/plain"
    assert r.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("age", [push.MAX_SKEW + 5, -(push.MAX_SKEW + 5), 86_400 * 365])
def test_a_stale_or_future_signature_is_refused(client, settings, age):
    r = client.get("/wechat/callback?" + urlencode(_args(settings, "hello", age=age)))
    assert (r.status_code, r.get_data(as_text=True), r.mimetype) == (403, "forbidden", "text/plain")


def test_a_signature_inside_the_window_is_accepted(client, settings):
    r = client.get("/wechat/callback?" + urlencode(_args(settings, "hello", age=push.MAX_SKEW - 30)))
    assert (r.status_code, r.get_data(as_text=True)) == (200, "hello")


@pytest.mark.parametrize("timestamp", ["", "yesterday", "1e9"])
def test_a_signed_but_unreadable_timestamp_is_refused(client, settings, timestamp):
    args = {"signature": msgcrypto.signature(settings.wechat_token, timestamp, "1"), "timestamp": timestamp,
            "nonce": "1", "echostr": "x"}
    assert client.get("/wechat/callback?" + urlencode(args)).status_code == 403


def test_the_url_check_and_the_pushes_share_one_freshness_window(settings):
    from werkzeug.datastructures import MultiDict

    stale = MultiDict(_args(settings, "x", age=push.MAX_SKEW + 5))
    with pytest.raises(push.PushRejected, match="stale timestamp"):
        push.check_url(settings, stale)
    with pytest.raises(push.PushRejected, match="stale timestamp"):
        push.open_push(settings, stale, b"<xml></xml>")
