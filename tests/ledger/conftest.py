"""World-building for ledger, order and commission tests: members, referral chains, plans, shop events."""
from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import pytest

from app.commissions.plans import create_plan
from app.members.models import Identity, Member, MemberRole

_seq = itertools.count(1)
LONG_AGO = datetime(2020, 1, 1, tzinfo=timezone.utc)


class World:
    def __init__(self, session):
        self.s = session

    def member(self, nickname: str = "", referrer=None, partner: bool = False, unionid: str | None = None) -> Member:
        n = next(_seq)
        m = Member(nickname=nickname or f"member{n}", referrer_id=referrer.id if referrer else None)
        self.s.add(m)
        self.s.flush()
        self.s.add(Identity(member_id=m.id, kind="unionid", value=unionid or f"union-{n}-{m.id}"))
        if partner:
            self.s.add(MemberRole(member_id=m.id, role="partner"))
        self.s.flush()
        return m

    def unionid(self, m: Member) -> str:
        from sqlalchemy import select

        return self.s.scalar(select(Identity.value).where(Identity.member_id == m.id, Identity.kind == "unionid"))

    def chain(self):
        """grand (partner) <- parent (partner) <- buyer; returns (grand, parent, buyer)."""
        grand = self.member("grand", partner=True)
        parent = self.member("parent", referrer=grand, partner=True)
        buyer = self.member("buyer", referrer=parent)
        return grand, parent, buyer

    def plan(self, l1: int = 1000, l2: int = 500, effective_from=LONG_AGO, **kw):
        rates = kw.pop("rates", None) or [{"level": 1, "bps": l1}, {"level": 2, "bps": l2}]
        return create_plan(self.s, rates=rates, effective_from=effective_from, allow_backdating=True, **kw)


@pytest.fixture
def world(session):
    return World(session)


def paid(order_id, buyer_unionid, *amounts, category="", at=None, **buyer):
    return {"event": "paid", "order_id": order_id, "occurred_at": at,
            "buyer": {"unionid": buyer_unionid, **buyer},
            "lines": [{"product_id": f"P{i}", "category": category, "quantity": 1, "paid_fen": a}
                      for i, a in enumerate(amounts, 1)]}


def completed(order_id, at=None):
    return {"event": "completed", "order_id": order_id, "occurred_at": at}


def refunded(order_id, refund_id, amount_fen, at=None):
    return {"event": "refunded", "order_id": order_id, "refund_id": refund_id, "amount_fen": amount_fen,
            "occurred_at": at}


def iso(dt: datetime) -> str:
    return dt.isoformat()


def days_ago(n: float) -> str:
    return iso(datetime.now(timezone.utc) - timedelta(days=n))
