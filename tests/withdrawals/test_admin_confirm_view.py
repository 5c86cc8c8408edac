"""The operator sees a withdrawal awaiting the member's confirmation with the same confirmation data the member's
mini-program passes to wx.requestMerchantTransfer."""
from __future__ import annotations

from app.withdrawals.service import request_withdrawal
from tests.factories import member_headers
from tests.withdrawals.conftest import set_rule


def test_the_operators_view_shows_the_members_confirmation_data(rt, session, client, live_app, partner, work,
                                                                 operator_headers):
    set_rule(session, auto_approve_below_fen=1_000_000, max_fen=1_000_000, daily_max_fen=10**9, daily_count=100)
    with rt.session() as s:
        w, _ = request_withdrawal(s, partner.id, 10_000, "k1", appid=rt.settings.wechat_miniapp_id)
        wid = w.id
    work()
    member = client.get(f"/api/mp/withdrawals/{wid}", headers=member_headers(rt, partner.id)).get_json()
    assert member["state"] == "WAIT_USER_CONFIRM"
    assert member["confirm"]["mchId"] == rt.settings.wechatpay_mch_id and member["confirm"]["package"]
    one = client.get(f"/api/admin/withdrawals/{wid}", headers=operator_headers).get_json()
    listed = client.get("/api/admin/withdrawals?state=WAIT_USER_CONFIRM", headers=operator_headers).get_json()
    assert one["confirm"] == member["confirm"]
    assert [row["confirm"] for row in listed["withdrawals"]] == [member["confirm"]]
