"""What partners and operators read: earnings summaries, commission lists, ledger statements, CSV export."""
from __future__ import annotations

import csv
import io

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.commissions.models import Commission
from app.ledger.service import account_statement, member_balances
from app.members.models import Member
from app.orders.models import Order


def mask_nickname(nickname: str | None) -> str:
    """Buyers are shown to partners as their first character and two stars: 小明 → 小**, Alice → A**."""
    return (nickname[0] if nickname else "") + "**"


def earnings(session: Session, member_id: int) -> dict:
    """Balances from the ledger; lifetime = everything earned net of reversals (canceled commissions excluded)."""
    balances = member_balances(session, member_id)
    lifetime, held = session.execute(
        select(func.coalesce(func.sum(Commission.amount_fen - Commission.reversed_fen), 0),
               func.coalesce(func.sum(Commission.amount_fen - Commission.reversed_fen)
                             .filter(Commission.state == "held"), 0))
        .where(Commission.earner_id == member_id, Commission.state != "canceled")).one()
    return {"pending_fen": balances["pending"], "available_fen": balances["available"],
            "withdrawing_fen": balances["withdrawing"], "held_fen": int(held), "lifetime_fen": int(lifetime)}


def commissions_of(session: Session, member_id: int, limit: int = 20, before_id: int | None = None) -> list[dict]:
    q = (select(Commission, Order.shop_order_id, Order.paid_fen, Order.paid_at, Member.nickname)
         .join(Order, Order.id == Commission.order_id).join(Member, Member.id == Order.buyer_id)
         .where(Commission.earner_id == member_id).order_by(Commission.id.desc()).limit(min(max(limit, 1), 100)))
    if before_id:
        q = q.where(Commission.id < before_id)
    return [{"id": c.id, "level": c.level, "state": c.state, "amount_fen": c.amount_fen,
             "reversed_fen": c.reversed_fen, "net_fen": c.amount_fen - c.reversed_fen,
             "order": {"shop_order_id": shop_id, "paid_fen": paid, "paid_at": paid_at.isoformat(),
                       "buyer": mask_nickname(nick)},
             "created_at": c.created_at.isoformat(),
             "mature_at": c.mature_at.isoformat() if c.mature_at else None,
             "matured_at": c.matured_at.isoformat() if c.matured_at else None}
            for c, shop_id, paid, paid_at, nick in session.execute(q)]


def ledger_of(session: Session, member_id: int, limit: int = 50, before_id: int | None = None) -> dict:
    lines = account_statement(session, member_id, limit=min(max(limit, 1), 500), before_id=before_id)
    for line in lines:
        line["created_at"] = line["created_at"].isoformat()
    return {"member_id": member_id, "balances": member_balances(session, member_id), "lines": lines}


def _cell(value) -> str:
    # Spreadsheet formula injection: text starting with = + - @ is prefixed so Excel/WPS shows it as text.
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


CSV_COLUMNS = ("line_id", "entry_id", "created_at", "account", "amount_fen", "kind", "key", "ref_type", "ref_id",
               "memo")


def ledger_csv(session: Session, member_id: int) -> str:
    """Every journal line of the member, oldest first, amounts as integer fen."""
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(CSV_COLUMNS)
    for line in reversed(account_statement(session, member_id)):
        w.writerow([line["id"], line["entry_id"], line["created_at"].isoformat(), line["account"],
                    line["amount_fen"], _cell(line["kind"]), _cell(line["key"]), _cell(line["ref_type"]),
                    _cell(line["ref_id"]), _cell(line["memo"])])
    return out.getvalue()
