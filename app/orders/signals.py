"""Fraud signals over a set of orders credited to one member: what an operator must look at before money that
depends on those orders (a contest prize) is paid.

- self_purchase: the member bought (or paid for) their own counted orders, above a share of the amount;
- shared_payer: one WeChat payer paid the orders of several different buyer accounts;
- refund_rate: a high share of the counted amount was refunded.

Pure reads; thresholds are arguments (app.config FraudSettings)."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.members.models import Identity
from app.orders.models import Order, OrderPayer


@dataclass(frozen=True)
class Thresholds:
    self_purchase_bp: int  # share of the counted amount bought by the member themself, in basis points
    shared_payer_accounts: int  # distinct buyer accounts one payer may pay for before it is a signal
    refund_rate_bp: int  # share of the counted amount refunded, in basis points
    refund_min_orders: int  # fewer counted orders than this: too few to judge a refund rate


def order_signals(session: Session, member_id: int, order_ids: list[int], t: Thresholds) -> list[dict]:
    """The signals the orders raise against `member_id`, each {kind, ...evidence}; empty when clean."""
    if not order_ids:
        return []
    orders = session.execute(
        select(Order.id, Order.buyer_id, Order.paid_fen, Order.refunded_fen, OrderPayer.payer_openid)
        .outerjoin(OrderPayer, OrderPayer.order_id == Order.id).where(Order.id.in_(sorted(set(order_ids))))).all()
    own_openids = set(session.scalars(select(Identity.value).where(
        Identity.member_id == member_id, Identity.kind.in_(("mini_openid", "oa_openid")))))
    paid = sum(o.paid_fen for o in orders)
    out: list[dict] = []

    own = [o for o in orders if o.buyer_id == member_id or (o.payer_openid and o.payer_openid in own_openids)]
    own_fen = sum(o.paid_fen for o in own)
    if own and paid and own_fen * 10000 >= t.self_purchase_bp * paid:
        out.append({"kind": "self_purchase", "orders": len(own), "amount_fen": own_fen,
                    "share_bp": own_fen * 10000 // paid})

    buyers_by_payer: dict[str, set[int]] = defaultdict(set)
    for o in orders:
        if o.payer_openid:
            buyers_by_payer[o.payer_openid].add(o.buyer_id)
    shared = {payer: len(b) for payer, b in buyers_by_payer.items() if len(b) >= t.shared_payer_accounts}
    if shared:
        out.append({"kind": "shared_payer", "payers": len(shared), "most_accounts": max(shared.values())})

    refunded = sum(o.refunded_fen for o in orders)
    if len(orders) >= t.refund_min_orders and paid and refunded * 10000 >= t.refund_rate_bp * paid:
        out.append({"kind": "refund_rate", "orders": len(orders), "refunded_fen": refunded, "paid_fen": paid,
                    "rate_bp": refunded * 10000 // paid})
    return out
