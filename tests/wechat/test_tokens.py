"""access_token: one fetch for many concurrent callers, shared through Redis, replaced once when rejected."""
from __future__ import annotations

import threading

import pytest

from wechat.clients import OfficialAccount
from wechat.errors import WeChatError
from tests.racing import errors, race
from wechat.tokens import AccessTokens


def _hammer(fn, n=16):
    """n callers at the same instant; what each got."""
    outcomes = race(n, lambda _i: fn())
    assert not errors(outcomes), errors(outcomes)
    return outcomes


def test_concurrent_callers_in_many_processes_cause_one_fetch(settings, redis, emulator):
    # one AccessTokens per "process": they share nothing but Redis
    providers = [AccessTokens(redis, settings.wechat_api_base, settings.wechat_app_id, settings.wechat_app_secret)
                 for _ in range(16)]
    it = iter(providers)
    lock = threading.Lock()

    def get():
        with lock:
            p = next(it)
        return p.get()

    tokens = _hammer(get)
    assert len(set(tokens)) == 1
    assert emulator.world.token_fetches == 1


def test_expired_token_is_replaced_once_for_all_concurrent_callers(settings, redis, emulator, person):
    oa = OfficialAccount(settings, redis)
    oa.create_qr("warmup", permanent=False, expire_seconds=60)
    emulator.world.expire_tokens()
    before = emulator.world.token_fetches
    results = _hammer(lambda: oa.create_qr("after-expiry", permanent=False, expire_seconds=60)["ticket"])
    assert len(results) == 16
    assert emulator.world.token_fetches - before == 1


def test_revoked_token_is_force_refreshed(settings, redis, emulator):
    oa = OfficialAccount(settings, redis)
    oa.create_qr("a", permanent=False, expire_seconds=60)
    emulator.world.revoke_tokens()  # 40001: someone else force-refreshed
    assert oa.create_qr("b", permanent=False, expire_seconds=60)["ticket"]


def test_stable_token_errors_for_bad_appid_and_secret(settings, redis, emulator):
    with pytest.raises(WeChatError) as bad_secret:
        AccessTokens(redis, settings.wechat_api_base, settings.wechat_app_id, "nope").get()
    assert bad_secret.value.errcode == 40125
    with pytest.raises(WeChatError) as bad_app:
        AccessTokens(redis, settings.wechat_api_base, "wxnotanapp", "nope").get()
    assert bad_app.value.errcode == 40013


def test_unreachable_wechat_is_a_wechat_error(settings, redis):
    with pytest.raises(WeChatError) as e:
        AccessTokens(redis, "http://127.0.0.1:9", settings.wechat_app_id, settings.wechat_app_secret).get()
    assert e.value.errcode == -1
