"""One person, one member: a follower's unionid is asked of WeChat (cgi-bin/user/info) after the callback answered,
and links the follower with the same person's mini-program member by the audited merge."""
import json
import time
from datetime import datetime, timezone

import pytest
import requests
from sqlalchemy import func, select

from app.audit.models import AuditEntry
from app.commissions.models import Commission
from app.commissions.plans import create_plan
from app.fraud.models import RiskFlag
from app.identity.followers import JOB
from app.identity.jobs import link_follower_job
from app.members.models import Identity, Member, MemberMerge
from app.orders.signing import sign
from app.outbox.models import OutboxMessage
from app.referrals import inbox, partners
from tests.factories import make_member
from tests.referrals.test_wechat_e2e import member_for_openid, partner_qr_ticket

LONG_AGO = datetime(2020, 1, 1, tzinfo=timezone.utc)


def _mini_login(client, emulator, pid) -> dict:
    code = emulator.sim(f"persons/{pid}/wx_login")["code"]
    r = client.post("/api/mp/login", json={"code": code})
    assert r.status_code == 200, r.json
    return r.json


def _shop_order(client, rt, order_id, buyer, paid_fen):
    body = json.dumps({"event": "paid", "order_id": order_id, "buyer": buyer,
                       "lines": [{"product_id": "P1", "quantity": 1, "paid_fen": paid_fen}]}).encode()
    ts = int(time.time())
    return client.post("/hooks/shop/orders", data=body, content_type="application/json",
                       headers={"X-Liebian-Timestamp": str(ts),
                                "X-Liebian-Signature": sign(rt.settings.shop_webhook_secret, ts, body)})


def _user_info(emulator, rt, openid, token=None, lang="zh_CN"):
    if token is None:
        token = requests.post(f"{emulator.url}/cgi-bin/stable_token", timeout=10, json={
            "grant_type": "client_credential", "appid": rt.settings.wechat_app_id,
            "secret": rt.settings.wechat_app_secret}).json()["access_token"]
    return requests.get(f"{emulator.url}/cgi-bin/user/info", timeout=10,
                        params={"access_token": token, "openid": openid, "lang": lang}).json()


@pytest.mark.parametrize("first", ["follow", "mini"])
def test_one_person_following_and_in_the_mini_program_is_one_member_whose_orders_pay_the_partner(
        first, client, session, rt, emulator, live_app, work):
    create_plan(session, rates=[{"level": 1, "bps": 1000}], effective_from=LONG_AGO, allow_backdating=True)
    partner, code = partner_qr_ticket(client, session, rt)
    person = emulator.sim("persons", nickname="小明")
    oa_openid = person["openids"][rt.settings.wechat_app_id]
    mini_openid = person["openids"][rt.settings.wechat_miniapp_id]

    if first == "mini":
        mini_member_id = _mini_login(client, emulator, person["pid"])["member_id"]
    emulator.sim(f"persons/{person['pid']}/scan", ticket=code.oa_ticket)
    session.expire_all()
    fan = member_for_openid(session, oa_openid)
    assert fan.referrer_id == partner.id
    # The callback answered without asking WeChat: the lookup waits in the outbox for a worker.
    assert session.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.func == JOB)) == 1
    work()
    if first == "follow":
        mini_member_id = _mini_login(client, emulator, person["pid"])["member_id"]

    session.expire_all()
    owners = session.execute(select(Identity.kind, Identity.member_id)
                             .where(Identity.value.in_([oa_openid, mini_openid, person["unionid"]]))).all()
    survivor = {member_id for _kind, member_id in owners}
    assert len(survivor) == 1 and {k for k, _ in owners} == {"oa_openid", "mini_openid", "unionid"}
    survivor_id = survivor.pop()
    assert mini_member_id in (survivor_id, session.get(Member, mini_member_id).merged_into_id)
    assert session.get(Member, survivor_id).referrer_id == partner.id
    assert session.scalar(select(func.count()).select_from(MemberMerge)) == 1
    assert session.scalar(select(func.count()).select_from(AuditEntry)
                          .where(AuditEntry.action == "member.merged")) == 1

    r = _shop_order(client, rt, "MP-1001", {"mini_openid": mini_openid}, 20_000)
    assert r.status_code == 200, r.json
    session.expire_all()
    earned = session.scalars(select(Commission).where(Commission.earner_id == partner.id)).all()
    assert [(c.level, c.amount_fen) for c in earned] == [(1, 2_000)]


def test_a_plain_follow_is_linked_too_and_a_second_run_changes_nothing(client, session, rt, emulator, live_app,
                                                                       work):
    person = emulator.sim("persons")
    _mini_login(client, emulator, person["pid"])
    result = emulator.sim(f"persons/{person['pid']}/follow")
    assert result["delivered"]
    work()
    oa_openid = person["openids"][rt.settings.wechat_app_id]
    session.expire_all()
    fan = member_for_openid(session, oa_openid)
    kinds = set(session.scalars(select(Identity.kind).where(Identity.member_id == fan.id)))
    assert kinds == {"oa_openid", "mini_openid", "unionid"}
    assert link_follower_job(rt, oa_openid) == "nothing to do"  # at least once: a second run asks nobody


def test_in_stream_mode_the_consumer_queues_the_lookup(client, session, rt, emulator, live_app, work):
    from dataclasses import replace

    rt.settings = rt.settings.with_(touch=replace(rt.settings.touch, mode="stream"))
    partner, code = partner_qr_ticket(client, session, rt)
    rt.redis.delete(inbox.STREAM)
    person = emulator.sim("persons")
    emulator.sim(f"persons/{person['pid']}/scan", ticket=code.oa_ticket)
    assert inbox.drain_once(rt, "test", count=10, block_ms=10) == 1
    work()
    session.expire_all()
    fan = member_for_openid(session, person["openids"][rt.settings.wechat_app_id])
    assert fan.referrer_id == partner.id
    assert session.scalar(select(Identity.value).where(Identity.member_id == fan.id,
                                                       Identity.kind == "unionid")) == person["unionid"]


def test_no_unionid_without_an_open_platform_binding(client, session, rt, emulator, live_app, work):
    person = emulator.sim("persons", unionid=None)
    emulator.sim(f"persons/{person['pid']}/follow")
    work()
    session.expire_all()
    fan = member_for_openid(session, person["openids"][rt.settings.wechat_app_id])
    assert session.scalar(select(func.count()).select_from(Identity).where(Identity.member_id == fan.id)) == 1
    assert session.scalar(select(OutboxMessage.dead).where(OutboxMessage.func == JOB)) is False


def test_a_merge_that_would_join_two_referrers_is_refused_and_flagged(client, session, rt, emulator, live_app,
                                                                      work):
    partner, code = partner_qr_ticket(client, session, rt)
    other = make_member(session, "Other partner")
    partners.make_partner(session, other.id, "designated")
    person = emulator.sim("persons")
    mini_member_id = _mini_login(client, emulator, person["pid"])["member_id"]
    session.get(Member, mini_member_id).referrer_id = other.id
    session.commit()
    emulator.sim(f"persons/{person['pid']}/scan", ticket=code.oa_ticket)
    work()
    session.expire_all()
    fan = member_for_openid(session, person["openids"][rt.settings.wechat_app_id])
    assert fan.id != mini_member_id and fan.referrer_id == partner.id
    flag = session.scalar(select(RiskFlag).where(RiskFlag.kind == "merge_refused"))
    assert flag is not None and flag.details["reason"] == "different_referrers"
    assert session.scalar(select(func.count()).select_from(MemberMerge)) == 0
    assert session.scalar(select(OutboxMessage.dead).where(OutboxMessage.func == JOB)) is False


def test_wechat_failing_the_lookup_is_retried_until_it_answers(client, session, rt, emulator, live_app, work):
    emulator.faults.add(target="user.info", kind="error", error="SYSTEM_ERROR", count=1)
    person = emulator.sim("persons")
    emulator.sim(f"persons/{person['pid']}/follow")
    work()  # the first run fails and is rescheduled with backoff; the sweep with a long lease runs it again
    session.expire_all()
    row = session.scalar(select(OutboxMessage).where(OutboxMessage.func == JOB))
    if row.done_at is None:  # the backoff had not passed yet: make it due, as time would
        row.available_at = datetime.now(timezone.utc)
        session.commit()
        work()
        session.expire_all()
        row = session.scalar(select(OutboxMessage).where(OutboxMessage.func == JOB))
    assert row.done_at is not None and row.failures == 1 and not row.dead
    fan = member_for_openid(session, person["openids"][rt.settings.wechat_app_id])
    assert session.scalar(select(Identity.value).where(Identity.member_id == fan.id,
                                                       Identity.kind == "unionid")) == person["unionid"]


# --- the emulator's cgi-bin/user/info, as WeChat answers it ---

def test_user_info_answers_followers_with_their_unionid_and_no_profile(rt, emulator):
    follower = emulator.sim("persons", nickname="关注者", following=True)
    info = _user_info(emulator, rt, follower["openids"][rt.settings.wechat_app_id])
    assert info["subscribe"] == 1 and info["unionid"] == follower["unionid"]
    assert "nickname" not in info and "headimgurl" not in info  # WeChat stopped returning them in 2021


def test_user_info_for_someone_not_following_says_only_that(rt, emulator):
    stranger = emulator.sim("persons")
    openid = stranger["openids"][rt.settings.wechat_app_id]
    assert _user_info(emulator, rt, openid) == {"subscribe": 0, "openid": openid}


def test_user_info_errors(rt, emulator):
    person = emulator.sim("persons", following=True)
    assert _user_info(emulator, rt, "o-no-such-openid")["errcode"] == 40003
    # the mini-program openid of the same person is not an openid of the service account
    assert _user_info(emulator, rt, person["openids"][rt.settings.wechat_miniapp_id])["errcode"] == 40003
    assert _user_info(emulator, rt, person["openids"][rt.settings.wechat_app_id], token="bogus")["errcode"] == 40001
    assert _user_info(emulator, rt, person["openids"][rt.settings.wechat_app_id], lang="fr")["errcode"] == 40005


def test_the_adapter_reads_user_info(rt, emulator):
    from wechat.clients import official_account
    from wechat.errors import WeChatError

    person = emulator.sim("persons", following=True)
    oa = official_account(rt.settings, rt.redis)
    info = oa.user_info(person["openids"][rt.settings.wechat_app_id])
    assert info["subscribe"] == 1 and info["unionid"] == person["unionid"]
    with pytest.raises(WeChatError) as err:
        oa.user_info("o-nobody")
    assert err.value.errcode == 40003
