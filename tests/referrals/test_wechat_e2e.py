"""End to end through the emulator: a person scans a partner's QR in WeChat, follows, and is bound."""
from dataclasses import replace
from datetime import timedelta

import requests
from sqlalchemy import func, select

from app.db import utcnow
from app.members.models import Identity, Member
from app.referrals import codes
from app.referrals.models import Binding, ReferralCode, Touch
from app.referrals.saved_rules import update_rules
from tests.factories import make_partner, member_headers
from app.referrals.jobs import renew_temporary_qr_codes


def partner_qr_ticket(client, session, rt):
    p = make_partner(session, "Partner")
    session.commit()
    png = client.get("/api/mp/code.png?channel=oa_qr", headers=member_headers(rt, p.id))
    assert png.status_code == 200 and png.data[:8] == b"\x89PNG\r\n\x1a\n"
    code = session.scalar(select(ReferralCode).where(ReferralCode.owner_id == p.id))
    return p, code


def member_for_openid(session, openid):
    ident = session.scalar(select(Identity).where(Identity.kind == "oa_openid", Identity.value == openid))
    return session.get(Member, ident.member_id)


def test_scan_follow_binds_and_replies_with_the_welcome_text(client, session, rt, emulator, live_app):
    update_rules(session, {"welcome_text": "欢迎加入！"})
    p, code = partner_qr_ticket(client, session, rt)
    assert code.oa_permanent is True
    person = emulator.sim("persons", nickname="小红")
    result = emulator.sim(f"persons/{person['pid']}/scan", ticket=code.oa_ticket)
    assert result["delivered"] and result["reply"]["Content"] == "欢迎加入！"
    session.expire_all()
    fan = member_for_openid(session, person["openids"][rt.settings.wechat_app_id])
    assert fan.referrer_id == p.id
    touch = session.scalar(select(Touch).where(Touch.member_id == fan.id))
    assert (touch.channel, touch.new_follower, touch.outcome) == ("oa_subscribe", True, "bound")


def test_a_news_welcome_replaces_the_text_once_configured(client, session, rt, emulator, live_app):
    article = {"title": "新人礼包", "description": "领取你的专属优惠", "pic_url": "https://cdn.example.com/w.jpg",
               "url": "https://shop.example.com/welcome"}
    update_rules(session, {"welcome_text": "欢迎加入！", "welcome_news": [article]})
    session.commit()
    from app.referrals import saved_rules

    saved_rules._cache.clear()  # the callback caches the welcome for a few seconds
    p, code = partner_qr_ticket(client, session, rt)
    person = emulator.sim("persons", nickname="小绿")
    reply = emulator.sim(f"persons/{person['pid']}/scan", ticket=code.oa_ticket)["reply"]
    assert reply["MsgType"] == "news" and reply["ArticleCount"] == "1"
    assert reply["Articles"]["item"] == {"Title": "新人礼包", "Description": "领取你的专属优惠",
                                         "PicUrl": "https://cdn.example.com/w.jpg",
                                         "Url": "https://shop.example.com/welcome"}


def test_welcome_news_is_validated(session):
    import pytest

    from app.errors import ValidationFailed

    for bad in ([{"title": "t"}], [{"title": "t", "url": "javascript:alert(1)"}],
                [{"title": "t", "url": "https://a", "extra": 1}], [{"title": "t", "url": "https://a"}] * 9):
        with pytest.raises(ValidationFailed) as err:
            update_rules(session, {"welcome_news": bad})
        assert err.value.code == "rules_invalid" and "welcome_news" in err.value.details


def test_a_retry_storm_of_the_same_event_binds_once(client, session, rt, emulator, live_app):
    p, code = partner_qr_ticket(client, session, rt)
    emulator.faults.push_repeat = 3  # WeChat's three deliveries of one event
    person = emulator.sim("persons")
    result = emulator.sim(f"persons/{person['pid']}/scan", ticket=code.oa_ticket)
    assert [a["status"] for a in result["attempts"]] == [200, 200, 200]
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Touch)) == 1
    assert session.scalar(select(func.count()).select_from(Binding)) == 1


def test_in_stream_mode_a_retry_storm_queues_one_event_and_binds_once(client, session, rt, emulator, live_app,
                                                                       monkeypatch):
    from app.referrals import inbox

    rt.settings = rt.settings.with_(touch=replace(rt.settings.touch, mode="stream"))
    update_rules(session, {"welcome_text": "欢迎！"})
    session.commit()
    from app.referrals import saved_rules

    saved_rules._cache.clear()
    p, code = partner_qr_ticket(client, session, rt)
    rt.redis.delete(inbox.STREAM)
    emulator.faults.push_repeat = 3  # WeChat's three deliveries of one event
    person = emulator.sim("persons")
    result = emulator.sim(f"persons/{person['pid']}/scan", ticket=code.oa_ticket)
    assert [a["status"] for a in result["attempts"]] == [200, 200, 200]
    assert result["reply"]["Content"] == "欢迎！"
    assert rt.redis.xlen(inbox.STREAM) == 1  # the claim and the append are one atomic call: retries add nothing
    assert inbox.drain_once(rt, "test", count=10, block_ms=10) == 1
    session.expire_all()
    fan = member_for_openid(session, person["openids"][rt.settings.wechat_app_id])
    assert fan.referrer_id == p.id
    assert session.scalar(select(func.count()).select_from(Binding)) == 1


def test_a_follower_scanning_again_is_logged_but_not_rebound(client, session, rt, emulator, live_app):
    p, code = partner_qr_ticket(client, session, rt)
    person = emulator.sim("persons")
    emulator.sim(f"persons/{person['pid']}/scan", ticket=code.oa_ticket)
    emulator.sim(f"persons/{person['pid']}/scan", ticket=code.oa_ticket)  # now a follower: Event=SCAN
    session.expire_all()
    rows = session.execute(select(Touch.channel, Touch.outcome).order_by(Touch.id)).all()
    assert rows == [("oa_subscribe", "bound"), ("oa_scan", "already_bound")]


def test_forged_push_is_refused_and_records_nothing(session, live_app):
    body = b"<xml><ToUserName>x</ToUserName><FromUserName>evil</FromUserName><CreateTime>1</CreateTime>" \
           b"<MsgType>event</MsgType><Event>subscribe</Event><EventKey>qrscene_abc</EventKey></xml>"
    r = requests.post(f"{live_app}/wechat/callback?signature=bad&timestamp=1&nonce=2", data=body, timeout=5)
    assert r.status_code == 403
    assert session.scalar(select(func.count()).select_from(Touch)) == 0


def test_past_the_permanent_budget_codes_fall_back_to_renewed_temporary_qrs(client, session, rt, emulator):
    update_rules(session, {"permanent_qr_budget": 1, "temp_qr_days": 30, "temp_qr_renew_days": 3})
    first, c1 = partner_qr_ticket(client, session, rt)
    second, c2 = partner_qr_ticket(client, session, rt)
    assert c1.oa_permanent and not c2.oa_permanent
    assert c2.oa_expires_at - utcnow() > timedelta(days=29)
    old_ticket = c2.oa_ticket
    from wechat.clients import official_account

    oa = official_account(rt.settings, rt.redis)
    assert codes.renew_expiring_qr_codes(session, oa, now=utcnow() + timedelta(days=28)) == 1
    session.commit()
    assert c2.oa_ticket != old_ticket and not c2.oa_permanent
    assert codes.renew_expiring_qr_codes(session, oa) == 0  # fresh again: nothing due


def test_mini_program_code_is_fetched_once_then_cached(client, session, rt, emulator):
    p = make_partner(session)
    session.commit()
    first = client.get("/api/mp/code.png?channel=mini_code", headers=member_headers(rt, p.id))
    assert first.status_code == 200 and first.data[:4] == b"\x89PNG"
    emulator.faults.add(target="wxa.wxacode", kind="error", error=500)
    again = client.get("/api/mp/code.png?channel=mini_code", headers=member_headers(rt, p.id))
    assert again.data == first.data  # served from the cache: WeChat was not asked again


def test_the_periodic_job_renews_due_temporary_codes(client, session, rt, emulator):
    update_rules(session, {"permanent_qr_budget": 0})
    _p, code = partner_qr_ticket(client, session, rt)
    assert not code.oa_permanent
    code.oa_expires_at = utcnow() + timedelta(days=1)  # about to expire
    session.commit()
    old = code.oa_ticket
    assert renew_temporary_qr_codes(rt) == 1
    session.expire_all()
    assert session.get(ReferralCode, code.id).oa_ticket != old
