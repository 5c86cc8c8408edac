"""Real names for large withdrawals: given once (validated, encrypted, masked, audited), announced by the quote,
sent to WeChat Pay encrypted with its public key under Wechatpay-Serial, and checked by the emulator as WeChat does."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from app.audit.models import AuditEntry
from app.crypto import decrypt
from app.errors import ValidationFailed
from app.ledger.service import check_ledger, member_balances
from app.members.merge import merge_members
from app.members.models import Member
from app.members.real_name import mask_real_name, normalize_real_name
from app.referrals import partners
from app.withdrawals.models import Withdrawal
from app.withdrawals.payouts import pay_client
from tests.factories import make_member
from tests.factories import member_headers
from tests.withdrawals.conftest import fund
from wechat.errors import PayError
from wechat.pay import DEFAULT_REPORT_INFOS, TRANSFER_BILLS


def put_real_name(client, rt, member_id, name):
    return client.put("/api/mp/me/real-name", headers=member_headers(rt, member_id), json={"real_name": name})


def quote(client, rt, member_id, amount_fen):
    return client.get(f"/api/mp/withdrawals/quote?amount_fen={amount_fen}", headers=member_headers(rt, member_id))


@pytest.fixture
def wechat_partner(client, session, rt, emulator):
    """A partner who signed into the mini-program as an emulated WeChat user whose verified name is 张三."""
    person = emulator.sim("persons", nickname="推广员", real_name="张三")
    code = emulator.sim(f"persons/{person['pid']}/wx_login")["code"]
    member_id = client.post("/api/mp/login", json={"code": code}).get_json()["member_id"]
    partners.make_partner(session, member_id, "designated")
    fund(session, member_id, 400_000)
    session.commit()
    return session.get(Member, member_id)


# ---- the name itself -------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw, stored", [
    ("张三", "张三"), (" 欧阳 娜娜 ", "欧阳娜娜"), ("买买提•艾力", "买买提·艾力"),
    ("阿依古丽・买买提", "阿依古丽·买买提"),
    ("Mary-Jane O'Neil", "Mary-Jane O'Neil"), ("J. R. Smith", "J. R. Smith"), ("ＺＨＡＮＧ　Ｓａｎ", "ZHANG San"),
    ("José  Núñez", "José Núñez"),
])
def test_real_names_in_chinese_or_latin_letters_are_accepted(raw, stored):
    assert normalize_real_name(raw) == stored


@pytest.mark.parametrize("raw, reason", [
    ("", "blank"), ("   ", "blank"), ("张", "too_short"), ("A", "too_short"), ("张" * 31, "too_long"),
    ("A" * 65, "too_long"), ("张三3", "characters"), ("张San", "characters"), ("·张三", "characters"),
    ("张三·", "characters"), ("John  -Smith", "characters"), ("O''Neil", "characters"), ("<b>张三</b>", "characters"),
    ("john@example.com", "characters"), (None, "characters"), (42, "characters"),
])
def test_invalid_real_names_are_refused_with_the_reason(raw, reason):
    with pytest.raises(ValidationFailed) as err:
        normalize_real_name(raw)
    assert err.value.code == "real_name_invalid" and err.value.details == {"reason": reason}


def test_masks():
    assert [mask_real_name(n) for n in ("张三", "欧阳娜娜", "买买提·艾力", "John Smith")] == [
        "*三", "***娜", "***·*力", "J*** S****"]


def test_a_member_gives_a_real_name_once_and_sees_it_masked_and_changes_it_with_an_audit_trail(
        client, session, rt):
    m = make_member(session)
    session.commit()
    headers = member_headers(rt, m.id)
    assert client.get("/api/mp/me/real-name", headers=headers).get_json() == {"on_file": False, "real_name": None}
    r = put_real_name(client, rt, m.id, "张三")
    assert r.status_code == 200 and r.get_json() == {"on_file": True, "real_name": "*三"}
    assert client.get("/api/mp/me/real-name", headers=headers).get_json() == {"on_file": True, "real_name": "*三"}
    session.expire_all()
    stored = session.get(Member, m.id).real_name_enc
    assert "张三" not in stored and decrypt(rt.settings.secret_key, stored) == "张三"  # encrypted at rest
    assert put_real_name(client, rt, m.id, "张三").status_code == 200  # the same again: nothing to audit
    assert put_real_name(client, rt, m.id, "李四光").get_json()["real_name"] == "**光"
    bad = put_real_name(client, rt, m.id, "李4")
    assert bad.status_code == 422 and bad.get_json()["code"] == "real_name_invalid"
    session.expire_all()
    trail = session.execute(select(AuditEntry.action, AuditEntry.actor, AuditEntry.details)
                            .where(AuditEntry.target_type == "member", AuditEntry.target_id == str(m.id))
                            .order_by(AuditEntry.id)).all()
    assert trail == [("member.real_name_set", "member", {"real_name": "*三"}),
                     ("member.real_name_changed", "member", {"real_name": "**光", "previous": "*三"})]
    assert decrypt(rt.settings.secret_key, session.get(Member, m.id).real_name_enc) == "李四光"


def test_a_merge_keeps_the_real_name_given_on_either_account(session, rt, client):
    older, newer = make_member(session), make_member(session)
    session.commit()
    put_real_name(client, rt, newer.id, "张三")
    session.expire_all()
    kept = merge_members(session, older.id, newer.id, evidence="unionid")
    assert decrypt(rt.settings.secret_key, kept.real_name_enc) == "张三"


# ---- the quote says so ahead of time ----------------------------------------------------------------------


def test_the_quote_tells_a_member_when_a_real_name_will_be_needed(client, session, rt, wechat_partner):
    small = quote(client, rt, wechat_partner.id, 100_000).get_json()
    assert small["real_name_required"] is False and small["net_fen"] == 100_000
    big = quote(client, rt, wechat_partner.id, 300_000)
    assert big.status_code == 200, big.get_json()
    assert big.get_json() == {"amount_fen": 300_000, "fee_fen": 0, "tax_fen": 0, "net_fen": 300_000,
                              "real_name_required": True, "real_name_on_file": False, "real_name_from_fen": 200_000,
                              "available_fen": 400_000, "enough_balance": True}
    refused = client.post("/api/mp/withdrawals", headers=member_headers(rt, wechat_partner.id),
                          json={"amount_fen": 300_000, "idempotency_key": "k-no-name"})
    assert refused.status_code == 422 and refused.get_json()["code"] == "real_name_required"
    put_real_name(client, rt, wechat_partner.id, "张三")
    assert quote(client, rt, wechat_partner.id, 300_000).get_json()["real_name_on_file"] is True
    below = quote(client, rt, wechat_partner.id, 50)
    assert below.status_code == 422 and below.get_json()["code"] == "amount_below_minimum"
    assert quote(client, rt, wechat_partner.id, 900_000).get_json()["code"] == "amount_above_maximum"
    assert client.get("/api/mp/withdrawals/quote?amount_fen=10.5",
                      headers=member_headers(rt, wechat_partner.id)).status_code == 422


# ---- end to end through the emulator ------------------------------------------------------------------------


def test_a_partner_with_a_real_name_withdraws_3000_yuan_and_wechat_refuses_it_without_the_name(
        client, session, rt, emulator, live_app, wechat_partner, operator_headers, work):
    assert put_real_name(client, rt, wechat_partner.id, "张三").status_code == 200
    assert quote(client, rt, wechat_partner.id, 300_000).get_json()["real_name_required"] is True
    r = client.post("/api/mp/withdrawals", headers=member_headers(rt, wechat_partner.id),
                    json={"amount_fen": 300_000, "idempotency_key": "k-3000"})
    assert r.status_code == 201, r.get_json()
    wid = r.get_json()["id"]
    assert r.get_json()["state"] == "REVIEWING"
    assert client.post(f"/api/admin/withdrawals/{wid}/approve", headers=operator_headers).status_code == 200
    work()
    w = session.get(Withdrawal, wid)
    assert w.state == "WAIT_USER_CONFIRM"
    bill = emulator.pay.bills[w.out_bill_no]
    assert bill["content"]["user_name"] == "张三"  # decrypted by the emulator with WeChat Pay's private key
    emulator.sim(f"pay/bills/{w.out_bill_no}/confirm")
    assert emulator.pay.wait_idle()
    session.expire_all()
    assert session.get(Withdrawal, wid).state == "SUCCESS"
    assert emulator.pay.ledger()["paid_total"] == 300_000
    assert member_balances(session, wechat_partner.id) == {"pending": 0, "available": 100_000, "withdrawing": 0}
    assert check_ledger(session).ok

    # The same transfer without the encrypted name: WeChat refuses it (nothing is created or paid).
    pay = pay_client(rt)
    with pytest.raises(PayError) as err:
        pay.create_transfer_bill(w.out_bill_no, w.openid, w.net_fen, w.remark, appid=w.appid)
    assert (err.value.http_status, err.value.code) == (400, "PARAM_ERROR")
    with pytest.raises(PayError) as err:
        pay.create_transfer_bill("LBnonamenewbill0001", w.openid, w.net_fen, w.remark, appid=w.appid)
    assert err.value.code == "PARAM_ERROR"
    # With the name, but announced under a key id WeChat Pay does not have.
    body = {"appid": w.appid, "out_bill_no": "LBwrongserial0001", "transfer_scene_id": "1005", "openid": w.openid,
            "transfer_amount": w.net_fen, "transfer_remark": w.remark, "user_name": pay.encrypt_sensitive("张三"),
            "transfer_scene_report_infos": [dict(i) for i in DEFAULT_REPORT_INFOS]}
    for serial in ("PUB_KEY_ID_SOMEONE_ELSE", None):
        with pytest.raises(PayError) as err:
            pay._call("POST", TRANSFER_BILLS, body, {"Wechatpay-Serial": serial} if serial else {})
        assert err.value.code == "PARAM_ERROR"
    assert sorted(emulator.pay.bills) == [w.out_bill_no] and emulator.pay.ledger()["paid_total"] == 300_000


def test_a_name_that_is_not_the_payees_fails_the_transfer_and_the_money_comes_back(
        client, session, rt, emulator, live_app, wechat_partner, operator_headers, work):
    put_real_name(client, rt, wechat_partner.id, "李四")  # WeChat knows this person as 张三
    wid = client.post("/api/mp/withdrawals", headers=member_headers(rt, wechat_partner.id),
                      json={"amount_fen": 250_000, "idempotency_key": "k-wrong-name"}).get_json()["id"]
    client.post(f"/api/admin/withdrawals/{wid}/approve", headers=operator_headers)
    work()
    assert emulator.pay.wait_idle()
    session.expire_all()
    w = session.get(Withdrawal, wid)
    assert w.state == "FAIL" and w.reason == "NAME_NOT_CORRECT"
    assert member_balances(session, wechat_partner.id)["available"] == 400_000
    assert emulator.pay.ledger()["paid_total"] == 0
    assert check_ledger(session).ok
