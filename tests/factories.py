"""Builders for the test world, shared by every area's tests: members as the app makes them (a consumer role and
their WeChat identities), partners as the app makes them (a Partner row through app.referrals.partners, which
grants the role and records `partner.activated`), referral chains, commission plans, and the shop's order events
as the webhook receives them.

    world = World(session)                   # or the `world` fixture
    grand, parent, buyer = world.chain()     # two partners above a consumer
    world.plan(l1=1000, l2=500)              # 10 % / 5 %, effective since 2020
    ingest_order_event(session, paid("SO1", world.unionid(buyer), 10000, at=days_ago(2)))

Builders flush, never commit: the test decides when its world is committed."""
from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from app.commissions.plans import create_plan
from app.identity import tokens
from app.members.models import Identity, Member
from app.members.service import grant_role
from app.referrals import partners

_seq = itertools.count(1)
LONG_AGO = datetime(2020, 1, 1, tzinfo=timezone.utc)


# -- members and partners ----------------------------------------------------------------------------------------

def make_member(session, nickname: str | None = None, referrer: Member | None = None, roles=("consumer",),
                avatar_url: str = "", **identities) -> Member:
    """A member with `roles` and identities given as kind=value (unionid=..., mini_openid=..., oa_openid=...)."""
    n = next(_seq)
    member = Member(nickname=nickname or f"member{n}", referrer_id=referrer.id if referrer else None,
                    avatar_url=avatar_url)
    session.add(member)
    session.flush()
    for role in roles:
        grant_role(session, member.id, role)
    for kind, value in identities.items():
        session.add(Identity(member_id=member.id, kind=kind, value=value))
    session.flush()
    return member


def make_partner(session, nickname: str | None = None, referrer: Member | None = None, *, source: str = "designated",
                 avatar_url: str = "", **identities) -> Member:
    """An active partner: a member made a partner the way the app does it (Partner row, role, event)."""
    member = make_member(session, nickname, referrer, avatar_url=avatar_url, **identities)
    partners.make_partner(session, member.id, source)
    return member


def member_headers(rt, member_id: int) -> dict:
    """The Authorization header of a signed-in member."""
    return {"Authorization": "Bearer " + tokens.issue(rt.settings.secret_key, "member", member_id)}


class World:
    """Members with unionids (the shop names its buyers by unionid), referral chains and plans on one session."""

    def __init__(self, session):
        self.s = session

    def member(self, nickname: str = "", referrer: Member | None = None, partner: bool = False,
               unionid: str | None = None) -> Member:
        build = make_partner if partner else make_member
        return build(self.s, nickname or None, referrer, unionid=unionid or f"union-{next(_seq)}")

    def unionid(self, m: Member) -> str:
        return self.s.scalar(select(Identity.value).where(Identity.member_id == m.id, Identity.kind == "unionid"))

    def chain(self) -> tuple[Member, Member, Member]:
        """grand (partner) <- parent (partner) <- buyer; returns (grand, parent, buyer)."""
        grand = self.member("grand", partner=True)
        parent = self.member("parent", referrer=grand, partner=True)
        buyer = self.member("buyer", referrer=parent)
        return grand, parent, buyer

    def plan(self, l1: int = 1000, l2: int = 500, effective_from=LONG_AGO, **kw):
        """A commission plan: level 1 at `l1` and level 2 at `l2` basis points unless `rates` says otherwise."""
        rates = kw.pop("rates", None) or [{"level": 1, "bps": l1}, {"level": 2, "bps": l2}]
        return create_plan(self.s, rates=rates, effective_from=effective_from, allow_backdating=True, **kw)


# -- the shop's order events (the body of POST /hooks/shop/orders) -----------------------------------------------

def paid(order_id, buyer_unionid, *amounts, category="", at=None, **buyer):
    """A paid order with one line per amount (fen); buyer by unionid, or by openids given as keywords."""
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
