"""The moments and the operator's settings for each (pure defaults; saved settings in `notification_moments`).

A moment's values are what the event says plus what the subscriber reads (integer fen, masked names, short
words); its field mappings name, for each key of a WeChat template, the value to put there. Urgent moments
(money that arrived or did not) are sent during quiet hours too."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from app.notifications.formatting import CHINA, yuan

CHANNELS = ("subscribe", "template")


@dataclass(frozen=True)
class Moment:
    name: str
    event: str
    urgent: bool
    values: tuple[str, ...]  # the value names a field mapping may use
    subscribe_fields: dict = field(default_factory=dict)
    template_fields: dict = field(default_factory=dict)
    page: str = "pages/index/index"
    digest: bool = False  # may be merged into one message per window (the operator sets the window)


MOMENTS: dict[str, Moment] = {m.name: m for m in (
    Moment("commission_accrued", "commission.accrued", False,
           ("title", "amount_fen", "order_fen", "buyer", "status", "level", "time"),
           {"thing1": "title", "amount2": "amount_fen", "amount3": "order_fen", "name4": "buyer", "phrase5": "status"},
           {"thing1": "title", "amount2": "amount_fen", "amount3": "order_fen", "thing4": "buyer",
            "time5": "time"}, "pages/earnings/index", digest=True),
    Moment("commission_matured", "commission.matured", False, ("title", "amount_fen", "status", "time"),
           {"thing1": "title", "amount2": "amount_fen", "phrase3": "status", "time4": "time"},
           {"thing1": "title", "amount2": "amount_fen", "time3": "time"}, "pages/earnings/index", digest=True),
    Moment("withdrawal_paid", "withdrawal.paid", True, ("title", "amount_fen", "withdrawal_no", "status", "time"),
           {"thing1": "title", "amount2": "amount_fen", "character_string3": "withdrawal_no", "time4": "time"},
           {"thing1": "title", "amount2": "amount_fen", "time3": "time"}, "pages/withdrawals/index"),
    Moment("withdrawal_failed", "withdrawal.failed", True,
           ("title", "amount_fen", "withdrawal_no", "status", "reason", "time"),
           {"thing1": "title", "amount2": "amount_fen", "phrase3": "status", "thing4": "reason", "time5": "time"},
           {"thing1": "title", "amount2": "amount_fen", "thing3": "reason", "time4": "time"},
           "pages/withdrawals/index"),
    Moment("withdrawal_confirm", "withdrawal.awaiting_confirmation", True,
           ("title", "amount_fen", "withdrawal_no", "withdrawal_id", "status", "deadline", "time"),
           {"thing1": "title", "amount2": "amount_fen", "phrase3": "status", "time4": "deadline"},
           {"thing1": "title", "amount2": "amount_fen", "time3": "deadline"},
           "pages/withdrawals/confirm?id={withdrawal_id}"),
    Moment("withdrawal_confirm_reminder", "withdrawal.awaiting_confirmation", True,
           ("title", "amount_fen", "withdrawal_no", "withdrawal_id", "status", "deadline", "time"),
           {"thing1": "title", "amount2": "amount_fen", "phrase3": "status", "time4": "deadline"},
           {"thing1": "title", "amount2": "amount_fen", "time3": "deadline"},
           "pages/withdrawals/confirm?id={withdrawal_id}"),
    Moment("grade_upgraded", "grade.changed", False, ("title", "grade", "previous_grade", "time"),
           {"thing1": "title", "thing2": "grade", "time3": "time"}, {"thing1": "title", "thing2": "grade",
                                                                     "time3": "time"}, "pages/me/index"),
    Moment("member_bound", "member.bound", False, ("title", "member", "time"),
           {"thing1": "title", "name2": "member", "time3": "time"},
           {"thing1": "title", "thing2": "member", "time3": "time"}, "pages/team/index", digest=True),
    Moment("contest_result", "contest.frozen", False,
           ("title", "contest", "contest_id", "rank", "result", "prize_fen", "time"),
           {"thing1": "contest", "thing2": "result", "time3": "time"},
           {"thing1": "title", "thing2": "contest", "thing3": "result", "time4": "time"},
           "pages/contests/detail?id={contest_id}"),
    Moment("prize_granted", "prize.granted", True, ("title", "contest", "amount_fen", "time"),
           {"thing1": "title", "amount2": "amount_fen", "thing3": "contest", "time4": "time"},
           {"thing1": "title", "amount2": "amount_fen", "thing3": "contest", "time4": "time"},
           "pages/earnings/index"),
    Moment("badge_earned", "badge.earned", False, ("title", "badge", "time"),
           {"thing1": "title", "thing2": "badge", "time3": "time"},
           {"thing1": "title", "thing2": "badge", "time3": "time"}, "pages/badges/index"),
)}

# Why a withdrawal did not arrive, in plain words (WeChat Pay's fail_reason codes and our own states).
FAIL_REASONS = {
    "PAYEE_ACCOUNT_ABNORMAL": "收款微信账户异常，请检查微信支付状态",
    "ACCOUNT_FROZEN": "收款微信账户已冻结",
    "REAL_NAME_CHECK_FAIL": "收款人实名信息不一致",
    "NAME_NOT_CORRECT": "收款人姓名不一致",
    "OPENID_INVALID": "收款账户无效",
    "TRANSFER_QUOTA_EXCEED": "超出微信单日收款额度",
    "DAY_RECEIVED_QUOTA_EXCEED": "超出微信单日收款额度",
    "MONTH_RECEIVED_QUOTA_EXCEED": "超出微信当月收款额度",
    "DAY_RECEIVED_COUNT_EXCEED": "超出微信单日收款次数",
    "ID_CARD_NOT_CORRECT": "收款人身份证信息不一致",
    "ACCOUNT_NOT_EXIST": "收款微信账户不存在",
    "TRANSFER_RISK": "微信支付风控拦截，请稍后再试",
    "OTHER_FAIL_REASON_TYPE": "微信支付未能完成转账",
    "REALNAME_ACCOUNT_RECEIVED_QUOTA_EXCEED": "超出微信实名账户收款额度",
    "RECEIVE_ACCOUNT_NOT_PERMMIT": "收款账户暂不支持收款",
    "PAYER_ACCOUNT_ABNORMAL": "商户付款账户异常，请联系客服",
    "PAYEE_ACCOUNT_NOT_CONFIRM": "未在24小时内确认收款",
    "FAIL": "微信支付未能完成转账",
}
STATE_WORDS = {"FAIL": "提现失败", "CANCELLED": "提现已关闭", "REJECTED": "提现未通过"}


# Moments that only make sense while a withdrawal still awaits the member's confirmation.
WHILE_AWAITING_CONFIRMATION = frozenset({"withdrawal_confirm", "withdrawal_confirm_reminder"})
CONFIRM_WINDOW = timedelta(hours=24)  # WeChat closes an unconfirmed transfer bill after 24 hours


def page_for(page: str, values: dict) -> str:
    """The page with {value} placeholders filled from the message's values (ids only)."""
    for key, value in values.items():
        page = page.replace("{" + key + "}", str(value))
    return page


def plain_reason(state: str, reason: str | None) -> str:
    """The withdrawal's failure as a member reads it: WeChat's code in words; an operator's reason as written."""
    reason = (reason or "").strip()
    if reason in FAIL_REASONS:
        return FAIL_REASONS[reason]
    if state == "CANCELLED" and (not reason or reason.isupper()):
        return "转账已关闭，金额已退回余额"
    if not reason or (reason.replace("_", "").isalnum() and reason.isupper()):
        return "提现未完成，金额已退回余额"
    return reason


def quiet_until(now: datetime, start: int, end: int) -> datetime | None:
    """When quiet hours that contain `now` (UTC) end, or None outside them. Hours are China time; start == end
    means no quiet hours; start > end spans midnight (22 -> 8)."""
    if start == end:
        return None
    local = now.astimezone(CHINA)
    h = local.hour
    inside = start <= h < end if start < end else (h >= start or h < end)
    if not inside:
        return None
    ends = local.replace(hour=end, minute=0, second=0, microsecond=0)
    if ends <= local:
        ends += timedelta(days=1)
    return ends.astimezone(now.tzinfo)


DIGEST_TITLES = {"commission_accrued": "{n}笔新佣金，共{yuan}元", "commission_matured": "{n}笔佣金可提现，共{yuan}元",
                 "member_bound": "{n}位新成员加入你的团队"}


def digest_values(moment: str, values: list[dict]) -> dict:
    """One message for several of a moment's (oldest first): counts and sums in integer fen, the newest time."""
    first, last = values[0], values[-1]
    amount = sum(int(v.get("amount_fen") or 0) for v in values)
    out = {**last, "amount_fen": amount, "count": len(values),
           "title": DIGEST_TITLES[moment].format(n=len(values), yuan=yuan(amount))}
    if "order_fen" in first:
        out["order_fen"] = sum(int(v.get("order_fen") or 0) for v in values)
    if "buyer" in first:
        out["buyer"] = f"{first['buyer']}等{len(values)}人" if len(values) > 1 else first["buyer"]
    if "member" in first:
        out["member"] = f"{first['member']}等{len(values)}人"
    return out
