"""The moments, as subscribers of domain events (queue `notifications`): each reads what the message says and
plans it (`service.plan_message`). A message due now is sent right after the planning commit, by the same job
(`jobs.send`, what `notifications.send` runs); if that send cannot finish (rate limit, WeChat unreachable:
RetryLater) or the worker dies, the event's delivery is run again and finds the message still pending. A message
for later (quiet hours, a digest window, a reminder) is queued as `notifications.send`."""
from __future__ import annotations

from datetime import timedelta
from typing import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.boards import contests
from app.boards.models import Contest, ContestPrize
from app.crypto import mask_name
from app.events import Event, subscriber
from app.grades.models import Grade
from app.members.models import Member
from app.notifications.formatting import yuan
from app.notifications.jobs import send
from app.notifications.moments import CONFIRM_WINDOW, STATE_WORDS, plain_reason
from app.notifications.service import plan_message
from app.orders.models import Order
from app.runtime import Runtime

QUEUE = "notifications"


def _plan(rt: Runtime, moment: str, event: Event, member_id: int | None, values: dict | Callable[[Session], dict],
          at=None) -> int | None:
    """Plan the member's message in one unit of work (`values` may be read in it: a function of the session),
    then send it if it is due now."""
    if not member_id:
        return None
    due: list[int] = []
    with rt.session() as s:
        values = values(s) if callable(values) else values
        values = {**values, "time": event.occurred_at.isoformat()}
        out = plan_message(s, rt.settings, moment, event.id, int(member_id), values, at=at, send_now=due)
    for message_id in due:
        send(rt, message_id)
    return out


def _masked(nickname: str | None) -> str:
    return mask_name(nickname) if nickname else "微信用户"


def _masked_nickname(session, member_id: int | None) -> str:
    return _masked(session.scalar(select(Member.nickname).where(Member.id == member_id)) if member_id else None)


@subscriber("commission.accrued", name="notifications.commission_accrued", queue=QUEUE)
def commission_accrued(rt: Runtime, event: Event):
    d = event.data

    def values(s: Session) -> dict:
        order = s.execute(select(Order.paid_fen, Member.nickname).outerjoin(Member, Member.id == Order.buyer_id)
                          .where(Order.id == d["order_id"])).first()
        return {"title": "新佣金到账（待结算）", "amount_fen": int(d["amount_fen"]),
                "order_fen": int(order.paid_fen) if order else 0, "buyer": _masked(order.nickname if order else None),
                "status": "待结算", "level": int(d.get("level") or 1)}

    return _plan(rt, "commission_accrued", event, d["earner_id"], values)


@subscriber("commission.matured", name="notifications.commission_matured", queue=QUEUE)
def commission_matured(rt: Runtime, event: Event):
    d = event.data
    return _plan(rt, "commission_matured", event, d["member_id"],
                 {"title": "佣金已可提现", "amount_fen": int(d["amount_fen"]), "status": "可提现"})


@subscriber("withdrawal.paid", name="notifications.withdrawal_paid", queue=QUEUE)
def withdrawal_paid(rt: Runtime, event: Event):
    d = event.data
    return _plan(rt, "withdrawal_paid", event, d["member_id"],
                 {"title": "提现已到账", "amount_fen": int(d["net_fen"]), "withdrawal_no": f"W{d['withdrawal_id']}",
                  "status": "已到账"})


@subscriber("withdrawal.failed", name="notifications.withdrawal_failed", queue=QUEUE)
def withdrawal_failed(rt: Runtime, event: Event):
    d = event.data
    status = STATE_WORDS.get(d.get("state"), "提现失败")
    return _plan(rt, "withdrawal_failed", event, d["member_id"],
                 {"title": f"{status}，金额已退回余额", "amount_fen": int(d["amount_fen"]),
                  "withdrawal_no": f"W{d['withdrawal_id']}", "status": status,
                  "reason": plain_reason(d.get("state", ""), d.get("reason"))})


def _awaiting_values(event: Event, title: str) -> dict:
    d = event.data
    return {"title": title, "amount_fen": int(d["net_fen"]), "withdrawal_no": f"W{d['withdrawal_id']}",
            "withdrawal_id": int(d["withdrawal_id"]), "status": "待确认",
            "deadline": (event.occurred_at + CONFIRM_WINDOW).isoformat()}


@subscriber("withdrawal.awaiting_confirmation", name="notifications.withdrawal_confirm", queue=QUEUE)
def withdrawal_confirm(rt: Runtime, event: Event):
    return _plan(rt, "withdrawal_confirm", event, event.data["member_id"],
                 _awaiting_values(event, "提现待确认收款，请在24小时内确认"))


@subscriber("withdrawal.awaiting_confirmation", name="notifications.withdrawal_confirm_reminder", queue=QUEUE)
def withdrawal_confirm_reminder(rt: Runtime, event: Event):
    """The reminder before WeChat's 24-hour expiry, planned now for later; the send job drops it once the
    withdrawal no longer awaits confirmation (the member confirmed or cancelled, or it expired)."""
    at = event.occurred_at + timedelta(seconds=rt.settings.notify.confirm_remind_after)
    if at >= event.occurred_at + CONFIRM_WINDOW:
        return "too late to remind"
    return _plan(rt, "withdrawal_confirm_reminder", event, event.data["member_id"],
                 _awaiting_values(event, "提现即将过期，请尽快确认收款"), at=at)


@subscriber("grade.changed", name="notifications.grade_upgraded", queue=QUEUE)
def grade_upgraded(rt: Runtime, event: Event):
    d = event.data
    with rt.session() as s:
        grades = {g.code: g for g in s.scalars(select(Grade).where(Grade.code.in_([d.get("from"), d.get("to")])))}
    to, before = grades.get(d.get("to")), grades.get(d.get("from"))
    if to is None or (before is not None and before.rank >= to.rank):
        return "not an upgrade"
    return _plan(rt, "grade_upgraded", event, d["member_id"],
                 {"title": "恭喜升级", "grade": to.name or to.code,
                  "previous_grade": (before.name or before.code) if before else ""})


@subscriber("member.bound", name="notifications.member_bound", queue=QUEUE)
def member_bound(rt: Runtime, event: Event):
    d = event.data
    return _plan(rt, "member_bound", event, d.get("referrer_id"),
                 lambda s: {"title": "新成员加入你的团队", "member": _masked_nickname(s, d["member_id"])})


@subscriber("contest.frozen", name="notifications.contest_result", queue=QUEUE)
def contest_result(rt: Runtime, event: Event):
    """Everyone placed in the contest (each member of a placed team) hears their rank, and any prize with where
    its money is: already paid, or to be paid (it is still passing the fraud checks, or waits for an operator;
    prize_granted tells when it arrives). A rejected prize is not announced."""
    with rt.session() as s:
        contest = s.get(Contest, event.data["contest_id"])
        if contest is None:
            return "no contest"
        placed = contests.placed_members(s, contest)
        won: dict[int, int] = {}
        unpaid: set[int] = set()
        for member_id, amount, status in s.execute(select(ContestPrize.member_id, ContestPrize.amount_fen,
                                                          ContestPrize.status)
                                                   .where(ContestPrize.contest_id == contest.id,
                                                          ContestPrize.status != "rejected")):
            won[member_id] = won.get(member_id, 0) + int(amount)
            if status != "granted":
                unpaid.add(member_id)
        name = contest.name
    planned = 0
    for member_id, rank, _score, team_id in placed:
        prize = won.get(member_id, 0)
        if prize:  # short enough for a 20-character field: the money's state must not be cut off
            result = (f"{'团队' if team_id else ''}第{rank}名，奖励{yuan(prize)}元"
                      f"{'待发放' if member_id in unpaid else '已到账'}")
        else:
            result = f"{'你的团队' if team_id else '你'}获得第{rank}名"
        planned += _plan(rt, "contest_result", event, member_id,
                         {"title": "竞赛结果揭晓", "contest": name, "contest_id": contest.id, "rank": rank,
                          "result": result, "prize_fen": prize}) is not None
    return f"{planned} planned"


@subscriber("prize.granted", name="notifications.prize_granted", queue=QUEUE)
def prize_granted(rt: Runtime, event: Event):
    """The prize's money arrived in the member's balance (at once, or when an operator granted a held prize)."""
    d = event.data

    def values(s: Session) -> dict:
        contest = s.scalar(select(Contest.name).where(Contest.id == d["contest_id"]))
        return {"title": "竞赛奖金已到账", "contest": contest or "", "amount_fen": int(d["amount_fen"])}

    return _plan(rt, "prize_granted", event, d["member_id"], values)


@subscriber("badge.earned", name="notifications.badge_earned", queue=QUEUE)
def badge_earned(rt: Runtime, event: Event):
    d = event.data
    return _plan(rt, "badge_earned", event, d["member_id"], {"title": "恭喜获得新徽章", "badge": d["title"]})
